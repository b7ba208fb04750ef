"""`COURSE/reports/ASSIGNMENT/grades-by-check.csv`: one row per student: id, each check's score
(in the order of autograder.assignment.CHECKS), total, max, status, late flag and a reason for a TA.

Its name and folder are the kit's own: nbgrader writes `grades.csv` into the folder it runs in
(`nbgrader export`), and the course folder is where a TA runs it, so the two never collide."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from autograder.assignment import ASSIGNMENT, CHECKS, MAX_SCORE
from autograder.model.records import GradedSubmission
from autograder.outputs.atomic import write_atomic

# integrity: checks whose score differed between the notebook's own state and a clean room.
COLUMNS = ["student", *CHECKS, "total", "max", "status", "late", "reason", "integrity"]
CSV_NAME = "grades-by-check.csv"


def grades_csv_path(course_dir: Path, assignment: str = ASSIGNMENT) -> Path:
    """Where the per-check CSV of `assignment` is, beside the class report."""
    return Path(course_dir) / "reports" / assignment / CSV_NAME


def _number(value: float) -> str:
    return f"{float(value):g}"


def csv_row(record: GradedSubmission) -> dict:
    scores = {c.name: c.score for c in record.result.checks} if record.result else {}
    return {
        "student": record.student,
        **{name: _number(scores.get(name, 0)) for name in CHECKS},
        "total": _number(record.score),
        "max": _number(record.result.max_score if record.result else MAX_SCORE),
        "status": record.status,
        "late": "yes" if record.late else "no",
        "reason": record.reason,
        "integrity": "; ".join(record.result.integrity) if record.result else "",
    }


def write_grades_csv(course_dir: Path, records: list[GradedSubmission], assignment: str = ASSIGNMENT) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    for record in sorted(records, key=lambda r: r.student):
        writer.writerow(csv_row(record))
    return write_atomic(grades_csv_path(course_dir, assignment), buffer.getvalue())
