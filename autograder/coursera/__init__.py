"""`python -m autograder coursera-bundle`: the kit as a Coursera custom grader (bundle.py: a zip
with a Dockerfile; run.py: what its entry point, templates/run_grader, runs per submission)."""
