"""Regrading says what changed (issue 27, item 5): each student whose score changed, by check, old
and new, and why: the submission changed, the grader changed, the term changed, or nothing did
(`--force`). Staff-only (reports/, never feedback/), with counts in the summary."""
from __future__ import annotations

import contextlib
import csv
import io
from datetime import UTC, datetime

import pytest

from autograder.assignment import CHECKS, PYTORCH_SLOPE
from autograder.model.records import GradedSubmission
from autograder.model.results import CheckResult, SubmissionResult, grader_error_result
from autograder.outputs.regrades import GRADER, NOTHING, SUBMISSION, TERM, count_reasons, score_changes, why_regraded
from autograder.release.synthetic import make_submission, write_submission

A = PYTORCH_SLOPE.name
LOSS_SUM = "def criterion(yhat, y):\n    return ((yhat - y) ** 2).sum()\n"


def record(student="amy", *, failed=(), content="h1", grader="g1", term="2026-fall", status="graded", result=None):
    checks = [CheckResult(n, 0 if n in failed else p, p, "failed" if n in failed else "passed") for n, p in CHECKS.items()]
    made = GradedSubmission(student, A, "nb.ipynb", content, None, False, status, "", result or SubmissionResult(checks),
                            datetime(2026, 12, 1, 9, 0, tzinfo=UTC), grader=grader)
    if term:
        made.extra["term"] = term
    return made


def test_why_a_student_was_graded_again():
    old = record()
    assert why_regraded(old, record(content="h2")) == [SUBMISSION]
    assert why_regraded(old, record(grader="g2")) == [GRADER]
    assert why_regraded(old, record(grader="g2", term="2027-spring")) == [TERM]  # a term's files change the grader too
    assert why_regraded(old, record(content="h2", grader="g2")) == [SUBMISSION, GRADER]
    assert why_regraded(old, record()) == [NOTHING]  # --force
    assert why_regraded(record(term=""), record(grader="g2", term="2027-spring")) == [GRADER]  # an old record: no term stored


def test_each_changed_check_is_listed_with_old_new_and_why():
    old, new = record(failed=("loss", "gradient")), record(failed=("update",), grader="g2")
    changes = score_changes(old, new, "run-2")
    assert [(c["check"], c["old"], c["new"], c["why"]) for c in changes] == [
        ("loss", 0.0, 2.0, GRADER), ("gradient", 0.0, 2.0, GRADER), ("update", 2.0, 0.0, GRADER)]
    assert all(c["student"] == "amy" and c["run"] == "run-2" for c in changes)
    assert score_changes(None, new, "run-2") == []  # a first grade changes nothing
    assert score_changes(old, record(failed=("loss", "gradient"), grader="g2"), "r") == []  # same scores
    # a grader error holds no score: nothing to compare, either way
    error = record(status="grader error", result=grader_error_result(CHECKS, "not graded yet"))
    assert score_changes(old, error, "r") == [] and score_changes(error, old, "r") == []
    counts = count_reasons(changes + score_changes(record("bob", failed=("loss",)), record("bob", content="h2"), "r"))
    assert counts == {SUBMISSION: 1, TERM: 0, GRADER: 1, NOTHING: 0}


def _run(course, *args) -> tuple[int, str]:
    from autograder.cli import main as cli_main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        status = cli_main(["autograde", A, "--course-dir", str(course), "--workers", "1", *args])
    return status, out.getvalue()


@pytest.mark.slow
def test_a_resubmission_that_changes_a_score_is_reported_to_staff_and_counted(tmp_path):
    course = tmp_path / "course"
    for student, overrides in (("amy", {}), ("bob", {"criterion": LOSS_SUM})):
        write_submission(course / "submitted" / student / A / "pytorch_slope.ipynb", make_submission(overrides))
    assert _run(course)[0] == 0
    write_submission(course / "submitted" / "bob" / A / "pytorch_slope.ipynb", make_submission())  # bob fixes his loss
    status, out = _run(course)
    assert status == 0
    assert "regraded: 1 student(s) with a changed score, 3 check(s) (submission changed 1, term changed 0, " \
           "grader changed 0, graded again, nothing changed 0)" in out, out
    report = course / "reports" / A / "score-changes.csv"
    with report.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["student"], r["check"], r["old"], r["new"], r["why"]) for r in rows] == [
        ("bob", name, "0", str(CHECKS[name]), SUBMISSION) for name in ("loss", "gradient", "final_loss")]
    assert not list((course / "feedback").rglob("score-changes*"))  # staff only
    status, out = _run(course, "--force")  # graded again, nothing changed: no score moves
    assert status == 0 and "regraded:" not in out
    with report.open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 3  # the history stays


def test_a_grader_error_in_between_hides_no_score_change(tmp_path):
    """A student graded 10/10, then a submission the grader failed on (no score), then one that
    scores less: the change is from the last record that held scores. Comparing with the grader
    error in between hid every such change, both ways (found by a red-team review)."""
    from autograder.autograde.state import State

    state = State(tmp_path)
    try:
        state.save(record(), "run-1")
        state.save(record(content="h2", status="grader error", result=grader_error_result(CHECKS, "not graded yet")), "run-2")
        assert state.last_judged(A)["amy"].content_hash == "h1"  # the grader error is not what a regrade compares with
        changes = score_changes(state.last_judged(A)["amy"], record(content="h3", failed=("update",)), "run-3")
        assert [(c["check"], c["old"], c["new"], c["why"]) for c in changes] == [("update", 2.0, 0.0, SUBMISSION)]
    finally:
        state.close()
