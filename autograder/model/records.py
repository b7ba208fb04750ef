"""What the batch knows about one student's submission once it is graded: the record every
output (CSV, gradebook, results.json, feedback page, class report) is written from.

`status` is one of:
  "graded"      the notebook ran in the sandbox and every check was scored;
  "not graded"  there was nothing gradable (no folder, no notebook, not a notebook...): every
                check scores 0 and `reason` says why;
  "grader error" the grader failed on it, and again with fresh processes (a worker, zygote or
                check session that died or hung, a check that errored): the checks it could not
                judge have status "error" and no score in any output, `reason` says what happened,
                and the record is never current: the next run grades it again.
`result` is always set for records the batch makes (all-zero checks when not graded, "error"
checks for a grader error), so every output can list every check.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from autograder.model.manual import ManualGrading
from autograder.model.results import CheckResult, SubmissionResult
from autograder.model.status import CheckStatus, SubmissionStatus

GRADED, NOT_GRADED, GRADER_ERROR = SubmissionStatus.GRADED, SubmissionStatus.NOT_GRADED, SubmissionStatus.GRADER_ERROR


@dataclass
class GradedSubmission:
    student: str
    assignment: str
    notebook: str | None  # path of the graded .ipynb, None if there was none
    content_hash: str  # sha256 of the submitted files; unchanged hash -> not graded again
    timestamp: datetime | None  # from timestamp.txt, if present
    late: bool
    status: SubmissionStatus  # see above
    reason: str = ""  # for a TA: why a submission scored 0 without being run, etc.
    result: SubmissionResult | None = None
    graded_at: datetime | None = None
    extra: dict = field(default_factory=dict)
    grader: str = ""  # autograder.assignment.grader_fingerprint() of the grader that made it
    # what the staff graded by hand in formgrader, read from the gradebook when outputs are written
    manual: ManualGrading | None = None

    @property
    def score(self) -> float:
        return self.result.score if self.result else 0.0

    def to_dict(self) -> dict:
        """Plain JSON-able data (datetimes as ISO strings)."""
        data = asdict(self)
        data["result"] = self.result.to_dict() if self.result else None
        for key in ("timestamp", "graded_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> GradedSubmission:
        data = dict(data)
        data["result"] = result_from_dict(data["result"]) if data.get("result") else None
        data["manual"] = ManualGrading.from_dict(data.get("manual"))
        for key in ("timestamp", "graded_at"):
            data[key] = datetime.fromisoformat(data[key]) if data.get(key) else None
        data["status"] = SubmissionStatus(data["status"])
        return cls(**data)


def result_from_dict(data: dict) -> SubmissionResult:
    """The inverse of SubmissionResult.to_dict (its derived score fields are dropped)."""
    return SubmissionResult(
        checks=[CheckResult(**{**check, "status": CheckStatus(check["status"])}) for check in data["checks"]],
        notes=list(data.get("notes", [])),
        execution_time_s=float(data.get("execution_time_s", 0.0)),
        isolation=dict(data.get("isolation") or {}),
        not_graded=data.get("not_graded"),
        missing_functions=list(data.get("missing_functions") or []),
        integrity=list(data.get("integrity") or []),
        cell_notes=list(data.get("cell_notes") or []),
        term=str(data.get("term") or ""),
        release_id=str(data.get("release_id") or ""),
        release_matched=bool(data.get("release_matched", True)),
        unanswered=list(data.get("unanswered") or []),
        cell_outputs=[c for c in data.get("cell_outputs") or [] if isinstance(c, dict)],
    )
