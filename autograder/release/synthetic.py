"""Building synthetic submissions from the release, for the kit's tests, the bundled sample
class and the benchmark: the release with its stubs filled by the master's solutions, then
some steps replaced by given (possibly wrong or hostile) code.

    notebook = make_submission({"criterion": "def criterion(yhat, y):\n    return ((yhat - y) ** 2).sum()"})
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

from autograder.assignment import PYTORCH_SLOPE
from autograder.notebook.load import grade_id_of

SOURCE_NOTEBOOK = PYTORCH_SLOPE.master
RELEASE_NOTEBOOK = PYTORCH_SLOPE.release_notebook
# student function -> grade id of the cell that defines it
SOLUTION_CELLS = PYTORCH_SLOPE.solution_cells
_MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.M)


def solution_sources(source: Path = SOURCE_NOTEBOOK) -> dict[str, str]:
    """The master's solution cells, markers removed, by student function name."""
    master = nbformat.read(source, as_version=4)
    by_id = {grade_id_of(c): _MARKERS.sub("", c.source) for c in master.cells}
    return {name: by_id[grade_id] for name, grade_id in SOLUTION_CELLS.items()}


def solution_lines(master) -> list[str]:
    """Stripped, non-empty lines inside the master's ### BEGIN/END SOLUTION regions."""
    lines = []
    for cell in master.cells:
        inside = False
        for line in cell.source.splitlines():
            s = line.strip()
            if s == "### BEGIN SOLUTION":
                inside = True
            elif s == "### END SOLUTION":
                inside = False
            elif inside and s:
                lines.append(s)
    return lines


def model_answers(source: Path = SOURCE_NOTEBOOK) -> dict[str, str]:
    """The master's written answers (its markdown solution cells), by grade id."""
    master = nbformat.read(source, as_version=4)
    return {grade_id_of(c): c.source for c in master.cells
            if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("solution") and grade_id_of(c)}


def make_submission(overrides: dict[str, str] | None = None, *, extra_cells: list[str] = (),
                    solved: bool = True, answered: bool = False, release: Path = RELEASE_NOTEBOOK,
                    source: Path = SOURCE_NOTEBOOK):
    """The release with solutions filled in from the master `source` (if `solved`), its written
    answers too (if `answered`; otherwise left as released), `overrides` replacing whole function
    cells by function name, and `extra_cells` inserted right after the first code cell."""
    notebook = nbformat.read(release, as_version=4)
    sources = solution_sources(source) if solved else {}
    sources.update(overrides or {})
    answers = model_answers(source) if answered else {}
    ids = {grade_id: name for name, grade_id in SOLUTION_CELLS.items()}
    for cell in notebook.cells:
        name = ids.get(grade_id_of(cell))
        if name in sources:
            cell.source = sources[name]
        elif cell.cell_type == "markdown" and grade_id_of(cell) in answers:
            cell.source = answers[grade_id_of(cell)]
    first_code = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "code")
    for offset, source in enumerate(extra_cells, start=1):
        notebook.cells.insert(first_code + offset, nbformat.v4.new_code_cell(source))
    return notebook


def write_submission(path: Path, notebook) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path
