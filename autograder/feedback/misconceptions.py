"""Every misconception a check can name, with the explanation a student reads.

A failed check raises `Feedback(misconception, case, detail)`: the explanation says what went
wrong in plain words, the case (feedback/case.py, structured data) shows one small concrete input
with the expected and the actual result, rounded. Neither ever contains solution code, the source
of a hidden check or a tolerance. The class report counts failures by misconception id.
"""
from __future__ import annotations

from autograder.feedback.case import Case, round_numbers

MISCONCEPTIONS: dict[str, str] = {
    # Whole-step problems
    "missing_function": "Your notebook does not define this function (or the name is not a function). "
    "Define it with exactly this name and run its cell before the tests.",
    "syntax_error": "The cell that defines this function has a syntax error, so nothing in it ran and the "
    "function does not exist. Fix the line shown below and run the cell again.",
    "not_implemented": "This step is still the stub: replace `raise NotImplementedError()` with your code.",
    "exception": "Calling this step raised an error (below).",
    "timeout": "This step did not return in time. Look for a loop that never ends, or work that grows "
    "with every call.",
    "crashed": "The process running this step ended before it answered: the code called exit(), "
    "killed its own process, or ran out of memory.",
    "sandbox_died": "Your notebook's Python process ended, so this step could not be tested.",
    "wrong_device": "A tensor created inside the step lives on the CPU while the data is on the GPU. Create "
    "new tensors from the inputs (e.g. `torch.zeros_like(w)`) or pass `device=x.device`; multiply by a Python "
    "number such as lr directly instead of wrapping it in `torch.tensor([lr])`.",
    # What came back could not be judged as the step's result (checks/expect.py names it)
    "wrong_dtype": "The result has the wrong number type (dtype). The data are float32 tensors: integer, "
    "boolean, half (float16) or double (float64) results do not match them. Compute with the tensors you "
    "are given, without converting them.",
    "not_finite": "The result holds NaN or infinity, so it cannot match the expected value. Look for a "
    "division by zero, a log or sqrt of a negative number, or values that grow without bound.",
    "unexpected_result": "The step gave back something the check cannot use as its result (what came back "
    "is named below). Return, or leave in place, a torch.Tensor of the shape the step's contract gives.",
    # forward
    "forward_wrong_value": "forward(x, w) should give the prediction w·x for every row of x.",
    "forward_ignores_w": "forward gives the same predictions whatever w is: it must use the w it is given, "
    "not a fixed slope or a global variable.",
    "forward_detached": "forward's result is not connected to w in the autograd graph (it was made with .item(), "
    ".detach(), .numpy(), .tolist() or a new tensor), so backward() cannot reach w.",
    "forward_not_tensor": "forward must return a torch.Tensor; returning a number or a NumPy array breaks "
    "autograd.",
    "forward_wrong_shape": "forward's predictions must have the same shape as x (a column vector N×1). A result "
    "of shape (N,) compared with targets of shape (N,1) broadcasts into an N×N matrix.",
    "forward_wrong_dtype": "forward changed the dtype of the data: keep float32 so that it matches the targets.",
    # loss
    "loss_sum": "Your loss adds the squared errors up instead of averaging them: MSE divides by N, "
    "so the loss and the gradient grow with the size of the data set.",
    "loss_absolute": "Your loss uses the absolute error |ŷ−y|; the mean squared error squares it.",
    "loss_square_of_mean": "Your loss squares the mean error, (mean(ŷ−y))²; MSE is the mean of the squared "
    "errors, mean((ŷ−y)²). Positive and negative errors must not cancel.",
    "loss_root": "Your loss takes a square root (RMSE); this lesson's loss is the plain mean squared error.",
    "loss_broadcast": "Your loss compares tensors of shapes (N,) and (N,1): PyTorch broadcasts them into an "
    "N×N matrix of all pairwise differences. Keep both as the same shape.",
    "loss_not_tensor": "The loss must stay a torch.Tensor connected to the graph: a Python float, `.item()` "
    "or a NumPy value cannot be back-propagated.",
    "loss_detached": "The loss is a tensor but is not connected to the predictions (it was detached or "
    "rebuilt), so backward() cannot reach w.",
    "loss_not_scalar": "The loss must be a single number, a 0-dim tensor (shape []), so that "
    "loss.backward() works.",
    "loss_wrong_value": "The loss value differs from the mean squared error mean((ŷ−y)²).",
    # gradient
    "gradient_none": "After loss.backward(), w.grad is None: the graph from w to the loss is broken "
    "somewhere in forward or criterion.",
    "gradient_wrong_value": "w.grad differs from the MSE gradient 2/N·Σ(wx−y)x, although your forward and "
    "criterion give the reference's values here: the gradient of one of them is wrong (their own checks compare "
    "d Σŷ/dw and d loss/dŷ).",
    # update
    "update_sign": "The update moves w uphill: it adds the gradient. Gradient descent subtracts it, "
    "w ← w − lr·grad.",
    "update_no_lr": "The update ignores the learning rate: the step must be lr·grad, not grad.",
    "update_rebinds": "w is unchanged after update(w, lr): `w = w - ...` only rebinds the local name inside the "
    "function. Change the caller's tensor in place: through `w.data`, or with `w -= ...` inside "
    "`torch.no_grad()`.",
    "update_inplace_leaf": "An in-place change of a leaf tensor that requires grad must happen where autograd "
    "is not recording: use `w.data`, or do it inside `with torch.no_grad():`.",
    "update_not_leaf": "After update, w is no longer a leaf tensor that requires grad (it has a grad_fn or "
    "requires_grad is False), so the next backward() will not fill w.grad.",
    "update_wrong_value": "The updated w differs from w − lr·grad.",
    "update_step_size": "The update moves w the right way but by the wrong amount: the step must be exactly "
    "lr·grad, with no extra factor and no clamp or limit on its size (large gradients give large steps).",
    "update_changes_grad": "update changed w.grad. It must only move w: the gradient is read, not reset or "
    "changed. Zeroing it is zero_grad's job, which the loop calls after update (zeroing it inside update "
    "hides a zero_grad that does nothing).",
    "returns_value": "This step must return None: it changes w (or w.grad) in place, and the training loop "
    "ignores what it returns. Returning w suggests writing `w = update(w, lr)`, which only rebinds a name.",
    "update_shape": "update changed the shape of w: w is a 0-dim tensor (shape []), and assigning "
    "`w.data` a tensor of another shape (e.g. one made with `torch.tensor([lr])`) reshapes it. Such a tensor "
    "also lives on the CPU: graded on a GPU, the same line stops with a device error and training fails. "
    "Multiply by the number lr directly.",
    # zero_grad
    "zero_grad_weight": "zero_grad set the weight w to zero instead of its gradient w.grad.",
    "zero_grad_not_reset": "The gradient is not reset: backward() adds into w.grad, so without zeroing the "
    "gradients of successive steps accumulate (two passes give twice the gradient).",
    "zero_grad_changed_w": "zero_grad changed w; it must only reset w.grad.",
    # final loss
    "training_diverges": "With your steps the loop does not reduce the loss: no epoch gets below the first "
    "epoch's loss (or the loss stops being a number), while it should fall from the first epoch to the last. "
    "No single step could be blamed: run again step by step, each gave the reference's result, so look for a "
    "step whose result changes from one call to the next (state kept between calls, randomness).",
    "training_wrong_history": "The loss history of the training loop with your four steps differs from the "
    "reference. No single step could be blamed: run again step by step, each gave the reference's result, so "
    "look for a step whose result changes from one call to the next (state kept between calls, randomness).",
}

