"""Mutation operators: cosmic-ray's general ones (binary, comparison and unary operators,
booleans, numbers, decorators, variables), applied through its own visitor, plus operators for
the mistakes students make in this assignment's four steps, written with the stdlib `ast`.

Every operator is deterministic: the same source gives the same mutants in the same order
(cosmic-ray's VariableReplacer draws a random constant; it is seeded per mutant).
"""
from __future__ import annotations

import ast
import copy
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------
# cosmic-ray

# Operators that need arguments cosmic-ray's config would give, or that insert random code.
# VariableInserter adds `effect = cause + randint(...)`-style statements between two variables;
# none of the four steps has the two variables it needs, so it is left out.
COSMIC_RAY_SKIPPED = {"core/VariableInserter": "needs a cause and an effect variable; no step assigns one from another"}


def cosmic_ray_operator_names() -> list[str]:
    """cosmic-ray's core operators, in its own order, minus the skipped ones."""
    from cosmic_ray.plugins import operator_names

    return [name for name in operator_names() if name.startswith("core/") and name not in COSMIC_RAY_SKIPPED]


def cosmic_ray_family(name: str) -> str:
    """The family an operator belongs to, e.g. core/ReplaceBinaryOperator_Sub_Add -> binary."""
    short = name.split("/", 1)[1]
    for prefix, family in (("ReplaceBinaryOperator", "binary"), ("ReplaceComparisonOperator", "comparison"),
                           ("ReplaceUnaryOperator", "unary"), ("AddNot", "boolean"), ("ReplaceTrueWithFalse", "boolean"),
                           ("ReplaceFalseWithTrue", "boolean"), ("ReplaceAndWithOr", "boolean"),
                           ("ReplaceOrWithAnd", "boolean"), ("NumberReplacer", "number"),
                           ("RemoveDecorator", "decorator"), ("VariableReplacer", "variable")):
        if short.startswith(prefix):
            return family
    return re.sub(r"(?<!^)(?=[A-Z])", "_", short).lower()


def cosmic_ray_label(name: str) -> str:
    """A short id for mutant names: core/ReplaceBinaryOperator_Sub_Add -> binary_sub_add."""
    short = name.split("/", 1)[1]
    family = cosmic_ray_family(name)
    parts = short.split("_")[1:]
    if parts:
        return "_".join([family, *(p.lower() for p in parts)])
    return re.sub(r"(?<!^)(?=[A-Z])", "_", short).lower()


def cosmic_ray_mutants(name: str, source: str, params: list[str]) -> Iterator[str]:
    """Every mutant cosmic-ray's operator `name` makes of `source`, occurrence by occurrence."""
    from cosmic_ray.mutating import MutationVisitor
    from cosmic_ray.plugins import get_operator

    operator_class = get_operator(name)
    wants_variable = any(argument.name == "cause_variable" for argument in operator_class.arguments())
    instances = [operator_class(cause_variable=p) for p in params] if wants_variable else [operator_class()]
    for instance in instances:
        if not _has_position(instance, source):
            continue  # most operators find nothing in a three-line function: skip parsing it again per try
        occurrence = 0
        while True:
            random.seed(f"{name}|{getattr(instance, 'cause_variable', '')}|{occurrence}|{source}")
            try:
                mutated = MutationVisitor.mutate_code(source, instance, occurrence)
            except AttributeError:
                # cosmic-ray 8.7.0's VariableReplacer fails on an assignment whose right side is a
                # single leaf (`w.grad = None`): that statement has nothing for it to replace.
                break
            if mutated is None:
                break
            yield mutated
            occurrence += 1


_PARSED: dict[str, list] = {}


def _has_position(instance, source: str) -> bool:
    """Whether a cosmic-ray operator finds anything to mutate in `source` (one shared parse)."""
    from cosmic_ray.ast import ast_nodes, get_ast

    if source not in _PARSED:
        _PARSED[source] = list(ast_nodes(get_ast(source)))
    try:
        return any(True for node in _PARSED[source] for _ in instance.mutation_positions(node))
    except AttributeError:  # VariableReplacer on `w.grad = None`, as above
        return False


