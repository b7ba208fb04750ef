"""Gradescope's results.json: https://gradescope-autograders.readthedocs.io/en/latest/specs/

Each test carries what a student may read: the check's message with its case (`output`,
Markdown: model/markdown_text.py, which Gradescope renders as `output_format: "md"`), and the
case as data with the misconception's id (`extra_data`). Staff detail (a grader error's
traceback) is never part of it (outputs/staff_report.py)."""
from __future__ import annotations

from autograder.model.results import CheckResult, SubmissionResult
from autograder.model.status import CheckStatus


def _test(check: CheckResult) -> dict:
    test = {
        "name": check.name,
        "score": check.score,
        "max_score": check.max_score,
        "status": "passed" if check.status == CheckStatus.PASSED else "failed",
        "output": check.feedback,
        "visibility": "visible",
    }
    if check.status == CheckStatus.FAILED and (check.misconception or check.case):
        test["extra_data"] = {"misconception": check.misconception, "case": check.case}
    return test


def to_gradescope(result: SubmissionResult) -> dict:
    return {
        "score": result.score,
        "execution_time": round(result.execution_time_s, 3),
        # one note a paragraph: Markdown joins single lines into one
        "output": "\n\n".join(result.student_notes) or "Your notebook ran; see each check below.",
        "output_format": "md",
        "test_output_format": "md",
        "visibility": "visible",
        "tests": [_test(check) for check in result.checks],
        # Stored by Gradescope, shown to staff, not to students: how the submission was confined.
        "extra_data": {"confinement": result.isolation.get("level", "")},
    }
