"""What a student is told about how their notebook ran: one note per cause, cells named as
Jupyter shows them (notebook/cell_names.py).

A failure in one cell usually fails later cells too: a step left as the release's stub stops
every cell that calls it; a loss returned as a float fails every `.backward()` after it; a
variable that a failed cell never assigned is a NameError wherever it is used. So:
  - the cells that stop in a stub's `raise NotImplementedError` are one note, which names the
    stubs and the cells to write them in;
  - every other exception type is one note: its first cell in full, later cells listed;
  - a NameError whose variable a failed cell above should have assigned joins that cell's note;
    the other NameErrors (a function never defined, a syntax error) are one note;
  - a syntax error shows its offending line; a cell that ran past its limit is named.
Text from the sandbox goes into code spans and blocks (model/markdown_text.py), numbers rounded as
a feedback case's are (feedback/case.py). Torch-free.
"""
from __future__ import annotations

import ast
import re

from autograder.feedback.case import round_numbers, rounded
from autograder.model.markdown_text import code_block, code_span
from autograder.notebook.cell_names import capitalised, defined_names, label_of, relabel

# The message of a cell the box interrupted because the notebook's budget ran out (box/cells.py).
BUDGET_SPENT = "the notebook's time budget ran out"
MESSAGE_CHARS = 300  # of one exception message in a note
LISTED_CELLS = 12  # cells named in one note; more are counted
PARSED_CHARS = 100_000  # a failed cell longer than this is not searched for what it assigns
# Causes that are not an exception type: a stub left, a syntax error (with its cell), a name never defined.
STUB, SYNTAX, NAME_ERROR, TIMEOUT = "stub", "syntax", "undefined", "time limit"
_PADDED = re.compile(r"(?<![\w.])\d+\.\d{5,}(?![\w.])")  # decimals printed with many places ("4.500000")
_NAME_ERROR = re.compile(r"name '(\w{1,200})' is not defined")
_FRAME = re.compile(r'File "[^"\n]{0,300}", line \d{1,9}, in (\S{1,200})')
_LAST_FRAME = re.compile(r'File "<cell (\d{1,9})>", line \d+, in (\w+)\n[ \t]*raise NotImplementedError\b')


def execution_notes(report, labels=(), sources: list[str] = ()) -> tuple[list[str], list[str]]:
    """(notes about single cells, in notebook order; notes about the run as a whole) for an
    execution report (sandbox/grader/box_client.py: `cells`, `died`, `failed_cells()`). Kept
    apart as data, so no reader has to tell them apart by their wording."""
    notes: list[tuple[int, str]] = []  # (cell index, note): notes stay in notebook order
    causes: dict[str, list[tuple[int, str]]] = {}  # cause -> the cells it failed (index, message), in order
    cause_of: dict[int, str] = {}  # failed cell -> its cause
    syntax_errors: dict[str, tuple[int, dict]] = {}  # cause -> (cell, error)
    broken: dict[str, str] = {}  # name -> the cause (a syntax error) that left it undefined
    stubs: dict[str, int] = {}  # step still left as the stub -> index of the cell that defines it
    name_errors: list[tuple[int, str]] = []
    for cell in report.failed_cells():
        index, error = cell["index"], cell.get("error", {})
        message = relabel(error.get("message", ""), labels)
        kind = str(error.get("type") or "Error")
        if cell["status"] == "timeout" and BUDGET_SPENT in message:
            continue  # told below, with the cells it left unrun
        if cell["status"] == "timeout":  # where it was stopped, for the note: the function it was in
            cause, message = TIMEOUT, innermost_function(error.get("traceback") or "") or ""
        elif kind == "NameError" and (name := _NAME_ERROR.fullmatch(message)):
            name_errors.append((index, name.group(1)))
            continue
        elif kind == "SyntaxError":
            cause = f"{SYNTAX} {index}"
            syntax_errors[cause] = (index, error)
            broken.update(dict.fromkeys(defined_names(sources[index]) if index < len(sources) else [], cause))
        elif kind == "NotImplementedError" and (stub := stub_raised(error.get("traceback") or "")):
            cause = STUB
            stubs.setdefault(*stub)
        else:
            cause = kind
        causes.setdefault(cause, []).append((index, message))
        cause_of[index] = cause
    # A NameError follows from the cause that left its name unbound: a syntax error in the cell
    # that defines it, or the failure of a cell above that was to assign it (itself perhaps a
    # NameError); the rest are one note of names never defined.
    followers: dict[str, tuple[list[str], list[int]]] = {}
    never_defined: list[str] = []  # names no failed cell was to assign
    assigns: dict[int, set[str]] = {}
    for index, name in name_errors:
        cause = broken.get(name)
        if cause is None:
            source = next((i for i in sorted(cause_of, reverse=True) if i < index and name in assigns.setdefault(
                i, assigned_names(sources[i]) if i < len(sources) else set())), None)
            cause = cause_of[source] if source is not None else NAME_ERROR
            if source is None and name not in never_defined:
                never_defined.append(name)
        cause_of[index] = cause
        names, cells = followers.setdefault(cause, ([], []))
        names.append(name) if name not in names else None
        cells.append(index)
    for cause, cells in causes.items():
        names, after = followers.pop(cause, ([], []))
        if cause == STUB:
            said = _stub_note(stubs, cells, labels) + _followers_text(names, after, labels)
        elif cause in syntax_errors:
            said = _syntax_error_note(*syntax_errors[cause], labels, sources, names, after)
        elif cause == TIMEOUT:
            said = _timeout_note(cells, labels) + _followers_text(names, after, labels)
        else:
            said = _raised_note(cause, cells, labels) + _followers_text(names, after, labels)
        notes.append((cells[0][0], said))
    if NAME_ERROR in followers:  # names never defined anywhere: a definition is missing
        names, cells = followers[NAME_ERROR]
        notes.append(_name_error_note(never_defined, [n for n in names if n not in never_defined], cells, labels))
    return [note for _, note in sorted(notes, key=lambda item: item[0])], _run_notes(report, labels, sources)