# ---------------------------------------------------------------------------------------------
# Domain operators


@dataclass(frozen=True)
class Context:
    """What an operator knows about the function it mutates."""

    function: str
    params: tuple[str, ...]

    @property
    def tensor_params(self) -> tuple[str, ...]:
        return tuple(p for p in self.params if p != "lr")  # lr is a Python float in the contract


class DomainOperator:
    """Mutates a node at `sites(node)` places; `mutate(node, i)` gives the i-th replacement
    (a node, a list of statements, or the node itself changed)."""

    name = ""
    summary = ""

    def sites(self, node: ast.AST, ctx: Context) -> int:
        raise NotImplementedError

    def mutate(self, node: ast.AST, index: int, ctx: Context):
        raise NotImplementedError


def _parent(node: ast.AST):
    return getattr(node, "parent_node", None)


def _call(func: ast.expr, *args: ast.expr, **keywords: ast.expr) -> ast.Call:
    return ast.Call(func=func, args=list(args), keywords=[ast.keyword(arg=k, value=v) for k, v in keywords.items()])


def _torch(attr: str) -> ast.Attribute:
    return ast.Attribute(value=ast.Name("torch", ast.Load()), attr=attr, ctx=ast.Load())


def _method(receiver: ast.expr, method: str, *args: ast.expr) -> ast.Call:
    return _call(ast.Attribute(value=receiver, attr=method, ctx=ast.Load()), *args)


def _load(node: ast.expr) -> ast.expr:
    """A copy of a target expression in Load context."""
    node = copy.deepcopy(node)
    for sub in ast.walk(node):
        if hasattr(sub, "ctx"):
            sub.ctx = ast.Load()
    return node


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_grad_context(expr: ast.expr) -> bool:
    """torch.no_grad(), torch.set_grad_enabled(...), torch.inference_mode()."""
    return isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and \
        expr.func.attr in ("no_grad", "set_grad_enabled", "inference_mode")


def _tensor_operand(node: ast.AST, ctx: Context) -> bool:
    """A whole tensor-valued operand a student could call a method on: a tensor parameter, a
    `.data`/`.grad` chain (read, not the receiver of a method), or a returned value."""
    parent = _parent(node)
    if isinstance(parent, ast.Return) and node is parent.value:
        return True
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in ctx.tensor_params:
        return not isinstance(parent, ast.Attribute)
    if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) and node.attr in ("data", "grad"):
        return not isinstance(parent, ast.Attribute)
    return False


class MeanSumSwapped(DomainOperator):
    name, summary = "mean_sum", "torch.mean <-> torch.sum (and the .mean()/.sum() methods)"

    def sites(self, node, ctx):
        return int(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("mean", "sum"))

    def mutate(self, node, index, ctx):
        node.func.attr = {"mean": "sum", "sum": "mean"}[node.func.attr]
        return node


class AttributeRemoved(DomainOperator):
    """`.data` or `.grad` dropped: `w.data = ...` becomes `w = ...`, `w.grad.data` becomes `w.data`."""

    def __init__(self, attr: str):
        self.attr, self.name, self.summary = attr, f"{attr}_removed", f".{attr} removed"

    def sites(self, node, ctx):
        return int(isinstance(node, ast.Attribute) and node.attr == self.attr)

    def mutate(self, node, index, ctx):
        inner = node.value
        if hasattr(inner, "ctx"):
            inner.ctx = node.ctx
        return inner


class DataAdded(DomainOperator):
    name, summary = "data_added", ".data added to a tensor parameter or a .grad"

    def sites(self, node, ctx):
        parent = _parent(node)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in ctx.tensor_params:
            return int(not isinstance(parent, ast.Attribute))
        if isinstance(node, ast.Attribute) and node.attr == "grad" and isinstance(node.ctx, ast.Load):
            return int(not (isinstance(parent, ast.Attribute) and parent.attr == "data"))
        return 0

    def mutate(self, node, index, ctx):
        return ast.Attribute(value=node, attr="data", ctx=ast.Load())


