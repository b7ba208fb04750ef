"""Every output of a batch, written from the same records, in one call after the batch.

nbgrader's gradebook and autograded/ folder (about 60% of the time) are written by a fork of
this process while this one writes the students' pages and draws the class report's plots: on
two cores that halves the wait after the last submission. If the writer process gives no answer
(it died, or is still at it after `writer_timeout_s`, when it is killed), the same outputs are
written here, so nothing is lost.

Whatever one submission contains, every other output is written: the records' text is made
safe first (model/sanitize.py), and each student's pages, the CSV, the gradebook and the reports
are written separately, so an output that cannot be written is named, for that student, in
`run_info["outputs not written"]` (the summary and the class report show it) and the batch goes
on.
"""
from __future__ import annotations

import importlib
import multiprocessing
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from autograder.assignment import Assignment
from autograder.model.records import GradedSubmission
from autograder.model.sanitize import clean_plain, clean_text
from autograder.outputs.class_report import draw_class_plots, write_class_report
from autograder.outputs.csv_report import write_grades_csv
from autograder.outputs.feedback_html import write_feedback_pages
from autograder.outputs.gradebook import manual_grading, record_in_gradebook
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
    try:  # before the writer forks: what the staff graded by hand, for the students' pages
        by_hand = manual_grading(course_dir, assignment)
    except Exception as error:
        by_hand = {}
        problems.append(_problem("manual grades from the gradebook (the pages show the automatic grades only)", error))
    for record in records:
        record.manual = by_hand.get(record.student)
    outputs: dict[str, Path] = {}
    gradebook = ForkedWriter(_gradebook_job, course_dir, assignment, records)
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
    try:
        plots = draw_class_plots(course_dir, assignment, records)
    except Exception:  # write_class_report draws them again, and what fails is reported there
        plots = None
    answer = gradebook.result(writer_timeout_s(len(records)))
    if answer is None:  # the writer gave no answer: its transaction, if any, was not committed
        gradebook_url = _record_in_gradebook(course_dir, assignment, records, problems)
    else:
        gradebook_url, written_problems = answer
        problems.extend(written_problems)
    if gradebook_url:
        outputs["gradebook"] = gradebook_url.removeprefix("sqlite:///")
    if problems:
        run_info[NOT_WRITTEN] = list(problems)
    try:
        outputs["class report"] = Path(write_class_report(course_dir, assignment, records, run_info, plots=plots))
    except Exception as error:
        problems.append(_problem("class report", error))
    try:
        outputs["staff report"] = write_staff_report(course_dir, assignment, records)
    except Exception as error:
        problems.append(_problem("staff report", error))
    if problems:
        run_info[NOT_WRITTEN] = problems
    return outputs


def writer_timeout_s(n_records: int) -> float:
    """How long the gradebook writer may take: 100 students take under a second here."""
    return 120.0 + 0.5 * n_records


class ForkedWriter:
    """`job(*args)` in a fork of this process (it inherits the imports, nothing is sent to it);
    `result()` is its answer, or None where it gave none. Where fork is unavailable, there is no
    process and no answer (the caller then does the job itself)."""

    def __init__(self, job: Callable, *args):
        self.process = self.answers = None
        if "fork" not in multiprocessing.get_all_start_methods():
            return
        for stream in (sys.stdout, sys.stderr):  # a fork must not write this process's buffered text again
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        context = multiprocessing.get_context("fork")
        self.answers, sender = context.Pipe(duplex=False)
        try:
            self.process = context.Process(target=_answer, args=(sender, job, args), name="publish-writer", daemon=True)
            self.process.start()
        except OSError:  # no process could be started
            self.process = None
        finally:
            sender.close()

    def result(self, timeout_s: float):
        if self.process is None:
            if self.answers is not None:
                self.answers.close()
            return None
        try:
            if self.answers.poll(timeout_s):  # also true at end of file: the writer ended without answering
                return self.answers.recv()
        except (EOFError, OSError):
            pass
        finally:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(5)
            self.answers.close()
        return None


def _answer(sender, job: Callable, args: tuple) -> None:
    try:
        answer = job(*args)
    except BaseException:  # no answer: the caller does the job itself, and reports what fails there
        return
    sender.send(answer)


def _gradebook_job(course_dir: Path, assignment: Assignment, records: list[GradedSubmission]) -> tuple[str | None, list[str]]:
    problems: list[str] = []
    return _record_in_gradebook(course_dir, assignment, records, problems), problems


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
