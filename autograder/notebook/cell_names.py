"""Naming a notebook's code cells the way a student finds them in Jupyter: by the execution
number Jupyter shows beside the cell ("cell In [7]"), or, for a cell that was never run or whose
number another cell shares, by its position among all the notebook's cells, Markdown included
("cell 12", as a student counting from the top numbers it), always with the cell's
first line, which Jupyter's search finds: "cell In [7] (`def forward(x, w):`)".

Labels never name what a cell defines: a test cell defines helpers the student never wrote.
The sandbox compiles code cell i as `<cell i>`; `relabel` turns those names in tracebacks and
messages into "Cell In [7], line 3" (IPython's own wording), so notes and feedback agree.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from autograder.model.markdown_text import code_span
from autograder.model.sanitize import clean_text

_DEFINES = re.compile(r"^(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)", re.M)
# At most 9 digits: int() refuses a 5,000-digit one (Python's int limit), and no notebook has
# a billion cells.
_CELL_NAME = re.compile(r"<cell (\d{1,9})>")
_CELL_FILE = re.compile(r'File "<cell (\d{1,9})>"')
FIRST_LINE_CHARS = 80  # labels replace every `<cell i>` of a message, so they stay short (a 1 MB
# first line turned a 2,000-character message into gigabytes)
RELABELLED_CHARS = 20_000
_MAX_EXECUTION_COUNT = 10**9


@dataclass(frozen=True)
class CellLabel:
    """How a student finds one code cell: `where` ("cell In [7]" or "cell 12") and its first
    non-blank line (cut to FIRST_LINE_CHARS)."""

    where: str
    first_line: str = ""

    @property
    def prose(self) -> str:
        """The label in a sentence (Markdown): "cell In [7] (`def forward(x, w):`)"."""
        return f"{self.where} ({code_span(self.first_line)})" if self.first_line else self.where

    def __str__(self) -> str:
        return self.prose


def grade_id_of(cell) -> str | None:
    """The cell's nbgrader grade id, if it has one (checked to be a str by load.checked_cells)."""
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def cell_source(cell) -> str:
    """A cell's source as one string (nbformat allows a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def defined_names(source: str) -> list[str]:
    """Functions and classes a cell's source defines at top level (found even when the cell
    does not parse)."""
    return _DEFINES.findall(source)


def first_line(source: str) -> str:
    """The first line with more than blanks, stripped and cut to FIRST_LINE_CHARS ("" if none).
    Scanned line by line in linear time, so a line of a million spaces costs one pass."""
    for line in source.split("\n"):
        text = line.strip()
        if text:
            text = clean_text(text[:FIRST_LINE_CHARS + 1], FIRST_LINE_CHARS + 1)
            return text if len(text) <= FIRST_LINE_CHARS else text[:FIRST_LINE_CHARS - 1] + "…"
    return ""


def _execution_count(cell) -> int | None:
    count = cell.get("execution_count")
    return count if type(count) is int and 0 < count < _MAX_EXECUTION_COUNT else None


def code_cell_labels(cells) -> list[CellLabel]:
    """One label per code cell of `cells` (nbformat cells, in notebook order)."""
    counts: dict[int, int] = {}
    for cell in cells:
        if cell.get("cell_type") == "code" and (count := _execution_count(cell)) is not None:
            counts[count] = counts.get(count, 0) + 1
    labels = []
    for position, cell in enumerate(cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        count = _execution_count(cell)
        where = f"cell In [{count}]" if count is not None and counts[count] == 1 else f"cell {position}"
        labels.append(CellLabel(where, first_line(cell_source(cell))))
    return labels


def _label(index: int, labels) -> CellLabel:
    """The label of code cell `index`; one that no list holds (nbgrader's path has none) is
    named by its place among the code cells."""
    if 0 <= index < len(labels):
        label = labels[index]
        return label if isinstance(label, CellLabel) else CellLabel(str(label))
    return CellLabel(f"code cell {index + 1}")


def label_of(index: int, labels) -> str:
    """Code cell `index` named in a sentence (Markdown)."""
    return _label(index, labels).prose


def where_of(index: int, labels) -> str:
    """Code cell `index` named briefly, without its line ("cell In [7]"), for plain text such as
    a traceback."""
    return _label(index, labels).where


def relabel(text: str, labels) -> str:
    """`text` with the sandbox's `<cell i>` names replaced by where the cells are:
    `File "<cell 7>", line 3` becomes `Cell In [9], line 3`, as IPython writes it."""
    if not text:
        return text
    text = _CELL_FILE.sub(lambda m: capitalised(where_of(int(m.group(1)), labels)), text)
    return clean_text(_CELL_NAME.sub(lambda m: where_of(int(m.group(1)), labels), text), RELABELLED_CHARS)


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]