class MethodAdded(DomainOperator):
    """A method call appended to a tensor operand or a returned value: .detach(), .item(),
    .double(), .view(-1), ..."""

    def __init__(self, name: str, method: str, *args, summary: str = ""):
        self.name, self.method, self.args = name, method, args
        self.summary = summary or f".{method}({', '.join(map(repr, args))}) appended to a tensor"

    def sites(self, node, ctx):
        return int(_tensor_operand(node, ctx))

    def mutate(self, node, index, ctx):
        return _method(node, self.method, *(ast.Constant(a) for a in self.args))


class ZeroingRemoved(DomainOperator):
    name, summary = "zeroing_removed", "the statement that resets the gradient removed"

    def sites(self, node, ctx):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Attribute):
            return int(node.value.func.attr in ("zero_", "fill_"))
        return int(isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute) and node.targets[0].attr == "grad")

    def mutate(self, node, index, ctx):
        return ast.Pass()


class ZeroingTarget(DomainOperator):
    name, summary = "zero_weight", "the weight zeroed instead of its gradient"

    def sites(self, node, ctx):
        return int(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "zero_")

    def mutate(self, node, index, ctx):
        node.func.value = ast.Attribute(value=ast.Name(ctx.params[0], ast.Load()), attr="data", ctx=ast.Load())
        return node


class CallDropped(DomainOperator):
    name, summary = "call_dropped", "a method named but not called: `w.grad.zero_` without ()"

    def sites(self, node, ctx):
        return int(isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and not node.value.args
                   and isinstance(node.value.func, ast.Attribute))

    def mutate(self, node, index, ctx):
        node.value = node.value.func
        return node


class StatementAppended(DomainOperator):
    """A statement added at the end of the function's body."""

    def __init__(self, name: str, functions: tuple[str, ...], statement: str, summary: str):
        self.name, self.functions, self.statement, self.summary = name, functions, statement, summary

    def sites(self, node, ctx):
        return int(isinstance(node, ast.FunctionDef) and ctx.function in self.functions)

    def mutate(self, node, index, ctx):
        node.body.append(ast.parse(self.statement.format(w=ctx.params[0])).body[0])
        return node


class Rebinding(DomainOperator):
    name, summary = "rebinding", "an in-place change of w turned into rebinding the local name: w = w - ..."

    _IN_PLACE = {"sub_": ast.Sub, "add_": ast.Add, "mul_": ast.Mult, "div_": ast.Div}

    def sites(self, node, ctx):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            return int(isinstance(target, ast.Attribute) and target.attr == "data" and isinstance(target.value, ast.Name))
        if isinstance(node, ast.AugAssign):
            return int(_root_name(node.target) is not None)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Attribute):
            return int(node.value.func.attr in self._IN_PLACE and len(node.value.args) == 1
                       and _root_name(node.value.func.value) is not None)
        return 0

    def mutate(self, node, index, ctx):
        if isinstance(node, ast.Assign):
            node.targets = [ast.Name(node.targets[0].value.id, ast.Store())]
            return node
        if isinstance(node, ast.AugAssign):
            return ast.Assign(targets=[ast.Name(_root_name(node.target), ast.Store())],
                              value=ast.BinOp(_load(node.target), node.op, node.value))
        call = node.value
        return ast.Assign(targets=[ast.Name(_root_name(call.func.value), ast.Store())],
                          value=ast.BinOp(call.func.value, self._IN_PLACE[call.func.attr](), call.args[0]))


class InPlace(DomainOperator):
    name, summary = "in_place", "`t = t - e` written as `t -= e`, on t itself or without its .data"

    def sites(self, node, ctx):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.value, ast.BinOp)):
            return 0
        target = node.targets[0]
        if ast.dump(_load(target)) != ast.dump(node.value.left):
            return 0
        return 2 if isinstance(target, ast.Attribute) and target.attr == "data" else 1

    def mutate(self, node, index, ctx):
        target = node.targets[0]
        if index == 1:
            target = target.value
            target.ctx = ast.Store()
        return ast.AugAssign(target=target, op=node.value.op, value=node.value.right)


