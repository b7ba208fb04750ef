"""Recording batch results in nbgrader's gradebook, through nbgrader's own API.

The assignment's structure (notebook, grade cells, solution cells, source cells) is saved the
way `nbgrader generate_assignment` saves it: the kit's master notebook goes through nbgrader's
own preprocessors up to and including `SaveCells`. Then, in one transaction for the class (a run's
grades appear all at once, or not at all), per student: the student and the submission are
created if needed (an existing one is updated, never duplicated; what `Gradebook.add_submission`
builds, with nbgrader's ORM classes), every autograded cell gets the check's score as
`auto_score` under its grade id, and the written answer is left for manual grading (no auto
score, `needs_manual_grade`), so `nbgrader export` and formgrader show the result with no extra
step. A check the grader could not judge (a grader error) gets no score and is left needing a
grade, never a 0. A score a TA already entered by hand (`manual_score`) is never overwritten; a
written answer left as released is 0 with nbgrader's comment "No response.", as `nbgrader
autograde` scores it. What the staff enter by hand is read back (`manual_grading`) for the
students' feedback. A gradebook another program holds is waited for (sqlite's busy timeout), then
reported.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

import nbformat

from autograder.assignment import Assignment
from autograder.course import course_settings
from autograder.model.manual import ManualGrading
from autograder.model.records import GradedSubmission
from autograder.model.status import CheckStatus
from autograder.outputs.autograded_folder import write_autograded_folders
from autograder.outputs.course_source import write_course_source


def _alembic_head() -> str:
    """What nbgrader's get_alembic_version finds by running the `alembic heads` command, read
    in-process with alembic's own API (the command costs an interpreter start, and needs the
    venv's bin/ on PATH)."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import _temp_alembic_ini

    with _temp_alembic_ini("sqlite:////tmp/gradebook.db") as alembic_ini:
        return ScriptDirectory.from_config(AlembicConfig(alembic_ini)).get_current_head()


