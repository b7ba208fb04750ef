"""Executing a notebook's code cells the way nbgrader does: in order, in one namespace,
continuing after a cell that fails, interrupting a cell that runs past its time limit, and
stopping once the whole notebook's budget is spent (the running cell is interrupted, the rest
are not run; the grader names them).

IPython syntax (magics, `!commands`) is translated with IPython's own transformer; the magics
that matter for Python code are honoured as Jupyter does: `%%time` and `%%capture` run their
body, `%%writefile` writes a file in the sandbox's own folder, `%run` runs a file from it.
Installing packages (`%pip`, `!pip`) is refused with a note; other magics and shell commands
are skipped with a note in the cell's output, since the grader is not a Jupyter kernel.
"""
from __future__ import annotations

import linecache
import os
import shlex
import sys
import time
from collections.abc import Iterator

from IPython.core.inputtransformer2 import TransformerManager

from autograder.sandbox.box.guard import StepTimeout, captured_output, deadline, describe_error

_BODY_MAGICS = {"time", "capture", "timeit"}
# The message of a cell interrupted because the whole notebook's budget ran out.
BUDGET_SPENT = "the notebook's time budget ran out"
_INSTALLERS = ("pip", "conda", "mamba", "uv")
REFUSED_INSTALL = ("[grader: `{command}` refused: packages cannot be installed while grading; "
                   "only the course's packages are available]")


def inside_cwd(path: str) -> str | None:
    """`path` resolved inside the current folder (the sandbox's own), or None if it leaves it."""
    root = os.path.realpath(os.getcwd())
    resolved = os.path.realpath(os.path.join(root, path))
    return resolved if resolved.startswith(root + os.sep) else None


class GraderShell:
    """The `get_ipython()` a notebook sees while it is graded."""

    def __init__(self, namespace: dict):
        self.user_ns = namespace

    def run_line_magic(self, name, line, _stack_depth=1):
        if name in _INSTALLERS:
            print(REFUSED_INSTALL.format(command=f"%{name} {line}".strip()))
        elif name == "run":
            self._run_file(line)
        elif name != "matplotlib":
            print(f"[grader: %{name} skipped]")

    def run_cell_magic(self, name, line, cell):
        if name in _BODY_MAGICS:
            exec(compile(cell, "<cell magic>", "exec"), self.user_ns)
        elif name == "writefile":
            self._write_file(line, cell)
        else:
            print(f"[grader: %%{name} cell skipped]")

    def _write_file(self, line: str, text: str) -> None:
        words = shlex.split(line)
        paths = [w for w in words if not w.startswith("-")]
        target = inside_cwd(paths[0]) if paths else None
        if target is None:
            print(f"[grader: %%writefile {line} refused: only files in the notebook's own folder can be written]")
            return
        append = any(w in ("-a", "--append") for w in words)
        with open(target, "a" if append else "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"{'Appending to' if append else 'Writing'} {paths[0]}")

    def _run_file(self, line: str) -> None:
        """`%run file.py` as IPython does: the file runs as __main__ in a fresh namespace whose
        names then join the notebook's (`-i` runs it in the notebook's namespace)."""
        words = shlex.split(line)
        paths = [w for w in words if not w.startswith("-")]
        target = inside_cwd(paths[0]) if paths else None
        if target is None or not os.path.isfile(target):
            raise FileNotFoundError(f"%run: no file {paths[0] if paths else ''!r} in the submission's folder")
        with open(target, encoding="utf-8") as handle:
            source = handle.read()
        filename = os.path.basename(target)
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        code = compile(source, filename, "exec")
        if "-i" in words:
            exec(code, self.user_ns)
            return
        ran = {"__name__": "__main__", "__file__": filename, "__builtins__": __builtins__}
        exec(code, ran)
        self.user_ns.update({k: v for k, v in ran.items() if not k.startswith("__")})

    def system(self, command):
        if command.split()[:1] and command.split()[0] in _INSTALLERS:
            print(REFUSED_INSTALL.format(command=f"!{command}"))
        else:
            print(f"[grader: !{command} skipped]")

    getoutput = system

    def __getattr__(self, name):
        raise AttributeError(f"get_ipython().{name} is not available while grading")


def _compile_cell(index: int, source: str):
    filename = f"<cell {index}>"
    try:  # plain Python, as most cells are, compiles as it is; IPython's transformer tokenises each cell
        code, python = compile(source, filename, "exec"), source
    except SyntaxError:  # magics, `!commands`, `obj?`, an indented cell: what IPython makes of them
        python = TransformerManager().transform_cell(source)
        code = compile(python, filename, "exec")
    # Registering the source lets tracebacks show the student's lines.
    linecache.cache[filename] = (len(python), None, python.splitlines(True), filename)
    return code


def execute_cells(sources: list[str], namespace: dict, cell_timeout_s: float,
                  budget_s: float | None = None) -> Iterator[dict]:
    """Run each source in `namespace`; yield one plain-data result per cell run. Once
    `budget_s` (the whole notebook's) is spent, the running cell is interrupted and no later
    cell runs: the results stop there."""
    namespace.setdefault("__name__", "__main__")
    namespace["get_ipython"] = lambda: shell
    shell = GraderShell(namespace)
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
