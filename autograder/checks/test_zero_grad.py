"""zero_grad(w): afterwards w.grad is zero (or None) and w is unchanged; with zero_grad between
two backward passes the gradient does not add up. Expected values are the reference's."""
import torch

from autograder.checks.expect import close, described, expect_tensor, observed
from autograder.checks.show import case, show
from autograder.feedback.misconceptions import Feedback


def _reference_zero_grad(reference, w, grad, coefficient):
    """(w, w.grad) after the reference zero_grad, and w.grad after backward, zero_grad, backward."""
    leaf = w.detach().clone().requires_grad_(True)
    leaf.grad = grad.detach().clone()
    reference.zero_grad(leaf)
    twice = w.detach().clone().requires_grad_(True)
    (twice * coefficient).backward()
    reference.zero_grad(twice)
    (twice * coefficient).backward()
    return leaf.detach(), leaf.grad, twice.grad


def test_zero_grad(student, reference, hidden, tol):
    for _ in range(2):
        w = hidden.uniform(1.0, 10.0) * (1 if hidden.scalar(0, 1) > 0.5 else -1)
        grad = hidden.signed_log_uniform(0.1, 1e3)
        coefficient = hidden.scalar(1.0, 5.0)
        seen = student.probe("zero_grad", step="zero_grad(w)", w=w, grad=grad, coefficient=coefficient)
        w_expected, grad_expected, twice_expected = _reference_zero_grad(reference, w, grad, coefficient)
        inputs = {"w": w, "grad": grad}
        example = case(inputs, {"w": w_expected})
        w_after = expect_tensor(observed(seen, "w_after"), what="After zero_grad(w), w is", example=example)
        if w_after.numel() == 1 and w_after.abs().max().item() == 0.0:
            raise Feedback("zero_grad_weight", case(inputs, {"w": w_expected}, "w = 0"))
        if w_after.shape != w.shape or not close(w_after, w_expected, tol):
            raise Feedback("zero_grad_changed_w", case(inputs, {"w": w_expected}, f"w = {show(w_after)}"))
        grad_after = observed(seen, "grad_after")
        if grad_after is not None:  # None is as good as zeros (the contract allows both)
            grad_after = expect_tensor(grad_after, what="After zero_grad(w), w.grad is", example=example)
            reset = torch.zeros(()) if grad_expected is None else grad_expected  # the reference's w.grad
            if not close(grad_after.reshape(-1), reset.reshape(-1).expand(grad_after.numel()).to(grad_after.device), tol):
                raise Feedback("zero_grad_not_reset", case(inputs, {"w": w_expected},
                                                           f"w.grad afterwards = {show(grad_after.reshape(-1)[0])}"))
        steps = {"steps": f"backward of {show(coefficient)}·w, zero_grad(w), backward again"}
        passes = case(steps, {"grad": twice_expected})
        twice = observed(seen, "grad_after_two_passes")
        twice = None if twice is None else expect_tensor(twice, what="After the second backward, w.grad is", example=passes)
        if twice is None or twice.numel() != 1 or not close(twice.reshape(()), twice_expected.reshape(()), tol):
            got = "None" if twice is None else show(twice.reshape(-1)[0])
            raise Feedback("zero_grad_not_reset", case(steps, {"grad": twice_expected}, f"w.grad = {got}"))
        returned = observed(seen, "returned")
        if not (isinstance(returned, dict) and returned.get("kind") == "none"):
            raise Feedback("returns_value", example, f"zero_grad returned {described(returned)}.")
