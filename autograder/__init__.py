"""Autograder for the `pytorch_slope` assignment.

A submission travels through the package in this order:
  notebook/  reads the .ipynb and picks the code cells to run;
  sandbox/   runs them in a confined child process and answers probes with plain data;
  checks/    ordinary pytest tests compare those answers with the reference;
  results.py collects per-check scores and feedback from the pytest run;
  outputs/   turns results into text, Gradescope JSON, CSV, HTML and the gradebook.
The verbs (`grade`, `autograde`, `release`, `gradescope-bundle`) are thin commands in cli.py
over functions of the same arguments.
"""