def innermost_function(traceback: str) -> str | None:
    """The function a student's traceback ends in (not a cell's top level), if any."""
    functions = [name for name in _FRAME.findall(traceback) if name != "<module>"]
    return functions[-1] if functions and _FRAME.findall(traceback)[-1] == functions[-1] else None


def _timeout_note(cells: list[tuple[int, str]], labels) -> str:
    """The cells that ran past their limit: later ones usually call what made the first one hang."""
    (first, function), later = cells[0], cells[1:]
    inside = f" while in `{function}`" if function else ""
    said = f"{capitalised(label_of(first, labels))} ran past its time limit and was interrupted{inside}"
    if not later:
        return said + "; execution went on with the next cell."
    return (f"{said}. {_count(len(later), 'later cell')} ran past it too, most likely for the same reason "
            f"(execution went on after each): {_cells([i for i, _ in later], labels)}.")

def stub_raised(traceback: str) -> tuple[str, int] | None:
    """(function, index of its cell) when the innermost frame of a student's traceback is a
    `raise NotImplementedError` line in a notebook cell: a stub left as released, not an error
    that PyTorch or other code raised."""
    start = traceback.rfind('File "')
    found = _LAST_FRAME.match(traceback, start) if start >= 0 else None
    return (found.group(2), int(found.group(1))) if found else None


def assigned_names(source: str) -> set[str]:
    """Names a cell's top-level statements bind (assignments, for and with targets, imports,
    definitions); nothing if it does not parse."""
    if len(source) > PARSED_CHARS:
        return set()
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    names = set()
    for statement in tree.body:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in statement.names}
        elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(statement.name)
        else:
            targets = {ast.Assign: lambda s: s.targets, ast.AnnAssign: lambda s: [s.target],
                       ast.AugAssign: lambda s: [s.target], ast.For: lambda s: [s.target],
                       ast.With: lambda s: [item.optional_vars for item in s.items if item.optional_vars]}
            for target in targets.get(type(statement), lambda s: [])(statement):
                names |= {node.id for node in ast.walk(target) if isinstance(node, ast.Name)}
    return names


def _followers_text(names: list[str], cells: list[int], labels) -> str:
    if not names:
        return ""
    verb = "was" if len(names) == 1 else "were"
    return (f" So {_listed([f'`{n}`' for n in names])} {verb} never assigned, and "
            f"{_count(len(cells), 'more cell')} failed with NameError: {_cells(cells, labels)}.")


def _message(text: str) -> str:
    """An exception message from the sandbox as a note shows it: numbers as a feedback case shows
    them (a self-check's "got 4.500000" reads "got 4.5"), cut, literal."""
    text = _PADDED.sub(lambda found: rounded(float(found.group())), round_numbers(text))
    return code_span(text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS - 1] + "…")


def _raised_note(kind: str, cells: list[tuple[int, str]], labels) -> str:
    """Every cell that raised exception type `kind`, in one note: later ones usually follow from
    the first (a loss returned as a float fails every cell that calls .backward() on it)."""
    (first, message), later = cells[0], cells[1:]
    said = f"{capitalised(label_of(first, labels))} raised {code_span(kind)}" + (f": {_message(message)}" if message else "")
    if not later:
        return f"{said} (execution went on with the next cell)."
    shown = [label_of(i, labels) + (f": {_message(m)}" if m and m != message else "") for i, m in later]
    listed = "; ".join(shown[:LISTED_CELLS]) + (f"; and {len(shown) - LISTED_CELLS} more" if len(shown) > LISTED_CELLS else "")
    return (f"{said}. {_count(len(later), 'later cell')} raised {code_span(kind)} too, most likely because of "
            f"it (execution went on after each): {listed}.")


