"""Which top-level statements of a notebook cell (or of a module the submission wrote) are
DEFINITIONS, the only code a clean room makes before the checks' probes, and each made ready to
run without running student code.

Kept: imports; `def`; `class` (a body of defs, docstrings and values); assignments to names;
the shell calls IPython writes for magics (magics.py). Everything else at top level (calls,
loops, `with`, `try`, attribute or item assignments...) is left out, and so is every name an
earlier refusal would have bound.

Soundness by construction, not by a list of tricks: each statement is judged right before it
runs, against the namespace the statements before it made, and every expression Python would
evaluate while defining (an assigned value, a default, a decorator, a base class, a class
body's value) is evaluated by safe_values.Evaluator instead, which runs no student code, and
handed to the statement as a value. Decorators that are not on its allow-list (compared by
identity) are applied on the function's first call, from inside a check's own call of a step,
never while the room is prepared; in a class they are refused. Annotations are dropped. Binding
a special name (`__getattr__`, `__builtins__`...) at module level is refused.

This module only reads and rewrites syntax trees; clean_room.py runs them.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from autograder.sandbox.box.magics import shell_call
from autograder.sandbox.box.safe_values import Evaluator, Pending, Refused, check_set_name, is_data, reference

__all__ = ["Definition", "Refused", "ShellCall", "bound_names", "prepare", "NESTED"]

_SPECIAL = re.compile(r"^__\w*__$")
# Special names a module may bind to plain data (they change nothing of how it behaves).
_SPECIAL_DATA = frozenset({"__all__", "__doc__", "__version__", "__author__"})
_CLASS_SPECIAL_DATA = frozenset({"__slots__", "__doc__"})

NESTED = ("it is defined inside top-level code (an `if`, `for`, `while`, `with` or `try` block), which the "
          "checks do not run; define it at the top level of its cell")


@dataclass
class Definition:
    """One statement made ready: run `statement` with `values` under safe_values.VALUES, or bind
    `bindings` (an assignment's names); `imports`: the top-level modules an import names."""

    statement: ast.stmt | None
    name: str | None = None
    values: list = field(default_factory=list)
    bindings: dict | None = None
    lazy_decorators: list[ast.expr] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)
    star: bool = False  # `from m import *`: only m's public names are bound


@dataclass
class ShellCall:
    """A magic or `!command` as IPython's transformer writes it: the shell's `method(*args)`."""

    method: str
    args: list[str]
    statement: ast.stmt


def _special(name: str) -> bool:
    return bool(_SPECIAL.match(name))


def _reference(values: list, value, node: ast.AST) -> ast.expr:
    values.append(value)
    return reference(len(values) - 1, node)


