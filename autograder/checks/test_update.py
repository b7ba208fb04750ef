"""update(w, lr): w ← w − lr·w.grad, in place on the caller's tensor, which stays a leaf that
requires grad and has no grad_fn. The expected w is the reference update's."""
import torch

from autograder.checks.expect import close, described, expect_flag, expect_tensor, observed
from autograder.checks.show import case, show, show_pair
from autograder.feedback.case import rounded
from autograder.feedback.misconceptions import Feedback

# Orders of magnitude of the step lr·w.grad (either sign), one round each, from 0.01 to 1e5: an
# update that clamps or rescales the step cannot pass (the old draw, w.grad in [-20, 20], let a
# clamp at ±50 score full marks). The gradient is the drawn step over lr.
STEP_DECADES = ((0.01, 0.1), (0.1, 10.0), (10.0, 1e3), (1e3, 1e5))


def _reference_update(reference, w, lr, grad):
    """w and w.grad after the reference update."""
    leaf = w.detach().clone().requires_grad_(True)
    leaf.grad = grad.detach().clone()
    reference.update(leaf, lr)
    return leaf.detach(), leaf.grad


def test_update(student, reference, hidden, tol):
    for low, high in STEP_DECADES:
        w = hidden.uniform(-10.0, 10.0)
        lr = hidden.scalar(0.01, 0.5)
        grad = hidden.signed_log_uniform(low, high) / lr
        seen = student.probe("update", step="update(w, lr)", w=w, lr=lr, grad=grad)
        expected, grad_expected = _reference_update(reference, w, lr, grad)
        inputs = {"w": w, "lr": lr, "grad": grad}
        example = case(inputs, {"w": expected})
        got = expect_tensor(observed(seen, "w_after"), what="After update(w, lr), w is", example=example)
        where, data_device = observed(seen, "device"), torch.device(hidden.device).type
        if isinstance(where, str) and where != data_device:  # the probe sends w back on the grading device
            named = where if where.isalpha() and len(where) <= 8 else "another device"
            raise Feedback("wrong_device", example, f"After update(w, lr), w is on the {named} while the data are "
                                                    f"on the {data_device}.")
        if got.shape != w.shape:
            raise Feedback("update_shape", case(inputs, {"w": expected}, f"w = {show(got.reshape(-1)[0])} with shape {tuple(got.shape)}"))
        if not close(got, expected, tol):
            wanted, shown = show_pair(expected, got)
            wrong = case(inputs, {"w": wanted}, f"w = {shown}")
            for misconception, value in (
                ("update_rebinds", w),
                ("update_sign", w + lr * grad),
                ("update_no_lr", w - grad),
            ):
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
        grad_case = case(inputs, {"grad_after_update": grad_expected})
        if grad_after is None:
            raise Feedback("update_changes_grad", case(inputs, {"grad_after_update": grad_expected}, "None"))
        grad_after = expect_tensor(grad_after, what="After update(w, lr), w.grad is", example=grad_case,
                                   shape=grad_expected.shape, wrong_shape="update_changes_grad")
        if not close(grad_after, grad_expected, tol):
            raise Feedback("update_changes_grad", case(inputs, {"grad_after_update": grad_expected}, show(grad_after)))
        returned = observed(seen, "returned")
        if not (isinstance(returned, dict) and returned.get("kind") == "none"):
            raise Feedback("returns_value", example, f"update returned {described(returned)}.")
