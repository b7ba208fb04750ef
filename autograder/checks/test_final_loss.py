"""The provided training loop with all four of your steps, on hidden data: the loss and w of
every epoch and the final w must match the reference's within tolerance, and the loss must fall.
w is compared as well as the loss because most epochs sit at the loss's noise floor, where a
wrong w barely moves the loss. A failure is blamed on the first step of the loop whose result
departs from the reference's (blame.py)."""
import math

from autograder.checks import blame
from autograder.checks.expect import expect_numbers, observed
from autograder.checks.show import case
from autograder.feedback.case import rounded
from autograder.feedback.misconceptions import Feedback
from autograder.provided import train_model

EPOCHS = 12


def _reference_training(reference, x, y, w0, lr):
    """Loss per epoch, w at the start of each epoch, and the final w of the reference steps."""
    w = w0.detach().clone().requires_grad_(True)
    slopes = []
    losses = train_model(x, y, w, lr, EPOCHS, reference.forward, reference.criterion, reference.update,
                         reference.zero_grad, on_epoch=lambda epoch, w_value, loss: slopes.append(w_value))
    return losses, slopes, w.item()


def test_final_loss(student, reference, hidden, tol, device):
    x, y = hidden.dataset(60)
    w0 = hidden.uniform(-15.0, 15.0)
    lr = hidden.scalar(0.05, 0.15)
    inputs = {"x": x, "y": y, "w": w0, "lr": lr, "epochs": EPOCHS}
    try:
        _judge_training(student, reference, inputs, tol)
    except Feedback as failure:
        raise blame.in_training(failure, student, inputs, reference, device) from None


def _judge_training(student, reference, inputs, tol):
    x, y, w0, lr = inputs["x"], inputs["y"], inputs["w"], inputs["lr"]
    seen = student.probe("train", step="train_model(X, Y, w, lr, epochs, forward, criterion, update, zero_grad)", **inputs)
    want_losses, want_slopes, want_final = _reference_training(reference, x, y, w0, lr)
    shown = {"w0": w0, "lr": lr, "epochs": EPOCHS}  # the case a failure shows
    example = case(shown)
    losses = expect_numbers(observed(seen, "losses"), what="The loss history is", example=example)
    slopes = expect_numbers(observed(seen, "w_per_epoch"), what="The w history is", example=example)
    final = expect_numbers([observed(seen, "w_final")], what="The final w is", example=example)[0]
    # Diverging means the loss never gets below where it started (or stops being a number): a
    # property of the steps, not of where an oscillation happens to be at the last epoch (an
    # accumulating gradient oscillates forever; its last loss is above or below the first by chance).
    if len(losses) != EPOCHS or not all(math.isfinite(v) for v in losses) or min(losses[1:]) >= losses[0]:
        raise Feedback("training_diverges", case(shown, got=f"losses {_first_last(losses)}"))
    if len(slopes) != EPOCHS:
        raise Feedback("unexpected_result", case(shown, got=f"w recorded at {len(slopes)} epochs"))
    for epoch in range(EPOCHS):
        for what, got, want in (("w", slopes[epoch], want_slopes[epoch]), ("loss", losses[epoch], want_losses[epoch])):
            if not math.isclose(got, want, rel_tol=tol.rtol, abs_tol=tol.atol):
                raise Feedback("training_wrong_history",
                               case(shown, {f"{what}_at_epoch_{epoch}": want}, f"{what} = {rounded(got)}"))
    if not math.isclose(final, want_final, rel_tol=tol.rtol, abs_tol=tol.atol):
        raise Feedback("training_wrong_history", case(shown, {"final_w": want_final}, f"final w = {rounded(final)}"))


def _first_last(losses) -> str:
    if not losses:
        return "none recorded"
    return f"first {rounded(losses[0])}, last {rounded(losses[-1])}"
