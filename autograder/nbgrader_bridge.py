"""What the master notebook's hidden test cells call on nbgrader's path:

    from autograder.nbgrader_bridge import run_check
    run_check("forward", globals())

It runs the same pytest check as `python -m autograder grade`, prints the feedback, and raises
AssertionError when the check fails, so nbgrader scores the cell 0; a pass prints one line and
nothing on stderr, so correct work never loses points to a stray warning.
"""
from __future__ import annotations

from autograder.assignment import grading_settings
from autograder.checks.runner import run_checks
from autograder.model.status import CheckStatus
from autograder.outputs.text import check_cell_output
from autograder.probes.in_kernel import InKernelSubmission


def run_check(name: str, namespace: dict, device: str = "cpu") -> None:
    (result,) = run_checks(
        InKernelSubmission(namespace, device), device=device,
        grading_seed=grading_settings()["grading_seed"], only=[name],
    )
    print(check_cell_output(result))
    if result.status == CheckStatus.PASSED:
        return
    raise AssertionError(f"check {name!r} failed; see the feedback above")
