"""The values a clean room computes while it makes a notebook's definitions, computed so that no
student code can run: what an assigned value, a default, a decorator or a base class IS.

Python would evaluate these expressions itself, and an expression can run code in many ways (a
call, an operator, an attribute, a hash, a format). Here they are evaluated by `Evaluator`
instead, against the namespace as the statements before made it:
  - a name is looked up in the namespace (a class body's names first), then in the builtins: so
    `property` is whatever `%run`, an import or an assignment last bound to that name;
  - an attribute is read from a module's own dictionary (an installed module's `__getattr__` may
    answer what is missing; a submission's module cannot have one), from the dictionaries of a
    plain class's MRO (plain data and classes only, never a descriptor), or from a data value
    (below); never a dunder attribute;
  - a call is made only to a callable on `CALLS`, compared by identity (`torch.os.system` is
    `os.system`, which is not there), with data arguments;
  - operators, subscripts, comparisons, truth tests and f-strings only on data: values whose
    exact type is a builtin scalar or container of data, a tensor, a dtype or device, a NumPy
    array or scalar (installed code, whatever a submission defined);
  - a lambda is made (making one runs nothing) once its own defaults are values;
  - containers are built from any values (building a list calls nothing; hashing a function or
    a class is the builtin hash).
Anything else is refused (`Refused`, with the reason in words).
"""
from __future__ import annotations

import abc
import ast
import builtins
import functools
import math
import operator
import random
import types

import numpy
import torch

from autograder.model.errors import ExplainedError

# The name under which a rewritten statement finds the values computed here. Not an identifier:
# no student code can name it, bind it or shadow it.
VALUES = "definition values"

_DATA_SCALARS = frozenset({int, float, complex, bool, str, bytes, type(None), type(Ellipsis), range})
_DATA_CONTAINERS = frozenset({tuple, list, set, frozenset, dict, slice})
_DATA_OBJECTS = frozenset({torch.Tensor, torch.nn.Parameter, torch.dtype, torch.device, torch.Size, torch.finfo,
                           torch.iinfo, torch.layout, torch.memory_format, numpy.ndarray,
                           *(t for t in numpy.sctypeDict.values() if issubclass(t, numpy.generic) and t is not numpy.object_)})
_MAX_DATA_DEPTH, _MAX_DATA_ITEMS = 32, 100_000


def _objects(module, names: str) -> list:
    return [getattr(module, name) for name in names.split() if hasattr(module, name)]


# Callables a definition may call, by identity, and what arguments each takes: "data" (values
# whose exact type is one of the data types above) or "any" (functools.partial stores its
# arguments and calls nothing). Each only builds a value from its arguments or seeds a generator.
CALLS: dict[int, tuple[object, str]] = {id(f): (f, "data") for f in [
    *_objects(builtins, "int float complex bool str bytes tuple list dict set frozenset range slice len abs min max "
                        "round sum pow divmod"),
    *(f for f in vars(math).values() if callable(f)),
    *_objects(torch, "tensor as_tensor asarray from_numpy zeros ones full empty arange linspace logspace eye zeros_like "
                     "ones_like full_like empty_like rand randn randint rand_like randn_like normal stack cat sqrt exp "
                     "log log2 log10 pow abs sin cos tanh sigmoid mean sum finfo iinfo device Size manual_seed"),
    *_objects(torch.nn, "MSELoss L1Loss HuberLoss SmoothL1Loss Parameter Linear Identity"),
    *_objects(numpy, "array asarray zeros ones full empty arange linspace logspace eye sqrt exp log float16 float32 "
                     "float64 int32 int64 dtype"),
    *_objects(numpy.random, "seed default_rng"),
    random.seed,
]}
CALLS[id(functools.partial)] = (functools.partial, "any")
# Decorators a definition may be decorated with now (each wraps or marks, and calls nothing),
# and factories whose call with data arguments makes one.
DECORATORS: dict[int, object] = {id(d): d for d in [
    staticmethod, classmethod, property, functools.cache, functools.cached_property, functools.lru_cache,
    abc.abstractmethod, torch.no_grad, torch.enable_grad, torch.inference_mode,
]}
DECORATOR_FACTORIES: dict[int, object] = {id(d): d for d in [
    functools.lru_cache, torch.no_grad, torch.enable_grad, torch.inference_mode, torch.set_grad_enabled,
]}
# Types whose `__set_name__` may run when a class holding one of their objects is made.
SET_NAME_ALLOWED = frozenset({functools.cached_property})

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow, ast.MatMult: operator.matmul,
           ast.LShift: operator.lshift, ast.RShift: operator.rshift, ast.BitOr: operator.or_,
           ast.BitXor: operator.xor, ast.BitAnd: operator.and_}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg, ast.Not: operator.not_, ast.Invert: operator.invert}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
            ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}


