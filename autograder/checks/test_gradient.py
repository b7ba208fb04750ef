"""Your forward + criterion, then backward(): w.grad must equal the MSE gradient 2/N·Σ(wx−y)x,
and agree with a float64 finite-difference estimate of your own loss."""
import torch

from autograder.checks.show import case, close
from autograder.checks.tolerances import tolerance_for
from autograder.feedback.misconceptions import Feedback

STEP = 1e-3


def test_gradient(student, hidden, tol, device):
    for rows in (20, 60):
        x, y = hidden.dataset(rows)
        w = hidden.uniform(-10.0, 10.0)
        seen = student.probe(
            "gradient", step="criterion(forward(x, w), y).backward()", x=x, y=y, w=w, step_size=STEP
        )
        x64, y64, w64 = x.double(), y.double(), w.double()
        expected = (2.0 / rows * ((w64 * x64 - y64) * x64).sum()).float()
        example = case(w=w, expected_grad=expected)
        grad = seen["grad"]
        if grad is None:
            raise Feedback("gradient_none", example)
        if grad.numel() != 1:
            raise Feedback("gradient_wrong_value", example + f"; got w.grad of shape {tuple(grad.shape)}")
        grad = grad.reshape(())
        if close(grad, expected, tol):
            continue
        detail = f"; got {grad.item():.6g}"
        if close(grad, expected * rows, tol):
            raise Feedback("gradient_sum", example + detail)
        plus, minus = seen.get("loss_plus"), seen.get("loss_minus")
        if plus is not None and minus is not None:
            estimate = torch.tensor((plus - minus) / (2 * STEP), dtype=torch.float32, device=grad.device)
            if close(grad, estimate, tolerance_for("finite_difference", device)):
                raise Feedback("gradient_wrong_loss", example + detail + f" (your loss's slope: {estimate.item():.6g})")
        raise Feedback("gradient_wrong_value", example + detail)
