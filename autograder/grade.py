"""`python -m autograder grade NOTEBOOK`: grade one notebook and print the result.

This is what Gradescope runs for every submission, so its start-up is what a student waits
for: the zygote (the sandboxes' warm parent) is started first, and imports torch in its own
process while this one imports the checks, pytest and torch. Only the light modules are
imported above for that reason; the rest is imported once the zygote is on its way.

A watchdog process (watchdog.py) holds `grade` to the bound a batch worker is held to: past it,
the student gets a "not graded" result that says so, never a hang.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from autograder.sandbox.grader.confinement import ConfinementRefused, check_allowed
from autograder.sandbox.grader.limits import Limits
from autograder.sandbox.grader.zygotes import Zygote
from autograder.usage import UsageError

if TYPE_CHECKING:
    from autograder.model.results import SubmissionResult


def main(*, notebook: Path, device: str = "cpu", format: str = "text", cell_timeout: float | None = None,
         unconfined: bool = False) -> int:
    """Ctrl-C or SIGTERM ends the grader and its sandboxes and prints one line (not a traceback)."""
    import sys

    from autograder.interrupts import Interrupted, stop_on_signals

    try:
        with stop_on_signals():
            return _grade(notebook=notebook, device=device, format=format, cell_timeout=cell_timeout, unconfined=unconfined)
    except Interrupted as stop:
        print(f"grade: stopped by {stop.by}; {notebook} was not graded", file=sys.stderr, flush=True)
        return stop.exit_status


ZYGOTE_STARTS = 3  # a zygote that dies or is stopped before its "ready" is replaced, as autograde's server is


def _ready_zygote(unconfined: bool, protected: list[Path], started: Zygote | None = None) -> Zygote:
    """`started` (or a new zygote) once it is ready, or a fresh one in its place
    (sandbox/grader/zygotes.py ready_or_replaced)."""
    import sys

    from autograder.sandbox.grader.zygotes import ready_or_replaced

    def new() -> Zygote:
        return Zygote(allow_unconfined=unconfined, protected=protected)

    def told(error: RuntimeError) -> None:
        print(f"grade: {error}; starting another sandbox zygote", file=sys.stderr, flush=True)

    return ready_or_replaced(started or new(), new, ZYGOTE_STARTS, told)


def _grade(*, notebook: Path, device: str, format: str, cell_timeout: float | None, unconfined: bool) -> int:
    limits = Limits(cell_timeout_s=cell_timeout) if cell_timeout else Limits()
    protected = [Path(notebook).resolve().parent]
    zygote = Zygote(allow_unconfined=unconfined, protected=protected)
    try:
        from autograder.assignment import PYTORCH_SLOPE  # the one a Gradescope submission is
        from autograder.interrupts import raise_if_stopped
        from autograder.model.results import zero_result  # (imported while the zygote starts)
        from autograder.pipeline import GradingContext
        from autograder.sandbox.grader.limits import hard_timeout_for
        from autograder.watchdog import Watchdog

        # waits for the zygote's "ready" (its torch import, beside ours above), as the first box would
        zygote = _ready_zygote(unconfined, protected, zygote)
        try:
            check_allowed(zygote.confinement, unconfined)
        except ConfinementRefused as refused:
            raise UsageError(refused.reason) from None
        context = GradingContext(zygote=zygote, assignment=PYTORCH_SLOPE, device=device, limits=limits)
        deadline_s = hard_timeout_for(limits, len(PYTORCH_SLOPE.checks))
        reason = (f"the grader did not finish within {deadline_s:.0f} s (its own bound, whatever a notebook does); "
                  "this is not a problem with your work: please tell the course staff")
        late = zero_result(PYTORCH_SLOPE.checks, f"Not graded: {reason}.", [f"Not graded: {reason}."], not_graded=reason)
        with Watchdog(deadline_s, rendered(late, format, notebook, failure=reason)) as watchdog:
            result = _graded_with_one_retry(Path(notebook), context, unconfined, protected)
            watchdog.disarm()
        raise_if_stopped()  # a stop that pytest caught while the checks ran
    finally:
        zygote.close()
    print(rendered(result, format, notebook))
    return 0


def _graded_with_one_retry(notebook: Path, context, unconfined: bool, protected: list[Path]) -> SubmissionResult:
    """The notebook's result; an attempt that the grader failed (a check's grader error, a sandbox
    zygote that died or could not start) is made once more with a fresh zygote, as `autograde`
    makes it with fresh processes (autograde/attempts.py). What still fails is reported as the
    grader's failure by each format (no score on Coursera). All within the watchdog's bound."""
    import dataclasses
    import sys

    from autograder.autograde.attempts import grader_fault
    from autograder.pipeline import grade_submission

    try:
        result = grade_submission(notebook, context)
        fault = grader_fault(True, result.to_dict())
    except RuntimeError as error:  # the zygote died or stopped answering
        fault = str(error)
    if fault is None:
        return result
    print(f"grade: the grader failed ({fault}); grading again with a fresh sandbox zygote", file=sys.stderr, flush=True)
    with _ready_zygote(unconfined, protected) as fresh:  # replaced in turn if it dies before its "ready"
        check_allowed(fresh.confinement, unconfined)
        return grade_submission(notebook, dataclasses.replace(context, zygote=fresh))


def rendered(result: SubmissionResult, format: str, notebook: Path, failure: str = "") -> str:
    """`result` as `format` prints it; `failure` says the grader itself failed (its own bound), which
    the coursera format records as no score at all."""
    if format == "gradescope":
        import json

        from autograder.outputs.gradescope import to_gradescope

        return json.dumps(to_gradescope(result), indent=2)
    if format == "coursera":
        import json

        from autograder.assignment import PYTORCH_SLOPE
        from autograder.outputs.coursera import to_coursera

        return json.dumps(to_coursera(result, PYTORCH_SLOPE, failure=failure))
    from autograder.assignment import PYTORCH_SLOPE
    from autograder.outputs.text import to_text

    return to_text(result, PYTORCH_SLOPE, title=f"{notebook}")