class NoGradRemoved(DomainOperator):
    name, summary = "no_grad_removed", "`with torch.no_grad():` (or a no_grad decorator) removed"

    def sites(self, node, ctx):
        if isinstance(node, ast.With):
            return int(any(_is_grad_context(item.context_expr) for item in node.items))
        if isinstance(node, ast.FunctionDef):
            return sum(_is_grad_context(d) for d in node.decorator_list)
        return 0

    def mutate(self, node, index, ctx):
        if isinstance(node, ast.With):
            return node.body
        decorators = [d for d in node.decorator_list if _is_grad_context(d)]
        node.decorator_list.remove(decorators[index])
        return node


class NoGradAdded(DomainOperator):
    name, summary = "no_grad_added", "the body of forward or criterion run under torch.no_grad()"

    def sites(self, node, ctx):
        return int(isinstance(node, ast.FunctionDef) and ctx.function in ("forward", "criterion"))

    def mutate(self, node, index, ctx):
        node.body = [ast.With(items=[ast.withitem(context_expr=_call(_torch("no_grad")))], body=node.body)]
        return node


class StepSign(DomainOperator):
    name, summary = "step_sign", "the gradient step added instead of subtracted"

    def sites(self, node, ctx):
        if ctx.function != "update":
            return 0
        if isinstance(node, ast.AugAssign):
            return int(isinstance(node.op, ast.Sub | ast.Add))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            return int(node.func.attr in ("sub_", "add_"))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub | ast.Add):
            return int(_root_name(node.left) in ctx.tensor_params)
        return int(isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub))

    def mutate(self, node, index, ctx):
        if isinstance(node, ast.AugAssign | ast.BinOp):
            node.op = ast.Add() if isinstance(node.op, ast.Sub) else ast.Sub()
        elif isinstance(node, ast.Call):
            node.func.attr = "add_" if node.func.attr == "sub_" else "sub_"
        else:
            return node.operand
        return node


def _is_lr(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "lr" or \
        isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and _is_lr(node.operand)


class LrDropped(DomainOperator):
    name, summary = "lr_dropped", "the learning rate left out of the step"

    def sites(self, node, ctx):
        return int(isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) and (_is_lr(node.left) or _is_lr(node.right)))

    def mutate(self, node, index, ctx):
        lr, other = (node.left, node.right) if _is_lr(node.left) else (node.right, node.left)
        return ast.UnaryOp(ast.USub(), other) if isinstance(lr, ast.UnaryOp) else other


class LrScaled(DomainOperator):
    """The learning rate multiplied by a factor: doubled, or halved."""

    def __init__(self, name: str, factor: float):
        self.name, self.factor, self.summary = name, factor, f"the learning rate multiplied by {factor:g}"

    def sites(self, node, ctx):
        return int(isinstance(node, ast.Name) and node.id == "lr" and isinstance(node.ctx, ast.Load))

    def mutate(self, node, index, ctx):
        return ast.BinOp(ast.Constant(self.factor), ast.Mult(), node)


class StepClamped(DomainOperator):
    name, summary = "step_clamped", "the step lr*grad clamped to +-C (C = 1, 50), as 'gradient clipping'"
    BOUNDS = (1.0, 50.0)

    def sites(self, node, ctx):
        return len(self.BOUNDS) * LrDropped().sites(node, ctx)

    def mutate(self, node, index, ctx):
        bound = self.BOUNDS[index]
        return _call(_torch("clamp"), node, ast.Constant(-bound), ast.Constant(bound))


