"""One feedback page per student, in nbgrader's place for feedback:
`COURSE/feedback/<student>/<assignment>/pytorch_slope.html` (the name `nbgrader generate_feedback`
gives it, so `nbgrader release_feedback` and students' `fetch_feedback` find it).

The page shows each check's score and its teaching feedback, the notebook-level notes and the
total, and what the staff graded by hand in formgrader (outputs/hand_graded.py): the written
answers' scores and comments, overridden scores, comments on the student's cells. Feedback and
notes are Markdown, rendered by outputs/markdown_html.py (raw HTML escaped, no links or images);
everything else (the staff's comments too) is HTML-escaped by Jinja2's autoescape. It shows
a check's student-facing fields only (its message with the rounded case); staff detail such as a
grader error's traceback is never in them (model/results.py) and goes to the staff report.
"""
from __future__ import annotations

import functools
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from autograder.assignment import Assignment
from autograder.model.records import GradedSubmission
from autograder.outputs.atomic import AtomicFiles, write_atomic
from autograder.outputs.formats import utc_text
from autograder.outputs.hand_graded import hand_graded
from autograder.outputs.markdown_html import markdown_html

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _fmt(value) -> str:
    return f"{float(value):g}"


@functools.cache
def environment() -> Environment:
    """One Jinja environment per process: it caches compiled templates (compiling the feedback
    page for every student took most of the batch's publishing time)."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["fmt"] = _fmt
    env.filters["markdown"] = markdown_html
    return env


def safe_dir_name(name: str) -> str:
    """A student or assignment id used as one path component; anything else is refused."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"unusable as a folder name: {name!r}")
    return name


def feedback_path(course_dir: Path, assignment: Assignment, student: str) -> Path:
    return (Path(course_dir) / "feedback" / safe_dir_name(student) / safe_dir_name(assignment.name)
            / f"{Path(assignment.notebook).stem}.html")


def render_feedback(record: GradedSubmission, assignment: Assignment) -> str:
    result = record.result
    by_hand = hand_graded(record, assignment)  # what the staff graded in formgrader, folded in
    checks = [dict(name=c.name, score=by_hand.scores.get(c.name, c.score), max_score=c.max_score, status=c.status,
                   feedback=c.feedback, overridden=by_hand.overridden.get(c.name)) for c in (result.checks if result else [])]
    max_score = result.max_score if result else assignment.max_score
    return environment().get_template("feedback.html").render(
        assignment=assignment.name, student=record.student,
        timestamp=utc_text(record.timestamp), graded_at=utc_text(record.graded_at),  # one date format
        late=record.late, status=record.status, reason=record.reason,
        score=by_hand.checks_score if result else record.score, max_score=max_score,
        notes=result.student_notes if result else [], checks=checks,
        written=by_hand.written, staff_comments=by_hand.comments, complete=by_hand.complete,
        total=by_hand.total, max_total=max_score + sum(assignment.manual_checks.values()),
        manual_points=sum(assignment.manual_checks.values()),
    )


def write_feedback_pages(course_dir: Path, assignment: Assignment, records: list[GradedSubmission],
                         files: AtomicFiles | None = None) -> None:
    """`files`: a batch the pages join (they appear when it commits); by default each is written at once."""
    write = files.write if files is not None else write_atomic
    for record in records:
        write(feedback_path(course_dir, assignment, record.student), render_feedback(record, assignment))
