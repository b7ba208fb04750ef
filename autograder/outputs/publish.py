"""Every output of a batch, written from the same records, in one call after the batch."""
from __future__ import annotations

from pathlib import Path

from autograder.autograde.records import GradedSubmission
from autograder.outputs.class_report import write_class_report
from autograder.outputs.csv_report import write_grades_csv
from autograder.outputs.feedback_html import write_feedback_pages
from autograder.outputs.gradebook import record_in_gradebook
from autograder.outputs.results_json import write_results_json


def publish(course_dir: Path, assignment: str, records: list[GradedSubmission], run_info: dict) -> dict[str, Path]:
    """Write grades.csv, results.json and feedback pages per student, the gradebook and the
    class report. Returns where each output is, for the summary."""
    course_dir = Path(course_dir)
    records = sorted(records, key=lambda r: r.student)
    outputs = {"grades.csv": write_grades_csv(course_dir, records)}
    write_results_json(course_dir, assignment, records)
    gradebook_url = record_in_gradebook(course_dir, assignment, records)
    write_feedback_pages(course_dir, assignment, records)
    report = write_class_report(course_dir, assignment, records, run_info)
    outputs["feedback"] = course_dir / "feedback" / "<student>" / assignment
    outputs["gradebook"] = gradebook_url.removeprefix("sqlite:///")
    if report:
        outputs["class report"] = Path(report)
    return outputs
