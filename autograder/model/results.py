"""What grading one submission produces: a result per check and the submission's result.
Plain dataclasses at the bottom of the package: every layer above (checks, verbs, outputs)
reads and writes these, and none of them imports anything above it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from autograder.model.status import CheckStatus


@dataclass
class CheckResult:
    """One check's result. `feedback` and `case` are what a student reads (the teaching message
    with the case as one line; the case as data: autograder/feedback/case.py). `staff_detail` is
    for the course staff only (e.g. the traceback of a grader error): no student-facing output
    carries it; outputs/staff_report.py writes it next to the class report."""

    name: str
    score: float
    max_score: float
    status: CheckStatus
    feedback: str = ""
    misconception: str | None = None
    duration_s: float = 0.0
    case: dict | None = None
    staff_detail: str = ""


@dataclass
class SubmissionResult:
    checks: list[CheckResult]
    notes: list[str] = field(default_factory=list)  # notebook-level messages for the student
    execution_time_s: float = 0.0
    isolation: dict = field(default_factory=dict)
    not_graded: str | None = None  # why the file could not be graded at all (not a notebook, ...)
    missing_functions: list[str] = field(default_factory=list)  # student steps the notebook never defined
    # Checks whose score in the notebook's own state differs from the clean room's, for the TA
    # ("forward: 1/1 in the notebook's own state but 0/1 in a clean room"); the clean room counts.
    integrity: list[str] = field(default_factory=list)
    cell_notes: list[str] = field(default_factory=list)  # about single cells, in notebook order, for the student
    # The release it was graded against (notebook/releases.py): its term (whose secret drew the
    # hidden inputs), its id, and whether the notebook matched it (False: no known release, so
    # the current one); and the written answers it left as released (scored 0, as nbgrader does).
    term: str = ""
    release_id: str = ""
    release_matched: bool = True
    unanswered: list[str] = field(default_factory=list)
    # each code cell that ran, in order: what it printed, its error, the figures it showed
    # (notebook/executed.py), for formgrader's executed copy in autograded/; never a student output
    cell_outputs: list[dict] = field(default_factory=list)

    @property
    def student_notes(self) -> list[str]:
        """Everything a student is told about how the notebook ran: the submission's notes, then
        each cell's."""
        return [*self.notes, *self.cell_notes]

    @property
    def score(self) -> float:
        return sum(c.score for c in self.checks)

    @property
    def max_score(self) -> float:
        return sum(c.max_score for c in self.checks)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(score=self.score, max_score=self.max_score)
        return data


def zero_result(checks: dict[str, int], reason: str, notes: list[str] = (), *,
                not_graded: str | None = None) -> SubmissionResult:
    """A result where every check (name -> points) scored 0 for the same `reason`: nothing
    could be tested."""
    zeros = [CheckResult(name, 0, points, CheckStatus.FAILED, reason) for name, points in checks.items()]
    return SubmissionResult(zeros, list(notes), not_graded=not_graded)


def grader_error_result(checks: dict[str, int], reason: str, notes: list[str] = ()) -> SubmissionResult:
    """A result where the grader could judge no check (name -> points): every check has status
    "error" (never a score in any output) and the same `reason`."""
    errors = [CheckResult(name, 0, points, CheckStatus.ERROR, reason) for name, points in checks.items()]
    return SubmissionResult(errors, list(notes))
