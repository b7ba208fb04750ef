"""Every output of a batch, written from the same records, in one call after the batch.

Whatever one submission contains, every other output is written: the records' text is made
safe first (model/sanitize.py), and each student's pages, the CSV, the gradebook and the reports
are written separately, so an output that cannot be written is named, for that student, in
`run_info["outputs not written"]` (the summary and the class report show it) and the batch goes
on.
"""
from __future__ import annotations

import importlib
import threading
from pathlib import Path

from autograder.assignment import Assignment
from autograder.model.records import GradedSubmission
from autograder.model.sanitize import clean_plain, clean_text
from autograder.outputs.class_report import write_class_report
from autograder.outputs.csv_report import write_grades_csv
from autograder.outputs.feedback_html import write_feedback_pages
from autograder.outputs.gradebook import record_in_gradebook
from autograder.outputs.results_json import write_results_json
from autograder.outputs.staff_report import write_staff_report

# What the writers import when they first run: nbgrader (with jupyter_server, ~1.7 s), alembic,
# matplotlib. Importing them early, in a thread, uses a core that is idle while the batch's
# workers start (the forkserver imports torch on the other one).
_WRITER_IMPORTS = ("nbgrader.api", "nbgrader.utils", "nbgrader.coursedir", "nbgrader.preprocessors",
                   "nbgrader.dbutil", "alembic.config", "alembic.script",
                   "matplotlib.figure", "matplotlib.backends.backend_agg")


def warm_up() -> threading.Thread:
    """Start importing the writers' dependencies in the background; join() it before publish()."""
    def load() -> None:
        for name in _WRITER_IMPORTS:
            try:
                importlib.import_module(name)
            except ImportError:  # publish() itself will then say what is missing
                pass

    thread = threading.Thread(target=load, name="publish-warm-up", daemon=True)
    thread.start()
    return thread


NOT_WRITTEN = "outputs not written"


def safe_record(record: GradedSubmission) -> GradedSubmission:
    """The record with every string bounded and encodable (a record made before the boundary
    existed, or text from outside the sandbox such as a file name, can hold anything)."""
    return GradedSubmission.from_dict(clean_plain(record.to_dict()))


def _problem(what: str, error: BaseException) -> str:
    return clean_text(f"{what} ({type(error).__name__}: {error})", 500)


def publish(course_dir: Path, assignment: Assignment, records: list[GradedSubmission], run_info: dict) -> dict[str, Path]:
    """Write grades-by-check.csv, results.json and feedback pages per student, the gradebook and the
    class report. Returns where each output is, for the summary; what could not be written is
    listed in run_info["outputs not written"]."""
    course_dir = Path(course_dir)
    problems: list[str] = []
    records = sorted((safe_record(r) for r in records), key=lambda r: r.student)
    outputs: dict[str, Path] = {}
    try:
        outputs["grades by check"] = write_grades_csv(course_dir, assignment, records)
    except Exception as error:  # any writer's failure is reported, never fatal
        problems.append(_problem("grades-by-check.csv", error))
    for record in records:
        for name, writer in (("results.json", write_results_json), ("feedback page", write_feedback_pages)):
            try:
                writer(course_dir, assignment, [record])
            except Exception as error:
                problems.append(_problem(f"{record.student}: {name}", error))
    outputs["feedback"] = course_dir / "feedback" / "<student>" / assignment.name
    gradebook_url = _record_in_gradebook(course_dir, assignment, records, problems)
    if gradebook_url:
        outputs["gradebook"] = gradebook_url.removeprefix("sqlite:///")
    if problems:
        run_info[NOT_WRITTEN] = list(problems)
    try:
        outputs["class report"] = Path(write_class_report(course_dir, assignment, records, run_info))
    except Exception as error:
        problems.append(_problem("class report", error))
    try:
        outputs["staff report"] = write_staff_report(course_dir, assignment, records)
    except Exception as error:
        problems.append(_problem("staff report", error))
    if problems:
        run_info[NOT_WRITTEN] = problems
    return outputs


def _record_in_gradebook(course_dir: Path, assignment: Assignment, records: list[GradedSubmission],
                         problems: list[str]) -> str | None:
    """The whole class in one transaction; if that fails, student by student, so that one
    record nbgrader refuses costs only that student's row."""
    try:
        return record_in_gradebook(course_dir, assignment, records)
    except Exception as error:
        first = error
    url = None
    for record in records:
        try:
            url = record_in_gradebook(course_dir, assignment, [record])
        except Exception as error:
            problems.append(_problem(f"{record.student}: gradebook", error))
    if url is None:
        problems.append(_problem("gradebook", first))
    return url