def bound_names(statement: ast.stmt) -> list[str]:
    """The names a top-level statement would bind (for explaining what a refusal left out)."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [statement.name]
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return [a.asname or a.name.split(".")[0] for a in statement.names if a.name != "*"]
    targets = statement.targets if isinstance(statement, ast.Assign) else \
        [statement.target] if isinstance(statement, (ast.AnnAssign, ast.AugAssign)) else []
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


_BLOCKS = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try, ast.TryStar, ast.Match)


def nested_definitions(statement: ast.stmt) -> list:
    """Functions and classes defined inside a left-out block (`if`, `try`, a loop, `with`)."""
    if not isinstance(statement, _BLOCKS):  # a plain statement holds none (a lambda is no definition)
        return []
    return [node for node in ast.walk(statement)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node is not statement]


def prepare(statement: ast.stmt, evaluator: Evaluator) -> Definition | ShellCall | None:
    """`statement` made ready to run in `evaluator.namespace`, None where there is nothing to run;
    raises Refused where it is not a definition or making it would run code (NameError and the
    like where evaluating what it defines fails, as Python would)."""
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return _import(statement)
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
        if _special(statement.name):
            raise Refused(f"a module-level `{statement.name}` changes how the module itself behaves")
        values: list = []
        lazy = _function(statement, evaluator, values, in_class=False)
        return Definition(statement, statement.name, values, lazy_decorators=lazy)
    if isinstance(statement, ast.ClassDef):
        if _special(statement.name):
            raise Refused("a class with a special name")
        values = []
        _class(statement, evaluator, values)
        return Definition(statement, statement.name, values)
    if isinstance(statement, ast.AnnAssign):
        if statement.value is None:
            return None  # `x: int` binds nothing; its annotation is not evaluated here
        statement = ast.copy_location(ast.Assign([statement.target], statement.value), statement)
    if isinstance(statement, ast.Assign):
        return _assignment(statement, evaluator)
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
        return None  # a docstring or a bare literal: nothing to run
    call = shell_call(statement)
    if call is not None:
        return ShellCall(call[0], call[1], statement)
    if isinstance(statement, ast.AugAssign):
        raise Refused("it changes a value computed earlier; give the name its final value in one assignment")
    raise Refused("top-level code other than a definition is not run for the checks")


def _import(node: ast.Import | ast.ImportFrom) -> Definition | None:
    if isinstance(node, ast.ImportFrom):
        if node.level:
            raise Refused("relative imports are not supported")
        if node.module == "__future__":
            return None  # annotations are dropped anyway; the other features are Python 3's own
        modules = [node.module.split(".")[0]]
    else:
        modules = [alias.name.split(".")[0] for alias in node.names]
    for alias in node.names:
        bound = alias.asname or alias.name.split(".")[0]
        if alias.name != "*" and _special(bound):
            raise Refused(f"it binds the special name `{bound}`")
    star = any(alias.name == "*" for alias in node.names)
    return Definition(node, None, imports=modules, star=star)


def _decorators(node, evaluator: Evaluator, values: list, in_class: bool) -> list[ast.expr]:
    """Apply the allow-listed decorators now (as values); return all of them, to be applied on
    the first call, where any one is not allow-listed (outside a class only)."""
    applied = []
    for decorator in node.decorator_list:
        try:
            found = evaluator.decorator(decorator)
        except Refused:
            found = None
        if found is None:
            shown = ast.unparse(decorator)[:60]
            if in_class or isinstance(node, ast.ClassDef):
                raise Refused(f"its decorator @{shown} is not one the checks apply when a class is made")
            lazy = list(node.decorator_list)
            node.decorator_list = []
            return lazy
        applied.append(_reference(values, found, decorator))
    node.decorator_list = applied
    return []


def _function(node, evaluator: Evaluator, values: list, in_class: bool) -> list[ast.expr]:
    lazy = _decorators(node, evaluator, values, in_class)
    evaluator.arguments(node.args, values)
    node.returns = None
    return lazy


def _class(node: ast.ClassDef, evaluator: Evaluator, values: list) -> None:
    if node.keywords:
        raise Refused("a class with a metaclass or class arguments runs code when it is made")
    _decorators(node, evaluator, values, in_class=True)
    if any(isinstance(base, ast.Starred) for base in node.bases):
        raise Refused("its base classes are unpacked from a value")
    node.bases = [_reference(values, evaluator.base_class(base), base) for base in node.bases]
    names: dict = {}  # the class body's names as it binds them
    inner = evaluator.in_class(names)
    body = []
    for statement in node.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _function(statement, inner, values, in_class=True)
            names[statement.name] = Pending(statement.name)
        elif isinstance(statement, ast.ClassDef):
            if _special(statement.name):
                raise Refused("it holds a class with a special name")
            _class(statement, inner, values)
            names[statement.name] = Pending(statement.name)
        elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) or isinstance(statement, ast.Pass):
            pass
        elif isinstance(statement, ast.AnnAssign) and statement.value is None:
            continue  # an annotation only: nothing is bound
        elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            if not all(isinstance(t, ast.Name) for t in targets):
                raise Refused(f"its class body assigns {ast.unparse(statement).splitlines()[0][:60]}")
            for target in targets:
                if _special(target.id) and target.id not in _CLASS_SPECIAL_DATA:
                    raise Refused(f"its class body binds the special name `{target.id}`")
            value = inner.value(statement.value)  # a name the body bound by `def` stays a name (Pending)
            reference = statement.value if isinstance(value, Pending) else _reference(values, value, statement.value)
            check_set_name(value, statement.value)
            if any(_special(t.id) for t in targets) and not is_data(value):
                raise Refused(f"its class body binds a special name to {ast.unparse(statement.value)[:60]}")
            statement = ast.copy_location(ast.Assign(targets, reference), statement)
            for target in targets:
                names[target.id] = value
        else:
            raise Refused(f"its class body runs code ({ast.unparse(statement).splitlines()[0][:60]})")
        body.append(statement)
    node.body = body or [ast.copy_location(ast.Pass(), node)]


def _assignment(statement: ast.Assign, evaluator: Evaluator) -> Definition:
    names = [n.id for t in statement.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    for target in statement.targets:
        if not all(isinstance(n, (ast.Name, ast.Tuple, ast.List, ast.Store)) for n in ast.walk(target)):
            raise Refused("only plain names can be assigned outside functions")
    for name in names:
        if _special(name) and name not in _SPECIAL_DATA:
            raise Refused(f"it binds the special name `{name}`")
    value = evaluator.value(statement.value)
    if any(_special(name) for name in names) and not is_data(value):
        raise Refused("it binds a special name to something other than a plain value")
    bindings: dict = {}
    for target in statement.targets:
        _unpack(target, value, bindings)
    return Definition(None, names[0] if names else None, bindings=bindings)


def _unpack(target: ast.expr, value, bindings: dict) -> None:
    if isinstance(target, ast.Name):
        bindings[target.id] = value
        return
    if not (type(value) in (tuple, list) and is_data(value)):
        raise Refused("only a tuple or list of plain values can be unpacked outside functions")
    if len(value) != len(target.elts):
        raise ValueError(f"cannot unpack {len(value)} values into {len(target.elts)} names")
    for element, item in zip(target.elts, value, strict=True):
        _unpack(element, item, bindings)
