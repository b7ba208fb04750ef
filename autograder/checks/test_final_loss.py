"""The provided training loop with all four of your steps, on hidden data: the loss history
and the final w must match the reference within tolerance, and the loss must fall."""
import math

from autograder.checks.show import case
from autograder.feedback.misconceptions import Feedback
from autograder.provided import train_model

EPOCHS = 12


def test_final_loss(student, reference, hidden, tol):
    x, y = hidden.dataset(60)
    w0 = hidden.uniform(-15.0, 15.0)
    lr = hidden.scalar(0.05, 0.15)
    seen = student.probe("train", step="train_model(...) with your steps", x=x, y=y, w=w0, lr=lr, epochs=EPOCHS)
    w_ref = w0.detach().clone().requires_grad_(True)
    expected = train_model(x, y, w_ref, lr, EPOCHS, reference.forward, reference.criterion, reference.update, reference.zero_grad)
    losses, w_final = seen["losses"], seen["w_final"]
    example = case(w0=w0, lr=lr) + f", {EPOCHS} epochs"
    if len(losses) != EPOCHS or not all(math.isfinite(v) for v in losses) or losses[-1] >= losses[0]:
        raise Feedback("training_diverges", example + f"; losses: {_first_last(losses)}")
    for epoch, (got, want) in enumerate(zip(losses, expected, strict=False)):
        if not math.isclose(got, want, rel_tol=tol.rtol, abs_tol=tol.atol):
            raise Feedback("training_wrong_history", example + f"; epoch {epoch}: expected loss {want:.6g}, got {got:.6g}")
    if not math.isclose(w_final, w_ref.item(), rel_tol=tol.rtol, abs_tol=tol.atol):
        raise Feedback("training_wrong_history", example + f"; final w: expected {w_ref.item():.6g}, got {w_final:.6g}")


def _first_last(losses) -> str:
    if not losses:
        return "none recorded"
    return f"first {losses[0]:.6g}, last {losses[-1]:.6g}"