def _squared(node: ast.AST):
    """e for a node `e ** 2`, else None."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and isinstance(node.right, ast.Constant) and node.right.value == 2:
        return node.left
    return None


def _reduction(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("mean", "sum")


class SquareOfMean(DomainOperator):
    name, summary = "square_of_mean", "mean((yhat-y)**2) written as mean(yhat-y)**2"

    def sites(self, node, ctx):
        if not _reduction(node):
            return 0
        if node.args:  # torch.mean(e ** 2)
            return int(_squared(node.args[0]) is not None)
        return int(_squared(node.func.value) is not None)  # (e ** 2).mean()

    def mutate(self, node, index, ctx):
        if node.args:
            node.args[0] = _squared(node.args[0])
        else:
            node.func.value = _squared(node.func.value)
        return ast.BinOp(node, ast.Pow(), ast.Constant(2))


class AbsoluteError(DomainOperator):
    name, summary = "absolute_error", "(yhat-y)**2 written as the absolute error"

    def sites(self, node, ctx):
        return int(_squared(node) is not None)

    def mutate(self, node, index, ctx):
        return _call(_torch("abs"), node.left)


class ReturnWrapped(DomainOperator):
    """criterion's returned value transformed: sqrt (RMSE), halved."""

    def __init__(self, name: str, template: str, summary: str):
        self.name, self.template, self.summary = name, template, summary

    def sites(self, node, ctx):
        return int(isinstance(node, ast.Return) and node.value is not None and ctx.function == "criterion")

    def mutate(self, node, index, ctx):
        returned = node.value

        class _Fill(ast.NodeTransformer):
            def visit_Name(self, name):
                return returned if name.id == "VALUE" else name

        node.value = _Fill().visit(ast.parse(self.template, mode="eval").body)
        return node


class ReducedOverDim(DomainOperator):
    name, summary = "reduced_over_dim", "the mean/sum taken over dim=0 only (shape (1,), not a 0-dim tensor)"

    def sites(self, node, ctx):
        return int(_reduction(node))

    def mutate(self, node, index, ctx):
        node.keywords.append(ast.keyword(arg="dim", value=ast.Constant(0)))
        return node


class OperandsSwapped(DomainOperator):
    name, summary = "operands_swapped", "a - b written as b - a (and a / b as b / a)"

    def sites(self, node, ctx):
        return int(isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub | ast.Div))

    def mutate(self, node, index, ctx):
        node.left, node.right = node.right, node.left
        return node


class ParamReplaced(DomainOperator):
    name, summary = "param_replaced", "one parameter used where another belongs (w * w, yhat - yhat)"

    def sites(self, node, ctx):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in ctx.params:
            return len(ctx.params) - 1
        return 0

    def mutate(self, node, index, ctx):
        node.id = [p for p in ctx.params if p != node.id][index]
        return node


class ParensDropped(DomainOperator):
    name, summary = "parens_dropped", "(yhat - y) ** 2 written yhat - y ** 2: ** binds tighter"

    def sites(self, node, ctx):
        return int(isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and isinstance(node.left, ast.BinOp)
                   and isinstance(node.left.op, ast.Sub | ast.Add | ast.Mult | ast.Div))

    def mutate(self, node, index, ctx):
        inner = node.left
        return ast.BinOp(inner.left, inner.op, ast.BinOp(inner.right, ast.Pow(), node.right))


class ResultDiscarded(DomainOperator):
    name, summary = "result_discarded", "an in-place change written out of place, its result thrown away: w.sub(e), w - e"

    _OUT_OF_PLACE = {"sub_": "sub", "add_": "add", "mul_": "mul", "div_": "div", "zero_": "mul"}

    def sites(self, node, ctx):
        if isinstance(node, ast.AugAssign):
            return 1
        return int(isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Attribute)
                   and node.value.func.attr in self._OUT_OF_PLACE)

    def mutate(self, node, index, ctx):
        if isinstance(node, ast.AugAssign):
            return ast.Expr(ast.BinOp(_load(node.target), node.op, node.value))
        call = node.value
        if call.func.attr == "zero_":
            call.args = [ast.Constant(0)]  # w.grad.mul(0): a zero gradient, never stored
        call.func.attr = self._OUT_OF_PLACE[call.func.attr]
        return node


