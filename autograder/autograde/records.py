"""The record of each submission of a batch: from discovery's verdict (nothing gradable) or from
the worker pool's last attempt at it (workers.py, attempts.py)."""
from __future__ import annotations

from datetime import UTC, datetime

from autograder.assignment import Assignment, grading_settings
from autograder.autograde.attempts import grader_fault
from autograder.autograde.discover import WorkItem
from autograder.model.records import GRADED, GRADER_ERROR, NOT_GRADED, GradedSubmission, result_from_dict
from autograder.model.results import SubmissionResult, grader_error_result, zero_result
from autograder.model.status import SubmissionStatus

NOT_GRADED_YET = ("Not graded yet: the grader itself failed on this submission, not because of your work. "
                  "It will be graded again.")


def _reason(item: WorkItem, result: SubmissionResult) -> str:
    """What a TA should know about a graded submission, in one line ("" if nothing)."""
    parts = list(item.notes)
    parts += [note.rstrip(".") for note in result.notes]  # the submission's notes; each cell's are the student's
    if result.missing_functions:
        parts.append("functions not defined: " + ", ".join(result.missing_functions))
    return "; ".join(parts)


def _record(item: WorkItem, assignment: Assignment, status: SubmissionStatus, reason: str,
            result: SubmissionResult) -> GradedSubmission:
    record = GradedSubmission(
        student=item.student, assignment=assignment.name,
        notebook=str(item.notebook) if item.notebook else None, content_hash=item.content_hash,
        timestamp=item.timestamp, late=item.late, status=status, reason=reason, result=result,
        graded_at=datetime.now(UTC).replace(microsecond=0),
    )
    # what the regrade report compares (outputs/regrades.py): the term of the release it was
    # graded against, else the current one
    term = getattr(result, "term", "") or current_term()
    if term:
        record.extra["term"] = term
    return record


def current_term() -> str:
    """The term whose parameters and secret grade now (autograder/grading.json), "" if unknown."""
    try:
        return str(grading_settings().get("term") or "")
    except (OSError, ValueError):
        return ""


def not_gradable_record(item: WorkItem, assignment: Assignment) -> GradedSubmission:
    return _record(item, assignment, NOT_GRADED, item.problem,
                   zero_result(assignment.checks, f"Not graded: {item.problem}.", [f"Not graded: {item.problem}."]))


def outcome_record(item: WorkItem, assignment: Assignment, ok: bool, result: dict | None, reason: str,
                   *, faults: list[str] = ()) -> GradedSubmission:
    """The record of the last attempt at `item` (a worker's answer: `ok`, the result as a dict,
    or the failure's `reason`); `faults`: why the earlier attempts were not kept."""
    fault = grader_fault(ok, result, reason)
    if fault is not None:  # the grader failed every time: no score, graded again next run
        attempts = len(faults) + 1
        why = (f"the grader failed on it {attempts} time{'s' if attempts > 1 else ''}, each with fresh processes "
               f"(last: {fault}); it has no score and is graded again on the next run")
        graded = result_from_dict(result) if ok else grader_error_result(assignment.checks, NOT_GRADED_YET)
        graded.notes = [NOT_GRADED_YET, *graded.notes]
        record = _record(item, assignment, GRADER_ERROR, "; ".join([*item.notes, why]), graded)
    else:
        graded = result_from_dict(result)
        if graded.not_graded:  # the file could not be read as a notebook
            why = graded.not_graded
            return _with_faults(_record(item, assignment, NOT_GRADED, "; ".join([*item.notes, why]),
                                        zero_result(assignment.checks, f"Not graded: {why}.", graded.notes)), faults)
        record = _record(item, assignment, GRADED, _reason(item, graded), graded)
    return _with_faults(record, faults)


def _with_faults(record: GradedSubmission, faults: list[str]) -> GradedSubmission:
    if faults:  # for the staff report: grader faults that were retried away
        record.extra["grader faults retried"] = list(faults)
    return record
