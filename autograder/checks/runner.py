"""Running the checks: `pytest.main` on autograder/checks with a small plugin that hands the
grading run to the checks' fixtures (checks/conftest.py) and records each test's outcome.

A check that raises `Feedback` scores 0 with its teaching message and its case (structured); a
check that fails any other way is a grader error: 0 points, one line for the student, and the
pytest report (check source, hidden values, tolerances) in `staff_detail` for the staff report
only. Checks read observations through checks/expect.py, so a student's unexpected value is a
`Feedback`, never a grader error.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _pytest.reports import TestReport

from autograder.assignment import CHECKS  # the checks this folder holds, with their points: run_checks' default
from autograder.feedback.misconceptions import Feedback
from autograder.model.results import CheckResult
from autograder.model.status import CheckStatus

CHECKS_DIR = Path(__file__).resolve().parent
GRADER_ERROR = "The grader itself failed on this check; your work was not judged. Please tell the course staff."
STAFF_DETAIL_CHARS = 8000


@dataclass(frozen=True)
class Pass:
    """One submission the checks run against in a session of several (`run_check_passes`);
    `close` is called once its checks are done, before the next pass's first check."""

    submission: object
    close: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class GradingRun:
    """What one grading run hands the checks' fixtures (see checks/conftest.py)."""

    submission: object  # anything with .probe(name, inputs) -> reply dict
    device: str
    grading_seed: str  # the term's grading secret, hex (checks/hidden.py)
    passes: dict[str, Pass] = field(default_factory=dict)  # several submissions, in order, in one session


GRADING_RUN = pytest.StashKey[GradingRun]()


class _GradingPlugin:
    def __init__(self, run: GradingRun, checks: dict[str, int]):
        self.run, self.checks = run, checks
        self.results: dict[str, CheckResult] = {}

    def pytest_configure(self, config):
        config.stash[GRADING_RUN] = self.run

    def pytest_generate_tests(self, metafunc):
        """Each check once per pass; pytest orders session-scoped parameters pass by pass."""
        if self.run.passes and "submission" in metafunc.fixturenames:
            metafunc.parametrize("submission", list(self.run.passes), indirect=True, scope="session")

    def pytest_runtest_logreport(self, report):
        test, _, rest = report.nodeid.split("::")[-1].partition("[")
        name, key = test.removeprefix("test_"), (rest.rstrip("]"), test.removeprefix("test_"))
        if name not in self.checks or (report.when != "call" and not report.failed):
            return
        points = self.checks[name]
        if report.passed:
            self.results[key] = CheckResult(name, points, points, CheckStatus.PASSED, "Passed.", None, report.duration)
            return
        error = getattr(report, "_excinfo_value", None)
        if isinstance(error, Feedback):
            self.results[key] = CheckResult(name, 0, points, CheckStatus.FAILED, error.message, error.misconception,
                                            report.duration, error.case.to_dict() if error.case else None)
        else:  # the student reads one line; the traceback (check source, hidden values) is staff-only
            self.results[key] = CheckResult(name, 0, points, CheckStatus.ERROR, GRADER_ERROR, None, report.duration,
                                            staff_detail=str(report.longrepr)[-STAFF_DETAIL_CHARS:])

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item, call):
        """A check that fails with `Feedback` gets a report without pytest's long traceback
        (about 25 ms of source parsing a failed check; its message is all the results use)."""
        if call.excinfo is None or not isinstance(call.excinfo.value, Feedback):
            return None
        report = TestReport(item.nodeid, item.location, {}, "failed", call.excinfo.exconly(), call.when,
                            duration=call.duration, start=call.start, stop=call.stop)
        report._excinfo_value = call.excinfo.value
        return report


def run_checks(submission, *, device: str = "cpu", grading_seed: str, only: list[str] | None = None,
               checks: dict[str, int] = CHECKS) -> list[CheckResult]:
    """Run the named checks (all of `checks`, check name -> points, by default) against
    `submission`; one result per check."""
    return _run(GradingRun(submission, device, grading_seed), [""], {name: checks[name] for name in only or checks})[""]


def run_check_passes(passes: dict[str, Pass], checks: dict[str, int], *, device: str = "cpu",
                     grading_seed: str) -> dict[str, list[CheckResult]]:
    """Every check of `checks` (check name -> points: the Assignment's) against each pass's
    submission in turn, in one pytest session (a session costs about 30 ms to set up); each pass
    is closed when its checks are done (and again, at the end, whatever happened). Returns one
    result per check, per pass."""
    try:
        return _run(GradingRun(None, device, grading_seed, dict(passes)), list(passes), checks)
    finally:
        for each in passes.values():
            each.close()


def _pytest_args(checks: dict[str, int]) -> list[str]:
    node_ids = [f"{CHECKS_DIR / f'test_{name}.py'}::test_{name}" for name in checks]
    # Plugins a grading run does not need; unraisableexception and threadexception each run
    # gc.collect() at exit, which costs ~0.5 s in a process holding torch.
    # The others only serve a person at a terminal (doctest, junitxml, pastebin, stepwise,
    # debugging, setup plans) or fixtures no check uses; "-s": the checks print nothing, and fd
    # capture around every test costs a little each; installed plugins (hypothesis's...) are not
    # loaded: scanning their entry points costs about 15 ms a run. A run went from about 190 to
    # 50 ms on six failing checks here (with Feedback's short report, above).
    quiet = ["terminal", "cacheprovider", "warnings", "logging", "unraisableexception", "threadexception", "faulthandler",
             "doctest", "junitxml", "pastebin", "stepwise", "legacypath", "tmpdir", "monkeypatch", "recwarn",
             "setuponly", "setupplan", "debugging"]
    return ["-s", "--disable-plugin-autoload", *(arg for name in quiet for arg in ("-p", f"no:{name}")),
            "--rootdir", str(CHECKS_DIR), "-c", str(CHECKS_DIR / "pytest.ini"), *node_ids]


