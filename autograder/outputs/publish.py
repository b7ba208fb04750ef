"""Every output of a batch, written from the same records, in one call after the batch.

nbgrader's gradebook and autograded/ folder (about 60% of the time) are written by a fork of
this process while this one writes the students' pages and draws the class report's plots: on
two cores that halves the wait after the last submission. If the writer process gives no answer
(it died, was stopped, or is still at it after `writer_timeout_s`, when it is killed), the same
outputs are written here, so nothing is lost.

Whatever one submission contains, every other output is written: the records' text is made
safe first (model/sanitize.py), and the students' pages, the CSV, the gradebook and the reports
are written separately, each file atomically (outputs/atomic.py; the pages as one batch), so an
output that cannot be written (a full disk, a gradebook another program holds) is named, for its
student where it is one student's, in `run_info["outputs not written"]` (the summary and the
class report show it), nothing half-written is left, and the batch goes on.
"""
from __future__ import annotations

import importlib
import multiprocessing
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from autograder.assignment import Assignment
from autograder.model.records import GradedSubmission
from autograder.model.sanitize import clean_plain, clean_text
from autograder.outputs.atomic import AtomicFiles
from autograder.outputs.class_report import draw_class_plots, write_class_report
from autograder.outputs.csv_report import write_grades_csv
from autograder.outputs.feedback_html import write_feedback_pages
from autograder.outputs.gradebook import held_gradebook, is_locked, manual_grading, record_in_gradebook
from autograder.outputs.results_json import write_results_json
from autograder.outputs.staff_report import write_staff_report
from autograder.sandbox.shared.processes import is_stopped

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
        try:
            outputs["grades by check"] = write_grades_csv(course_dir, assignment, records)
        except Exception as error:  # any writer's failure is reported, never fatal
            problems.append(_problem("grades-by-check.csv", error))
        _write_student_pages(course_dir, assignment, records, problems)
        outputs["feedback"] = course_dir / "feedback" / "<student>" / assignment.name
        try:
            plots = draw_class_plots(course_dir, assignment, records)
        except Exception:  # write_class_report draws them again, and what fails is reported there
            plots = None
        answer = gradebook.result(writer_timeout_s(len(records)))
    finally:
        gradebook.stop()  # a run stopped here (Ctrl-C) leaves no writer behind
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


def _write_student_pages(course_dir: Path, assignment: Assignment, records: list[GradedSubmission],
                         problems: list[str]) -> None:
    """Every student's results.json and feedback page, as one batch of atomic files (they appear
    together); a page that cannot be made or written is named, for its student."""
    files = AtomicFiles()
    try:
        for record in records:
            for name, writer in (("results.json", write_results_json), ("feedback page", write_feedback_pages)):
                try:
                    writer(course_dir, assignment, [record], files)
                except Exception as error:
                    problems.append(_problem(f"{record.student}: {name}", error))
        files.commit()
    except Exception as error:
        problems.append(_problem("feedback pages and results.json", error))
    finally:
        files.discard()


STOPPED_GRACE_S = 2.0  # a process seen stopped this long is taken for hung


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
        deadline = time.monotonic() + timeout_s
        stopped_since = None
        try:
            while True:
                if self.answers.poll(min(1.0, max(0.0, deadline - time.monotonic()))):
                    return self.answers.recv()  # an answer, or end of file: the writer ended without one
                now = time.monotonic()
                if now >= deadline:
                    return None
                # A writer stopped (SIGSTOP) never answers: after a moment, as good as dead.
                stopped_since = (stopped_since or now) if is_stopped(self.process.pid) else None
                if stopped_since is not None and now - stopped_since >= STOPPED_GRACE_S:
                    return None
        except (EOFError, OSError):
            return None
        finally:
            self.stop()

    def stop(self) -> None:
        """End the writer if it still runs (killed, reaped)."""
        if self.process is None:
            return
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.answers.close()
        self.process = None


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
    """The whole class in one transaction; a student nbgrader refuses is left out and named."""
    refused: dict[str, str] = {}
    try:
        url = record_in_gradebook(course_dir, assignment, records, refused=refused)
    except Exception as error:
        if is_locked(error):
            problems.append(clean_text(f"gradebook ({held_gradebook()})", 500))
        else:
            problems.append(_problem("gradebook (nothing of this run was written to it)", error))
        return None
    problems.extend(clean_text(f"{student}: gradebook ({why})", 500) for student, why in refused.items())
    return url
