"""`COURSE/grades.csv`: one row per student: id, each check's score (in the order of
autograder.assignment.CHECKS), total, max, status, late flag and a reason for a TA."""
from __future__ import annotations

import csv
from pathlib import Path

from autograder.assignment import CHECKS, MAX_SCORE
from autograder.model.records import GradedSubmission

COLUMNS = ["student", *CHECKS, "total", "max", "status", "late", "reason"]


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
    }


def write_grades_csv(course_dir: Path, records: list[GradedSubmission]) -> Path:
    path = Path(course_dir) / "grades.csv"
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for record in sorted(records, key=lambda r: r.student):
            writer.writerow(csv_row(record))
    tmp.replace(path)
    return path
