"""The staff-only report of a batch: `COURSE/reports/<assignment>/staff.json`, next to the
class report. It holds what students must not read: per student and check, a grader error's
detail (the traceback of the hidden check, with its expected values and tolerances), the
misconception and the structured case, and each submission's status and reason.

Student-facing outputs (text, Gradescope JSON, results.json, feedback pages, gradebook) are
written from a check's `feedback` and `case` only; this is the one place `staff_detail` goes.
`publish()` calls `write_staff_report(course_dir, assignment, records)` after the class report.
"""
from __future__ import annotations

import json
from pathlib import Path

from autograder.assignment import Assignment
from autograder.model.records import GradedSubmission
from autograder.model.status import CheckStatus
from autograder.outputs.atomic import write_atomic
from autograder.outputs.feedback_html import safe_dir_name

STAFF_REPORT = "staff.json"


def staff_report_path(course_dir: Path, assignment: Assignment) -> Path:
    return Path(course_dir) / "reports" / safe_dir_name(assignment.name) / STAFF_REPORT


def staff_entries(records: list[GradedSubmission]) -> list[dict]:
    """One entry per student: status, reason, and every check that did not pass."""
    entries = []
    for record in sorted(records, key=lambda r: r.student):
        checks = record.result.checks if record.result else []
        entries.append({
            "student": record.student,
            "status": str(record.status),
            "reason": record.reason,
            "score": record.score,
            "confinement": (record.result.isolation.get("level", "") if record.result else ""),
            "grader_errors": [c.name for c in checks if c.status == CheckStatus.ERROR],
            # attempts the grader failed on and made again with fresh processes (autograde/attempts.py)
            "grader_faults_retried": list(record.extra.get("grader faults retried", [])),
            "checks": [{"name": c.name, "status": str(c.status), "misconception": c.misconception,
                        "feedback": c.feedback, "case": c.case, "staff_detail": c.staff_detail}
                       for c in checks if c.status != CheckStatus.PASSED],
        })
    return entries


def write_staff_report(course_dir: Path, assignment: Assignment, records: list[GradedSubmission]) -> Path:
    path = staff_report_path(course_dir, assignment)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"assignment": assignment.name,
            "grader_errors": sum(len(e["grader_errors"]) for e in staff_entries(records)),
            "students": staff_entries(records)}
    return write_atomic(path, json.dumps(data, indent=2))  # ASCII: any student text is writable
