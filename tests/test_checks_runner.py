"""The checks' pytest run (autograder/checks/runner.py): a check that fails with Feedback is
reported from the Feedback itself (pytest's long traceback is not built for it), and a check that
fails any other way keeps the traceback for the staff."""
from __future__ import annotations

from autograder.assignment import CHECKS
from autograder.checks.runner import run_checks
from autograder.model.status import CheckStatus


class NothingDefined:
    def probe(self, name, inputs, timeout_s=None):
        return {"status": "missing", "missing": ["forward", "criterion", "update", "zero_grad"]}


class Broken:
    def probe(self, name, inputs, timeout_s=None):
        raise RuntimeError("a bug in the grader's side")


def test_a_feedback_failure_is_reported_from_the_feedback():
    results = run_checks(NothingDefined(), grading_seed="00" * 16)
    assert [r.name for r in results] == list(CHECKS)
    for result in results:
        assert result.status == CheckStatus.FAILED and result.misconception == "missing_function", result
        assert "Not found" in result.feedback and not result.staff_detail


def test_any_other_failure_keeps_its_traceback_for_the_staff():
    results = run_checks(Broken(), grading_seed="00" * 16, only=["forward"])
    assert results[0].status == CheckStatus.ERROR
    assert "a bug in the grader's side" in results[0].staff_detail and "test_forward" in results[0].staff_detail
