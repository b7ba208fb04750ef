"""`python -m autograder gradescope-bundle`: the kit as a Gradescope autograder zip (bundle.py,
with the scripts Gradescope runs in templates/)."""
