"""Recording batch results in nbgrader's gradebook, through nbgrader's own API.

The assignment's structure (notebook, grade cells, solution cells, source cells) is saved the
way `nbgrader generate_assignment` saves it: the kit's master notebook goes through nbgrader's
own preprocessors up to and including `SaveCells`. Then, per student, in one transaction: the
student and the submission are created if needed (an existing one is updated, never
duplicated), every autograded cell gets the check's score as `auto_score` under its grade id,
and the written answer is left for manual grading (no auto score, `needs_manual_grade`), so
`nbgrader export` and formgrader show the result with no extra step. A score a TA already
entered by hand (`manual_score`) is never overwritten.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import warnings
from pathlib import Path

import nbformat

from autograder.assignment import CHECKS, KIT_ROOT, MANUAL_CHECKS, NOTEBOOK
from autograder.autograde.records import GradedSubmission

MASTER_NOTEBOOK = KIT_ROOT / "source" / "pytorch_slope" / NOTEBOOK


@contextlib.contextmanager
def _alembic_on_path():
    """nbgrader runs the `alembic` command when it creates a database; make the one installed
    next to this interpreter findable even when the venv's bin/ is not on PATH."""
    saved = os.environ.get("PATH")
    if shutil.which("alembic") is None:
        os.environ["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.executable).parent), saved]))
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = saved


def course_settings(course_dir: Path):
    """nbgrader's CourseDirectory for `course_dir`, configured from its nbgrader_config.py/.json
    (so a course that moves its database elsewhere is honoured); root defaults to course_dir."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import Config, JSONFileConfigLoader, PyFileConfigLoader

    course_dir = Path(course_dir).resolve()
    config = Config()
    for name, loader in (("nbgrader_config.py", PyFileConfigLoader), ("nbgrader_config.json", JSONFileConfigLoader)):
        if (course_dir / name).is_file():
            config.merge(loader(name, path=str(course_dir)).load_config())
    if "root" not in config.get("CourseDirectory", {}):
        config.CourseDirectory.root = str(course_dir)
    return CourseDirectory(config=config)


def save_assignment_structure(coursedir, assignment: str, master: Path = MASTER_NOTEBOOK) -> None:
    """What generate_assignment records: the assignment, then the master notebook through
    nbgrader's preprocessors up to SaveCells (same checksums, same stored sources)."""
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, ClearSolutions,
                                        ComputeChecksums, LockCells, SaveCells)

    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        gb.update_or_create_assignment(assignment)
    notebook = nbformat.read(master, as_version=nbformat.NO_CONVERT)
    resources = {"nbgrader": {"notebook": Path(master).stem, "assignment": assignment,
                              "db_url": coursedir.db_url}}
    for preprocessor in (LockCells, ClearSolutions, ClearOutput, CheckCellMetadata, ComputeChecksums, SaveCells):
        notebook, resources = preprocessor(config=coursedir.config).preprocess(notebook, resources)


def _score_cells(gb, record: GradedSubmission, assignment: str, notebook_id: str) -> None:
    from nbgrader.api import MissingEntry

    scores = {c.name: float(c.score) for c in record.result.checks} if record.result else {}
    for name in CHECKS:
        try:
            grade = gb.find_grade(name, notebook_id, assignment, record.student)
        except MissingEntry:
            continue
        grade.auto_score = scores.get(name, 0.0)
        # nbgrader's SaveAutoGrades rule: a hand-entered score keeps the cell in the manual queue
        grade.needs_manual_grade = grade.manual_score is not None
    nothing_submitted = record.notebook is None
    for name in MANUAL_CHECKS:
        try:
            grade = gb.find_grade(name, notebook_id, assignment, record.student)
        except MissingEntry:
            continue
        if nothing_submitted:  # no notebook, so no written answer: 0, nothing to read
            grade.auto_score = 0.0
            grade.needs_manual_grade = grade.manual_score is not None
        else:
            grade.auto_score = None
            grade.needs_manual_grade = grade.manual_score is None


def record_in_gradebook(course_dir: Path, assignment: str, records: list[GradedSubmission]) -> None:
    """Record every record's per-check scores in the course's nbgrader gradebook."""
    from nbgrader import utils
    from nbgrader.api import Gradebook, MissingEntry

    coursedir = course_settings(course_dir)
    notebook_id = Path(NOTEBOOK).stem
    with _alembic_on_path():
        save_assignment_structure(coursedir, assignment)
        gb = Gradebook(coursedir.db_url, coursedir.course_id)
    with gb:
        for record in records:
            try:
                gb.find_student(record.student)
            except MissingEntry:
                gb.add_student(record.student)
            timestamp = utils.parse_utc(record.timestamp) if record.timestamp else None
            try:
                submission = gb.find_submission(assignment, record.student)
            except MissingEntry:
                with warnings.catch_warnings():  # nbgrader's own add_submission trips SQLAlchemy's autoflush warning
                    warnings.simplefilter("ignore")
                    submission = gb.add_submission(assignment, record.student, timestamp=timestamp)
            else:
                submission.timestamp = timestamp
            try:
                _score_cells(gb, record, assignment, notebook_id)
                gb.db.commit()
            except Exception:
                gb.db.rollback()
                raise
