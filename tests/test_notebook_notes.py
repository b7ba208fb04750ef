"""The notes about how a notebook ran say each cause once (feedback/notebook_notes.py), from
hand-made execution reports (no sandbox): the cells a stub stops are one note that says what to
do, every other exception type is one note, NameErrors join the failure that left their name
unbound, a syntax error shows its line, and text from the sandbox is rounded and literal."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from autograder.feedback.notebook_notes import assigned_names, execution_notes, stub_raised
from autograder.notebook.cell_names import code_cell_labels
from autograder.outputs.markdown_html import markdown_html

STUB = "def {name}(x):\n    raise NotImplementedError()\n"


@dataclass
class Report:
    cells: list[dict] = field(default_factory=list)
    died: str | None = None

    def failed_cells(self):
        return [c for c in self.cells if c["status"] != "ok"]


def ok(index: int) -> dict:
    return {"index": index, "status": "ok"}


def raised(index: int, kind: str, message: str, traceback: str = "") -> dict:
    return {"index": index, "status": "error", "error": {"type": kind, "message": message, "traceback": traceback}}


def stub_traceback(caller: int, stub_cell: int, name: str) -> str:
    return (f'  File "<cell {caller}>", line 1, in <module>\n    {name}(1)\n'
            f'  File "<cell {stub_cell}>", line 2, in {name}\n    raise NotImplementedError()\nNotImplementedError')


def notes_of(sources: list[str], results: list[dict]) -> list[str]:
    labels = code_cell_labels([{"cell_type": "code", "source": s} for s in sources])
    cell_notes, run_notes = execution_notes(Report(results), labels, sources)
    return cell_notes + run_notes


@pytest.mark.parametrize("stubs", [("forward",), ("forward", "criterion", "update")])
def test_the_cells_a_stub_stops_are_one_note_that_says_what_to_do(stubs):
    """The untouched release got 12 notes "raised NotImplementedError: (execution went on…)"."""
    sources = [STUB.format(name=name) for name in stubs]
    results = [ok(i) for i in range(len(stubs))]
    callers = []
    for n in range(9):  # nine cells call the stubs in turn, and the 2nd one assigns `loss`
        index = len(sources)
        name = stubs[n % len(stubs)]
        sources.append(f"loss = {name}(1)" if n == 1 else f"{name}(1)")
        results.append(raised(index, "NotImplementedError", "", stub_traceback(index, stubs.index(name), name)))
        callers.append(index)
    sources.append("loss.backward()")  # fails because a stub stopped the cell that assigns `loss`
    results.append(raised(len(sources) - 1, "NameError", "name 'loss' is not defined"))
    notes = notes_of(sources, results)
    assert len(notes) == 1, notes
    (note,) = notes
    assert "still the stub: replace `raise NotImplementedError()` with your code" in note
    assert all(f"`{name}`" in note for name in stubs) and "cell 1 (`def forward(x):`)" in note
    assert f"the {len(callers)} cells that call" in note and "`loss` was never assigned" in note
    assert "NameError" in note and "(execution went on" not in note


def test_a_not_implemented_error_raised_elsewhere_is_not_a_stub():
    """PyTorch raises NotImplementedError for an operator a dtype lacks: that is not the stub."""
    pytorch = '  File "<cell 0>", line 1, in <module>\n    x >> y\nNotImplementedError: "rshift_cpu" not implemented for \'Float\''
    assert stub_raised(pytorch) is None
    assert stub_raised(stub_traceback(1, 0, "forward")) == ("forward", 0)
    notes = notes_of(["x >> y"], [raised(0, "NotImplementedError", '"rshift_cpu" not implemented for \'Float\'', pytorch)])
    assert len(notes) == 1 and "raised `NotImplementedError`" in notes[0] and "stub" not in notes[0]


@pytest.mark.parametrize("kind, messages", [
    ("AttributeError", ["'float' object has no attribute 'item'", "'float' object has no attribute 'backward'",
                        "'NoneType' object has no attribute 'data'"]),
    ("RuntimeError", ["a leaf Variable that requires grad is being used in an in-place operation."]),
])
def test_every_other_exception_type_is_one_note(kind, messages):
    """An `.item()` loss got 10 notes; only NameError cascades were grouped."""
    sources = [f"step{i}()" for i in range(8)]
    results = [raised(i, kind, messages[i % len(messages)]) for i in range(8)]
    notes = notes_of(sources, results)
    assert len(notes) == 1, notes
    assert notes[0].startswith(f"Cell 1 (`step0()`) raised `{kind}`: `{messages[0]}`") and "7 later cells" in notes[0]
    assert all(f"cell {i + 1} (`step{i}()`)" in notes[0] for i in range(1, 8))
    assert all(message in notes[0] for message in messages)  # nothing is lost


def test_different_types_are_different_notes_and_notes_stay_in_notebook_order():
    sources = ["a()", "b()", "c()", "d()"]
    results = [raised(0, "ValueError", "bad"), raised(1, "KeyError", "'k'"), raised(2, "ValueError", "worse"), ok(3)]
    notes = notes_of(sources, results)
    assert [n.split(" raised ")[0] for n in notes] == ["Cell 1 (`a()`)", "Cell 2 (`b()`)"]
    assert "cell 3 (`c()`): `worse`" in notes[0]


def test_a_syntax_error_shows_its_line_and_takes_the_name_errors_it_causes():
    sources = ["def criterion(yhat, y):\n    return ((yhat - y) ** 2).mean(\n", "loss = criterion(1, 2)",
               "loss.backward()", "print(other)"]
    results = [raised(0, "SyntaxError", "'(' was never closed (<cell 0>, line 2)"),
               raised(1, "NameError", "name 'criterion' is not defined"),
               raised(2, "NameError", "name 'loss' is not defined"),
               raised(3, "NameError", "name 'other' is not defined")]
    notes = notes_of(sources, results)
    assert len(notes) == 2, notes  # the syntax error (with both NameErrors it caused), and `other`
    assert "has a syntax error at line 2" in notes[0] and "\n\n        return ((yhat - y) ** 2).mean(" in notes[0]
    assert "2 cells failed with NameError" in notes[0] and "`loss`" in notes[0]
    assert "`other`" in notes[1] and "`criterion`" not in notes[1]


def test_cells_that_ran_past_their_limit_are_one_note_naming_where_they_were_stopped():
    hang = ('  File "<cell 3>", line 1, in <module>\n    update(w, lr)\n'
            '  File "<cell 0>", line 3, in update\n    pass\nStepTimeout: did not finish within 3 s')
    sources = ["def update(w, lr):\n    while True:\n        pass\n", "x = 1", "print(x)", "update(w, lr)",
               "losses = train(update)", "plot(losses)"]
    results = [ok(0), ok(1), ok(2), {"index": 3, "status": "timeout", "error": {"type": "StepTimeout", "traceback": hang}},
               {"index": 4, "status": "timeout", "error": {"type": "StepTimeout", "traceback": hang.replace("<cell 3>", "<cell 4>")}},
               raised(5, "NameError", "name 'losses' is not defined")]
    notes = notes_of(sources, results)
    assert len(notes) == 1, notes
    assert notes[0].startswith("Cell 4 (`update(w, lr)`) ran past its time limit and was interrupted while in `update`")
    assert "1 later cell ran past it too" in notes[0] and "`losses` was never assigned" in notes[0]


def test_names_never_defined_are_told_apart_from_what_their_failure_left_unassigned():
    sources = ["yhat = forward(x, w)", "yhat.sum()", "print(other)"]
    results = [raised(0, "NameError", "name 'forward' is not defined"), raised(1, "NameError", "name 'yhat' is not defined"),
               ok(2)]
    (note,) = notes_of(sources, results)
    assert note.startswith("`forward` is not defined, so 2 cells failed with NameError on it, or on `yhat`, which "
                           "earlier failing cells never assigned"), note


def test_numbers_are_rounded_and_sandbox_text_is_literal():
    """Self-check messages printed 15-digit float lists; a message is the student's text."""
    message = "expected [2, 4, -3], got [2.0000000298023224, 4.000000059604645], 4.500000 <b>`x`</b> [a](javascript:x)"
    notes = notes_of(["_check()"], [raised(0, "AssertionError", message)])
    assert "[2, 4], 4.5 " in notes[0] and "2.0000000298" not in notes[0]
    page = markdown_html(notes[0])
    assert "<b>" not in page and "&lt;b&gt;" in page and "<a " not in page
    assert "<code>" in page


def test_assigned_names_reads_top_level_bindings_only():
    assert assigned_names("a, (b, c) = 1, (2, 3)\nfor i in x: j = 1\nimport torch.nn as nn\nwith f() as g: pass\n"
                          "def h(): k = 1\nclass K: pass\nx += 1\ny: int = 2") == {"a", "b", "c", "i", "nn", "g", "h",
                                                                                  "K", "x", "y"}
    assert assigned_names("def broken(:") == set()


def test_a_budget_spent_between_two_cells_still_names_the_cells_not_run():
    """Execution stops before a cell once the notebook's budget is spent, with nothing to interrupt:
    the cells after it were left unnamed (a loaded machine's wall-clock ceilings make it likely)."""
    sources = ["def forward(x, w):\n    while True:\n        pass\n", "forward(1, 2)", "y = forward(1, 2)", "print(y)"]
    hang = '  File "<cell 1>", line 1, in <module>\n    forward(1, 2)\nStepTimeout: did not finish within 1 s'
    results = [ok(0), {"index": 1, "status": "timeout", "error": {"type": "StepTimeout", "traceback": hang}}]
    notes = "\n".join(notes_of(sources, results))
    assert "used up its time budget after cell 2" in notes and "these cells were not run: cell 3" in notes, notes
