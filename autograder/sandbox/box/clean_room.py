"""A clean room: a fresh sandbox (forked from the zygote, which never ran student code) into
which only the notebook's DEFINITIONS are made, then one check's probes run.

The notebook's code cells arrive with the spawn request. The room replays them in order, each
statement judged and made by definitions.py against the namespace the statements before it
made; magics go through the same shell as in the notebook's box (magics.py), with this replay
as the way Python code runs: `%%writefile` writes into the room's own folder, `%run` replays a
file from it, `%%time` replays its body. Modules the submission wrote or submitted are imported
through the same replay, by a finder placed before every other, and are visible only to the
submission's own import statements (an installed module never sees them, and never loses its
name to one); folders the submission can write are taken off `sys.path`. So nothing outside the
bodies of the student's functions runs before a check observes them, and what a body does is
seen by its own check only: the room is killed after the check.

What the replay leaves out, or where a definition raises (an import that fails), is kept with
its cell, line and statement, so that a step the checks cannot find is explained (`why_missing`).
"""
from __future__ import annotations

import ast
import contextlib
import ctypes
import errno
import importlib.abc
import importlib.machinery
import linecache
import os
import re
import socket
import sys

from autograder.probes.pytorch_slope import STEP_FUNCTIONS
from autograder.sandbox.box import leftovers
from autograder.sandbox.box.definitions import NESTED, ShellCall, bound_names, nested_definitions, prepare
from autograder.sandbox.box.guard import StepTimeout, captured_output, deadline, describe_error
from autograder.sandbox.box.magics import Shell, parse_cell
from autograder.sandbox.box.probe_runner import MISSING, run_probe
from autograder.sandbox.box.safe_values import VALUES, Dropped, Evaluator, Refused
from autograder.sandbox.shared import protocol
from autograder.sandbox.shared.clocks import wall_ceiling_s, wall_factor
from autograder.sandbox.shared.messages import Event, Op

PR_SET_DUMPABLE = 4
_DEFINES = re.compile(r"^(?:async\s+)?(?:def|class)\s+(\w+)", re.M)
_CELL = re.compile(r"^<cell (\d+)>$")
STATEMENT_CHARS = 80


def seal() -> None:
    """Make this process unreadable and unwritable to its siblings of the same uid (no ptrace,
    no /proc/<pid>/mem), and stop imports from folders the submission can write."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    sys.path[:] = importable_entries(sys.path, os.getcwd())
    sys.path_importer_cache.clear()


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def writable(folder: str) -> bool:
    """Whether this process may create a file in `folder`: an unnamed one (O_TMPFILE, gone when
    closed), so the answer is the kernel's after every check it makes (permissions, a read-only
    mount, Landlock, which access(2) does not consult)."""
    try:
        os.close(os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o600))
        return True
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return False
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            return os.path.isfile(folder) and os.access(folder, os.W_OK)  # a zip of the installation: its own check
        return os.access(folder, os.W_OK)  # a file system without unnamed files: the permissions


SCRATCH_FOLDERS = ("/tmp", "/dev/shm")


def importable_entries(entries: list[str], submission: str) -> list[str]:
    """The `sys.path` entries a room keeps: never the submission's own folder, a relative entry or
    one that does not exist, nor one in a scratch folder (/tmp, /dev/shm, $TMPDIR) that the
    submission can write; the rest, wherever it is (a kit or venv under /tmp that the box sees
    read-only or may not write, a symlinked venv, a venv outside the kit, folders a .pth adds).
    Outside the scratch folders a box writes nothing but its own folder, as its confinement
    level promises; where it could (unconfined), it could change the installation itself."""
    own = os.path.realpath(submission)
    scratch = [os.path.realpath(f) for f in (*SCRATCH_FOLDERS, os.environ.get("TMPDIR", "")) if f]
    kept = []
    for entry in entries:
        if not entry or not os.path.isabs(entry) or not os.path.exists(entry):
            continue
        real, named = os.path.realpath(entry), os.path.abspath(entry)
        if _under(real, own) or _under(named, own):
            continue
        if any(_under(real, f) or _under(named, f) for f in scratch) and writable(entry):
            continue
        kept.append(entry)
    return kept


class LazilyDecorated:
    """A function whose decorators (not on the allow-list) are applied on its first call, from
    inside the call a check makes, instead of when the room defines it."""

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


def _where(filename: str) -> int | str:
    """A code cell's index, or a submitted file's name."""
    match = _CELL.match(filename)
    return int(match.group(1)) if match else filename


def _split_imports(statements: list[ast.stmt]) -> list[ast.stmt]:
    """`import a, b` as two statements: each import is then seen by its own module's rules."""
    split = []
    for statement in statements:
        if isinstance(statement, ast.Import) and len(statement.names) > 1:
            split += [ast.copy_location(ast.Import([alias]), statement) for alias in statement.names]
        else:
            split.append(statement)
    return split


