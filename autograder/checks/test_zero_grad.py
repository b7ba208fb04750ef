"""zero_grad(w): afterwards w.grad is zero (or None) and w is unchanged; with zero_grad between
two backward passes the gradient does not add up."""
import torch

from autograder.checks.show import case, close
from autograder.feedback.misconceptions import Feedback


def test_zero_grad(student, hidden, tol):
    for _ in range(2):
        w = hidden.uniform(1.0, 10.0) * (1 if hidden.scalar(0, 1) > 0.5 else -1)
        grad = hidden.uniform(1.0, 20.0)
        coefficient = hidden.scalar(1.0, 5.0)
        seen = student.probe("zero_grad", step="zero_grad(w)", w=w, grad=grad, coefficient=coefficient)
        example = case(w=w, grad=grad)
        w_after = seen["w_after"]
        if w_after.numel() == 1 and w_after.abs().max().item() == 0.0:
            raise Feedback("zero_grad_weight", example + "; got w = 0")
        if not close(w_after.reshape(w.shape), w, tol):
            raise Feedback("zero_grad_changed_w", example + f"; got w = {w_after.reshape(-1)[0].item():.6g}")
        grad_after = seen["grad_after"]
        if grad_after is not None and bool((grad_after != 0).any()):
            raise Feedback("zero_grad_not_reset", example + f"; w.grad afterwards = {grad_after.reshape(-1)[0].item():.6g}")
        twice = seen["grad_after_two_passes"]
        if twice is None or not close(twice.reshape(()), torch.tensor(coefficient, device=twice.device), tol):
            got = "None" if twice is None else f"{twice.reshape(-1)[0].item():.6g}"
            raise Feedback(
                "zero_grad_not_reset",
                f"Case: backward of {coefficient:g}·w, zero_grad(w), backward again: expected w.grad = {coefficient:g}; got {got}",
            )
