"""Which top-level statements of a notebook cell (or of a module the submission wrote) are
DEFINITIONS, the only code a clean room runs before the checks' probes.

Kept: imports; `def` and `class` (class bodies of defs, docstrings and constant assignments);
assignments to plain names whose value is a literal, a name, a lambda, an attribute of an
imported torch/numpy/math module, or a constructor call such as `nn.MSELoss()` whose callee is
rooted at one of those modules and whose arguments are literals. Everything else at top level
(calls, loops, attribute or item assignments, `with`, `try`...) is dropped, so no code outside
the bodies of the student's functions can run before a check observes them.

Definition-time code is closed too: default values and decorators run when a `def` runs, so
defaults must be safe values, annotations are removed, and decorators are limited to autograd
switches (`@torch.no_grad()`), `functools` caches, `staticmethod`/`classmethod`/`property`, and
decorators the notebook itself defines, which are applied on the first call of the function
(from inside a step's own call, never at definition time).

This module only reads syntax trees; it runs inside the sandbox, where the code is executed.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from autograder.model.errors import ExplainedError

TRUSTED_ROOTS = ("torch", "numpy", "math")
# Lower-case callables under the trusted modules that only build a value from literals.
FACTORIES = frozenset({
    "tensor", "as_tensor", "zeros", "ones", "full", "empty", "arange", "linspace", "logspace", "eye",
    "array", "asarray", "device", "dtype", "float32", "float64", "float16", "int32", "int64",
    "sqrt", "exp", "log", "log2", "log10", "pow", "radians", "degrees", "isclose",
})
# Decorators that only switch autograd or cache results (resolved through the imports).
TRUSTED_DECORATORS = frozenset({
    "torch.no_grad", "torch.enable_grad", "torch.inference_mode", "torch.set_grad_enabled",
    "torch.autograd.no_grad", "torch.autograd.enable_grad", "torch.autograd.inference_mode",
    "torch.autograd.set_grad_enabled", "torch.autograd.grad_mode.no_grad",
    "functools.cache", "functools.lru_cache", "staticmethod", "classmethod", "property",
})
# Special methods that would run student code when a class is created or used as a base.
_CLASS_CREATION_HOOKS = frozenset({"__init_subclass__", "__set_name__", "__class_getitem__", "__prepare__", "__mro_entries__"})
_MAGIC = re.compile(r"^__\w+__$")


class Refused(ExplainedError):
    """A top-level statement that is not a definition; `reason` says so in words."""


@dataclass
class Scope:
    """What a namespace's earlier definitions made safe to refer to."""

    modules: dict[str, str] = field(default_factory=dict)  # local name -> dotted module or object path
    constants: set[str] = field(default_factory=set)  # names bound to literal values
    functions: set[str] = field(default_factory=set)  # names bound by `def` in this namespace
    bound: set[str] = field(default_factory=set)  # every name the namespace's definitions bound
    opaque: bool = False  # a star import from the submission may have bound any name

    def rebind(self, name: str) -> None:
        self.modules.pop(name, None)
        self.constants.discard(name)
        self.functions.discard(name)
        self.bound.add(name)

    def is_builtin(self, name: str) -> bool:
        """`name` still means the builtin of that name (the namespace never rebound it)."""
        return not self.opaque and name not in self.bound


@dataclass
class Definition:
    """One kept statement; `lazy_decorators` are expressions applied on the first call."""

    statement: ast.stmt
    name: str | None = None
    lazy_decorators: list[ast.expr] = field(default_factory=list)


@dataclass
class Magic:
    """An IPython magic that matters to definitions: %%writefile, %run, or a cell magic whose
    body is ordinary code (%%time, %%capture)."""

    kind: str  # "writefile", "run", "body"
    line: str
    body: str = ""
    lineno: int = 1


@dataclass
class Dropped:
    lineno: int
    what: str
    why: str
    name: str | None = None  # the function or class whose definition was refused, if any


def _dotted(node: ast.expr) -> str | None:
    """`a.b.c` as a string, or None if `node` is not a plain dotted name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _resolve(dotted: str, scope: Scope) -> str | None:
    """The full path of a dotted name whose root is an imported module, else None."""
    root, _, rest = dotted.partition(".")
    target = scope.modules.get(root)
    if target is None:
        return None
    return f"{target}.{rest}" if rest else target


def _trusted_path(node: ast.expr, scope: Scope) -> str | None:
    dotted = _dotted(node)
    full = _resolve(dotted, scope) if dotted else None
    return full if full and full.split(".")[0] in TRUSTED_ROOTS else None


def _is_literal(node: ast.expr, scope: Scope) -> bool:
    """A value whose evaluation runs no student code."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp):
        return _is_literal(node.operand, scope)
    if isinstance(node, ast.BinOp):
        return _is_literal(node.left, scope) and _is_literal(node.right, scope)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_is_literal(e, scope) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _is_literal(k, scope) for k in node.keys) and all(_is_literal(v, scope) for v in node.values)
    if isinstance(node, ast.Name) and node.id in scope.constants:
        return True
    return _trusted_path(node, scope) is not None  # torch.float32, math.pi


