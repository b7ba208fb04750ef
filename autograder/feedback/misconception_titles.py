"""A short title in plain words for every misconception id of the catalogue
(autograder/feedback/misconceptions.py), for staff-facing summaries such as the class report,
where a chart label must fit on one line and a teacher should not need to know internal ids.

Adding a misconception to the catalogue means adding its title here (a test checks both agree).
"""
from __future__ import annotations

MISCONCEPTION_TITLES: dict[str, str] = {
    # Whole-step problems
    "missing_function": "Function not defined",
    "syntax_error": "Syntax error in the function's cell",
    "not_implemented": "Step left as the stub (NotImplementedError)",
    "exception": "Step raises an error",
    "timeout": "Step never returns (time limit)",
    "crashed": "Step ends its own process",
    "sandbox_died": "Notebook process had ended",
    "wrong_device": "Tensor made on the CPU, data on the GPU",
    "wrong_dtype": "Result of the wrong dtype",
    "not_finite": "Result holds NaN or infinity",
    "unexpected_result": "Result unusable (not a tensor, or wrong shape)",
    # forward
    "forward_wrong_value": "Forward gives wrong predictions",
    "forward_ignores_w": "Forward ignores w",
    "forward_detached": "Forward cut off from autograd (.item, .detach)",
    "forward_not_tensor": "Forward returns a number or NumPy array",
    "forward_wrong_shape": "Forward changes the shape of x",
    "forward_wrong_dtype": "Forward changes the dtype",
    # loss
    "loss_sum": "Sum instead of mean in the loss",
    "loss_absolute": "Absolute error instead of squared error",
    "loss_square_of_mean": "Square of the mean instead of mean of squares",
    "loss_root": "Square root taken (RMSE instead of MSE)",
    "loss_broadcast": "(N,) against (N,1): N×N broadcast in the loss",
    "loss_not_tensor": "Loss as a float, .item() or NumPy",
    "loss_detached": "Loss cut off from the predictions",
    "loss_not_scalar": "Loss not a single number",
    "loss_wrong_value": "Loss value is not the MSE",
    # gradient
    "gradient_none": "No gradient reaches w",
    "gradient_wrong_value": "Wrong gradient",
    # update
    "update_sign": "Gradient added instead of subtracted",
    "update_no_lr": "Learning rate left out of the update",
    "update_rebinds": "w = w − … rebinds a local (w unchanged)",
    "update_inplace_leaf": "In-place change of w while autograd records",
    "update_not_leaf": "w no longer a leaf after the update",
    "update_wrong_value": "Update gives a wrong w",
    "update_shape": "Update changes the shape of w",
    "update_step_size": "Update step of the wrong size",
    "update_changes_grad": "Update changes w.grad",
    "returns_value": "Step returns a value (should be None)",
    # zero_grad
    "zero_grad_weight": "Weight zeroed instead of its gradient",
    "zero_grad_not_reset": "Gradient never reset (it accumulates)",
    "zero_grad_changed_w": "zero_grad changes w",
    # final loss
    "training_diverges": "Training does not reduce the loss",
    "training_wrong_history": "Training loss differs from the reference",
}


def misconception_title(misconception: str) -> str:
    """The title of a misconception id; an id without one still reads as words."""
    title = MISCONCEPTION_TITLES.get(misconception)
    if title:
        return title
    words = misconception.replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else "Unnamed misconception"
