"""criterion(yhat, y): the mean squared error as a 0-dim tensor, connected to yhat."""

from autograder.checks.show import case, close
from autograder.feedback.misconceptions import Feedback


def _look_alikes(yhat, y):
    """Values that common wrong losses give on these inputs, by misconception."""
    error = yhat - y
    pairwise = yhat.reshape(1, -1) - y.reshape(-1, 1)
    return {
        "loss_sum": (error**2).sum(),
        "loss_absolute": error.abs().mean(),
        "loss_square_of_mean": error.mean() ** 2,
        "loss_root": (error**2).mean().sqrt(),
        "loss_broadcast": (pairwise**2).mean(),
    }


def test_loss(student, reference, hidden, tol):
    for shape in ((9, 1), (50, 1), (12,)):
        yhat = hidden.uniform(-5.0, 5.0, shape)
        y = hidden.uniform(-5.0, 5.0, shape)
        seen = student.probe("loss", step="criterion(yhat, y)", yhat=yhat, y=y)
        expected = reference.criterion(yhat, y)
        out = seen["output"]
        example = case(yhat=yhat, y=y, expected=expected)
        if out["kind"] != "tensor":
            raise Feedback("loss_not_tensor", example, f"It returned a {out['type']}.")
        got = out["value"]
        rows = yhat.numel()
        if out["shape"] == [rows, rows] or (got is not None and got.numel() == rows * rows and rows > 1):
            raise Feedback("loss_broadcast", example + f"; got shape {tuple(out['shape'])}")
        if out["shape"] != []:
            raise Feedback("loss_not_scalar", example + f"; got shape {tuple(out['shape'])}")
        if not close(got, expected, tol):
            for misconception, value in _look_alikes(yhat, y).items():
                if close(got, value, tol):
                    raise Feedback(misconception, example + f"; got {got.item():.6g}")
            raise Feedback("loss_wrong_value", example + f"; got {got.item():.6g}")
        grad = seen.get("d_loss_dyhat")
        if not out["has_grad_fn"] or grad is None:
            raise Feedback("loss_detached", example)
        if not close(grad, 2 * (yhat - y) / rows, tol):
            raise Feedback("loss_wrong_value", example, "Its gradient with respect to yhat is not 2(ŷ−y)/N.")
