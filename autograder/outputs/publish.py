"""Every output of a batch, written from the same records, in one call after the batch."""
from __future__ import annotations

import importlib
import threading
from pathlib import Path

from autograder.model.records import GradedSubmission
from autograder.outputs.class_report import write_class_report
from autograder.outputs.csv_report import write_grades_csv
from autograder.outputs.feedback_html import write_feedback_pages
from autograder.outputs.gradebook import record_in_gradebook
from autograder.outputs.results_json import write_results_json

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


def publish(course_dir: Path, assignment: str, records: list[GradedSubmission], run_info: dict) -> dict[str, Path]:
    """Write grades-by-check.csv, results.json and feedback pages per student, the gradebook and the
    class report. Returns where each output is, for the summary."""
    course_dir = Path(course_dir)
    records = sorted(records, key=lambda r: r.student)
    outputs = {"grades by check": write_grades_csv(course_dir, records, assignment)}
    write_results_json(course_dir, assignment, records)
    gradebook_url = record_in_gradebook(course_dir, assignment, records)
    write_feedback_pages(course_dir, assignment, records)
    report = write_class_report(course_dir, assignment, records, run_info)
    outputs["feedback"] = course_dir / "feedback" / "<student>" / assignment
    outputs["gradebook"] = gradebook_url.removeprefix("sqlite:///")
    if report:
        outputs["class report"] = Path(report)
    return outputs