def _per_pass(results: dict, pass_names: list[str], checks: dict[str, int]) -> dict[str, list[CheckResult]]:
    """Pass name -> one result per check, in the checks' order, from the plugin's (pass, check)
    results; a check that did not run is a grader error."""
    return {pass_name: [results.get((pass_name, name)) or CheckResult(
                name, 0, checks[name], CheckStatus.ERROR, GRADER_ERROR,
                staff_detail="the check did not run (collection or set-up failed)") for name in checks]
            for pass_name in pass_names}


def _run(run: GradingRun, pass_names: list[str], checks: dict[str, int]) -> dict[str, list[CheckResult]]:
    plugin = _GradingPlugin(run, checks)
    pytest.main(_pytest_args(checks), plugins=[plugin])
    return _per_pass(plugin.results, pass_names, checks)


class _SessionPlugin(_GradingPlugin):
    """The grading plugin of a CheckSession: collects once, then runs pytest's own runtest loop
    once per submission handed over `inbox`."""

    def __init__(self, checks: dict[str, int], pass_names: tuple[str, ...], device: str, grading_seed: str):
        super().__init__(GradingRun(None, device, grading_seed, dict.fromkeys(pass_names)), checks)
        self.inbox: queue.Queue = queue.Queue()
        self.outbox: queue.Queue = queue.Queue()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        if session.testsfailed or len(session.items) != len(self.checks) * len(self.run.passes):
            return True  # as pytest's own loop runs nothing after a collection error: the session ends, the next collects again
        while (handed := self.inbox.get()) is not None:
            passes, grading_seed = handed  # each run its own term's secret: session fixtures end with the run
            self.results = {}
            session.config.stash[GRADING_RUN] = GradingRun(None, self.run.device, grading_seed, passes)
            items = [item for item in session.items if item.callspec.params.get("submission") in passes]
            for i, item in enumerate(items):  # the last one's nextitem=None tears every fixture down
                item.config.hook.pytest_runtest_protocol(item=item, nextitem=items[i + 1] if i + 1 < len(items) else None)
                if session.shouldfail or session.shouldstop:
                    return True
            # Only a whole run answers. One that raised (KeyboardInterrupt, an internal error) ends the
            # session instead: pytest's own teardown then closes its fixtures in this thread, and
            # `run` takes what it recorded once the thread has ended.
            self.outbox.put(self.results)
        return True


class CheckSession:
    """One pytest session, kept open across the submissions of a worker: pytest's set-up and the
    collection of the checks (about 15 ms of CPU) happen once, not once a submission. Each `run`
    goes over the collected checks as pytest's own runtest loop does and ends with every fixture
    torn down (`nextitem=None`), as a fresh session ends; an item is run again the way
    pytest-rerunfailures runs it. pytest runs in a thread of its own (`pytest.main` owns its loop).
    A collection error ends the session before its first run, as it stops a fresh one. If the
    session ends, `run` answers with what this run recorded (the rest are grader errors), and the
    worker opens a new session for the next submission."""

    def __init__(self, checks: dict[str, int], pass_names: tuple[str, ...], *, device: str, grading_seed: str):
        self.checks, self.pass_names = dict(checks), tuple(pass_names)
        self._plugin = _SessionPlugin(self.checks, self.pass_names, device, grading_seed)
        self._thread = threading.Thread(target=pytest.main, args=(_pytest_args(self.checks),),
                                        kwargs={"plugins": [self._plugin]}, name="check-session", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def serves(self, passes: dict[str, Pass], checks: dict[str, int], device: str) -> bool:
        """Whether `run` can take these passes (else: run_check_passes)."""
        return (self.alive() and set(passes) <= set(self.pass_names) and dict(checks) == self.checks
                and device == self._plugin.run.device)

    def run(self, passes: dict[str, Pass], grading_seed: str | None = None) -> dict[str, list[CheckResult]]:
        """Like run_check_passes, for passes named in this session's pass_names; `grading_seed`
        is this run's (a class may hold several terms' submissions), by default the session's."""
        names = [name for name in self.pass_names if name in passes]
        try:
            self._plugin.results = {}  # what a session that ends before this run starts leaves: never the last run's
            self._plugin.inbox.put((dict(passes), grading_seed or self._plugin.run.grading_seed))
            while True:
                try:
                    results = self._plugin.outbox.get(timeout=1.0)
                    break
                except queue.Empty:
                    if not self._thread.is_alive():  # pytest itself ended: what it recorded stands
                        results = self._plugin.results
                        break
        finally:
            for each in passes.values():
                each.close()
        return _per_pass(results, names, self.checks)

    def close(self) -> None:
        self._plugin.inbox.put(None)
        self._thread.join(10)
