"""zero_grad(w): afterwards w.grad is zero (or None) and w is unchanged; with zero_grad between
two backward passes the gradient does not add up. Expected values are the reference's."""
from autograder.checks.expect import close, expect_tensor, observed
from autograder.checks.show import case, show
from autograder.checks.steps import returns_none, zero_grad_result
from autograder.feedback.misconceptions import Feedback


def _reference_two_passes(reference, w, coefficient):
    """w.grad after backward, the reference zero_grad, backward."""
    twice = w.detach().clone().requires_grad_(True)
    (twice * coefficient).backward()
    reference.zero_grad(twice)
    (twice * coefficient).backward()
    return twice.grad


def test_zero_grad(student, reference, hidden, tol):
    for _ in range(2):
        w = hidden.uniform(1.0, 10.0) * (1 if hidden.scalar(0, 1) > 0.5 else -1)
        grad = hidden.signed_log_uniform(0.1, 1e3)
        coefficient = hidden.scalar(1.0, 5.0)
        seen = student.probe("zero_grad", step="zero_grad(w)", w=w, grad=grad, coefficient=coefficient)
        example = zero_grad_result(seen, w, grad, reference, tol)
        twice_expected = _reference_two_passes(reference, w, coefficient)
        steps = {"steps": f"backward of {show(coefficient)}·w, zero_grad(w), backward again"}
        passes = case(steps, {"grad": twice_expected})
        twice = observed(seen, "grad_after_two_passes")
        twice = None if twice is None else expect_tensor(twice, what="After the second backward, w.grad is", example=passes)
        if twice is None or twice.numel() != 1 or not close(twice.reshape(()), twice_expected.reshape(()), tol):
            got = "None" if twice is None else show(twice.reshape(-1)[0])
            raise Feedback("zero_grad_not_reset", case(steps, {"grad": twice_expected}, f"w.grad = {got}"))
        returns_none(seen, "zero_grad", example)