class Refused(ExplainedError):
    """A statement that is not a definition, or a definition whose making would run code;
    `reason` says so in words."""


class Pending:
    """A name bound earlier in the same class body by a `def` or `class`: it exists only once the
    class statement runs, so it may be named (an alias) but not used."""

    def __init__(self, name: str):
        self.name = name


class Dropped(NameError):
    """A name that an earlier statement would have bound, had the checks not left it out."""


def is_data(value, depth: int = 0, budget: list | None = None) -> bool:
    """A value of a type whose operations are the installed code's own (exact types)."""
    budget = budget if budget is not None else [_MAX_DATA_ITEMS]
    budget[0] -= 1
    kind = type(value)
    if budget[0] < 0 or depth > _MAX_DATA_DEPTH:
        return False
    if kind in _DATA_SCALARS:
        return True
    if kind in _DATA_OBJECTS or isinstance(value, numpy.dtype):
        return not (kind is numpy.ndarray and value.dtype.hasobject)
    if kind is dict:
        return all(is_data(k, depth + 1, budget) and is_data(v, depth + 1, budget) for k, v in value.items())
    if kind is slice:
        return all(is_data(p, depth + 1, budget) for p in (value.start, value.stop, value.step))
    if kind in _DATA_CONTAINERS:
        return all(is_data(item, depth + 1, budget) for item in value)
    return False


def reference(index: int, node: ast.AST) -> ast.expr:
    """`VALUES[index]`, where `node` was in the source (every new node located: no tree walk)."""
    name, number = ast.copy_location(ast.Name(VALUES, ast.Load()), node), ast.copy_location(ast.Constant(index), node)
    return ast.copy_location(ast.Subscript(name, number, ast.Load()), node)


def _listed(table: dict, value) -> bool:
    entry = table.get(id(value))
    found = entry[0] if isinstance(entry, tuple) else entry
    return entry is not None and found is value


def _plain_class(value) -> bool:
    return isinstance(value, type) and type(value) is type


