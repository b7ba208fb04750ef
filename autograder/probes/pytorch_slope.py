"""Probes: small trusted routines that call a student's step on given inputs and report what
they observe, as plain data. They run next to the student's code (in the sandbox, or in the
student's kernel on nbgrader's path) and never compute an expected answer: the reference stays
with the grader, which compares.

Each probe takes the student's namespace and keyword inputs (tensors already on the grading
device) and returns a dict of observations made of tensors, numbers, strings and None.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from autograder.assignment import PYTORCH_SLOPE
from autograder.provided import train_model

# The student functions each check needs, in the order a report should name them.
STEP_FUNCTIONS = PYTORCH_SLOPE.student_functions


MAX_VALUES = 100_000  # a returned tensor's values are sent up to this many elements


def describe(value: Any, max_values: int = MAX_VALUES) -> dict:
    """What a step returned, reduced to plain data the grader can judge (a tensor's values only
    up to `max_values` elements: its shape says the rest)."""
    if isinstance(value, torch.Tensor):
        detached = value.detach()
        return {
            "kind": "tensor",
            "type": type(value).__name__,
            "dtype": str(value.dtype).replace("torch.", ""),
            "shape": list(value.shape),
            "device": value.device.type,
            "requires_grad": bool(value.requires_grad),
            "has_grad_fn": value.grad_fn is not None,
            "is_leaf": bool(value.is_leaf),
            "value": detached.to("cpu").clone() if detached.numel() <= max_values else None,
        }
    if value is None:
        return {"kind": "none", "type": "NoneType"}
    if isinstance(value, bool):
        return {"kind": "other", "type": "bool"}
    if isinstance(value, (int, float)):
        return {"kind": "number", "type": type(value).__name__, "number": float(value)}
    module = type(value).__module__
    if module.startswith("numpy"):
        try:
            as_tensor = torch.as_tensor(value).to(torch.float64)
        except (TypeError, ValueError, RuntimeError):
            as_tensor = None
        if as_tensor is not None and as_tensor.numel() > max_values:
            as_tensor = None
        return {"kind": "ndarray", "type": f"{module}.{type(value).__name__}", "value": as_tensor}
    return {"kind": "other", "type": type(value).__name__}


def _leaf(value: torch.Tensor) -> torch.Tensor:
    return value.detach().clone().requires_grad_(True)


def _grad_or_none(w: torch.Tensor):
    return None if w.grad is None else w.grad.detach().clone()


def probe_forward(steps: dict, x: torch.Tensor, w: torch.Tensor) -> dict:
    w = _leaf(w)
    out = steps["forward"](x, w)
    observed = {"output": describe(out), "w_after": w.detach().clone()}
    if isinstance(out, torch.Tensor) and out.requires_grad:
        (slope_grad,) = torch.autograd.grad(out.sum(), w, allow_unused=True)
        observed["d_sum_dw"] = slope_grad
    return observed


def probe_loss(steps: dict, yhat: torch.Tensor, y: torch.Tensor) -> dict:
    yhat = _leaf(yhat)
    out = steps["criterion"](yhat, y)
    observed = {"output": describe(out)}
    if isinstance(out, torch.Tensor) and out.requires_grad:
        (observed["d_loss_dyhat"],) = torch.autograd.grad(out.sum(), yhat, allow_unused=True)
    return observed


def probe_gradient(steps: dict, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> dict:
    w = _leaf(w)
    yhat = steps["forward"](x, w)
    observed = {"forward_output": describe(yhat, max_values=x.numel())}  # what criterion was given (checks/blame.py)
    loss = steps["criterion"](yhat, y)
    observed["loss"] = describe(loss, max_values=1)
    if isinstance(loss, torch.Tensor) and loss.requires_grad:
        loss.backward()
    observed["grad"] = _grad_or_none(w)
    return observed


def _after_update(w: torch.Tensor, returned) -> dict:
    """What update left: w, its gradient and autograd state, and what it returned."""
    return {
        "returned": describe(returned, max_values=1),
        "w_after": w.detach().clone(),
        "grad_after": _grad_or_none(w),
        "is_leaf": bool(w.is_leaf),
        "requires_grad": bool(w.requires_grad),
        "has_grad_fn": w.grad_fn is not None,
        "dtype": str(w.dtype).replace("torch.", ""),
        "device": w.device.type,
    }


def probe_update(steps: dict, w: torch.Tensor, lr: float, grad: torch.Tensor) -> dict:
    w = _leaf(w)
    w.grad = grad.detach().clone()
    return _after_update(w, steps["update"](w, lr))


def _after_zero_grad(w: torch.Tensor, returned) -> dict:
    """What zero_grad left: w and its gradient, and what it returned."""
    return {
        "returned": describe(returned, max_values=1),
        "w_after": w.detach().clone(),
        "grad_after": _grad_or_none(w),
        "requires_grad": bool(w.requires_grad),
    }


def probe_zero_grad(steps: dict, w: torch.Tensor, grad: torch.Tensor, coefficient: float) -> dict:
    w = _leaf(w)
    w.grad = grad.detach().clone()
    observed = _after_zero_grad(w, steps["zero_grad"](w))
    # Two backward passes with zero_grad between them: the gradient must not add up.
    twice = _leaf(w.detach())
    (twice * coefficient).backward()
    steps["zero_grad"](twice)
    (twice * coefficient).backward()
    observed["grad_after_two_passes"] = _grad_or_none(twice)
    return observed


def probe_train(steps: dict, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, lr: float, epochs: int) -> dict:
    w = _leaf(w)
    slopes = []  # w at the start of each epoch: a wrong step shows here even at the loss's noise floor
    losses = train_model(
        x, y, w, lr, epochs, steps["forward"], steps["criterion"], steps["update"], steps["zero_grad"],
        on_epoch=lambda epoch, w_value, loss: slopes.append(float(w_value)),
    )
    return {"losses": [float(v) for v in losses], "w_per_epoch": slopes, "w_final": float(w.detach().item())}


def probe_train_trace(steps: dict, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, lr: float, epochs: int) -> dict:
    """The provided loop again, recording what each step was given and gave back, in order, for
    the grader to find the first step whose result departs from the reference's when a check
    that runs them all fails (checks/blame.py). A step that raises ends the loop: the trace is
    what came before (the failure itself is what the "train" probe reported)."""
    w = _leaf(w)
    trace: list[dict] = []

    def forward(X, w_):
        out = steps["forward"](X, w_)
        trace.append({"step": "forward", "w": w_.detach().clone(), "output": describe(out, max_values=X.numel())})
        return out

    def criterion(yhat, Y):
        out = steps["criterion"](yhat, Y)
        trace.append({"step": "criterion", "output": describe(out, max_values=1)})
        return out

    def update(w_, lr_):
        before = {"w": w_.detach().clone(), "grad": _grad_or_none(w_)}  # the gradient backward() left
        returned = steps["update"](w_, lr_)
        trace.append({"step": "update", **before, "after": _after_update(w_, returned)})
        return returned

    def zero_grad(w_):
        before = {"w": w_.detach().clone()}
        returned = steps["zero_grad"](w_)
        trace.append({"step": "zero_grad", **before, "after": _after_zero_grad(w_, returned)})
        return returned

    try:
        train_model(x, y, w, lr, epochs, forward, criterion, update, zero_grad)
    except Exception:  # the trace up to the failing step is the answer
        pass
    return {"trace": trace}


PROBES: dict[str, Callable[..., dict]] = {
    "forward": probe_forward,
    "loss": probe_loss,
    "gradient": probe_gradient,
    "update": probe_update,
    "zero_grad": probe_zero_grad,
    "train": probe_train,
    "train_trace": probe_train_trace,
}

# Which student functions each probe calls: a missing one fails the probe before it runs.
PROBE_NEEDS = {
    "forward": ("forward",),
    "loss": ("criterion",),
    "gradient": ("forward", "criterion"),
    "update": ("update",),
    "zero_grad": ("zero_grad",),
    "train": STEP_FUNCTIONS,
    "train_trace": STEP_FUNCTIONS,
}