def _stub_note(stubs: dict[str, int], cells: list[tuple[int, str]], labels) -> str:
    """The steps still left as the release's stub, where to write them, and the cells that
    stopped because they call one."""
    verb = "is" if len(stubs) == 1 else "are"
    callers = [index for index, _ in cells]
    return (f"{_listed([f'`{name}`' for name in stubs])} {verb} still the stub: replace `raise NotImplementedError()` "
            f"with your code in {_listed([label_of(index, labels) for index in stubs.values()])}. Until then, "
            f"{'the cell that calls' if len(callers) == 1 else f'the {len(callers)} cells that call'} "
            f"{'it' if len(stubs) == 1 else 'them'} stop{'s' if len(callers) == 1 else ''} with NotImplementedError: "
            f"{_cells(callers, labels)}.")


def _name_error_note(names: list[str], through: list[str], cells: list[int], labels) -> tuple[int, str]:
    """Names never defined (`names`), and the cells that failed on them or on what those cells
    never assigned (`through`)."""
    listed, verb = _listed([f"`{name}`" for name in names]), "is" if len(names) == 1 else "are"
    if len(cells) == 1:
        return cells[0], f"{capitalised(label_of(cells[0], labels))} raised NameError: {listed} {verb} not defined."
    also = f", or on {_listed([f'`{n}`' for n in through])}, which earlier failing cells never assigned" if through else ""
    return cells[0], (f"{listed} {verb} not defined, so {len(cells)} cells failed with NameError on "
                      f"{'it' if len(names) == 1 else 'them'}{also}: {_cells(sorted(cells), labels)}.")


def _syntax_error_note(index: int, error: dict, labels, sources, names: list[str], cells: list[int]) -> str:
    """A syntax error, with the offending line shown, the names it leaves undefined, and the
    cells that failed with NameError because of it (`names`: the names they failed on)."""
    source = sources[index] if index < len(sources) else ""
    defined = defined_names(source)
    message = str(error.get("message", ""))
    found = re.search(r"line (\d{1,9})\)$", message)
    number = int(found.group(1)) if found else 0
    lines = source.splitlines()
    shown = code_block(lines[number - 1][:200]) if 0 < number <= len(lines) else ""
    what = f", so {_listed([f'`{n}`' for n in defined])} {'is' if len(defined) == 1 else 'are'} not defined" if defined else ""
    later = [name for name in names if name not in defined]
    through = f", or on {_listed([f'`{n}`' for n in later])}, which earlier failing cells never assigned" if later else ""
    after = f" {_count(len(cells), 'cell')} failed with NameError on it{through}: {_cells(cells, labels)}." if cells else ""
    return (f"{capitalised(label_of(index, labels))} has a syntax error{f' at line {number}' if number else ''}: "
            f"{_message(relabel(without_location(message), labels)[:200])}{shown}\n\nNothing in it ran{what}.{after}")


def _run_notes(report, labels, sources) -> list[str]:
    notes: list[str] = []
    ran = len(report.cells)
    unrun = list(range(ran, len(sources)))
    last = report.cells[-1] if report.cells else {}
    if last.get("status") == "timeout" and BUDGET_SPENT in (last.get("error") or {}).get("message", ""):
        rest = f"; these cells were not run: {_cells(unrun, labels)}" if unrun else ""
        notes.append(f"The notebook used up its time budget: {label_of(ran - 1, labels)} was interrupted{rest}. "
                     "The checks still ran, on your notebook's definitions.")
    elif unrun and not report.died:
        # the budget ran out between two cells (execution stops before a cell, with nothing to interrupt)
        after = f" after {label_of(ran - 1, labels)}" if ran else ""
        notes.append(f"The notebook used up its time budget{after}; these cells were not run: {_cells(unrun, labels)}. "
                     "The checks still ran, on your notebook's definitions.")
    if report.died:
        # the box names the cell it was running by its place among the code cells (from 1)
        died = re.sub(r"running cell (\d{1,9})", lambda m: "running " + label_of(int(m.group(1)) - 1, labels), report.died)
        rest = f" These cells did not run: {_cells(unrun, labels)}." if unrun else ""
        notes.append(f"Execution stopped: {died}.{rest} The checks still ran, on your notebook's definitions.")
    return notes


def without_location(message: str) -> str:
    """A SyntaxError's message without its trailing "(<cell 3>, line 2)", found from the end in
    one pass (a regex with `.*` between " (" and "line" was quadratic in a crafted message)."""
    start = message.rfind(" (")
    tail = message[start + 2:-1] if start >= 0 and message.endswith(")") else ""
    number = tail.rsplit("line ", 1)[-1] if "line " in tail else ""
    return message[:start] if number.isdigit() else message


def _cells(indices: list[int], labels) -> str:
    return _some([label_of(i, labels) for i in indices])


def _some(items: list[str]) -> str:
    """At most LISTED_CELLS items listed, the rest counted."""
    if len(items) > LISTED_CELLS:
        return ", ".join(items[:LISTED_CELLS]) + f" and {len(items) - LISTED_CELLS} more"
    return _listed(items)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""
