"""Your forward + criterion, then backward(): w.grad must equal the gradient of the reference
loss (computed in float64). When it does not, the failure is blamed on forward or criterion if
one of them already departs from the reference on these inputs (blame.py)."""
from autograder.checks import blame
from autograder.checks.expect import observed
from autograder.checks.steps import gradient_result
from autograder.feedback.misconceptions import Feedback


def test_gradient(student, reference, hidden, tol, device):
    for rows in (20, 60):
        x, y = hidden.dataset(rows)
        w = hidden.uniform(-10.0, 10.0)
        seen = student.probe("gradient", step="criterion(forward(x, w), y).backward()", x=x, y=y, w=w)
        try:
            gradient_result(observed(seen, "grad"), x, y, w, reference, tol)
        except Feedback as failure:
            raise blame.in_gradient(failure, seen, x, y, w, reference, device) from None
