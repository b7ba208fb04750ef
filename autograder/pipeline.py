"""One submission, start to finish, as a short list of steps:

  1. load     notebook/load.py   parse, restore locked cells        -> code cells
  2. execute  sandbox/           run the cells in a confined process -> the student's state
  3. check    results.py         pytest runs autograder/checks       -> per-check results
  4. close    sandbox/           kill everything the submission started

`grade` and `autograde` both call `grade_submission`; they differ only in how many submissions
they feed it and where the results go.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.assignment import grading_settings
from autograder.checks.runner import run_checks
from autograder.model.results import SubmissionResult, zero_result
from autograder.notebook.load import SubmissionError, load_submission
from autograder.sandbox.client import ExecutionReport
from autograder.sandbox.limits import Limits
from autograder.sandbox.probes import STEP_FUNCTIONS
from autograder.sandbox.spawn import Zygote
from autograder.sandbox.submitted_files import collect as collect_submitted_files


@dataclass
class GradingContext:
    """What stays the same across the submissions of one run."""

    zygote: Zygote
    device: str = "cpu"
    limits: Limits = field(default_factory=Limits)
    grading_seed: int = field(default_factory=lambda: grading_settings()["grading_seed"])


def execution_notes(report: ExecutionReport) -> list[str]:
    """What a student should know about how their notebook ran."""
    notes = []
    for cell in report.failed_cells():
        error = cell.get("error", {})
        if cell["status"] == "timeout":
            notes.append(f"Code cell {cell['index'] + 1} ran past its time limit and was interrupted; execution went on with the next cell.")
        else:
            notes.append(f"Code cell {cell['index'] + 1} raised {error.get('type')}: {error.get('message', '')[:300]} (execution went on with the next cell).")
    if report.died:
        notes.append(f"Execution stopped: {report.died}.")
    return notes


def grade_submission(notebook: Path, context: GradingContext) -> SubmissionResult:
    start = time.perf_counter()
    try:
        loaded = load_submission(notebook)
    except SubmissionError as error:
        reason = error.reason
    except OSError as error:
        reason = f"the file could not be read ({error.strerror})"
    else:
        reason = None
    if reason is not None:
        result = zero_result(f"Not graded: {reason}.", [f"Not graded: {reason}."], not_graded=reason)
        result.execution_time_s = time.perf_counter() - start
        return result
    # nbgrader runs a notebook in its submission folder: the files beside it go into /submission.
    beside = collect_submitted_files(Path(notebook).parent, max_bytes=context.limits.submitted_files_bytes,
                                     max_count=context.limits.submitted_files_count)
    with context.zygote.spawn(device=context.device, limits=context.limits, files=beside.files) as sandbox:
        report = sandbox.execute(loaded.cells)
        checks = run_checks(sandbox, device=context.device, grading_seed=context.grading_seed)
        isolation = sandbox.isolation
    notes = loaded.notes + beside.notes + execution_notes(report)
    missing = [name for name in STEP_FUNCTIONS if name not in report.defined] if not report.died else []
    return SubmissionResult(checks, notes, time.perf_counter() - start, isolation, missing_functions=missing)
