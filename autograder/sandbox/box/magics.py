"""The IPython features the kit supports, implemented once: the notebook's box (cells.py) and the
clean rooms (clean_room.py) both use this `Shell` as the notebook's `get_ipython()`.

A cell that is not plain Python (a magic, a `!command`, `obj?`) is turned into Python by
IPython's own transformer, which writes `get_ipython().run_cell_magic(...)` and friends. What the
shell then does, as Jupyter would:
  - `%%writefile [-a] NAME`: writes (or appends to) NAME in the notebook's own folder, nowhere else;
  - `%run [-i] [-n] FILE` runs FILE from that folder as `__main__` in a fresh namespace whose
    names then join the notebook's (`-i`: in the notebook's own namespace; `-n`: not as
    `__main__`);
  - `%%time`, `%%capture`, `%%timeit`: their body is ordinary code of the cell (run once);
  - `%pip`, `!pip` and other installers: refused with a note (grading is offline);
  - `%matplotlib`: nothing to do; every other magic and shell command: skipped with a note.
How Python code is run is the caller's: the box executes it (`exec`), a clean room replays only
its definitions. So `%run` and `%%time` mean the same in both, and a room never runs what its
filter leaves out.
"""
from __future__ import annotations

import ast
import builtins
import linecache
import os
import shlex
from collections.abc import Callable

from IPython.core.inputtransformer2 import TransformerManager

BODY_MAGICS = frozenset({"time", "capture", "timeit"})
SILENT_MAGICS = frozenset({"matplotlib"})
INSTALLERS = ("pip", "conda", "mamba", "uv")
REFUSED_INSTALL = ("[grader: `{command}` refused: packages cannot be installed while grading; "
                   "only the course's packages are available]")
# The shell's methods a transformed cell calls; a clean room dispatches on the same names.
SHELL_CALLS = frozenset({"run_line_magic", "run_cell_magic", "system", "getoutput"})

# How the caller runs Python: (source, filename, namespace, first line's number less one).
RunPython = Callable[[str, str, dict, int], None]


def parse_cell(source: str, filename: str) -> tuple[str, ast.Module]:
    """A cell's Python text and syntax tree. IPython's transformer (about 2 ms a cell) runs only
    where the cell is not valid Python as it stands; its SyntaxError is the cell's own otherwise."""
    try:
        return source, ast.parse(source, filename)
    except SyntaxError as error:
        try:
            python = TransformerManager().transform_cell(source)
        except Exception:  # noqa: BLE001  IPython's transformer failing: the parse error is reported
            raise error from None
        if python == source:
            raise
        return python, ast.parse(python, filename)


def shell_call(statement: ast.stmt) -> tuple[str, list[str]] | None:
    """`get_ipython().run_cell_magic('writefile', 'steps.py', body)` and its kind, as IPython's
    transformer writes them: (method, its string arguments), or None for any other statement."""
    if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
        return None
    call = statement.value
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr in SHELL_CALLS and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name) and func.value.func.id == "get_ipython"
            and not func.value.args and not call.keywords):
        return None
    if not all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in call.args):
        return None
    return func.attr, [a.value for a in call.args]


def inside(root: str, path: str) -> str | None:
    """`path` resolved inside the folder `root`, or None where it leads out of it."""
    root = os.path.realpath(root)
    resolved = os.path.realpath(os.path.join(root, path))
    return resolved if resolved.startswith(root + os.sep) else None


def _run_options(line: str) -> tuple[set[str], str | None]:
    """`%run`'s options and its file (arguments after the file are the script's own)."""
    options, path = set(), None
    for word in shlex.split(line):
        if path is None and word.startswith("-"):
            options.add(word)
        elif path is None:
            path = word
    return options, path


class Shell:
    """The `get_ipython()` of a graded notebook. `run_python` runs Python code (see RunPython);
    `root` is the notebook's folder; `say` prints the shell's notes into the cell's output."""

    def __init__(self, namespace: dict, root: str, run_python: RunPython, say: Callable[[str], None] = print):
        self.user_ns, self.root, self.run_python, self.say = namespace, root, run_python, say
        self.cell = ("<cell>", 0)  # the running cell's filename; a cell magic's body starts on its line 2

    def run_line_magic(self, name, line, _stack_depth=1):
        if name in INSTALLERS:
            self.say(REFUSED_INSTALL.format(command=f"%{name} {line}".strip()))
        elif name == "run":
            self.run_file(line)
        elif name not in SILENT_MAGICS:
            self.say(f"[grader: %{name} skipped]")

    def run_cell_magic(self, name, line, cell):
        if name in BODY_MAGICS:
            filename, offset = self.cell
            self.run_python(cell, filename, self.user_ns, offset + 1)
        elif name == "writefile":
            self.write_file(line, cell)
        else:
            self.say(f"[grader: %%{name} cell skipped]")

    def write_file(self, line: str, text: str) -> None:
        words = shlex.split(line)
        paths = [w for w in words if not w.startswith("-")]
        target = inside(self.root, paths[0]) if paths else None
        if target is None:
            self.say(f"[grader: %%writefile {line} refused: only files in the notebook's own folder can be written]")
            return
        append = any(w in ("-a", "--append") for w in words)
        with open(target, "a" if append else "w", encoding="utf-8") as handle:
            handle.write(text)
        self.say(f"{'Appending to' if append else 'Writing'} {paths[0]}")

    def run_file(self, line: str) -> None:
        """`%run FILE` as IPython does it: FILE runs as `__main__` in a fresh namespace whose
        names then join the notebook's; `-i` runs it in the notebook's namespace."""
        options, path = _run_options(line)
        target = inside(self.root, path) if path else None
        if target is None or not os.path.isfile(target):
            raise FileNotFoundError(f"%run: no file {path or ''!r} in the submission's folder")
        with open(target, encoding="utf-8") as handle:
            source = handle.read()
        filename = os.path.relpath(target, os.path.realpath(self.root))
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        if "-i" in options:
            self.run_python(source, filename, self.user_ns, 0)
            return
        name = os.path.splitext(os.path.basename(target))[0] if "-n" in options else "__main__"
        ran = {"__name__": name, "__file__": filename, "__builtins__": builtins}
        self.run_python(source, filename, ran, 0)
        self.user_ns.update({k: v for k, v in ran.items() if not k.startswith("__")})

    def system(self, command):
        if command.split()[:1] and command.split()[0] in INSTALLERS:
            self.say(REFUSED_INSTALL.format(command=f"!{command}"))
        else:
            self.say(f"[grader: !{command} skipped]")

    getoutput = system

    def __getattr__(self, name):
        raise AttributeError(f"get_ipython().{name} is not available while grading")
