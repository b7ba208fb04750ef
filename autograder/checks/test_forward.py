"""forward(x, w): predictions w·x, same shape and dtype as x, connected to w in the graph."""
import torch

from autograder.checks.show import case, close
from autograder.feedback.misconceptions import Feedback


def test_forward(student, reference, hidden, tol):
    for rows in (1, 7, 60):
        x = hidden.column(rows)
        w = hidden.uniform(-8.0, 8.0)
        seen = student.probe("forward", step="forward(x, w)", x=x, w=w)
        expected = reference.forward(x, w)
        out = seen["output"]
        example = case(x=x, w=w, expected=expected)
        if out["kind"] != "tensor":
            raise Feedback("forward_not_tensor", example, f"It returned a {out['type']}.")
        got = out["value"]
        if out["shape"] != list(expected.shape):
            raise Feedback("forward_wrong_shape", example + f"; got shape {tuple(out['shape'])}")
        if out["dtype"] != "float32":
            raise Feedback("forward_wrong_dtype", example + f"; got dtype {out['dtype']}")
        if not close(got, expected, tol):
            if _same_for_other_w(student, x, w, got, tol):
                raise Feedback("forward_ignores_w", example + f"; got {case(got=got)[6:]}")
            raise Feedback("forward_wrong_value", example + f"; got {case(got=got)[6:]}")
        if not out["has_grad_fn"] or seen.get("d_sum_dw") is None:
            raise Feedback("forward_detached", example)
        if not torch.allclose(seen["d_sum_dw"].to(x.device), x.sum(), rtol=1e-4, atol=1e-4):
            raise Feedback("forward_wrong_value", example, "Its gradient with respect to w is not Σx.")


def _same_for_other_w(student, x, w, got, tol) -> bool:
    """Does forward give the same result for a different w (a hard-coded slope)?"""
    again = student.probe("forward", step="forward(x, w)", x=x, w=w + 1.5)["output"]
    return again["kind"] == "tensor" and close(again["value"], got.to(x.device), tol)
