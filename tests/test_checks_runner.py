"""The checks' pytest run (autograder/checks/runner.py): a check that fails with Feedback is
reported from the Feedback itself (pytest's long traceback is not built for it), and a check that
fails any other way keeps the traceback for the staff."""
from __future__ import annotations

from autograder.assignment import CHECKS, PYTORCH_SLOPE
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


def test_passes_run_in_one_session_each_closed_before_the_next_starts():
    from autograder.checks.runner import Pass, run_check_passes

    events = []

    class Recording(NothingDefined):
        def __init__(self, name):
            self.name = name

        def probe(self, probe, inputs, timeout_s=None):
            events.append(self.name)
            return super().probe(probe, inputs, timeout_s)

    passes = {"first": Pass(Recording("first"), lambda: events.append("first closed")),
              "second": Pass(Recording("second"), lambda: events.append("second closed"))}
    results = run_check_passes(passes, PYTORCH_SLOPE.checks, grading_seed="00" * 16)
    assert list(results) == ["first", "second"]
    assert all([r.name for r in each] == list(CHECKS) for each in results.values())
    assert all(r.misconception == "missing_function" for each in results.values() for r in each)
    closed = events.index("first closed")
    assert set(events[:closed]) == {"first"} and "first" not in events[closed:]
    after = events[closed + 1:]
    assert "second" in after and "second closed" in after and after.index("second closed") > max(
        i for i, e in enumerate(after) if e == "second")