def _is_constructor(node: ast.expr, scope: Scope) -> bool:
    if not isinstance(node, ast.Call):
        return False
    path = _trusted_path(node.func, scope)
    if path is None:
        return False
    last = path.rsplit(".", 1)[-1]
    if not (last[:1].isupper() or last in FACTORIES):
        return False
    return all(_is_literal(a, scope) for a in node.args) and all(
        k.arg is not None and _is_literal(k.value, scope) for k in node.keywords)


def _check_arguments(args: ast.arguments, scope: Scope) -> None:
    """Defaults run at definition time: only safe values. Annotations are removed."""
    for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
        if not (_is_literal(default, scope) or _is_constructor(default, scope) or isinstance(default, ast.Name)):
            raise Refused(f"a default value ({ast.unparse(default)[:60]}) is computed by code")
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
        if arg is not None:
            arg.annotation = None


def _is_value(node: ast.expr, scope: Scope) -> bool:
    if _is_literal(node, scope) or _is_constructor(node, scope) or isinstance(node, ast.Name):
        return True
    if isinstance(node, ast.Lambda):
        _check_arguments(node.args, scope)
        return True
    return False


def _decorators(node, scope: Scope, in_class: bool) -> list[ast.expr]:
    """Check `node`'s decorators; return those to apply lazily (defined by the notebook)."""
    lazy = []
    for decorator in node.decorator_list:
        target, call = (decorator.func, decorator) if isinstance(decorator, ast.Call) else (decorator, None)
        dotted = _dotted(target)
        if call is not None and not (all(_is_literal(a, scope) for a in call.args)
                                     and all(k.arg and _is_literal(k.value, scope) for k in call.keywords)):
            raise Refused(f"its decorator @{ast.unparse(decorator)[:60]} is given computed arguments")
        if dotted is None:
            raise Refused(f"its decorator @{ast.unparse(decorator)[:60]} is an expression")
        full = _resolve(dotted, scope) or dotted
        builtin = dotted in ("staticmethod", "classmethod", "property") and scope.is_builtin(dotted)
        if full in TRUSTED_DECORATORS and (builtin or _resolve(dotted, scope)):
            continue
        if dotted in scope.functions and not in_class:
            lazy.append(decorator)
            continue
        raise Refused(f"its decorator @{ast.unparse(decorator)[:60]} is not one the checks allow")
    if lazy:  # all of them, in order, once the function is first called
        lazy = list(node.decorator_list)
        node.decorator_list = []
    return lazy


def _function(node, scope: Scope, in_class: bool = False) -> list[ast.expr]:
    if not in_class and _MAGIC.match(node.name):
        raise Refused(f"a module-level `{node.name}` changes how the module itself behaves")
    if in_class and node.name in _CLASS_CREATION_HOOKS:
        raise Refused(f"`{node.name}` runs code when a class is created")
    _check_arguments(node.args, scope)
    node.returns = None
    return _decorators(node, scope, in_class)


def _class(node: ast.ClassDef, scope: Scope) -> None:
    if node.keywords:
        raise Refused("a class with a metaclass or class arguments runs code when it is created")
    for base in node.bases:
        named = base.id if isinstance(base, ast.Name) else None
        if not (_trusted_path(base, scope) or named in scope.functions or (named == "object" and scope.is_builtin(named))):
            raise Refused(f"its base class {ast.unparse(base)[:60]} is not a torch class or a class of the notebook")
    if _decorators(node, scope, in_class=True):
        raise Refused("a class decorator defined in the notebook would run when the class is created")
    body = []
    for statement in node.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _function(statement, scope, in_class=True)
        elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            pass
        elif isinstance(statement, ast.Pass):
            pass
        elif isinstance(statement, ast.Assign) and all(isinstance(t, ast.Name) and not _MAGIC.match(t.id) for t in statement.targets):
            if not (_is_literal(statement.value, scope) or _is_constructor(statement.value, scope)):
                raise Refused(f"its class body computes {ast.unparse(statement)[:60]}")
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name) and not _MAGIC.match(statement.target.id):
            if statement.value is not None and not (_is_literal(statement.value, scope) or _is_constructor(statement.value, scope)):
                raise Refused(f"its class body computes {ast.unparse(statement)[:60]}")
            statement.annotation = ast.copy_location(ast.Constant(None), statement.annotation)
        else:
            raise Refused(f"its class body runs code ({ast.unparse(statement).splitlines()[0][:60]})")
        body.append(statement)
    node.body = body or [ast.copy_location(ast.Pass(), node)]


