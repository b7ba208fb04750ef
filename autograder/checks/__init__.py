"""The checks: ordinary pytest tests, one file per check, named after the check."""
