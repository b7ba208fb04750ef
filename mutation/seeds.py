"""The correct code the mutants are made from: the reference's four student steps
(solutions/pytorch_slope.py) and a few other correct ways students write them.

The alternatives give the mutation operators the constructs students use and the reference
lacks (a `no_grad` block, a decorator, an `if w.grad is not None` guard, `w -= ...`, a local
variable, a lambda default), so that mutants cover them too. Each seed must itself score full marks: `make
mutation` grades them alongside the mutants and reports any that does not (a check that
rejects correct code).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from autograder.assignment import REFERENCE_FILE

STUDENT_FUNCTIONS = ("forward", "criterion", "update", "zero_grad")


@dataclass(frozen=True)
class Seed:
    name: str  # short id: "reference" or what makes the alternative different
    function: str  # one of STUDENT_FUNCTIONS
    source: str  # the function's definition, without its docstring


def _without_docstring(function: ast.FunctionDef) -> ast.FunctionDef:
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
        function.body = body[1:] or [ast.Pass()]
    return function


def reference_seeds(path=REFERENCE_FILE) -> list[Seed]:
    """The reference's four functions, as it defines them (docstrings dropped: they do nothing)."""
    module = ast.parse(path.read_text())
    found = {node.name: node for node in module.body if isinstance(node, ast.FunctionDef)}
    return [Seed("reference", name, ast.unparse(_without_docstring(found[name])) + "\n") for name in STUDENT_FUNCTIONS]


# Other correct solutions, as students write them.
ALTERNATIVES: tuple[Seed, ...] = (
    Seed("local", "forward", "def forward(x, w):\n    yhat = w * x\n    return yhat\n"),
    Seed("method_mean", "criterion", "def criterion(yhat, y):\n    error = yhat - y\n    return (error ** 2).mean()\n"),
    Seed("sum_over_len", "criterion", "def criterion(yhat, y):\n    return torch.sum((yhat - y) ** 2) / len(y)\n"),
    # A helper as a lambda default: making a lambda runs nothing, so the clean rooms accept it (issue 26).
    Seed("lambda_default", "criterion",
         "def criterion(yhat, y, square=lambda d: d ** 2):\n    return square(yhat - y).mean()\n"),
    Seed("no_grad_block", "update", "def update(w, lr):\n    with torch.no_grad():\n        w -= lr * w.grad\n"),
    Seed("decorated", "update", "@torch.no_grad()\ndef update(w, lr):\n    w.sub_(lr * w.grad)\n"),
    Seed("grad_disabled", "update",
         "def update(w, lr):\n    with torch.set_grad_enabled(False):\n        w.add_(-lr * w.grad)\n"),
    Seed("guarded", "zero_grad", "def zero_grad(w):\n    if w.grad is not None:\n        w.grad.zero_()\n"),
    Seed("set_to_none", "zero_grad", "def zero_grad(w):\n    w.grad = None\n"),
)


def all_seeds() -> list[Seed]:
    """Every seed, grouped by student function in the contract's order, the reference first."""
    seeds = reference_seeds() + list(ALTERNATIVES)
    return sorted(seeds, key=lambda s: (STUDENT_FUNCTIONS.index(s.function), s.name != "reference"))
