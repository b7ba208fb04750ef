"""Executing a notebook's code cells the way nbgrader does: in order, in one namespace,
continuing after a cell that fails, interrupting a cell that runs past its time limit, and
stopping once the whole notebook's budget is spent (the running cell is interrupted, the rest
are not run; the grader names them). The limits count CPU time, each with a wall-clock ceiling
(shared/clocks.py), so the machine's load never decides which cells ran.

IPython syntax (magics, `!commands`) is what magics.py makes of it, the same for the clean rooms:
`%%time` and `%%capture` run their body, `%%writefile` writes a file in the sandbox's own folder,
`%run` runs a file from it, installers are refused and other magics skipped, with a note.
"""
from __future__ import annotations

import ast
import linecache
import os
import sys
import time
from collections.abc import Iterator

from autograder.sandbox.box.guard import StepTimeout, captured_output, deadline, describe_error
from autograder.sandbox.box.magics import Shell, parse_cell
from autograder.sandbox.shared.clocks import WALL_FACTOR, cpu_seconds, wall_ceiling_s

# The message of a cell interrupted because the whole notebook's budget ran out.
BUDGET_SPENT = "the notebook's time budget ran out"
# A timed-out cell uses a little more than its limit (the interrupt is taken between bytecodes).
BUDGET_MARGIN = 0.1


def run_python(source: str, filename: str, namespace: dict, line_offset: int = 0) -> None:
    """Python code as the notebook runs it: all of it (magics.RunPython)."""
    tree = ast.parse(source, filename)
    exec(compile(ast.increment_lineno(tree, line_offset), filename, "exec", dont_inherit=True), namespace)


def _compile_cell(index: int, source: str):
    filename = f"<cell {index}>"
    # Registering the source lets tracebacks show the student's lines (a magic's body keeps its lines).
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return compile(parse_cell(source, filename)[1], filename, "exec", dont_inherit=True)


MAX_FIGURES = 50  # figures recorded per cell; the lesson's busiest cell shows 7


class ShownFigures:
    """The figures a cell showed, as Jupyter's inline backend shows them: at `plt.show()` (which
    then closes them) and, for any still open, when the cell ends. Each is kept as the text form
    Jupyter gives a figure ("<Figure size 600x400 with 1 Axes>") with the offset in the cell's
    output where it appeared; figures are not drawn while grading (drawing the lesson's nine
    would cost several times the rest of its grading)."""

    def __init__(self):
        self.sink, self.shown = None, []
        pyplot = sys.modules.get("matplotlib.pyplot")  # imported by the zygote
        if pyplot is not None:
            def show(*args, **kwargs) -> None:  # a function: pyplot sets attributes on its `show`
                self.show()

            pyplot.show = show

    def start(self, sink) -> None:
        self.sink, self.shown = sink, []

    def show(self) -> None:
        pyplot = sys.modules["matplotlib.pyplot"]
        for number in pyplot.get_fignums():
            if len(self.shown) < MAX_FIGURES:
                try:
                    figure = pyplot.figure(number)
                    width, height = (round(v) for v in figure.get_size_inches() * figure.dpi)
                    self.shown.append([self.sink.tell(), f"<Figure size {width}x{height} with {len(figure.axes)} Axes>"])
                except Exception:  # a figure the notebook broke: nothing to show
                    pass
        pyplot.close("all")


def execute_cells(sources: list[str], namespace: dict, cell_timeout_s: float,
                  budget_s: float | None = None, wall_factor: float = WALL_FACTOR) -> Iterator[dict]:
    """Run each source in `namespace`; yield one plain-data result per cell run. Each cell may use
    `cell_timeout_s` of CPU time; once `budget_s` (the whole notebook's CPU time) is spent, the
    running cell is interrupted and no later cell runs: the results stop there. Each limit has a
    wall-clock ceiling `wall_factor` times longer (shared/clocks.py)."""
    namespace.setdefault("__name__", "__main__")
    shell = Shell(namespace, os.getcwd(), run_python)
    namespace["get_ipython"] = lambda: shell
    figures = ShownFigures()
    if "" not in sys.path:  # Jupyter imports from the notebook's folder (a %%writefile'd module)
        sys.path.insert(0, "")
    cpu_start, wall_start = cpu_seconds(), time.monotonic()
    for index, source in enumerate(sources):
        limit_s, wall_s, by_budget = cell_timeout_s, wall_ceiling_s(cell_timeout_s, wall_factor), False
        if budget_s:
            cpu_left = budget_s - (cpu_seconds() - cpu_start)
            wall_left = wall_ceiling_s(budget_s, wall_factor) - (time.monotonic() - wall_start)
            if cpu_left <= 0 or wall_left <= 0:
                return
            # A cell whose own limit would leave (almost) nothing of the budget is the budget's: its
            # timeout then says so, and the cells after it are named as not run.
            if cpu_left <= limit_s * (1 + BUDGET_MARGIN):
                limit_s, by_budget = min(limit_s, cpu_left), True
            if wall_left <= wall_s * (1 + BUDGET_MARGIN):
                wall_s, by_budget = min(wall_s, wall_left), True
        result = {"index": index, "status": "ok"}
        shell.cell = (f"<cell {index}>", 0)
        with captured_output() as output:
            figures.start(output)
            try:
                code = _compile_cell(index, source)
                with deadline(limit_s, wall_s):
                    exec(code, namespace)
            except StepTimeout as error:
                result.update(status="timeout", error=describe_error(error))
                if by_budget:
                    result["error"]["message"] = f"{BUDGET_SPENT} ({budget_s:g} s)"
            except BaseException as error:  # nbgrader goes on after any failing cell, SystemExit too
                result.update(status="error", error=describe_error(error))
            try:
                figures.show()  # what the cell left open, as Jupyter shows it at the cell's end
            except BaseException:  # never the cell's fault: closed below, as ever
                pass
        _close_figures()  # closing them keeps memory flat
        result["output"] = output.getvalue()
        if figures.shown:
            result["figures"] = figures.shown
        yield result


def _close_figures():
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")
