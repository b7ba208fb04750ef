"""Judging one of the student's steps on inputs it was given: its result against the reference
step's on the same inputs. Each judge raises `Feedback` naming the misconception, or returns what
the next step needs.

The single-step checks (test_forward, test_loss, test_update, test_zero_grad) judge their hidden
cases with these, and blame.py judges each step of a check that runs several of them (gradient,
final_loss) with the same functions: a failure blamed on a step says what that step's own check
says. Expected values come from the reference only.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from autograder.checks.expect import close, described, expect_flag, expect_tensor, observed
from autograder.checks.show import case, show, show_pair
from autograder.feedback.case import Case, rounded
from autograder.feedback.misconceptions import Feedback


def forward_result(out, x, w, reference, tol, device: str,
                   ignores_w: Callable[[torch.Tensor], bool] | None = None) -> torch.Tensor:
    """forward(x, w)'s result (a probe's description): the reference's shape, dtype and values,
    on the autograd graph. Returns it as a tensor. `ignores_w(got)`, if given, tells a wrong
    value that does not depend on w."""
    expected = reference.forward(x, w)
    example = case({"x": x, "w": w}, {"": expected})
    got = expect_tensor(out, what="It returned", example=example, device=device, shape=expected.shape,
                        not_tensor="forward_not_tensor", wrong_shape="forward_wrong_shape",
                        wrong_dtype="forward_wrong_dtype")
    if not close(got, expected, tol):
        wanted, shown = show_pair(expected, got)
        wrong = case({"x": x, "w": w}, {"": wanted}, f"= {shown}")
        raise Feedback("forward_ignores_w" if ignores_w is not None and ignores_w(got) else "forward_wrong_value", wrong)
    if not (isinstance(out, dict) and out.get("has_grad_fn") is True):
        raise Feedback("forward_detached", example)
    return got


def _loss_look_alikes(yhat, y) -> dict[str, torch.Tensor]:
    """Values that common wrong losses give on these inputs, by misconception (fingerprints of
    mistakes, not expected values: those come from the reference)."""
    error = yhat - y
    pairwise = yhat.reshape(1, -1) - y.reshape(-1, 1)
    return {
        "loss_sum": (error**2).sum(),
        "loss_absolute": error.abs().mean(),
        "loss_square_of_mean": error.mean() ** 2,
        "loss_root": (error**2).mean().sqrt(),
        "loss_broadcast": (pairwise**2).mean(),
    }


def loss_result(out, yhat, y, reference, tol, device: str) -> torch.Tensor:
    """criterion(yhat, y)'s result: the reference's value as a 0-dim tensor on the graph."""
    expected = reference.criterion(yhat, y)
    inputs = {"yhat": yhat, "y": y}
    got = expect_tensor(out, what="It returned", example=case(inputs, {"": expected}), device=device,
                        not_tensor="loss_not_tensor")
    rows = yhat.numel()
    if tuple(got.shape) == (rows, rows) or (got.numel() == rows * rows and rows > 1):
        raise Feedback("loss_broadcast", case(inputs, {"": expected}, f"shape {tuple(got.shape)}"))
    if tuple(got.shape) != ():
        raise Feedback("loss_not_scalar", case(inputs, {"": expected}, f"shape {tuple(got.shape)}"))
    if not close(got, expected, tol):
        wanted, shown = show_pair(expected, got)
        wrong = case(inputs, {"": wanted}, shown)
        for misconception, value in _loss_look_alikes(yhat, y).items():
            if close(got, value, tol):
                raise Feedback(misconception, wrong)
        raise Feedback("loss_wrong_value", wrong)
    if not (isinstance(out, dict) and out.get("has_grad_fn") is True):
        raise Feedback("loss_detached", case(inputs, {"": expected}))
    return got


def reference_gradient(reference, x, y, w) -> torch.Tensor:
    """d loss / dw of the reference forward and criterion, in float64 (exact to float32's last
    bit, whatever order a student's float32 reduction sums in), as float32."""
    leaf = w.detach().double().requires_grad_(True)
    (grad,) = torch.autograd.grad(reference.criterion(reference.forward(x.double(), leaf), y.double()), leaf)
    return grad.float()


def gradient_result(grad, x, y, w, reference, tol) -> torch.Tensor:
    """w.grad after criterion(forward(x, w), y).backward(): the reference gradient."""
    expected = reference_gradient(reference, x, y, w)
    example = case({"w": w}, {"grad": expected})
    if grad is None:
        raise Feedback("gradient_none", example)
    grad = expect_tensor(grad, what="After backward(), w.grad is", example=example, shape=expected.shape,
                         wrong_shape="gradient_wrong_value")
    if not close(grad, expected, tol):
        wanted, shown = show_pair(expected, grad)
        raise Feedback("gradient_wrong_value", case({"w": w}, {"grad": wanted}, f"w.grad = {shown}"))
    return grad


def _reference_update(reference, w, lr, grad):
    """w and w.grad after the reference update."""
    leaf = w.detach().clone().requires_grad_(True)
    leaf.grad = grad.detach().clone()
    reference.update(leaf, lr)
    return leaf.detach(), leaf.grad


def update_result(seen, w, lr, grad, reference, tol, device: str) -> None:
    """What update(w, lr) left, with w.grad = grad: w moved by the reference step, in place, still
    a leaf that requires grad; w.grad as it was; None returned."""
    expected, grad_expected = _reference_update(reference, w, lr, grad)
    inputs = {"w": w, "lr": lr, "grad": grad}
    example = case(inputs, {"w": expected})
    got = expect_tensor(observed(seen, "w_after"), what="After update(w, lr), w is", example=example)
    where, data_device = observed(seen, "device"), torch.device(device).type
    if isinstance(where, str) and where != data_device:  # the probe sends w back on the grading device
        named = where if where.isalpha() and len(where) <= 8 else "another device"
        raise Feedback("wrong_device", example, f"After update(w, lr), w is on the {named} while the data are "
                                                f"on the {data_device}.")
    if got.shape != w.shape:
        raise Feedback("update_shape", case(inputs, {"w": expected}, f"w = {show(got.reshape(-1)[0])} with shape {tuple(got.shape)}"))
    if not close(got, expected, tol):
        wanted, shown = show_pair(expected, got)
        wrong = case(inputs, {"w": wanted}, f"w = {shown}")
        for misconception, value in (("update_rebinds", w), ("update_sign", w + lr * grad), ("update_no_lr", w - grad)):
            if close(got, value, tol):
                raise Feedback(misconception, wrong)
        moved, due = float((got - w).reshape(())), float((expected - w).reshape(()))
        if moved * due > 0:  # right direction, wrong size: a factor on lr, or a clamp
            raise Feedback("update_step_size", wrong, f"Your step is {rounded(moved / due)} times lr·grad.")
        raise Feedback("update_wrong_value", wrong)
    state = {key: expect_flag(observed(seen, key), what=f"After update, w.{key} is", example=example)
             for key in ("is_leaf", "requires_grad", "has_grad_fn")}
    if not (state["is_leaf"] and state["requires_grad"]) or state["has_grad_fn"]:
        text = f"is_leaf={state['is_leaf']}, requires_grad={state['requires_grad']}, has grad_fn={state['has_grad_fn']}"
        raise Feedback("update_not_leaf", example, f"After update: {text}.")
    grad_after = observed(seen, "grad_after")
    if grad_after is None:
        raise Feedback("update_changes_grad", case(inputs, {"grad_after_update": grad_expected}, "None"))
    grad_after = expect_tensor(grad_after, what="After update(w, lr), w.grad is",
                               example=case(inputs, {"grad_after_update": grad_expected}),
                               shape=grad_expected.shape, wrong_shape="update_changes_grad")
    if not close(grad_after, grad_expected, tol):
        raise Feedback("update_changes_grad", case(inputs, {"grad_after_update": grad_expected}, show(grad_after)))
    returns_none(seen, "update", example)


def reference_zero_grad(reference, w, grad):
    """(w, w.grad) after the reference zero_grad with w.grad = grad."""
    leaf = w.detach().clone().requires_grad_(True)
    leaf.grad = grad.detach().clone()
    reference.zero_grad(leaf)
    return leaf.detach(), leaf.grad


def zero_grad_result(seen, w, grad, reference, tol) -> Case:
    """What zero_grad(w) left, with w.grad = grad: w unchanged, w.grad zero or None (the contract
    allows both). Returns the case later judgments of the same call show."""
    w_expected, grad_expected = reference_zero_grad(reference, w, grad)
    inputs = {"w": w, "grad": grad}
    example = case(inputs, {"w": w_expected})
    w_after = expect_tensor(observed(seen, "w_after"), what="After zero_grad(w), w is", example=example)
    if w_after.numel() == 1 and w_after.abs().max().item() == 0.0:
        raise Feedback("zero_grad_weight", case(inputs, {"w": w_expected}, "w = 0"))
    if w_after.shape != w.shape or not close(w_after, w_expected, tol):
        raise Feedback("zero_grad_changed_w", case(inputs, {"w": w_expected}, f"w = {show(w_after)}"))
    grad_after = observed(seen, "grad_after")
    if grad_after is not None:  # None is as good as zeros
        grad_after = expect_tensor(grad_after, what="After zero_grad(w), w.grad is", example=example)
        reset = torch.zeros(()) if grad_expected is None else grad_expected  # the reference's w.grad
        if not close(grad_after.reshape(-1), reset.reshape(-1).expand(grad_after.numel()).to(grad_after.device), tol):
            raise Feedback("zero_grad_not_reset", case(inputs, {"w": w_expected},
                                                       f"w.grad afterwards = {show(grad_after.reshape(-1)[0])}"))
    return example


def returns_none(seen, step: str, example: Case) -> None:
    """A step that works in place returns None."""
    returned = observed(seen, "returned")
    if not (isinstance(returned, dict) and returned.get("kind") == "none"):
        raise Feedback("returns_value", example, f"{step} returned {described(returned)}.")