HINTS_FROM_ERRORS = (
    ("a leaf Variable that requires grad is being used in an in-place operation", "update_inplace_leaf"),
    ("Expected all tensors to be on the same device", "wrong_device"),
    ("Can't call numpy() on Tensor that requires grad", "loss_not_tensor"),
)


class Feedback(AssertionError):
    """A failed check: the misconception it recognised, one small case (structured), and a detail
    line. Any number in `detail` (which may quote student code's exception message or traceback,
    and through it a hidden input) is rounded like the case. `step` is the student's step the
    failure is blamed on, when known (checks/blame.py); `explanation` replaces the catalogue's
    text where a check says less (a step another check already explains). The message is
    Markdown (model/markdown_text.py): one paragraph per part."""

    def __init__(self, misconception: str, case: Case | None = None, detail: str = "", *,
                 step: str | None = None, explanation: str | None = None):
        self.misconception = misconception
        self.case = case if isinstance(case, Case) else None
        self.detail = round_numbers(detail)
        self.step = step
        case_text = self.case.text() if self.case else round_numbers(str(case or ""))
        said = MISCONCEPTIONS[misconception] if explanation is None else explanation
        self.message = "\n\n".join(part for part in (said, self.detail, case_text) if part)
        super().__init__(self.message)


def misconception_for_error(message: str, default: str = "exception") -> str:
    for phrase, misconception in HINTS_FROM_ERRORS:
        if phrase in message:
            return misconception
    return default
