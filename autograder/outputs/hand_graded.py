"""A student's grade with what the staff graded by hand in formgrader folded in: the written
answers' scores and comments, checks whose score a TA overrode, and comments on any cell. The
feedback page and results.json are written from it, so running `autograde` again after grading
by hand brings the manual grades and comments to the students, beside the kit's own feedback.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from autograder.assignment import Assignment
from autograder.model.records import GradedSubmission
from autograder.model.sanitize import clean_text

COMMENT_CHARS = 5_000


@dataclass
class WrittenAnswer:
    name: str
    points: float
    score: float | None  # None: not graded yet
    comment: str = ""
    unanswered: bool = False  # left as released: 0, as nbgrader scores it


@dataclass
class StaffComment:
    cell: str  # its grade id
    text: str
    function: str | None = None  # the student function the cell defines, if it is one's

    @property
    def where(self) -> str:
        """The cell as Markdown, as a student finds it."""
        return f"the cell that defines `{self.function}`" if self.function else f"cell `{self.cell}`"


@dataclass
class HandGraded:
    scores: dict[str, float]  # check -> its score, a TA's override in place of the automatic one
    overridden: dict[str, float]  # check -> the automatic score a TA's replaced
    written: list[WrittenAnswer] = field(default_factory=list)
    comments: list[StaffComment] = field(default_factory=list)  # on the student's other cells

    @property
    def checks_score(self) -> float:
        return sum(self.scores.values())

    @property
    def complete(self) -> bool:
        """Every written answer has a score: the total is final."""
        return all(answer.score is not None for answer in self.written)

    @property
    def total(self) -> float:
        return self.checks_score + sum(answer.score or 0.0 for answer in self.written)


def hand_graded(record: GradedSubmission, assignment: Assignment) -> HandGraded:
    manual = record.manual
    scores_by_hand = manual.scores if manual else {}
    comments = {name: clean_text(text, COMMENT_CHARS) for name, text in (manual.comments if manual else {}).items()}
    checks = record.result.checks if record.result else []
    scores, overridden = {}, {}
    for check in checks:
        scores[check.name] = check.score
        if check.name in scores_by_hand and scores_by_hand[check.name] != check.score:
            scores[check.name] = min(max(scores_by_hand[check.name], 0.0), check.max_score)
            overridden[check.name] = check.score
    unanswered = set(record.result.unanswered) if record.result and record.notebook else set(assignment.manual_checks)
    written = []
    for name, points in assignment.manual_checks.items():
        score = scores_by_hand.get(name, 0.0 if name in unanswered else None)
        written.append(WrittenAnswer(name, points, score, comments.pop(name, ""), name in unanswered))
    functions = {cell: function for function, cell in assignment.solution_cells.items()}
    return HandGraded(scores, overridden, written,
                      [StaffComment(cell, text, functions.get(cell)) for cell, text in sorted(comments.items())])
