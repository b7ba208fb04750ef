"""What the batch knows about one student's submission once it is graded: the record every
output (CSV, gradebook, results.json, feedback page, class report) is written from."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from autograder.results import SubmissionResult


@dataclass
class GradedSubmission:
    student: str
    assignment: str
    notebook: str | None  # path of the graded .ipynb, None if there was none
    content_hash: str  # sha256 of the submitted files; unchanged hash -> not graded again
    timestamp: datetime | None  # from timestamp.txt, if present
    late: bool
    status: str  # "graded", or "not graded" when there was nothing gradable
    reason: str = ""  # for a TA: why a submission scored 0 without being run, etc.
    result: SubmissionResult | None = None
    graded_at: datetime | None = None
    extra: dict = field(default_factory=dict)

    @property
    def score(self) -> float:
        return self.result.score if self.result else 0.0