def _shown(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


class Evaluator:
    """Evaluates definition-time expressions in `namespace` (a module's globals), with an
    optional class body's names first. `dropped` maps the names the filter left out to where."""

    def __init__(self, namespace: dict, dropped: dict[str, str] | None = None, class_names: dict | None = None,
                 filename: str = "<definitions>"):
        self.namespace, self.dropped, self.class_names = namespace, dropped if dropped is not None else {}, class_names
        self.filename = filename  # where a lambda made here says it was defined

    def in_class(self, class_names: dict) -> Evaluator:
        return Evaluator(self.namespace, self.dropped, class_names, self.filename)

    # ------------------------------------------------------------------ what a name or attribute is

    def lookup(self, name: str):
        for scope in (self.class_names, self.namespace):
            if scope is not None and name in scope:
                return scope[name]
        if name in builtins.__dict__:
            return builtins.__dict__[name]
        if name in self.dropped:
            raise Dropped(f"it uses `{name}`, which the checks left out ({self.dropped[name]})")
        raise NameError(f"name '{name}' is not defined")

    def attribute(self, owner, name: str, node: ast.AST):
        if name.startswith("__") and name.endswith("__"):
            raise Refused(f"{_shown(node)} reads a special attribute")
        if isinstance(owner, types.ModuleType):
            found = vars(owner).get(name, _MISSING)
            if found is not _MISSING:
                return found
            if "__getattr__" in vars(owner) and not getattr(getattr(vars(owner).get("__spec__"), "loader", None), "submission", False):
                return getattr(owner, name)  # an installed module's lazy attribute (torch._dynamo...)
            raise AttributeError(f"module '{owner.__name__}' has no attribute '{name}'")
        if _plain_class(owner):
            for klass in owner.__mro__:
                if name in vars(klass):
                    found = vars(klass)[name]
                    if isinstance(found, type) or not hasattr(type(found), "__get__"):
                        return found
                    raise Refused(f"{_shown(node)} reads a method or property of a class")
            raise AttributeError(f"type object '{owner.__name__}' has no attribute '{name}'")
        if is_data(owner):
            return getattr(owner, name)
        raise Refused(f"{_shown(node)} reads an attribute of an object that is not a module, a class or a value")

    # ------------------------------------------------------------------ expressions

    def value(self, node: ast.expr):
        """What `node` evaluates to, computed without running student code."""
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise Refused(f"{_shown(node)} is computed by code")
        return method(node)

    def data(self, node: ast.expr):
        found = self.value(node)
        if not is_data(found):
            shown = f"`{found.name}`" if isinstance(found, Pending) else _shown(node)
            raise Refused(f"{shown} is used in a computation, and it is not a plain value")
        return found

    def _Constant(self, node: ast.Constant):
        return node.value

    def _Name(self, node: ast.Name):
        return self.lookup(node.id)

    def _Attribute(self, node: ast.Attribute):
        owner = self.value(node.value)
        if isinstance(owner, Pending):
            raise Refused(f"{_shown(node)} uses `{owner.name}` before its class is made")
        return self.attribute(owner, node.attr, node)

    def _Tuple(self, node):
        return tuple(self._elements(node.elts))

    def _List(self, node):
        return list(self._elements(node.elts))

    def _Set(self, node):
        return set(self._elements(node.elts))

    def _Dict(self, node: ast.Dict):
        result = {}
        for key, item in zip(node.keys, node.values, strict=True):
            if key is None:  # {**other}
                result.update(self.data(item))
            else:
                result[self._element(key)] = self._element(item)
        return result

    def _element(self, node):
        found = self.value(node)
        if isinstance(found, Pending):
            raise Refused(f"`{found.name}` is used before its class is made")
        return found

    def _elements(self, nodes):
        for node in nodes:
            if isinstance(node, ast.Starred):
                yield from self.data(node.value)
            else:
                yield self._element(node)

    def _BinOp(self, node: ast.BinOp):
        return _BINARY[type(node.op)](self.data(node.left), self.data(node.right))

    def _UnaryOp(self, node: ast.UnaryOp):
        return _UNARY[type(node.op)](self.data(node.operand))

    def _BoolOp(self, node: ast.BoolOp):
        result = None
        for operand in node.values:
            result = self.data(operand)
            if bool(result) == isinstance(node.op, ast.Or):
                return result
        return result

    def _Compare(self, node: ast.Compare):
        left = self.data(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.data(comparator)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True

    def _IfExp(self, node: ast.IfExp):
        return self.value(node.body) if self.data(node.test) else self.value(node.orelse)

    def _Subscript(self, node: ast.Subscript):
        return self.data(node.value)[self.data(node.slice)]

    def _Slice(self, node: ast.Slice):
        return slice(*(None if part is None else self.data(part) for part in (node.lower, node.upper, node.step)))

    def _JoinedStr(self, node: ast.JoinedStr):
        return "".join(self.value(part) if isinstance(part, ast.Constant) else self._formatted(part) for part in node.values)

    def _formatted(self, node: ast.FormattedValue) -> str:
        found = self.data(node.value)
        if node.conversion != -1:
            found = {ord("r"): repr, ord("s"): str, ord("a"): ascii}[node.conversion](found)
        return format(found, self._JoinedStr(node.format_spec) if node.format_spec else "")

    def _Call(self, node: ast.Call):
        callee = self.value(node.func)
        entry = CALLS.get(id(callee))
        if entry is None or entry[0] is not callee:
            raise Refused(f"{_shown(node)} calls {_shown(node.func)}, which may run code")
        convert = self.data if entry[1] == "data" else self._element
        args = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                args.extend(self.data(arg.value))
            else:
                args.append(convert(arg))
        kwargs = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                kwargs.update(self.data(keyword.value))
            else:
                kwargs[keyword.arg] = convert(keyword.value)
        return callee(*args, **kwargs)

    def _Lambda(self, node: ast.Lambda):
        values = self.arguments(node.args, pending=False)  # made here and now, outside any class body
        code = compile(ast.fix_missing_locations(ast.Expression(node)), self.filename, "eval", dont_inherit=True)
        previous = self.namespace.get(VALUES, _MISSING)
        self.namespace[VALUES] = values
        try:
            return eval(code, self.namespace)  # makes the function; its body runs only when called
        finally:
            if previous is _MISSING:
                self.namespace.pop(VALUES, None)
            else:
                self.namespace[VALUES] = previous

    # ------------------------------------------------------------------ parts of definitions

    def arguments(self, args: ast.arguments, values: list | None = None, pending: bool = True) -> list:
        """Evaluate a def's or lambda's defaults into `values`, each replaced in the tree by a
        reference to its value; annotations are dropped (they would be evaluated too)."""
        values = [] if values is None else values
        args.defaults = [self.substitute(d, values, pending) for d in args.defaults]
        args.kw_defaults = [None if d is None else self.substitute(d, values, pending) for d in args.kw_defaults]
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None:
                arg.annotation = None
        return values

    def substitute(self, node: ast.expr, values: list, pending: bool = True) -> ast.expr:
        """`node` evaluated here, as a reference to its value in `values` (a name of the class
        body being made stays a name, looked up as the body runs, where `pending` allows it)."""
        found = self.value(node)
        if isinstance(found, Pending):
            if not pending:
                raise Refused(f"`{found.name}` is used before its class is made")
            return node
        values.append(found)
        return reference(len(values) - 1, node)

    def decorator(self, node: ast.expr):
        """A decorator applied now: one on DECORATORS, or made by a factory on DECORATOR_FACTORIES
        from data arguments. None where it is neither (the caller decides)."""
        if isinstance(node, ast.Call):
            factory = self.value(node.func)
            if not _listed(DECORATOR_FACTORIES, factory):
                return None
            if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
                raise Refused(f"its decorator @{_shown(node)} unpacks its arguments")
            return factory(*[self.data(a) for a in node.args], **{k.arg: self.data(k.value) for k in node.keywords})
        found = self.value(node)
        return found if _listed(DECORATORS, found) else None

    def base_class(self, node: ast.expr):
        """A base class whose use runs no code: a plain class (metaclass `type`) none of whose
        ancestors defines `__init_subclass__`."""
        found = self.value(node)
        if isinstance(found, Pending):
            raise Refused(f"its base class `{found.name}` is made only when the enclosing class is")
        if not isinstance(found, type):
            raise Refused(f"its base {_shown(node)} is not a class")
        if not _plain_class(found):
            raise Refused(f"its base class {_shown(node)} has a metaclass, which runs code when a class is made")
        hooked = [k for k in found.__mro__ if k is not object and "__init_subclass__" in vars(k)]
        if hooked:
            raise Refused(f"its base class {_shown(node)} runs `__init_subclass__` ({hooked[0].__qualname__}'s) "
                          "when a class is made")
        return found


def check_set_name(value, node: ast.AST) -> None:
    """A class body's value whose type has `__set_name__` would run it when the class is made."""
    if isinstance(value, Pending) or type(value) in SET_NAME_ALLOWED:
        return
    if getattr(type(value), "__set_name__", None) is not None:
        raise Refused(f"its class body holds {_shown(node)}, whose `__set_name__` runs when the class is made")


_MISSING = object()
