"""Your forward + criterion, then backward(): w.grad must equal the gradient of the reference
loss (computed in float64), and agree with a float64 finite-difference estimate of your own loss."""
import torch

from autograder.checks.expect import close, expect_tensor, observed, optional_number
from autograder.checks.show import case, show_pair
from autograder.checks.tolerances import tolerance_for
from autograder.feedback.misconceptions import Feedback

STEP = 1e-3


def _reference_gradient(reference, x, y, w) -> torch.Tensor:
    """d loss / dw of the reference forward and criterion, in float64 (exact to float32's last
    bit, whatever order a student's float32 reduction sums in), as float32."""
    leaf = w.detach().double().requires_grad_(True)
    (grad,) = torch.autograd.grad(reference.criterion(reference.forward(x.double(), leaf), y.double()), leaf)
    return grad.float()


def test_gradient(student, reference, hidden, tol, device):
    for rows in (20, 60):
        x, y = hidden.dataset(rows)
        w = hidden.uniform(-10.0, 10.0)
        seen = student.probe(
            "gradient", step="criterion(forward(x, w), y).backward()", x=x, y=y, w=w, step_size=STEP
        )
        expected = _reference_gradient(reference, x, y, w)
        example = case({"w": w}, {"grad": expected})
        grad = observed(seen, "grad")
        if grad is None:
            raise Feedback("gradient_none", example)
        grad = expect_tensor(grad, what="After backward(), w.grad is", example=example, shape=expected.shape,
                             wrong_shape="gradient_wrong_value")
        if close(grad, expected, tol):
            continue
        wanted, shown = show_pair(expected, grad)
        wrong = case({"w": w}, {"grad": wanted}, f"w.grad = {shown}")
        if close(grad, expected * rows, tol):
            raise Feedback("gradient_sum", wrong)
        plus, minus = optional_number(observed(seen, "loss_plus")), optional_number(observed(seen, "loss_minus"))
        if plus is not None and minus is not None:
            estimate = torch.tensor((plus - minus) / (2 * STEP), dtype=torch.float32, device=grad.device)
            if close(grad, estimate, tolerance_for("finite_difference", device)):
                raise Feedback("gradient_wrong_loss", case({"w": w}, {"grad": wanted}, f"w.grad = {shown}",
                                                           f"your loss's slope: {show_pair(estimate, expected)[0]}"))
        raise Feedback("gradient_wrong_value", wrong)
