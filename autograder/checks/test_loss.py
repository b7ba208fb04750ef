"""criterion(yhat, y): the mean squared error as a 0-dim tensor, connected to yhat."""
import torch

from autograder.checks.expect import close, expect_tensor, observed
from autograder.checks.show import case, show_pair
from autograder.feedback.misconceptions import Feedback


def _look_alikes(yhat, y):
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


def _reference_gradient(reference, yhat, y) -> torch.Tensor:
    """d loss / d yhat of the reference criterion."""
    leaf = yhat.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(reference.criterion(leaf, y), leaf)
    return grad


def test_loss(student, reference, hidden, tol):
    for shape in ((9, 1), (50, 1), (12,)):
        yhat = hidden.uniform(-5.0, 5.0, shape)
        y = hidden.uniform(-5.0, 5.0, shape)
        seen = student.probe("loss", step="criterion(yhat, y)", yhat=yhat, y=y)
        expected = reference.criterion(yhat, y)
        inputs = {"yhat": yhat, "y": y}
        example = case(inputs, {"": expected})
        out = observed(seen, "output")
        got = expect_tensor(out, what="It returned", example=example, device=hidden.device, not_tensor="loss_not_tensor")
        rows = yhat.numel()
        if tuple(got.shape) == (rows, rows) or (got.numel() == rows * rows and rows > 1):
            raise Feedback("loss_broadcast", case(inputs, {"": expected}, f"shape {tuple(got.shape)}"))
        if tuple(got.shape) != ():
            raise Feedback("loss_not_scalar", case(inputs, {"": expected}, f"shape {tuple(got.shape)}"))
        if not close(got, expected, tol):
            wanted, shown = show_pair(expected, got)
            wrong = case(inputs, {"": wanted}, shown)
            for misconception, value in _look_alikes(yhat, y).items():
                if close(got, value, tol):
                    raise Feedback(misconception, wrong)
            raise Feedback("loss_wrong_value", wrong)
        grad = observed(seen, "d_loss_dyhat")
        if not (isinstance(out, dict) and out.get("has_grad_fn") is True) or grad is None:
            raise Feedback("loss_detached", example)
        expected_grad = _reference_gradient(reference, yhat, y)
        grad_case = case(inputs, {"d_loss_dyhat": expected_grad})
        grad = expect_tensor(grad, what="Its gradient with respect to yhat is", example=grad_case, shape=expected_grad.shape,
                             wrong_shape="loss_wrong_value")
        if not close(grad, expected_grad, tol):
            raise Feedback("loss_wrong_value", case(inputs, {"d_loss_dyhat": expected_grad}, f"d_loss_dyhat = {show_pair(expected_grad, grad)[1]}"),
                           "Its gradient with respect to yhat is not 2(ŷ−y)/N.")