class GlobalUsed(DomainOperator):
    name, summary = "global_used", "a parameter renamed, so the body reads the notebook's global of that name"

    def sites(self, node, ctx):
        return len(node.args.args) if isinstance(node, ast.FunctionDef) else 0

    def mutate(self, node, index, ctx):
        argument = node.args.args[index]
        argument.arg = {"w": "weight", "lr": "rate", "x": "inputs", "y": "targets", "yhat": "predictions"}.get(
            argument.arg, argument.arg + "_arg")
        return node


DOMAIN_OPERATORS: tuple[DomainOperator, ...] = (
    MeanSumSwapped(),
    AttributeRemoved("data"),
    AttributeRemoved("grad"),
    DataAdded(),
    MethodAdded("detach_added", "detach"),
    MethodAdded("item_added", "item"),
    MethodAdded("double_added", "double"),
    MethodAdded("view_flat", "view", -1, summary="shape changed: .view(-1) appended to a tensor"),
    MethodAdded("unsqueezed", "unsqueeze", -1, summary="shape changed: .unsqueeze(-1) appended to a tensor"),
    ZeroingRemoved(),
    ZeroingTarget(),
    CallDropped(),
    StatementAppended("zero_in_update", ("update",), "{w}.grad.zero_()", "update also zeroes the gradient it was given"),
    StatementAppended("return_added", ("update", "zero_grad"), "return {w}", "the step returns w instead of None"),
    Rebinding(),
    InPlace(),
    NoGradRemoved(),
    NoGradAdded(),
    StepSign(),
    LrDropped(),
    LrScaled("lr_doubled", 2.0),
    LrScaled("lr_halved", 0.5),
    StepClamped(),
    SquareOfMean(),
    AbsoluteError(),
    ReturnWrapped("root_loss", "torch.sqrt(VALUE)", "criterion returns the RMSE, the square root of the MSE"),
    ReturnWrapped("halved_loss", "VALUE / 2", "criterion returns half the MSE"),
    ReducedOverDim(),
    OperandsSwapped(),
    ParensDropped(),
    ResultDiscarded(),
    ParamReplaced(),
    GlobalUsed(),
)


class _Applier(ast.NodeTransformer):
    """Walks a tree in pre-order, counting an operator's sites; replaces the `target`-th one."""

    def __init__(self, operator: DomainOperator, ctx: Context, target: int | None):
        self.operator, self.ctx, self.target = operator, ctx, target
        self.seen, self.applied = 0, False

    def visit(self, node):
        sites = self.operator.sites(node, self.ctx)
        if self.target is not None and not self.applied and self.seen <= self.target < self.seen + sites:
            self.applied = True
            return self.operator.mutate(node, self.target - self.seen, self.ctx)
        self.seen += sites
        return self.generic_visit(node)


def _annotate_parents(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            child.parent_node = node


def _fill_empty_bodies(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.With | ast.If) and not node.body:
            node.body = [ast.Pass()]


def _context(tree: ast.Module) -> Context:
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef))
    return Context(function.name, tuple(a.arg for a in function.args.args))


def function_params(source: str) -> list[str]:
    return list(_context(ast.parse(source)).params)


def domain_mutants(operator: DomainOperator, source: str) -> Iterator[str]:
    """Every mutant `operator` makes of the function in `source`, site by site."""
    tree = ast.parse(source)
    _annotate_parents(tree)
    ctx = _context(tree)
    counter = _Applier(operator, ctx, None)
    counter.visit(tree)
    for target in range(counter.seen):
        tree = ast.parse(source)
        _annotate_parents(tree)
        applier = _Applier(operator, ctx, target)
        mutated = applier.visit(tree)
        assert applier.applied
        _fill_empty_bodies(mutated)
        yield ast.unparse(ast.fix_missing_locations(mutated)) + "\n"
