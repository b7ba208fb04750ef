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
        # the checks that run several steps point at the steps' own checks, which say "Not found"
        said = "Not tested yet" if result.name in ("gradient", "final_loss") else "Not found"
        assert said in result.feedback and not result.staff_detail, result.feedback


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


# ------------------------------------------------------------------ a worker's open session

class InProcess:
    """A submission whose steps run here (no sandbox): `namespace` holds its functions."""

    def __init__(self, namespace: dict):
        self.namespace = namespace

    def probe(self, name, inputs, timeout_s=None):
        from autograder.sandbox.box.probe_runner import run_probe
        from autograder.sandbox.grader.untrusted import accept_probe_reply
        from autograder.sandbox.shared import tensors

        # what a box does with a probe (its deadline is the main thread's only: none here), then the boundary
        return accept_probe_reply(run_probe(self.namespace, name, tensors.encode(inputs), "cpu", timeout_s or 5.0), "cpu")


def _reference_steps(**replaced) -> dict:
    from autograder.assignment import REFERENCE_FILE

    namespace: dict = {}
    exec(compile(REFERENCE_FILE.read_text(), str(REFERENCE_FILE), "exec"), namespace)
    for source in replaced.values():
        exec(source, namespace)
    return namespace


def _seen(results: dict) -> dict:
    return {name: [(r.name, r.score, r.status, r.feedback, r.misconception) for r in each] for name, each in results.items()}


def test_an_open_session_grades_each_submission_as_a_fresh_session_would():
    """One session for many submissions (what a worker keeps): each run's results are those of
    run_check_passes, whatever ran before it; each pass is closed when its checks end, and
    a run with fewer passes (a notebook whose box died has no own-state pass) runs only those."""
    from autograder.checks.runner import CheckSession, Pass, run_check_passes

    seed, checks = "00" * 16, PYTORCH_SLOPE.checks
    submissions = [_reference_steps(),
                   _reference_steps(update="def update(w, lr):\n    w.data = w.data + lr * w.grad.data\n"),
                   {}, _reference_steps()]
    session = CheckSession(checks, ("own_state", "clean_rooms"), device="cpu", grading_seed=seed)
    try:
        for i, namespace in enumerate(submissions):
            events: list[str] = []
            names = ("clean_rooms",) if i == 2 else ("own_state", "clean_rooms")

            def passes(namespace=namespace, events=events, names=names):
                return {n: Pass(InProcess(namespace), lambda n=n: events.append(n)) for n in names}

            assert session.serves(passes(), checks, "cpu")
            ours = session.run(passes())
            assert events[:len(names)] == list(names)  # each closed when its checks end, in order (then again at the end)
            fresh = run_check_passes(passes(), checks, grading_seed=seed)
            assert _seen(ours) == _seen(fresh), i
        assert [r.score for r in ours["clean_rooms"]] == list(checks.values())
    finally:
        session.close()
    assert not session.alive()


def test_a_session_whose_pytest_ended_answers_grader_errors_and_is_not_used_again():
    from autograder.checks.runner import CheckSession, Pass

    seed, checks = "00" * 16, PYTORCH_SLOPE.checks
    session = CheckSession(checks, ("clean_rooms",), device="cpu", grading_seed=seed)
    session.close()
    closed = []
    passes = {"clean_rooms": Pass(InProcess(_reference_steps()), lambda: closed.append(True))}
    assert not session.serves(passes, checks, "cpu")
    results = session.run(passes)
    assert closed == [True]
    assert all(r.status == CheckStatus.ERROR and "did not run" in r.staff_detail for r in results["clean_rooms"])


