"""Naming a notebook's code cells the way a student can find them in Jupyter, which shows
neither "code cell 8" nor "<cell 7>": by what the cell defines ("the cell that defines
`criterion`") or by the heading above it ("the 2nd code cell under '## 1. A synthetic data
set'"). The sandbox compiles cell i as `<cell i>`; `relabel` turns those names in tracebacks
and messages into these labels, so notes and feedback name cells the same way.
"""
from __future__ import annotations

import re
from collections import Counter

from autograder.model.sanitize import clean_text

_DEFINES = re.compile(r"^(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)", re.M)
_WRITEFILE = re.compile(r"\A\s*%%writefile\s+(?:-a\s+)?(\S+)")
HEADING_CHARS = 200  # a heading is shown in feedback: longer ones are cut
# At most 9 digits: int() refuses a 5,000-digit one (Python's int limit), and no notebook has
# a billion cells.
_CELL_NAME = re.compile(r"<cell (\d{1,9})>")
_CELL_FILE = re.compile(r'File "<cell (\d{1,9})>"')
NAME_CHARS = 40  # a defined name in a label: labels replace every `<cell i>` of a message, so
# they must stay short (a 1 MB function name turned a 2,000-character message into gigabytes)
RELABELLED_CHARS = 20_000


def _ordinal(n: int) -> str:
    suffix = "th" if 10 < n % 100 < 14 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def cell_source(cell) -> str:
    """A cell's source as one string (nbformat allows a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def last_heading(source: str) -> str | None:
    """The last Markdown ATX heading in `source` ("## 1. Data"), its closing #s dropped. Parsed
    with str methods, in time linear in the source: a regex with a lazy group before a trailing
    class was quadratic on a line of a million spaces (the grader waited 13 minutes)."""
    found = None
    for line in source.split("\n"):
        indent = len(line) - len(line.lstrip(" \t"))
        if indent > 3:
            continue
        body = line[indent:]
        level = len(body) - len(body.lstrip("#"))
        if not 1 <= level <= 6 or body[level:level + 1] not in (" ", "\t"):
            continue
        text = body[level:].strip(" \t\r").rstrip(" \t#\r")
        if text:
            found = f"{'#' * level} {clean_text(text, HEADING_CHARS)}"
    return found


def defined_names(source: str) -> list[str]:
    """Functions and classes a cell's source defines at top level (found even when the cell
    does not parse)."""
    return _DEFINES.findall(source)


def code_cell_labels(cells) -> list[str]:
    """One label per code cell of `cells` (nbformat cells, in notebook order)."""
    raw: list[tuple[str, str | None, int]] = []  # (kind, subject, position among same subject)
    heading: str | None = None
    under_heading = 0
    code_number = 0
    for cell in cells:
        kind = cell.get("cell_type")
        source = cell_source(cell)
        if kind == "markdown":
            found = last_heading(source)
            if found:
                heading, under_heading = found, 0
            continue
        if kind != "code":
            continue
        code_number += 1
        under_heading += 1
        names = [n for n in defined_names(source) if not n.startswith("_")] or defined_names(source)
        writefile = _WRITEFILE.match(source)
        if writefile:
            raw.append(("writefile", clean_text(writefile.group(1), NAME_CHARS), 0))
        elif names:
            raw.append(("defines", ", ".join(f"`{clean_text(n, NAME_CHARS)}`" for n in names[:3]), 0))
        elif heading:
            raw.append(("under", heading, under_heading))
        else:
            raw.append(("top", None, code_number))
    return _phrase(raw)


def _phrase(raw: list[tuple[str, str | None, int]]) -> list[str]:
    per_heading = Counter(subject for kind, subject, _ in raw if kind == "under")
    seen: dict[tuple[str, str | None], int] = {}
    total = Counter((kind, subject) for kind, subject, _ in raw)  # one pass: 100,000 cells were quadratic
    labels = []
    for kind, subject, position in raw:
        seen[(kind, subject)] = seen.get((kind, subject), 0) + 1
        repeat = f" (the {_ordinal(seen[(kind, subject)])} one)" if total[(kind, subject)] > 1 and kind in ("defines", "writefile") else ""
        if kind == "writefile":
            labels.append(f"the `%%writefile {subject}` cell{repeat}")
        elif kind == "defines":
            labels.append(f"the cell that defines {subject}{repeat}")
        elif kind == "under":
            which = f"{_ordinal(position)} code cell" if per_heading[subject] > 1 else "code cell"
            labels.append(f"the {which} under '{subject}'")
        else:
            labels.append(f"code cell {position} from the top")
    return labels


def label_of(index: int, labels: list[str]) -> str:
    return labels[index] if 0 <= index < len(labels) else f"code cell {index + 1} from the top"


def relabel(text: str, labels: list[str]) -> str:
    """`text` with the sandbox's `<cell i>` names replaced by the cells' labels:
    `File "<cell 7>", line 3` becomes `In the cell that defines `update`, line 3`."""
    if not text:
        return text
    text = _CELL_FILE.sub(lambda m: "In " + label_of(int(m.group(1)), labels), text)
    return clean_text(_CELL_NAME.sub(lambda m: label_of(int(m.group(1)), labels), text), RELABELLED_CHARS)


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]