def _import(node: ast.Import | ast.ImportFrom, scope: Scope) -> None:
    if isinstance(node, ast.ImportFrom):
        if node.level:
            raise Refused("relative imports are not supported")
        for alias in node.names:
            if alias.name == "*":
                if node.module.split(".")[0] not in TRUSTED_ROOTS:
                    # any name may now be bound to the module's objects: trust no earlier import
                    scope.modules.clear()
                    scope.constants.clear()
                    scope.functions.clear()
                    scope.opaque = True
                continue
            local = alias.asname or alias.name
            scope.rebind(local)
            scope.modules[local] = f"{node.module}.{alias.name}"
        return
    for alias in node.names:
        local = alias.asname or alias.name.split(".")[0]
        scope.rebind(local)
        scope.modules[local] = alias.name if alias.asname else alias.name.split(".")[0]


def _magic(statement: ast.stmt) -> Magic | None:
    """`get_ipython().run_cell_magic('writefile', 'steps.py', body)` and friends, as IPython's
    transformer writes them."""
    if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
        return None
    call = statement.value
    func = call.func
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name) and func.value.func.id == "get_ipython"):
        return None
    if not all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in call.args):
        return None
    args = [a.value for a in call.args]
    if func.attr == "run_cell_magic" and len(args) == 3:
        name, line, body = args
        if name == "writefile":
            return Magic("writefile", line, body, statement.lineno)
        if name in ("time", "capture"):
            return Magic("body", line, body, statement.lineno)
    if func.attr == "run_line_magic" and len(args) == 2 and args[0] == "run":
        return Magic("run", args[1], lineno=statement.lineno)
    return None


_NESTED = ("it is defined inside top-level code (an `if`, `for`, `while`, `with` or `try` block), which the "
           "checks do not run; define it at the top level of its cell")


def _nested_definitions(statement: ast.stmt) -> list:
    """Functions and classes defined inside a dropped block (`if`, `try`, a loop, `with`)."""
    found = []
    for node in ast.walk(statement):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node is not statement:
            found.append(node)
    return found


def definitions(tree: ast.Module, scope: Scope) -> tuple[list[Definition | Magic], list[Dropped]]:
    """Split a parsed cell or module into what a clean room runs and what it leaves out."""
    kept: list[Definition | Magic] = []
    dropped: list[Dropped] = []
    for statement in tree.body:
        try:
            item = _definition(statement, scope)
        except Refused as refused:
            name = getattr(statement, "name", None)
            if name:
                scope.rebind(name)
            # The statement's kind, not its text: unparsing every dropped line cost ~1 ms each.
            dropped.append(Dropped(statement.lineno, type(statement).__name__, refused.reason, name))
            for nested in _nested_definitions(statement) if name is None else ():
                dropped.append(Dropped(nested.lineno, type(nested).__name__, _NESTED, nested.name))
            continue
        if item is not None:
            kept.append(item)
    return kept, dropped


def _definition(statement: ast.stmt, scope: Scope) -> Definition | Magic | None:
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        _import(statement, scope)
        return Definition(statement)
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
        lazy = _function(statement, scope)
        scope.rebind(statement.name)
        scope.functions.add(statement.name)
        return Definition(statement, statement.name, lazy)
    if isinstance(statement, ast.ClassDef):
        if _MAGIC.match(statement.name):
            raise Refused("a class with a special name")
        _class(statement, scope)
        scope.rebind(statement.name)
        scope.functions.add(statement.name)  # usable as a base class of later classes
        return Definition(statement, statement.name)
    if isinstance(statement, ast.AnnAssign) and statement.value is not None:
        statement = ast.copy_location(ast.Assign([statement.target], statement.value), statement)
    if isinstance(statement, ast.Assign):
        return _assignment(statement, scope)
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
        return None  # a docstring or a bare literal: nothing to run
    magic = _magic(statement)
    if magic is not None:
        return magic
    raise Refused("top-level code other than a definition is not run for the checks")


def _assignment(statement: ast.Assign, scope: Scope) -> Definition:
    names = []
    for target in statement.targets:
        if not isinstance(target, ast.Name) or _MAGIC.match(target.id):
            raise Refused("only plain names can be assigned outside functions")
        names.append(target.id)
    if not _is_value(statement.value, scope):
        raise Refused("the value is computed by code")
    literal = _is_literal(statement.value, scope)
    alias = _trusted_path(statement.value, scope) if isinstance(statement.value, ast.Attribute) else None
    source = statement.value.id if isinstance(statement.value, ast.Name) else None
    for name in names:
        known_module = scope.modules.get(source) if source else None
        was_function = source in scope.functions if source else False
        scope.rebind(name)
        if alias:
            scope.modules[name] = alias
        elif known_module:
            scope.modules[name] = known_module
        elif literal:
            scope.constants.add(name)
        if was_function:
            scope.functions.add(name)
    return Definition(statement, names[0])
