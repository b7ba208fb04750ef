"""Executing a notebook's code cells the way nbgrader does: in order, in one namespace,
continuing after a cell that fails, interrupting a cell that runs past its time limit.

IPython syntax (magics, `!commands`) is translated with IPython's own transformer; the few
magics that matter are honoured (`%%time` and `%%capture` run their body), the rest are skipped
with a note in the cell's output, since the grader is not a Jupyter kernel.
"""
from __future__ import annotations

import linecache
from collections.abc import Iterator

from IPython.core.inputtransformer2 import TransformerManager

from autograder.sandbox.guard import StepTimeout, captured_output, deadline, describe_error

_BODY_MAGICS = {"time", "capture", "timeit"}


class GraderShell:
    """The `get_ipython()` a notebook sees while it is graded."""

    def __init__(self, namespace: dict):
        self.user_ns = namespace

    def run_line_magic(self, name, line, _stack_depth=1):
        if name != "matplotlib":
            print(f"[grader: %{name} skipped]")

    def run_cell_magic(self, name, line, cell):
        if name in _BODY_MAGICS:
            exec(compile(cell, "<cell magic>", "exec"), self.user_ns)
        else:
            print(f"[grader: %%{name} cell skipped]")

    def system(self, command):
        print(f"[grader: !{command} skipped]")

    getoutput = system

    def __getattr__(self, name):
        raise AttributeError(f"get_ipython().{name} is not available while grading")


def _compile_cell(index: int, source: str):
    filename = f"<cell {index}>"
    python = TransformerManager().transform_cell(source)
    # Registering the source lets tracebacks show the student's lines.
    linecache.cache[filename] = (len(python), None, python.splitlines(True), filename)
    return compile(python, filename, "exec")


def execute_cells(sources: list[str], namespace: dict, cell_timeout_s: float) -> Iterator[dict]:
    """Run each source in `namespace`; yield one plain-data result per cell."""
    namespace.setdefault("__name__", "__main__")
    namespace["get_ipython"] = lambda: shell
    shell = GraderShell(namespace)
    for index, source in enumerate(sources):
        result = {"index": index, "status": "ok"}
        with captured_output() as output:
            try:
                code = _compile_cell(index, source)
                with deadline(cell_timeout_s):
                    exec(code, namespace)
            except StepTimeout as error:
                result.update(status="timeout", error=describe_error(error))
            except BaseException as error:  # nbgrader goes on after any failing cell, SystemExit too
                result.update(status="error", error=describe_error(error))
        _close_figures()
        result["output"] = output.getvalue()
        yield result


def _close_figures():
    """Figures are never shown while grading; closing them keeps memory flat."""
    import sys

    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")
