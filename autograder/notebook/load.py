"""Reading a submission: parse it with nbformat, restore the locked cells from the release (as
nbgrader's OverwriteCells does, so edited tests or provided code change nothing), and return the
code cells to run, with notes for the student about anything unusual."""
from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.model.errors import ExplainedError
from autograder.notebook.cell_names import CellLabel, cell_source, code_cell_labels, grade_id_of
from autograder.notebook.releases import KnownReleases
from autograder.terms import ReleaseCells

# Far above any real notebook (the lesson's, with every plot rendered, is under 1 MiB), and below
# what would strain the grader's memory: a larger file is refused before it is read.
MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024
# All code cells together, as sent to the sandbox (one message of at most 16 MiB): the lesson's
# code is under 20 KiB; a 17 MB cell failed the request's framing and stopped the worker.
MAX_CODE_BYTES = 8 * 1024 * 1024
MAX_CELLS = 10_000  # the lesson has about 40; nbformat's validation of millions took minutes


class SubmissionError(ExplainedError):
    """The file cannot be graded at all; `reason` says why, in words for the student and TA."""


@dataclass
class LoadedNotebook:
    cells: list[str]
    notes: list[str] = field(default_factory=list)
    labels: list[CellLabel] = field(default_factory=list)  # how a student finds each code cell (cell_names.py)
    release: ReleaseCells | None = None  # the release it is graded against (its locked cells restored)
    release_matched: bool = True  # False: it matches no known release, so `release` is the current one
    unanswered: list[str] = field(default_factory=list)  # written answers left as released (releases.unanswered)


def checked_cells(notebook) -> None:
    """Raise SubmissionError unless every cell has the shape the grader reads: a dict with a str
    cell_type and source, dict metadata, a dict `nbgrader` entry in it (if any) whose grade_id
    is a str. nbformat does not check these (a notebook cannot be refused for a field it does
    not know), and every later step may rely on them."""
    for number, cell in enumerate(notebook.cells, 1):
        where = f"cell {number}"
        if not isinstance(cell, dict):
            raise SubmissionError(f"the notebook is not valid: {where} is not a JSON object")
        if not isinstance(cell.get("cell_type"), str) or not isinstance(cell.get("source", ""), str):
            raise SubmissionError(f"the notebook is not valid: {where} has no text cell_type or source")
        metadata = cell.get("metadata", {})
        nbgrader = metadata.get("nbgrader", {}) if isinstance(metadata, dict) else None
        if not isinstance(nbgrader, dict) or not isinstance(nbgrader.get("grade_id", ""), str):
            raise SubmissionError(f"the notebook is not valid: the metadata of {where} is malformed "
                                  "(its 'nbgrader' entry must be an object with a text grade_id)")


def parse_notebook(raw: bytes):
    """Parse bytes into a v4 notebook node, or raise SubmissionError with the reason."""
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as error:
        raise SubmissionError(f"the file is not a valid notebook: it is not JSON ({str(error)[:200]})") from None
    except RecursionError:
        raise SubmissionError("the file is not a valid notebook: its JSON is nested too deeply") from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise SubmissionError("the file is JSON but not a Jupyter notebook (it has no 'nbformat' field)")
    if isinstance(data.get("cells"), list) and len(data["cells"]) > MAX_CELLS:
        raise SubmissionError(f"the notebook has more than {MAX_CELLS:,} cells: submit the assignment's notebook")
    if type(data["nbformat"]) is not int:
        raise SubmissionError("the file is not a valid notebook: its 'nbformat' field is not a whole number")
    notes = []
    if data["nbformat"] < 4:
        notes.append(f"The notebook was saved in the old format v{data['nbformat']}; it was converted to v4 for grading.")
    try:
        notebook = nbformat.reads(json.dumps(data), as_version=4)
    except Exception as error:  # nbformat raises several unrelated types for malformed files
        raise SubmissionError(f"the file is not a readable Jupyter notebook ({type(error).__name__}: {str(error)[:200]})") from None
    if not isinstance(notebook.get("cells"), list):
        raise SubmissionError("the notebook has no list of cells")
    checked_cells(notebook)
    return notebook, notes


def read_notebook_file(path: Path) -> bytes:
    """The submitted file's bytes, if it is a regular file of at most MAX_NOTEBOOK_BYTES. A link is
    never followed (a notebook linked to a file of the kit, e.g. from a zip uploaded to Gradescope,
    would be read as the student's), and a FIFO or device never read (it could block or never end).
    Other OSErrors (missing, unreadable) propagate."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise SubmissionError("the notebook is a symbolic link, not a file: submit the notebook itself") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SubmissionError("the notebook is not a regular file (a folder, device or pipe): submit the .ipynb file itself")
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_NOTEBOOK_BYTES + 1)
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(f"the notebook is larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB: clear its outputs "
                              "(Kernel > Restart & Clear Output) and submit it again")
    return data


def restore_locked_cells(notebook, locked: Mapping[str, str]) -> list[str]:
    """Put a release's locked code cells (grade id -> source) back into `notebook` (changed in
    place), as nbgrader's OverwriteCells does, so edited tests or provided code change nothing;
    returns the grade ids of the cells that had been changed."""
    restored = []
    for cell in notebook.cells:
        grade_id = grade_id_of(cell)
        if cell.get("cell_type") == "code" and grade_id in locked and cell_source(cell) != locked[grade_id]:
            cell["source"] = locked[grade_id]
            restored.append(grade_id)
    return restored


def unanswered(notebook, release: ReleaseCells) -> list[str]:
    """Grade ids of the release's written answers that `notebook` left as released, or removed:
    nbgrader scores those 0 ("No response.") instead of asking for a manual grade."""
    held = {grade_id_of(c): cell_source(c) for c in notebook.cells if grade_id_of(c)}
    return [grade_id for grade_id, source in release.answers.items() if held.get(grade_id, source) == source]


def load_submission(path: Path, releases: KnownReleases | Path) -> LoadedNotebook:
    """`releases`: every release the submission may come from, or one release notebook's path."""
    if not isinstance(releases, KnownReleases):
        releases = KnownReleases.single(Path(releases))
    notebook, notes = parse_notebook(read_notebook_file(Path(path)))
    release = releases.match(notebook)
    against = release or releases.current  # as nbgrader would, the current release's cells
    restored = restore_locked_cells(notebook, against.locked)
    cells = [cell_source(cell) for cell in notebook.cells if cell.get("cell_type") == "code"]
    if len(json.dumps(cells)) > MAX_CODE_BYTES:  # as it will be sent
        raise SubmissionError(f"the notebook's code cells hold more than {MAX_CODE_BYTES // 2**20} MiB of source: "
                              "keep data in a file beside the notebook, not pasted into a cell")
    if release is None:
        term = f" (term {against.term})" if against.term else ""
        notes.append(f"The notebook's locked cells match no release of this assignment, so it was graded against "
                     f"the current release{term}.")
    if restored:
        notes.append("Locked cells were changed and have been restored from the assignment: " + ", ".join(restored) + ".")
    if not cells:
        notes.append("The notebook has no code cells.")
    # labelled as they will run (locked cells restored)
    return LoadedNotebook(cells, notes, code_cell_labels(notebook.cells), release=against,
                          release_matched=release is not None, unanswered=unanswered(notebook, against))
