"""One submission, start to finish, as a short list of steps:

  1. load     notebook/load.py   parse, restore locked cells        -> code cells
  2. execute  sandbox/           run the cells in a confined process -> the student's state
  3. check    checks/runner.py   pytest runs autograder/checks       -> per-check results
  4. close    sandbox/           kill everything the submission started

`grade` and `autograde` both call `grade_submission`; they differ only in how many submissions
they feed it and where the results go.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.assignment import Assignment
from autograder.checks.runner import CheckSession, Pass, run_check_passes
from autograder.feedback.notebook_notes import execution_notes
from autograder.model.results import CheckResult, SubmissionResult, zero_result
from autograder.notebook.executed import kept_outputs
from autograder.notebook.load import SubmissionError, load_submission
from autograder.notebook.releases import KnownReleases, known_releases
from autograder.sandbox.grader.limits import Limits
from autograder.sandbox.grader.rooms import CleanRooms, preload_for
from autograder.sandbox.grader.submitted_files import collect as collect_submitted_files
from autograder.sandbox.grader.zygotes import Zygote

OWN_STATE_PROBE_TIMEOUT_S = 2.0
_NOT_A_SIGN = ("timeout", "crashed", "sandbox_died")
OWN_STATE, CLEAN_ROOMS = "own_state", "clean_rooms"  # the two passes of checks, in the order they run


@dataclass
class GradingContext:
    """What stays the same across the submissions of one run."""

    zygote: Zygote
    assignment: Assignment  # its checks (in autograder/checks/) with their points, release and steps
    device: str = "cpu"
    limits: Limits = field(default_factory=Limits)
    # every release a submission may come from, with each term's grading secret (default: the kit's)
    releases: KnownReleases | None = None
    check_session: CheckSession | None = None  # a worker's open pytest session (open_check_session)

    def __post_init__(self):
        if self.releases is None:
            self.releases = known_releases(self.assignment)


def open_check_session(context: GradingContext) -> CheckSession:
    """A pytest session that a worker keeps for its submissions (checks/runner.py)."""
    return CheckSession(context.assignment.checks, (OWN_STATE, CLEAN_ROOMS), device=context.device,
                        grading_seed=context.releases.secret(context.releases.current.term))


class _Hurried:
    """A sandbox whose probes get a shorter limit."""

    def __init__(self, sandbox, timeout_s: float):
        self.sandbox, self.timeout_s = sandbox, timeout_s

    def probe(self, name: str, inputs: dict) -> dict:
        return self.sandbox.probe(name, inputs, self.timeout_s)


def integrity_flags(own_state: list[CheckResult], clean_room: list[CheckResult]) -> list[str]:
    """Checks whose score in the notebook's own state differs from the clean room's: code outside
    the steps' bodies changed what the checks observe (or the steps depend on top-level state)."""
    counted = {c.name: c for c in clean_room}
    flags = []
    for own in own_state:
        room = counted.get(own.name)
        if own.misconception in _NOT_A_SIGN:  # the notebook's state hung or died: no evidence either way
            continue
        if room is not None and own.score != room.score:
            flags.append(f"{own.name}: {own.score:g}/{own.max_score:g} in the notebook's own state "
                         f"but {room.score:g}/{room.max_score:g} in a clean room")
    return flags


def grade_submission(notebook: Path, context: GradingContext) -> SubmissionResult:
    start = time.perf_counter()
    try:
        loaded = load_submission(notebook, context.releases)
    except SubmissionError as error:
        reason = error.reason
    except OSError as error:
        reason = f"the file could not be read ({error.strerror})"
    except Exception as error:  # a notebook no check foresaw: this submission is not graded, the run goes on
        reason = f"the notebook could not be read ({type(error).__name__}): re-save it from Jupyter and submit it again"
    else:
        reason = None
    if reason is not None:
        result = zero_result(context.assignment.checks, f"Not graded: {reason}.", [f"Not graded: {reason}."], not_graded=reason)
        result.execution_time_s = time.perf_counter() - start
        return result
    # nbgrader runs a notebook in its submission folder: the files beside it go into /submission.
    beside = collect_submitted_files(Path(notebook).parent, max_bytes=context.limits.submitted_files_bytes,
                                     max_count=context.limits.submitted_files_count)
    rooms = CleanRooms(context.zygote, loaded.cells, device=context.device, limits=context.limits,
                       files=beside.files, labels=loaded.labels)
    sandbox = context.zygote.spawn(device=context.device, limits=context.limits, files=beside.files,
                                   preload=preload_for(loaded.cells))
    try:
        report = sandbox.execute(loaded.cells)
        isolation = sandbox.isolation
    except BaseException:
        sandbox.close()
        raise
    # One pytest session, two passes. First the checks on the notebook's own state, only to
    # flag a disagreement with the clean rooms (a short probe limit: a hang here is not the
    # student's score); the sandbox is closed once they are done. Then the checks that count,
    # in clean rooms: a fresh room per check, holding only definitions (opened after the
    # notebook's sandbox is gone: a sandbox uid serves one box at a time).
    passes = {} if report.died else {OWN_STATE: Pass(
        _Hurried(sandbox, min(context.limits.probe_timeout_s, OWN_STATE_PROBE_TIMEOUT_S)), sandbox.close)}
    if report.died:
        sandbox.close()
    passes[CLEAN_ROOMS] = Pass(rooms, rooms.close)
    # the hidden inputs of the term whose release the notebook was made from
    checks_of, session, secret = context.assignment.checks, context.check_session, context.releases.secret(loaded.release.term)
    if session is not None and session.serves(passes, checks_of, context.device):
        results = session.run(passes, grading_seed=secret)
    else:
        results = run_check_passes(passes, checks_of, device=context.device, grading_seed=secret)
    own_state, checks = results.get(OWN_STATE, []), results[CLEAN_ROOMS]
    cell_notes, run_notes = execution_notes(report, loaded.labels, loaded.cells)
    notes = loaded.notes + beside.notes + run_notes
    steps = context.assignment.student_functions
    defined = rooms.defined if rooms.defined is not None else (report.defined if not report.died else list(steps))
    missing = [name for name in steps if name not in defined]
    return SubmissionResult(checks, notes, time.perf_counter() - start, isolation, missing_functions=missing,
                            cell_notes=cell_notes,
                            integrity=integrity_flags(own_state, checks) + rooms.integrity,
                            term=loaded.release.term, release_id=loaded.release.id,
                            release_matched=loaded.release_matched, unanswered=loaded.unanswered,
                            cell_outputs=kept_outputs(report.cells))
