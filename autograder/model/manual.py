"""What the course staff entered by hand in formgrader for one submission, as the kit's outputs
carry it to the student (read from nbgrader's gradebook when the outputs are written:
outputs/gradebook.py `manual_grading`).

`scores`: grade id -> the score given by hand: a written answer, or a check whose automatic
score a TA overrode; a written answer left as released has nbgrader's automatic 0.
`comments`: grade id of a cell -> what the staff wrote about it. Both hold only what was
entered: a written answer not yet graded has no score.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ManualGrading:
    scores: dict[str, float] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict | None) -> ManualGrading | None:
        if not isinstance(data, dict):
            return None
        scores = {str(k): float(v) for k, v in (data.get("scores") or {}).items() if isinstance(v, (int, float))}
        comments = {str(k): v for k, v in (data.get("comments") or {}).items() if isinstance(v, str)}
        return cls(scores, comments)
