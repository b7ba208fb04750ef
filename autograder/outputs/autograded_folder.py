"""nbgrader's autograded/ folder, as `nbgrader autograde` leaves it for formgrader.

formgrader (NbGraderAPI.get_autograded_students) counts a submission as autograded only if
COURSE/autograded/<student>/<assignment>/ exists and its gradebook timestamp equals the one in
submitted/<student>/<assignment>/timestamp.txt; otherwise it lists the student as "needs
autograding" with no score, whatever the gradebook holds. formgrader's manual grading (the
written answer) also opens the notebook there. So after the gradebook is written, each graded
submission's notebook is copied there under the assignment's notebook name, with the locked
cells restored from the release (as nbgrader's OverwriteCells does), and its timestamp.txt.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from autograder.assignment import Assignment
from autograder.model.records import GradedSubmission
from autograder.notebook.load import SubmissionError, parse_notebook, read_notebook_file, restore_locked_cells


def _restored(notebook_path: Path, release_path: Path) -> str | None:
    """The submitted notebook as text with the release's locked cells restored; None if it is
    not a readable notebook (read as grading reads it: no link followed, size capped)."""
    import nbformat

    try:
        notebook, _ = parse_notebook(read_notebook_file(notebook_path))
        restore_locked_cells(notebook, release_path)
        # nbformat.writes would validate it again (as parse_notebook's read did, and restoring
        # sources keeps it valid): a third of this writer's time, for the same text.
        return nbformat.v4.writes(notebook)
    except (SubmissionError, OSError, RecursionError, ValueError, TypeError):  # what a hostile notebook can raise
        return None


def write_autograded_folders(coursedir, assignment: Assignment, records: list[GradedSubmission]) -> None:
    """`coursedir` is nbgrader's CourseDirectory of the course (its autograded_directory and
    submitted_directory settings are honoured)."""
    for record in records:
        if not record.notebook:
            continue
        target = Path(coursedir.format_path(coursedir.autograded_directory, record.student, assignment.name))
        text = _restored(Path(record.notebook), assignment.release_notebook)
        if text is None:
            continue
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        (target / assignment.notebook).write_text(text, encoding="utf-8")
        timestamp = Path(coursedir.format_path(coursedir.submitted_directory, record.student, assignment.name)) / "timestamp.txt"
        if timestamp.is_file():
            shutil.copyfile(timestamp, target / "timestamp.txt")
