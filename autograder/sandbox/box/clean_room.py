"""A clean room: a fresh sandbox (forked from the zygote, which never ran student code) into
which only the notebook's DEFINITIONS are executed, then one check's probes run.

The notebook's code cells arrive with the spawn request. On the first probe the room replays
them in order, keeping only definitions (autograder/sandbox/box/definitions.py): imports, `def`,
`class`, constants, `%%writefile` (into the room's own folder) and `%run` of a file there.
Modules the submission wrote are imported through the same filter, by a finder placed before
every other; folders the submission can write are taken off `sys.path`. So nothing outside the
bodies of the student's functions runs before a check observes them, and what a body does is
seen by its own check only: the room is killed after the check.
"""
from __future__ import annotations

import ast
import ctypes
import importlib.abc
import importlib.machinery
import linecache
import os
import re
import shlex
import socket
import sys
import time

from IPython.core.inputtransformer2 import TransformerManager

from autograder.probes.pytorch_slope import STEP_FUNCTIONS
from autograder.sandbox.box.cells import GraderShell
from autograder.sandbox.box.definitions import Magic, Scope, definitions
from autograder.sandbox.box.guard import StepTimeout, captured_output, deadline, describe_error
from autograder.sandbox.box.probe_runner import MISSING, run_probe
from autograder.sandbox.shared import protocol
from autograder.sandbox.shared.messages import Event, Op

PR_SET_DUMPABLE = 4
_DEFINES = re.compile(r"^(?:async\s+)?(?:def|class)\s+(\w+)", re.M)


def seal() -> None:
    """Make this process unreadable and unwritable to its siblings of the same uid (no ptrace,
    no /proc/<pid>/mem), and stop imports from folders the submission can write."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    sys.path[:] = [entry for entry in sys.path if _installed(entry)]
    sys.path_importer_cache.clear()


def _installed(entry: str) -> bool:
    """An import folder of the Python installation or of the kit, not one the submission writes."""
    if not entry:
        return False
    real = os.path.realpath(entry) + os.sep
    kit = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    trusted = [os.path.realpath(p) + os.sep for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, kit}]
    writable = [os.path.realpath(p) + os.sep for p in (os.getcwd(), "/tmp", "/dev/shm")]
    return real.startswith(tuple(trusted)) and not real.startswith(tuple(writable))


def _parse_cell(source: str, filename: str) -> ast.Module:
    """A cell's syntax tree; IPython's transformer (about 2 ms a cell) runs only where the cell is
    not valid Python as it stands, which is where magics, `!commands` or `?` help would be."""
    try:
        return ast.parse(source, filename)
    except SyntaxError as error:
        try:
            python = TransformerManager().transform_cell(source)
        except Exception:  # noqa: BLE001  IPython's transformer failing: the parse error is reported
            raise error from None
        if python == source:
            raise
        return ast.parse(python, filename)


def _batches(kept: list) -> list[list]:
    """Consecutive plain definitions compiled together (one compile a cell, not one a statement);
    a magic, or a definition whose decorators are applied lazily, ends a batch."""
    batches, current = [], []
    for item in kept:
        if isinstance(item, Magic):
            batches += [current] if current else []
            batches.append([item])
            current = []
            continue
        current.append(item)
        if item.lazy_decorators:
            batches.append(current)
            current = []
    return batches + ([current] if current else [])


class LazilyDecorated:
    """A function whose notebook-defined decorators are applied on its first call, from inside
    the call a check makes, instead of when the room defines it."""

    def __init__(self, function, decorators: list, namespace: dict):
        self.__wrapped__, self._decorators, self._namespace = function, decorators, namespace
        self.__name__ = getattr(function, "__name__", "function")
        self.__doc__ = getattr(function, "__doc__", None)
        self._applied = None

    def __call__(self, *args, **kwargs):
        if self._applied is None:
            applied = self.__wrapped__
            for code in reversed(self._decorators):
                applied = eval(code, self._namespace)(applied)
            self._applied = applied
        return self._applied(*args, **kwargs)


class CleanRoom:
    """The definitions of one submission, replayed into `namespace`, with what was left out."""

    def __init__(self, root: str):
        self.root = os.path.realpath(root)
        self.namespace: dict = {"__name__": "__main__"}
        self.namespace["get_ipython"] = lambda shell=GraderShell(self.namespace): shell
        self.report: dict = {"broken": [], "errors": [], "dropped": [], "defined": []}
        self._modules = SubmissionModules(self)

    # ------------------------------------------------------------------ running definitions

    def define(self, sources: list[str]) -> None:
        sys.meta_path.insert(0, self._modules)
        scope = Scope()
        for index, source in enumerate(sources):
            filename = f"<cell {index}>"
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
            self._run_source(source, filename, index, scope, self.namespace, source, parse=_parse_cell)
        self.report["defined"] = [name for name in STEP_FUNCTIONS if callable(self.namespace.get(name))]

    def _run_source(self, python: str, filename: str, index, scope: Scope, namespace: dict, raw: str,
                    line_offset: int = 0, parse=ast.parse) -> None:
        try:
            tree = parse(python, filename)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as error:  # null bytes, deep nesting
            self.report["broken"].append({
                "cell": index, "line": (getattr(error, "lineno", None) or 1) + line_offset,
                "message": getattr(error, "msg", None) or f"{type(error).__name__}: {error}"[:200],
                "names": _DEFINES.findall(raw),
            })
            return
        if line_offset:
            ast.increment_lineno(tree, line_offset)
        kept, dropped = definitions(tree, scope)
        for item in dropped:
            self.report["dropped"].append({"cell": index, "line": item.lineno, "what": item.what, "why": item.why, "name": item.name})
        for group in _batches(kept):
            try:
                self._run_items(group, filename, index, scope, namespace)
            except StepTimeout:
                raise
            except BaseException as error:  # the cell stops at its first error, as in the notebook
                self.report["errors"].append({"cell": index, **describe_error(error)})
                return

    def _run_items(self, items: list, filename: str, index, scope: Scope, namespace: dict) -> None:
        item = items[-1]
        if isinstance(item, Magic):
            self._magic(item, filename, index, scope, namespace)
            return
        module = ast.Module([i.statement for i in items], [])  # every node kept or made has its location
        exec(compile(module, filename, "exec"), namespace)
        if item.lazy_decorators:
            codes = [compile(ast.Expression(d), filename, "eval") for d in item.lazy_decorators]
            namespace[item.name] = LazilyDecorated(namespace[item.name], codes, namespace)

    def _magic(self, magic: Magic, filename: str, index, scope: Scope, namespace: dict) -> None:
        if magic.kind == "body":  # %%time, %%capture: the body is ordinary code of this cell
            self._run_source(magic.body, filename, index, scope, namespace, magic.body, line_offset=magic.lineno)
        elif magic.kind == "writefile":
            words = shlex.split(magic.line)
            append = any(w in ("-a", "--append") for w in words)
            paths = [w for w in words if not w.startswith("-")]
            target = self.inside(paths[0]) if paths else None
            if target is not None:
                with open(target, "a" if append else "w", encoding="utf-8") as handle:
                    handle.write(magic.body)
        elif magic.kind == "run":
            paths = [w for w in shlex.split(magic.line) if not w.startswith("-")]
            target = self.inside(paths[0]) if paths else None
            if target is None or not os.path.isfile(target):
                raise FileNotFoundError(f"%run: no file {paths[0] if paths else ''!r} in the submission")
            ran: dict = {"__name__": "__main__", "__file__": os.path.basename(target)}
            self._run_file(target, ran)
            namespace.update({k: v for k, v in ran.items() if not k.startswith("__")})

    def _run_file(self, path: str, namespace: dict) -> None:
        with open(path, encoding="utf-8") as handle:
            source = handle.read()
        filename = os.path.relpath(path, self.root)
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        self._run_source(source, filename, filename, Scope(), namespace, source)

    def inside(self, path: str) -> str | None:
        """`path` resolved inside the room's folder, or None if it points outside."""
        resolved = os.path.realpath(os.path.join(self.root, path))
        return resolved if resolved.startswith(self.root + os.sep) else None

    # ------------------------------------------------------------------ answering the check

    def why_missing(self, names: list[str]) -> dict[str, dict]:
        reasons = {}
        for name in names:
            broken = next((b for b in self.report["broken"] if name in b["names"]), None)
            dropped = next((d for d in self.report["dropped"] if d["name"] == name), None)
            found, kind, message = (broken, "syntax_error", broken["message"]) if broken else (
                (dropped, "refused", dropped["why"]) if dropped else (None, None, None))
            if found:
                where = found["cell"]
                reasons[name] = {"kind": kind, "line": found["line"], "message": message,
                                 "cell": where if isinstance(where, int) else -1,
                                 "file": where if isinstance(where, str) else ""}
        return reasons


class SubmissionModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports of modules written by the submission (a `%%writefile steps.py` cell, files
    submitted beside the notebook), loaded through the definitions filter."""

    def __init__(self, room: CleanRoom):
        self.room = room

    def find_spec(self, fullname, path=None, target=None):
        parts = fullname.split(".")
        if len(parts) > 1 and getattr(sys.modules.get(parts[0]), "__loader__", None) is not self:
            return None  # a submodule of an installed package: not the submission's
        base = os.path.join(self.room.root, *parts)
        if os.path.isfile(base + ".py"):
            return importlib.machinery.ModuleSpec(fullname, self, origin=base + ".py")
        if os.path.isfile(os.path.join(base, "__init__.py")):
            spec = importlib.machinery.ModuleSpec(fullname, self, origin=os.path.join(base, "__init__.py"), is_package=True)
            spec.submodule_search_locations = [base]
            return spec
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        self.room._run_file(module.__spec__.origin, module.__dict__)


def serve_room(sock: socket.socket, room_request: dict, room: CleanRoom | None = None) -> None:
    """Answer one check's probes in this room; returns when the grader closes it. `room`: the
    definitions already made (a child of a template, room_template.py); else made on the first
    probe."""
    me = os.getpid()
    while True:
        message = protocol.recv_message(sock)
        if os.getpid() != me:
            os._exit(0)
        if message.get("op") != Op.PROBE:
            return
        timeout_s = float(message["timeout_s"])
        started = time.monotonic()
        if room is None:
            room = CleanRoom(os.getcwd())
            try:  # outside the deadline's block: its repeated alarm may fire as the block ends
                with captured_output(), deadline(timeout_s):
                    room.define(list(room_request.get("cells", [])))
            except StepTimeout:
                room.report["errors"].append({"cell": None, "type": "Timeout", "message": "defining took too long", "traceback": ""})
        left = max(0.1, timeout_s - (time.monotonic() - started))
        reply = run_probe(room.namespace, message["probe"], message["inputs"], message["device"], left)
        if os.getpid() != me:
            os._exit(0)
        if reply.get("status") == MISSING:
            reply["why_missing"] = room.why_missing(reply.get("missing", []))
        reply["defined"] = room.report["defined"]
        protocol.send_message(sock, {"event": Event.PROBE, **reply})
