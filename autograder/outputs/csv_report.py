"""`COURSE/reports/ASSIGNMENT/grades-by-check.csv`: one row per student: id, each check's score
(in the order of the assignment's checks), total, max, status, late flag and a reason for a TA.
A check the grader could not judge has an empty cell, never a 0, and so has the total of a
submission that is not graded yet (status "grader error"; the reason says why).

Its name and folder are the kit's own: nbgrader writes `grades.csv` into the folder it runs in
(`nbgrader export`), and the course folder is where a TA runs it, so the two never collide."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from autograder.assignment import Assignment
from autograder.model.records import GradedSubmission
from autograder.model.status import CheckStatus, SubmissionStatus
from autograder.outputs.atomic import write_atomic

CSV_NAME = "grades-by-check.csv"


def csv_columns(assignment: Assignment) -> list[str]:
    # integrity: checks whose score differed between the notebook's own state and a clean room.
    return ["student", *assignment.checks, "total", "max", "status", "late", "reason", "integrity"]


def grades_csv_path(course_dir: Path, assignment: Assignment) -> Path:
    """Where the per-check CSV of `assignment` is, beside the class report."""
    return Path(course_dir) / "reports" / assignment.name / CSV_NAME


# A cell that starts with one of these is a formula to Excel, LibreOffice and Google Sheets: a
# student id or a reason beginning "=HYPERLINK(..." would run when a TA opens the CSV. Such a
# cell gets a leading apostrophe (OWASP's advice on CSV injection); numbers are never text here.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def as_text_cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _number(value: float) -> str:
    return f"{float(value):g}"


def csv_row(record: GradedSubmission, assignment: Assignment) -> dict:
    checks = {c.name: c for c in record.result.checks} if record.result else {}
    unjudged = {name for name, check in checks.items() if check.status == CheckStatus.ERROR}
    no_total = bool(unjudged) or record.status == SubmissionStatus.GRADER_ERROR
    return {
        "student": as_text_cell(record.student),
        **{name: "" if name in unjudged else _number(checks[name].score if name in checks else 0) for name in assignment.checks},
        "total": "" if no_total else _number(record.score),
        "max": _number(record.result.max_score if record.result else assignment.max_score),
        "status": record.status,
        "late": "yes" if record.late else "no",
        "reason": as_text_cell(record.reason),
        "integrity": as_text_cell("; ".join(record.result.integrity) if record.result else ""),
    }


def write_grades_csv(course_dir: Path, assignment: Assignment, records: list[GradedSubmission]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=csv_columns(assignment))
    writer.writeheader()
    for record in sorted(records, key=lambda r: r.student):
        writer.writerow(csv_row(record, assignment))
    return write_atomic(grades_csv_path(course_dir, assignment), buffer.getvalue())
