"""Per student, Gradescope's results.json in nbgrader's feedback place:
`COURSE/feedback/<student>/<assignment>/results.json`."""
from __future__ import annotations

import json
from pathlib import Path

from autograder.assignment import Assignment
from autograder.model.records import GradedSubmission
from autograder.model.status import SubmissionStatus
from autograder.outputs.atomic import write_atomic
from autograder.outputs.feedback_html import safe_dir_name
from autograder.outputs.gradescope import to_gradescope


def results_json_path(course_dir: Path, assignment: Assignment, student: str) -> Path:
    return Path(course_dir) / "feedback" / safe_dir_name(student) / safe_dir_name(assignment.name) / "results.json"


def gradescope_results(record: GradedSubmission) -> dict:
    data = to_gradescope(record.result)
    if record.status != SubmissionStatus.GRADED and record.reason:
        data["output"] = f"Not graded: {record.reason}." if record.status == "not graded" else \
            f"Grading failed: {record.reason}. The course staff will look at it."
    return data


def write_results_json(course_dir: Path, assignment: Assignment, records: list[GradedSubmission]) -> None:
    for record in records:
        if record.result is None:
            continue
        write_atomic(results_json_path(course_dir, assignment, record.student),
                     json.dumps(gradescope_results(record), indent=2))