@contextlib.contextmanager
def _fast_new_database():
    """Let nbgrader stamp a new gradebook with its alembic version without a subprocess."""
    import nbgrader.api

    original = nbgrader.api.get_alembic_version
    try:
        head = _alembic_head()
    except Exception:  # fall back to nbgrader's own way, with the interpreter's bin/ on PATH
        head = None
    nbgrader.api.get_alembic_version = (lambda: head) if head else original
    saved_path = os.environ.get("PATH")
    if head is None and shutil.which("alembic") is None:
        os.environ["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.executable).parent), saved_path]))
    try:
        yield
    finally:
        nbgrader.api.get_alembic_version = original
        if saved_path is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = saved_path


def save_assignment_structure(coursedir, assignment: Assignment, db_url: str | None = None) -> None:
    """What generate_assignment records: the assignment, then its master notebook through
    nbgrader's preprocessors up to SaveCells (same checksums, same stored sources)."""
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, ClearSolutions, ComputeChecksums, LockCells, SaveCells

    db_url = db_url or coursedir.db_url
    with Gradebook(db_url, coursedir.course_id) as gb:
        gb.update_or_create_assignment(assignment.name)
    notebook = nbformat.read(assignment.master, as_version=nbformat.NO_CONVERT)
    resources = {"nbgrader": {"notebook": assignment.master.stem, "assignment": assignment.name,
                              "db_url": db_url}}
    for preprocessor in (LockCells, ClearSolutions, ClearOutput, CheckCellMetadata, ComputeChecksums, SaveCells):
        notebook, resources = preprocessor(config=coursedir.config).preprocess(notebook, resources)


def _new_submission(gb, assignment, student, timestamp):
    """A submission with a grade per grade cell and a comment per solution cell: what
    Gradebook.add_submission builds, without its commit, so the whole class is one transaction."""
    from nbgrader.api import Comment, Grade, SubmittedAssignment, SubmittedNotebook

    submission = SubmittedAssignment(assignment=assignment, student=student, timestamp=timestamp)
    gb.db.add(submission)
    for notebook in assignment.notebooks:
        submitted = SubmittedNotebook(notebook=notebook, assignment=submission)
        rows = [submitted]
        rows += [Grade(cell=cell, notebook=submitted) for cell in notebook.grade_cells]
        rows += [Comment(cell=cell, notebook=submitted) for cell in notebook.solution_cells]
        for cell in notebook.task_cells:
            rows += [Comment(cell=cell, notebook=submitted), Grade(cell=cell, notebook=submitted)]
        gb.db.add_all(rows)
    return submission


NO_RESPONSE = "No response."  # nbgrader's auto comment on an answer left as released (SaveAutoGrades)


def _score_cells(submitted_notebook, record: GradedSubmission, assignment: Assignment) -> None:
    checks = {c.name: c for c in record.result.checks} if record.result else {}
    # nbgrader's rule (utils.determine_grade): an answer cell left as released, or no notebook
    # at all, is 0 without a manual grade, with the comment "No response."
    unanswered = set(record.result.unanswered) if record.result and record.notebook else set(assignment.manual_checks)
    for comment in submitted_notebook.comments:
        if comment.cell.name in assignment.manual_checks:
            comment.auto_comment = NO_RESPONSE if comment.cell.name in unanswered else None
    for grade in submitted_notebook.grades:
        name = grade.cell.name
        if name in assignment.manual_checks:
            if name in unanswered:
                grade.auto_score = 0.0
                grade.needs_manual_grade = grade.manual_score is not None
            else:  # the TA grades it; a mark already given stays
                grade.auto_score = None
                grade.needs_manual_grade = grade.manual_score is None
        elif name in assignment.checks:
            check = checks.get(name)
            if check is not None and check.status == CheckStatus.ERROR:
                # The grader could not judge it: no score at all (never a 0), and formgrader lists the
                # cell as needing a grade, as nbgrader's own SaveAutoGrades does when it has no score.
                grade.auto_score = None
                grade.needs_manual_grade = True
                continue
            grade.auto_score = float(check.score) if check is not None else 0.0
            # nbgrader's SaveAutoGrades rule: a hand-entered score keeps the cell in the manual queue
            grade.needs_manual_grade = grade.manual_score is not None


# How long a write waits for a gradebook another program holds (formgrader writing a grade, an
# `nbgrader` command): sqlite's busy timeout. Past it the gradebook is not written this run.
GRADEBOOK_BUSY_TIMEOUT_S = 30.0


def waiting_url(db_url: str) -> str:
    """`db_url` with sqlite's busy timeout set (SQLAlchemy passes `timeout` to sqlite3.connect)."""
    if db_url.startswith("sqlite:") and "?" not in db_url:
        return f"{db_url}?timeout={GRADEBOOK_BUSY_TIMEOUT_S:g}"
    return db_url


def is_locked(error: BaseException) -> bool:
    """Whether `error` says another program holds the gradebook (sqlite's "database is locked")."""
    return "database is locked" in str(error) or "database table is locked" in str(error)


def held_gradebook() -> str:
    """What a TA reads when another program held the gradebook past the busy timeout."""
    return (f"another program held it for {GRADEBOOK_BUSY_TIMEOUT_S:g} s: formgrader or an nbgrader command; nothing "
            "of this run was written to it. Run autograde again once it is free: the grades are kept and nothing is "
            "graded again")


def record_in_gradebook(course_dir: Path, assignment: Assignment, records: list[GradedSubmission], *,
                        refused: dict[str, str] | None = None) -> str:
    """Record every record's per-check scores in the course's nbgrader gradebook in ONE
    transaction: all of the class or, on an error, none of it. With `refused` given, a record
    nbgrader refuses is left out of that transaction (found by trying each student alone, rolled
    back) and named in it with the reason; otherwise any refusal raises. Returns the gradebook's URL."""
    from nbgrader.api import Gradebook

    Path(course_dir).mkdir(parents=True, exist_ok=True)
    coursedir = course_settings(course_dir)
    if coursedir.db_url.startswith("sqlite:///"):
        Path(coursedir.db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    url = waiting_url(coursedir.db_url)
    latest = list({record.student: record for record in records}.values())  # one row per student
    with _fast_new_database():
        save_assignment_structure(coursedir, assignment, url)
        gb = Gradebook(url, coursedir.course_id)
    with gb:
        try:
            _write_students(gb, assignment, latest)
            gb.db.commit()
        except Exception as error:
            gb.db.rollback()
            if refused is None or is_locked(error):
                raise
            refusals = _refusals(gb, assignment, latest)
            if not refusals:  # no one student explains it: nothing is written
                raise
            refused.update(refusals)
            try:
                _write_students(gb, assignment, [r for r in latest if r.student not in refusals])
                gb.db.commit()
            except Exception:
                gb.db.rollback()
                raise
    write_autograded_folders(coursedir, assignment, records)  # formgrader's "autograded" needs them
    write_course_source(coursedir, assignment)  # and its lists of assignments, source/<assignment>/
    return coursedir.db_url


def manual_grading(course_dir: Path, assignment: Assignment) -> dict[str, ManualGrading]:
    """student -> what the staff graded by hand in formgrader (model/manual.py), read from the
    course's gradebook in one query per kind; empty where there is no gradebook yet. So the
    feedback written after grading by hand (`autograde` again) carries the scores and comments."""
    from nbgrader.api import Assignment as GradebookAssignment
    from nbgrader.api import BaseCell, Comment, Grade, Gradebook, MissingEntry, SubmittedAssignment, SubmittedNotebook

    coursedir = course_settings(course_dir)
    if coursedir.db_url.startswith("sqlite:///") and not Path(coursedir.db_url.removeprefix("sqlite:///")).is_file():
        return {}  # opening it would create an empty gradebook
    graded: dict[str, ManualGrading] = {}
    with Gradebook(waiting_url(coursedir.db_url), coursedir.course_id) as gb:
        try:
            gb.find_assignment(assignment.name)
        except MissingEntry:
            return {}

        def rows(model, *columns):
            """(student, cell name, *columns) of every `model` row of this assignment, in one query."""
            return (gb.db.query(SubmittedAssignment.student_id, BaseCell.name, *columns)
                    .select_from(model)
                    .join(BaseCell, model.cell_id == BaseCell.id)
                    .join(SubmittedNotebook, model.notebook_id == SubmittedNotebook.id)
                    .join(SubmittedAssignment, SubmittedNotebook.assignment_id == SubmittedAssignment.id)
                    .join(GradebookAssignment, SubmittedAssignment.assignment_id == GradebookAssignment.id)
                    .filter(GradebookAssignment.name == assignment.name))

        for student, name, manual, automatic in rows(Grade, Grade.manual_score, Grade.auto_score):
            if manual is None and name in assignment.manual_checks:
                manual = automatic  # nbgrader's 0 for an answer left as released
            if manual is not None:
                graded.setdefault(student, ManualGrading()).scores[name] = float(manual)
        for student, name, text in rows(Comment, Comment.manual_comment):  # the staff's (the auto ones are the kit's)
            text = (text or "").strip()
            if text:
                graded.setdefault(student, ManualGrading()).comments[name] = text
    return graded
def _write_students(gb, assignment: Assignment, records: list[GradedSubmission]) -> None:
    with gb.db.no_autoflush:
        the_assignment = gb.find_assignment(assignment.name)
        for record in records:
            _write_student(gb, the_assignment, assignment, record)
    gb.db.flush()


def _refusals(gb, assignment: Assignment, records: list[GradedSubmission]) -> dict[str, str]:
    """Student -> why nbgrader refuses their row, each tried alone and rolled back."""
    refusals = {}
    for record in records:
        try:
            _write_students(gb, assignment, [record])
        except Exception as error:
            refusals[record.student] = f"{type(error).__name__}: {error}"
        finally:
            gb.db.rollback()
    return refusals


def _write_student(gb, the_assignment, assignment: Assignment, record: GradedSubmission) -> None:
    """One student's submission and scores, in the open transaction (what Gradebook.add_submission
    builds, with nbgrader's ORM classes: an existing submission is updated, never duplicated)."""
    from nbgrader import utils
    from nbgrader.api import MissingEntry, Student

    student = gb.db.get(Student, record.student)
    if student is None:
        student = Student(id=record.student)
        gb.db.add(student)
    timestamp = utils.parse_utc(record.timestamp) if record.timestamp else None
    try:
        submission = gb.find_submission(assignment.name, record.student)
        submission.timestamp = timestamp
    except MissingEntry:
        submission = _new_submission(gb, the_assignment, student, timestamp)
    notebook_id = Path(assignment.notebook).stem
    for submitted in submission.notebooks:
        if submitted.notebook.name == notebook_id:
            _score_cells(submitted, record, assignment)
