"""One submission, start to finish, as a short list of steps:

  1. load     notebook/load.py   parse, restore locked cells        -> code cells
  2. execute  sandbox/           run the cells in a confined process -> the student's state
  3. check    checks/runner.py   pytest runs autograder/checks       -> per-check results
  4. close    sandbox/           kill everything the submission started

`grade` and `autograde` both call `grade_submission`; they differ only in how many submissions
they feed it and where the results go.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.assignment import Assignment, grading_settings
from autograder.checks.runner import CheckSession, Pass, run_check_passes
from autograder.model.results import CheckResult, SubmissionResult, zero_result
from autograder.notebook.cell_names import capitalised, defined_names, label_of, relabel
from autograder.notebook.load import SubmissionError, load_submission
from autograder.sandbox.grader.box_client import ExecutionReport
from autograder.sandbox.grader.limits import Limits
from autograder.sandbox.grader.rooms import CleanRooms, preload_for
from autograder.sandbox.grader.submitted_files import collect as collect_submitted_files
from autograder.sandbox.grader.zygotes import Zygote

# The message of a cell the kernel interrupted because the notebook's budget ran out (cells.py).
BUDGET_SPENT = "the notebook's time budget ran out"
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
    grading_seed: int = field(default_factory=lambda: grading_settings()["grading_seed"])
    check_session: CheckSession | None = None  # a worker's open pytest session (open_check_session)


def open_check_session(context: GradingContext) -> CheckSession:
    """A pytest session that a worker keeps for its submissions (checks/runner.py)."""
    return CheckSession(context.assignment.checks, (OWN_STATE, CLEAN_ROOMS), device=context.device,
                        grading_seed=context.grading_seed)


def execution_notes(report: ExecutionReport, labels: list[str] = (), sources: list[str] = ()) -> tuple[list[str], list[str]]:
    """What a student should know about how their notebook ran, naming cells as Jupyter shows
    them (cell_names.py): (notes about single cells, in notebook order; notes about the run as a
    whole). The NameErrors that follow a missing definition are one note. Kept apart as data, so
    no reader has to tell them apart by their wording."""
    notes: list[tuple[int, str]] = []  # (cell index, note): notes stay in notebook order
    undefined: dict[str, list[int]] = {}
    broken: dict[str, str] = {}  # name -> label of the cell whose syntax error left it undefined
    for cell in report.failed_cells():
        index, error = cell["index"], cell.get("error", {})
        label = label_of(index, labels)
        message = relabel(error.get("message", ""), labels)
        if cell["status"] == "timeout" and BUDGET_SPENT in message:
            continue  # told below, with the cells it left unrun
        if cell["status"] == "timeout":
            notes.append((index, f"{capitalised(label)} ran past its time limit and was interrupted; execution went on with the next cell."))
        elif error.get("type") == "SyntaxError":
            names = defined_names(sources[index]) if index < len(sources) else []
            broken.update({name: label for name in names})
            line = re.search(r"line (\d+)", message)
            what = ", so " + _listed([f"`{n}`" for n in names]) + (" is" if len(names) == 1 else " are") + " not defined" if names else ""
            notes.append((index, f"{capitalised(label)} has a syntax error{f' at line {line.group(1)}' if line else ''}: "
                                 f"{relabel(_without_location(error.get('message', '')), labels)[:200]}. Nothing in it ran{what}."))
        elif error.get("type") == "NameError" and (name := re.fullmatch(r"name '(\w+)' is not defined", message)):
            undefined.setdefault(name.group(1), []).append(index)
        else:
            notes.append((index, f"{capitalised(label)} raised {error.get('type')}: {message[:300]} (execution went on with the next cell)."))
    if undefined:  # the cascade a missing definition causes: one note
        first = min(i for indices in undefined.values() for i in indices)
        cells = sorted({i for indices in undefined.values() for i in indices})
        names = _listed([f"`{name}`" + (f" (its cell has a syntax error: {broken[name]})" if name in broken else "")
                         for name in undefined])
        verb = "is" if len(undefined) == 1 else "are"
        if len(cells) == 1:
            notes.append((first, f"{capitalised(label_of(first, labels))} raised NameError: {names} {verb} not defined."))
        else:
            notes.append((first, f"{names} {verb} not defined, so {len(cells)} cells that use "
                                 f"{'it' if len(undefined) == 1 else 'them'} failed with NameError: "
                                 f"{_listed([label_of(i, labels) for i in cells])}."))
    run_notes: list[str] = []
    ran = len(report.cells)
    unrun = [label_of(i, labels) for i in range(ran, len(sources))]
    last_error = report.cells[-1].get("error", {}) if report.cells else {}
    stopped_by_budget = report.cells[-1].get("status") == "timeout" and BUDGET_SPENT in last_error.get("message", "") if report.cells else False
    if stopped_by_budget:
        last = label_of(ran - 1, labels)
        rest = f"; these cells were not run: {_listed(unrun)}" if unrun else ""
        run_notes.append(f"The notebook used up its time budget: {last} was interrupted{rest}. "
                         "The checks still ran, on your notebook's definitions.")
    if report.died:
        rest = f" These cells did not run: {_listed(unrun)}." if unrun else ""
        run_notes.append(f"Execution stopped: {report.died}.{rest} The checks still ran, on your notebook's definitions.")
    return [note for _, note in sorted(notes, key=lambda item: item[0])], run_notes


def _without_location(message: str) -> str:
    """A SyntaxError's message without its trailing "(<cell 3>, line 2)", found from the end in
    one pass (a regex with `.*` between " (" and "line" was quadratic in a crafted message)."""
    start = message.rfind(" (")
    tail = message[start + 2:-1] if start >= 0 and message.endswith(")") else ""
    number = tail.rsplit("line ", 1)[-1] if "line " in tail else ""
    return message[:start] if number.isdigit() else message


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


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
        loaded = load_submission(notebook, context.assignment.release_notebook)
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
    checks_of, session = context.assignment.checks, context.check_session
    if session is not None and session.serves(passes, checks_of, context.device, context.grading_seed):
        results = session.run(passes)
    else:
        results = run_check_passes(passes, checks_of, device=context.device, grading_seed=context.grading_seed)
    own_state, checks = results.get(OWN_STATE, []), results[CLEAN_ROOMS]
    cell_notes, run_notes = execution_notes(report, loaded.labels, loaded.cells)
    notes = loaded.notes + beside.notes + run_notes
    steps = context.assignment.student_functions
    defined = rooms.defined if rooms.defined is not None else (report.defined if not report.died else list(steps))
    missing = [name for name in steps if name not in defined]
    return SubmissionResult(checks, notes, time.perf_counter() - start, isolation, missing_functions=missing,
                            cell_notes=cell_notes,
                            integrity=integrity_flags(own_state, checks))
