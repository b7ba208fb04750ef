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

import sys as _sys

# nbformat imports jsonschema, which imports the optional rfc3987_syntax if it is installed (the
# Jupyter stack installs it), and that builds a Lark grammar at import: about 2 s of every grader
# process's start-up, for an "iri" string-format check that notebook validation never makes.
# Marking it absent makes jsonschema skip that one check; nothing else changes.
_sys.modules.setdefault("rfc3987_syntax", None)
