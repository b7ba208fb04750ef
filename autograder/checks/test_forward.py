"""forward(x, w): predictions w·x, same shape and dtype as x, connected to w in the graph."""
import torch

from autograder.checks.expect import close, expect_tensor, observed
from autograder.checks.show import case, show_pair
from autograder.checks.steps import forward_result
from autograder.checks.tolerances import tolerance_for
from autograder.feedback.misconceptions import Feedback


def test_forward(student, reference, hidden, tol):
    for rows in (1, 7, 60):
        x = hidden.column(rows)
        w = hidden.uniform(-8.0, 8.0)
        seen = student.probe("forward", step="forward(x, w)", x=x, w=w)
        forward_result(observed(seen, "output"), x, w, reference, tol, hidden.device,
                       ignores_w=lambda got, x=x, w=w: _same_for_other_w(student, x, w, got, tol))
        slope = observed(seen, "d_sum_dw")
        if slope is None:
            raise Feedback("forward_detached", case({"x": x, "w": w}, {"": reference.forward(x, w)}))
        expected_slope = _reference_slope(reference, x, w)
        slope = expect_tensor(slope, what="The gradient of sum(forward(x, w)) with respect to w is",
                              example=case({"x": x, "w": w}, {"d_sum_dw": expected_slope}), shape=expected_slope.shape,
                              wrong_shape="forward_wrong_value")
        if not close(slope, expected_slope, tolerance_for("forward_gradient", hidden.device)):
            wanted, shown = show_pair(expected_slope, slope)
            raise Feedback("forward_wrong_value", case({"x": x, "w": w}, {"d_sum_dw": wanted}, f"d_sum_dw = {shown}"),
                           "Its gradient with respect to w is not Σx.")


def _reference_slope(reference, x, w) -> torch.Tensor:
    """d Σ forward(x, w) / dw of the reference forward."""
    leaf = w.detach().clone().requires_grad_(True)
    (slope,) = torch.autograd.grad(reference.forward(x, leaf).sum(), leaf)
    return slope


def _same_for_other_w(student, x, w, got, tol) -> bool:
    """Does forward give the same result for a different w (a hard-coded slope)?"""
    again = observed(student.probe("forward", step="forward(x, w)", x=x, w=w + 1.5), "output")
    value = again.get("value") if isinstance(again, dict) and again.get("kind") == "tensor" else None
    return isinstance(value, torch.Tensor) and value.dtype == got.dtype and close(value, got, tol)