def test_a_session_grades_each_run_with_its_own_terms_secret():
    """A class in a term change holds two terms' submissions: an open session draws each run's
    hidden inputs from the secret it is handed, as a fresh session with that secret does."""
    from autograder.checks.runner import CheckSession, Pass, run_check_passes

    checks = PYTORCH_SLOPE.checks
    wrong = _reference_steps(update="def update(w, lr):\n    w.data = w.data + lr * w.grad.data\n")
    session = CheckSession(checks, ("clean_rooms",), device="cpu", grading_seed="00" * 16)
    try:
        seen = {}
        for seed in ("11" * 16, "00" * 16, "11" * 16):
            ours = session.run({"clean_rooms": Pass(InProcess(wrong))}, grading_seed=seed)
            fresh = run_check_passes({"clean_rooms": Pass(InProcess(wrong))}, checks, grading_seed=seed)
            assert _seen(ours) == _seen(fresh), seed
            seen[seed] = [r.case for r in ours["clean_rooms"]]
        assert seen["11" * 16] != seen["00" * 16]  # the cases shown come from each term's hidden inputs
    finally:
        session.close()


def test_a_session_serves_only_the_run_it_was_opened_for():
    from autograder.checks.runner import CheckSession, Pass

    seed, checks = "00" * 16, PYTORCH_SLOPE.checks
    session = CheckSession(checks, ("clean_rooms",), device="cpu", grading_seed=seed)
    try:
        one = {"clean_rooms": Pass(NothingDefined())}
        assert session.serves(one, checks, "cpu")
        assert not session.serves({"other": Pass(NothingDefined())}, checks, "cpu")
        assert not session.serves(one, {"forward": 1}, "cpu")
        assert not session.serves(one, checks, "cuda")
    finally:
        session.close()


class Interrupting(InProcess):
    """Answers `answers` probes, then raises KeyboardInterrupt, which ends a pytest session."""

    def __init__(self, namespace: dict, answers: int):
        super().__init__(namespace)
        self.answers = answers

    def probe(self, name, inputs, timeout_s=None):
        self.answers -= 1
        if self.answers < 0:
            raise KeyboardInterrupt
        return super().probe(name, inputs, timeout_s)


def test_a_session_that_ends_mid_run_answers_with_that_run_only_and_never_the_last_ones():
    """A submission that ends the session (here a KeyboardInterrupt in a probe) gets what its own
    checks recorded, the rest grader errors; the passes are closed; the session is not served
    again, and a run on it finds nothing of an earlier submission."""
    from autograder.checks.runner import CheckSession, Pass

    seed, checks = "00" * 16, PYTORCH_SLOPE.checks
    session = CheckSession(checks, ("clean_rooms",), device="cpu", grading_seed=seed)
    try:
        first = session.run({"clean_rooms": Pass(InProcess(_reference_steps()))})["clean_rooms"]
        assert all(r.status == CheckStatus.PASSED for r in first)
        closed = []
        ended = session.run({"clean_rooms": Pass(Interrupting(_reference_steps(), answers=3), lambda: closed.append(1))})
        statuses = [r.status for r in ended["clean_rooms"]]
        assert CheckStatus.PASSED in statuses and CheckStatus.ERROR in statuses and closed
        assert not session.alive() and not session.serves({"clean_rooms": Pass(NothingDefined())}, checks, "cpu")
        after = session.run({"clean_rooms": Pass(InProcess(_reference_steps()))})["clean_rooms"]
        assert all(r.status == CheckStatus.ERROR for r in after)  # not the first submission's passes
    finally:
        session.close()


def test_a_session_whose_collection_fails_grades_as_a_fresh_session_does():
    """A check that cannot be collected stops a fresh session before any check runs; an open
    session does the same (it ends, and the worker opens another for the next submission)."""
    from autograder.checks.runner import CheckSession, Pass, run_check_passes

    seed, checks = "00" * 16, {**PYTORCH_SLOPE.checks, "not_a_check_file": 1}
    session = CheckSession(checks, ("clean_rooms",), device="cpu", grading_seed=seed)
    try:
        ours = session.run({"clean_rooms": Pass(InProcess(_reference_steps()))})
        fresh = run_check_passes({"clean_rooms": Pass(InProcess(_reference_steps()))}, checks, grading_seed=seed)
        assert [r.status for r in ours["clean_rooms"]] == [r.status for r in fresh["clean_rooms"]]
        assert not session.alive()
    finally:
        session.close()
