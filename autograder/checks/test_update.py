"""update(w, lr): w ← w − lr·w.grad, in place on the caller's tensor, which stays a leaf that
requires grad and has no grad_fn. The expected w is the reference update's."""
from autograder.checks.steps import update_result

# Orders of magnitude of the step lr·w.grad (either sign), one round each, from 0.01 to 1e5: an
# update that clamps or rescales the step cannot pass (the old draw, w.grad in [-20, 20], let a
# clamp at ±50 score full marks). The gradient is the drawn step over lr.
STEP_DECADES = ((0.01, 0.1), (0.1, 10.0), (10.0, 1e3), (1e3, 1e5))


def test_update(student, reference, hidden, tol):
    for low, high in STEP_DECADES:
        w = hidden.uniform(-10.0, 10.0)
        lr = hidden.scalar(0.01, 0.5)
        grad = hidden.signed_log_uniform(low, high) / lr
        seen = student.probe("update", step="update(w, lr)", w=w, lr=lr, grad=grad)
        update_result(seen, w, lr, grad, reference, tol, hidden.device)
