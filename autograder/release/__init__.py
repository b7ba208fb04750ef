"""`python -m autograder release --term NAME [--check-only]`: one command per term.

  term.py       the term's parameters, drawn from the term name by a seeded generator and
                accepted only if the lesson's story holds (fast first steps, convergence)
  notebook.py   writes them into the master's `parameters` cell, and grading.json
  generate.py   nbgrader generate_assignment through nbgrader's Python API -> release/
  solutions.py  executes the master (plots) -> solutions/pytorch_slope_solution.ipynb
  verify.py     every verification of the release; returns a list of failures
  manifest.py   release/pytorch_slope/MANIFEST.json: term, parameters, versions, checksums
  main.py       the verb: `main(term=..., check_only=...)`
"""