class CleanRoom:
    """The definitions of one submission, replayed into `namespace`, with what was left out."""

    def __init__(self, root: str):
        self.root = os.path.realpath(root)
        self.namespace: dict = {"__name__": "__main__"}
        self.shell = Shell(self.namespace, self.root, self._replay)
        self.namespace["get_ipython"] = lambda shell=self.shell: shell
        self.report: dict = {"broken": [], "errors": [], "dropped": [], "defined": []}
        self.left_out: dict[str, str] = {}  # name -> where the statement that would bind it was left out
        self._modules = SubmissionModules(self)

    # ------------------------------------------------------------------ making the definitions

    def define(self, sources: list[str]) -> None:
        sys.meta_path.insert(0, self._modules)
        for index, source in enumerate(sources):
            filename = f"<cell {index}>"
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
            self.shell.cell = (filename, 0)
            try:
                self._replay(source, filename, self.namespace)
            except StepTimeout:
                raise
            except BaseException:  # noqa: BLE001  reported where it was raised; the next cell runs, as in the notebook
                pass
        self._modules.publish()
        self.report["defined"] = [name for name in STEP_FUNCTIONS if callable(self.namespace.get(name))]

    def _replay(self, source: str, filename: str, namespace: dict, line_offset: int = 0) -> None:
        """Python code as a clean room runs it (magics.RunPython): its definitions only. A
        definition that raises stops the code, as in the notebook: reported, then raised on."""
        where = _where(filename)
        try:
            python, tree = parse_cell(source, filename)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as error:  # null bytes, deep nesting
            self.report["broken"].append({
                "cell": where, "line": (getattr(error, "lineno", None) or 1) + line_offset,
                "message": getattr(error, "msg", None) or f"{type(error).__name__}: {error}"[:200],
                "names": _DEFINES.findall(source),
            })
            return
        if line_offset:  # a walk of the whole tree: only for a magic's body
            ast.increment_lineno(tree, line_offset)
        lines = python.splitlines()
        evaluator = Evaluator(namespace, self.left_out, filename=filename)
        statements = _split_imports(tree.body)
        for position, statement in enumerate(statements):
            try:
                with self._modules.visible_to(statement):
                    self._make(statement, evaluator, filename, namespace)
            except Refused as refused:
                self._left_out(statement, refused.reason, where)
            except StepTimeout:
                raise
            except BaseException as error:
                shown = lines[statement.lineno - line_offset - 1].strip() if 0 < statement.lineno - line_offset <= len(lines) else ""
                rest = [name for later in statements[position:] for name in bound_names(later)]
                self.report["errors"].append({"cell": where, "line": statement.lineno, "statement": shown[:STATEMENT_CHARS],
                                              "names": rest, **describe_error(error)})
                raise

    def _make(self, statement: ast.stmt, evaluator: Evaluator, filename: str, namespace: dict) -> None:
        try:
            item = prepare(statement, evaluator)
        except Dropped as error:  # it uses a name that an earlier refusal left out
            raise Refused(str(error)) from None
        if item is None:
            return
        if isinstance(item, ShellCall):
            getattr(self.shell, item.method)(*item.args)
            return
        if item.bindings is not None:
            namespace.update(item.bindings)
        elif item.star:
            public: dict = {}
            exec(compile(ast.Module([item.statement], []), filename, "exec", dont_inherit=True), public)
            namespace.update({k: v for k, v in public.items() if not k.startswith("__")})
        else:
            namespace[VALUES] = item.values
            try:
                exec(compile(ast.Module([item.statement], []), filename, "exec", dont_inherit=True), namespace)
            finally:
                namespace.pop(VALUES, None)
        for name in bound_names(statement):
            self.left_out.pop(name, None)
        if item.lazy_decorators:
            codes = [compile(ast.Expression(d), filename, "eval", dont_inherit=True) for d in item.lazy_decorators]
            namespace[item.name] = LazilyDecorated(namespace[item.name], codes, namespace)

    def _left_out(self, statement: ast.stmt, why: str, where) -> None:
        names = bound_names(statement)
        place = f"<cell {where}>" if isinstance(where, int) else f"`{where}`"
        for name in names:  # a later statement that uses it is left out too, and says why
            self.left_out[name] = f"line {statement.lineno} of {place}"
        named = isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        # The statement's kind, not its text: unparsing every dropped line cost ~1 ms each.
        self.report["dropped"].append({"cell": where, "line": statement.lineno, "what": type(statement).__name__,
                                       "why": why, "name": statement.name if named else None,
                                       "names": names})
        for nested in nested_definitions(statement):
            self.report["dropped"].append({"cell": where, "line": nested.lineno, "what": type(nested).__name__,
                                           "why": NESTED, "name": nested.name, "names": [nested.name]})

    # ------------------------------------------------------------------ answering the check

    def why_missing(self, names: list[str]) -> dict[str, dict]:
        """For each step the checks cannot find: the syntax error of its cell, the refusal that
        left its definition out, or the error that stopped its cell before it was defined."""
        reasons = {}
        for name in names:
            broken = next((b for b in self.report["broken"] if name in b["names"]), None)
            dropped = next((d for d in reversed(self.report["dropped"]) if name in d["names"]), None)
            stopped = next((e for e in self.report["errors"] if name in e.get("names", ())), None)
            if broken:
                found, kind, message = broken, "syntax_error", broken["message"]
            elif dropped:
                found, kind, message = dropped, "refused", dropped["why"]
            elif stopped:
                found, kind, message = stopped, "raised", f"{stopped['type']}: {stopped['message']}"
            else:
                continue
            where = found["cell"]
            reasons[name] = {"kind": kind, "line": found["line"], "message": message,
                             "statement": found.get("statement", ""),
                             "cell": where if isinstance(where, int) else -1,
                             "file": where if isinstance(where, str) else ""}
        return reasons


class SubmissionModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports of modules written by the submission (a `%%writefile steps.py` cell, files
    submitted beside the notebook), loaded through the room's replay.

    While the definitions are made, they are importable, and present in `sys.modules`, only
    while an import statement of the submission that names one runs: an installed module's
    import-time code can neither import nor find one. A module the installation has (`fractions`,
    `torch`) is never the submission's, whatever file is submitted."""

    submission = True  # safe_values: a module of the submission has no `__getattr__` to ask

    def __init__(self, room: CleanRoom):
        self.room = room
        self.open = False
        self.names: set[str] = set()  # the submission's modules imported so far
        self._hidden: dict = {}
        self._installed: dict[str, bool] = {}

    def installed(self, name: str) -> bool:
        """`name` is a module of the Python installation (or already imported from it)."""
        if name not in self._installed:
            found = name in sys.builtin_module_names or (name in sys.modules and name not in self.names)
            for finder in sys.meta_path:
                if found:
                    break
                if finder is not self and hasattr(finder, "find_spec"):
                    try:
                        found = finder.find_spec(name, None) is not None
                    except (ImportError, ValueError):
                        pass
            self._installed[name] = found
        return self._installed[name]

    def _file(self, fullname: str) -> tuple[str, bool] | None:
        base = os.path.join(self.room.root, *fullname.split("."))
        if os.path.isfile(base + ".py"):
            return base + ".py", False
        if os.path.isfile(os.path.join(base, "__init__.py")):
            return os.path.join(base, "__init__.py"), True
        return None

    def claims(self, name: str) -> bool:
        """`import name` would import the submission's module."""
        return self._file(name) is not None and not self.installed(name)

    @contextlib.contextmanager
    def visible_to(self, statement: ast.stmt):
        """The submission's modules, visible while `statement` runs if it imports one of them."""
        shown = isinstance(statement, (ast.Import, ast.ImportFrom)) and not getattr(statement, "level", 0) and any(
            self.claims(name) for name in _imported(statement))
        previous = self.open
        self._show() if shown else self._hide()
        self.open = shown
        try:
            yield
        finally:
            self.open = previous
            self._show() if previous else self._hide()

    def _hide(self) -> None:
        for name in self.names:
            if name in sys.modules:
                self._hidden[name] = sys.modules.pop(name)

    def _show(self) -> None:
        for name, module in self._hidden.items():
            sys.modules.setdefault(name, module)
        self._hidden = {}

    def publish(self) -> None:
        """The definitions are made: from now on, in a check's own call, imports are the steps' own."""
        self._show()
        self.open = True

    def find_spec(self, fullname, path=None, target=None):
        if not self.open:
            return None
        top = fullname.split(".")[0]
        if top not in self.names and not self.claims(top):
            return None  # an installed module, or a submodule of one
        found = self._file(fullname)
        if found is None:
            return None
        origin, package = found
        spec = importlib.machinery.ModuleSpec(fullname, self, origin=origin, is_package=package)
        if package:  # submodules come from this finder only (never a submitted .so or .pyc)
            spec.submodule_search_locations = []
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        self.names.add(module.__name__)
        path = module.__spec__.origin
        with open(path, encoding="utf-8") as handle:
            source = handle.read()
        filename = os.path.relpath(path, self.room.root)
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        self.room._replay(source, filename, module.__dict__)


