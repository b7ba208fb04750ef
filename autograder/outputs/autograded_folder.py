"""nbgrader's autograded/ folder, as `nbgrader autograde` leaves it for formgrader.

formgrader (NbGraderAPI.get_autograded_students) counts a submission as autograded only if
COURSE/autograded/<student>/<assignment>/ exists and its gradebook timestamp equals the one in
submitted/<student>/<assignment>/timestamp.txt; otherwise it lists the student as "needs
autograding" with no score, whatever the gradebook holds. formgrader's manual grading (the
written answer) also opens the notebook there. So after the gradebook is written, each graded
submission's notebook is copied there under the assignment's notebook name, as `nbgrader
autograde` leaves it: the locked cells restored from the release it was graded against (as
nbgrader's OverwriteCells does), every cell that ran with its outputs and execution count
(notebook/executed.py), each test cell with its check's result first (what the hidden tests
print there on nbgrader's path); and its timestamp.txt.
"""
from __future__ import annotations

from pathlib import Path

import nbformat

from autograder.assignment import Assignment
from autograder.model.records import GradedSubmission
from autograder.model.results import SubmissionResult
from autograder.notebook.executed import nbformat_outputs, output_node
from autograder.notebook.load import SubmissionError, grade_id_of, parse_notebook, read_notebook_file, restore_locked_cells
from autograder.notebook.releases import KnownReleases, known_releases
from autograder.outputs.atomic import AtomicFiles
from autograder.outputs.text import check_cell_output


def _executed(notebook, result: SubmissionResult | None) -> None:
    """`notebook` (locked cells restored) with the outputs its run left, changed in place."""
    ran = result.cell_outputs if result is not None else []
    checks = {c.name: c for c in result.checks} if result is not None else {}
    code = [cell for cell in notebook.cells if cell.get("cell_type") == "code"]
    for number, cell in enumerate(code):
        outputs = nbformat_outputs(ran[number]) if number < len(ran) else []
        check = checks.get(grade_id_of(cell))
        if check is not None:
            outputs.insert(0, output_node("stream", name="stdout", text=check_cell_output(check) + "\n"))
        cell["outputs"] = outputs
        cell["execution_count"] = number + 1 if number < len(ran) else None


def _restored(notebook_path: Path, locked: dict[str, str], result: SubmissionResult | None = None) -> str | None:
    """The submitted notebook as text with `locked` cells restored and, given its result, its
    outputs; None if it is not a readable notebook (read as grading reads it: no link followed,
    size capped)."""
    try:
        notebook, _ = parse_notebook(read_notebook_file(notebook_path))
        restore_locked_cells(notebook, locked)
        _executed(notebook, result)
        # nbformat.writes would validate it again (as parse_notebook's read did, and restoring
        # sources keeps it valid): a third of this writer's time, for the same text.
        return nbformat.v4.writes(notebook)
    except (SubmissionError, OSError, RecursionError, ValueError, TypeError):  # what a hostile notebook can raise
        return None


def _graded_against(releases: KnownReleases, result: SubmissionResult | None) -> dict[str, str]:
    release = releases.by_id(result.release_id) if result is not None and result.release_matched else None
    return (release or releases.current).locked


def write_autograded_folders(coursedir, assignment: Assignment, records: list[GradedSubmission]) -> None:
    """`coursedir` is nbgrader's CourseDirectory of the course (its autograded_directory and
    submitted_directory settings are honoured). The files appear together, atomically
    (outputs/atomic.py): a folder is never left half-written."""
    releases = known_releases(assignment)
    with AtomicFiles() as files:
        for record in records:
            if not record.notebook:
                continue
            target = Path(coursedir.format_path(coursedir.autograded_directory, record.student, assignment.name))
            text = _restored(Path(record.notebook), _graded_against(releases, record.result), record.result)
            if text is None:
                continue
            files.write(target / assignment.notebook, text)
            timestamp = Path(coursedir.format_path(coursedir.submitted_directory, record.student, assignment.name)) / "timestamp.txt"
            if timestamp.is_file():
                files.write(target / "timestamp.txt", timestamp.read_bytes())
            else:  # formgrader compares it with the gradebook's: an old one must not stay
                (target / "timestamp.txt").unlink(missing_ok=True)
