"""Gradescope's results.json: https://gradescope-autograders.readthedocs.io/en/latest/specs/"""
from __future__ import annotations

from autograder.model.results import SubmissionResult
from autograder.model.status import CheckStatus


def to_gradescope(result: SubmissionResult) -> dict:
    return {
        "score": result.score,
        "execution_time": round(result.execution_time_s, 3),
        "output": "\n".join(result.notes) or "Your notebook ran; see each check below.",
        "visibility": "visible",
        "tests": [
            {
                "name": check.name,
                "score": check.score,
                "max_score": check.max_score,
                "status": "passed" if check.status == CheckStatus.PASSED else "failed",
                "output": check.feedback,
                "visibility": "visible",
            }
            for check in result.checks
        ],
    }