def _imported(statement: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(statement, ast.ImportFrom):
        return [statement.module.split(".")[0]] if statement.module else []
    return [alias.name.split(".")[0] for alias in statement.names]


def make_definitions(room_request: dict) -> CleanRoom:
    """This process's room: the submission's definitions made within their time limit; then,
    where the box allows it, every other process of the box ended (none should exist)."""
    room = CleanRoom(os.getcwd())
    try:  # outside the deadline's block: its repeated alarm may fire as the block ends
        define_s = float(room_request.get("define_timeout_s") or 10.0)
        with captured_output(), deadline(define_s, wall_ceiling_s(define_s, wall_factor(room_request))):
            room.define(list(room_request.get("cells", [])))
    except StepTimeout:
        room.report["errors"].append({"cell": None, "type": "Timeout", "message": "defining took too long", "traceback": ""})
    if leftovers.safe_here():
        leftovers.end_other_processes()
    return room


def serve_room(sock: socket.socket, room_request: dict, room: CleanRoom | None = None) -> None:
    """Answer one check's probes in this room; returns when the grader closes it. `room`: the
    definitions already made (a child of a template, room_template.py); else they are made
    first, and the grader told (it looks at this room from outside before it sends a probe)."""
    me = os.getpid()
    if room is None:
        room = make_definitions(room_request)
        protocol.send_message(sock, {"event": Event.DEFINED})
    while True:
        message = protocol.recv_message(sock)
        if os.getpid() != me:
            os._exit(0)
        if message.get("op") != Op.PROBE:
            return
        reply = run_probe(room.namespace, message["probe"], message["inputs"], message["device"],
                          float(message["timeout_s"]), wall_factor(message))
        if os.getpid() != me:
            os._exit(0)
        if reply.get("status") == MISSING:
            reply["why_missing"] = room.why_missing(reply.get("missing", []))
        reply["defined"] = room.report["defined"]
        protocol.send_message(sock, {"event": Event.PROBE, **reply})
