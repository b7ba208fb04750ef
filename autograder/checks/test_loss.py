"""criterion(yhat, y): the mean squared error as a 0-dim tensor, connected to yhat."""
import torch

from autograder.checks.expect import close, expect_tensor, observed
from autograder.checks.show import case, show_pair
from autograder.checks.steps import loss_result
from autograder.feedback.misconceptions import Feedback


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
        loss_result(observed(seen, "output"), yhat, y, reference, tol, hidden.device)
        inputs = {"yhat": yhat, "y": y}
        grad = observed(seen, "d_loss_dyhat")
        if grad is None:
            raise Feedback("loss_detached", case(inputs, {"": reference.criterion(yhat, y)}))
        expected_grad = _reference_gradient(reference, yhat, y)
        grad_case = case(inputs, {"d_loss_dyhat": expected_grad})
        grad = expect_tensor(grad, what="Its gradient with respect to yhat is", example=grad_case, shape=expected_grad.shape,
                             wrong_shape="loss_wrong_value")
        if not close(grad, expected_grad, tol):
            raise Feedback("loss_wrong_value", case(inputs, {"d_loss_dyhat": expected_grad}, f"d_loss_dyhat = {show_pair(expected_grad, grad)[1]}"),
                           "Its gradient with respect to yhat is not 2(ŷ−y)/N.")
