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


def describe(value: Any) -> dict:
    """What a step returned, reduced to plain data the grader can judge."""
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
            "value": detached.to("cpu").clone() if detached.numel() <= 100_000 else None,
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


def _float_loss(steps: dict, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor):
    """The student's forward + criterion as a plain float, or None if it does not give one."""
    try:
        value = steps["criterion"](steps["forward"](x, w), y)
        return float(value.item() if isinstance(value, torch.Tensor) else value)
    except Exception:  # the float64 estimate is a hint only; its failure is not the student's error
        return None


def probe_gradient(steps: dict, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, step_size: float) -> dict:
    w = _leaf(w)
    loss = steps["criterion"](steps["forward"](x, w), y)
    observed = {"loss": describe(loss)}
    if isinstance(loss, torch.Tensor) and loss.requires_grad:
        loss.backward()
    observed["grad"] = _grad_or_none(w)
    # Central differences of the student's own loss in float64: exact for a quadratic loss, so
    # the grader can tell "wrong loss, right calculus" from "right loss, broken gradient".
    x64, y64 = x.double(), y.double()
    with torch.no_grad():
        centre = w.detach().double()
        observed["loss_plus"] = _float_loss(steps, x64, y64, centre + step_size)
        observed["loss_minus"] = _float_loss(steps, x64, y64, centre - step_size)
    return observed


def probe_update(steps: dict, w: torch.Tensor, lr: float, grad: torch.Tensor) -> dict:
    w = _leaf(w)
    w.grad = grad.detach().clone()
    returned = steps["update"](w, lr)
    return {
        "returned": describe(returned),
        "w_after": w.detach().clone(),
        "grad_after": _grad_or_none(w),
        "is_leaf": bool(w.is_leaf),
        "requires_grad": bool(w.requires_grad),
        "has_grad_fn": w.grad_fn is not None,
        "dtype": str(w.dtype).replace("torch.", ""),
        "device": w.device.type,
    }


def probe_zero_grad(steps: dict, w: torch.Tensor, grad: torch.Tensor, coefficient: float) -> dict:
    w = _leaf(w)
    w.grad = grad.detach().clone()
    returned = steps["zero_grad"](w)
    observed = {
        "returned": describe(returned),
        "w_after": w.detach().clone(),
        "grad_after": _grad_or_none(w),
        "requires_grad": bool(w.requires_grad),
    }
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


PROBES: dict[str, Callable[..., dict]] = {
    "forward": probe_forward,
    "loss": probe_loss,
    "gradient": probe_gradient,
    "update": probe_update,
    "zero_grad": probe_zero_grad,
    "train": probe_train,
}

# Which student functions each probe calls: a missing one fails the probe before it runs.
PROBE_NEEDS = {
    "forward": ("forward",),
    "loss": ("criterion",),
    "gradient": ("forward", "criterion"),
    "update": ("update",),
    "zero_grad": ("zero_grad",),
    "train": STEP_FUNCTIONS,
}
