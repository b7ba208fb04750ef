"""Executing a notebook's code cells the way nbgrader does: in order, in one namespace,
continuing after a cell that fails, interrupting a cell that runs past its time limit, and
stopping once the whole notebook's budget is spent (the running cell is interrupted, the rest
are not run; the grader names them).

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

# The message of a cell interrupted because the whole notebook's budget ran out.
BUDGET_SPENT = "the notebook's time budget ran out"


def run_python(source: str, filename: str, namespace: dict, line_offset: int = 0) -> None:
    """Python code as the notebook runs it: all of it (magics.RunPython)."""
    tree = ast.parse(source, filename)
    exec(compile(ast.increment_lineno(tree, line_offset), filename, "exec", dont_inherit=True), namespace)


def _compile_cell(index: int, source: str):
    filename = f"<cell {index}>"
    # Registering the source lets tracebacks show the student's lines (a magic's body keeps its lines).
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return compile(parse_cell(source, filename)[1], filename, "exec", dont_inherit=True)


def execute_cells(sources: list[str], namespace: dict, cell_timeout_s: float,
                  budget_s: float | None = None) -> Iterator[dict]:
    """Run each source in `namespace`; yield one plain-data result per cell run. Once
    `budget_s` (the whole notebook's) is spent, the running cell is interrupted and no later
    cell runs: the results stop there."""
    namespace.setdefault("__name__", "__main__")
    shell = Shell(namespace, os.getcwd(), run_python)
    namespace["get_ipython"] = lambda: shell
    if "" not in sys.path:  # Jupyter imports from the notebook's folder (a %%writefile'd module)
        sys.path.insert(0, "")
    end = time.monotonic() + budget_s if budget_s else None
    for index, source in enumerate(sources):
        left = end - time.monotonic() if end is not None else None
        if left is not None and left <= 0:
            return
        limit_s, by_budget = cell_timeout_s, False
        if left is not None and left < cell_timeout_s:
            limit_s, by_budget = left, True
        result = {"index": index, "status": "ok"}
        shell.cell = (f"<cell {index}>", 0)
        with captured_output() as output:
            try:
                code = _compile_cell(index, source)
                with deadline(limit_s):
                    exec(code, namespace)
            except StepTimeout as error:
                result.update(status="timeout", error=describe_error(error))
                if by_budget:
                    result["error"]["message"] = f"{BUDGET_SPENT} ({budget_s:g} s)"
            except BaseException as error:  # nbgrader goes on after any failing cell, SystemExit too
                result.update(status="error", error=describe_error(error))
        _close_figures()
        result["output"] = output.getvalue()
        yield result


def _close_figures():
    """Figures are never shown while grading; closing them keeps memory flat."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")
