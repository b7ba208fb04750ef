"""Blame: a check that runs several of the student's steps together (gradient: forward,
criterion and backward(); final_loss: all four in the provided training loop) fails whenever
one of them is wrong, and its message must then name that step, not the check's own subject (a
flattened forward made the gradient check say "your loss is not the MSE", and students "fixed" a
correct criterion).

The rule, for every such check: when it fails, the steps' results as the check saw them are
judged in the order the steps ran, each on the inputs it was actually given, by the judge of the
step's own check (steps.py); the first result that departs from the reference's is blamed. The
failure then carries that step's misconception and case, and a line that names the step and the
check that tests it alone. If no step departs, the check's own failure stands. Blame changes what
a failed check says, never its score: it is consulted only once the check has failed.

A failure whose step is already known (an exception raised in a step's own code, a stub, a
missing function, a hang: checks/student.py names it from the traceback) is not traced again.
"""
from __future__ import annotations

import functools

from autograder.checks.expect import expect_tensor, observed
from autograder.checks.show import case
from autograder.checks.steps import forward_result, gradient_result, loss_result, returns_none, update_result, zero_grad_result
from autograder.checks.tolerances import tolerance_for
from autograder.feedback.misconceptions import MISCONCEPTIONS, Feedback

# A step of the training loop -> the check that tests it alone ("backward" is loss.backward():
# the gradient that the student's forward and criterion give).
OWN_CHECK = {"forward": "forward", "criterion": "loss", "backward": "gradient", "update": "update",
             "zero_grad": "zero_grad"}
# What each check that runs several steps runs, in words.
RUNS = {"gradient": "your `forward` and `criterion`, then `loss.backward()`",
        "final_loss": "your four steps in the provided training loop"}
# Failures that are not traced: the step is known, or the steps cannot run again.
NOT_TRACED = ("timeout", "crashed", "sandbox_died", "missing_function", "syntax_error", "not_implemented")


def blame_line(step: str, runs: str, where: str = "", happened: str = "") -> str:
    """The sentence that names the step a check that `runs` (words) failed because of: the first
    result that departs, or what `happened` in the step ("raised an error")."""
    if happened:
        what = f"your `{step}` {happened}{where}"
    elif step == "backward":
        what = f"the first result that differs from the reference's is the gradient that `loss.backward()` leaves in `w.grad` through your `forward` and `criterion`{where}"
    else:
        what = f"the first result that differs from the reference's is what your `{step}` gives back{where}"
    return (f"This check runs {runs}, and {what}. Fix that first (the `{OWN_CHECK[step]}` check tests it alone): "
            "this check may then pass too.")


def blamed(found: Feedback, step: str, runs: str, where: str = "", also: str = "") -> Feedback:
    """The judgment of `step` (`found`) as the failure of a check that runs `runs`, the blame
    first; `also`: what the check itself saw, if worth keeping (an error's report)."""
    explanation = "\n\n".join(part for part in (blame_line(step, runs, where), also, MISCONCEPTIONS[found.misconception]) if part)
    return Feedback(found.misconception, found.case, found.detail, step=step, explanation=explanation)


def refines_only(blame):
    """Blame only refines what a failed check says, from records the student's steps made (and
    could forge). Whatever judging them raises, the failure stands as it was: an exception escaping
    a check is a grader error, retried and never scored, which a submission could otherwise cause
    on purpose to dodge the check's 0."""
    @functools.wraps(blame)
    def refined(failure: Feedback, *args, **kwargs) -> Feedback:
        try:
            return blame(failure, *args, **kwargs)
        except Exception:  # noqa: BLE001 (any exception: see above)
            return failure
    return refined


@refines_only
def in_gradient(failure: Feedback, seen, x, y, w, reference, device: str) -> Feedback:
    """The gradient check's failure, blamed on forward or criterion if one of them departs on
    the check's inputs (the probe reports both results beside w.grad)."""
    if failure.step is not None or failure.misconception in NOT_TRACED:
        return failure
    runs = RUNS["gradient"]
    try:
        yhat = forward_result(observed(seen, "forward_output"), x, w, reference, tolerance_for("forward", device), device)
    except Feedback as found:
        return blamed(found, "forward", runs)
    try:
        loss_result(observed(seen, "loss"), yhat, y, reference, tolerance_for("loss", device), device)
    except Feedback as found:
        return blamed(found, "criterion", runs)
    return failure


@refines_only
def in_training(failure: Feedback, student, inputs: dict, reference, device: str) -> Feedback:
    """The training check's failure, blamed on the first step of the loop whose result departs:
    the loop is run again with every call recorded (the "train_trace" probe) and judged epoch by
    epoch, step by step."""
    if failure.step is not None or failure.misconception in NOT_TRACED:
        return failure
    try:
        trace = observed(student.probe("train_trace", step="train_model(X, Y, w, lr, epochs, forward, criterion, update, zero_grad)", **inputs), "trace")
    except Feedback:  # the steps could not be run again: the failure stands as it is
        return failure
    found = first_departure(trace if isinstance(trace, list) else [], inputs["x"], inputs["y"], inputs["lr"],
                            reference, device)
    if found is None:
        return failure
    step, judged, epoch = found
    # an error (a report without a case) is kept: the student sees what the loop ran into
    also = failure.detail if failure.case is None else ""
    return blamed(judged, step, RUNS["final_loss"], f" (at epoch {epoch})", also)


def _scalar(value, device: str):
    """A recorded w: a finite 0-dim float32 tensor, or None (a trace the steps forged is not judged)."""
    try:
        return expect_tensor(value, what="w is", example=case({}), device=device, shape=())
    except Feedback:
        return None


def first_departure(trace: list, x, y, lr: float, reference, device: str):
    """(step, its Feedback, epoch) of the first recorded step whose result departs from the
    reference's on the inputs it was given, or None. Records: see probe_train_trace."""
    epoch, yhat, grad = -1, None, None
    for record in trace:
        step = observed(record, "step")
        w = _scalar(observed(record, "w"), device)
        if not isinstance(step, str) or step not in OWN_CHECK or (w is None and step != "criterion"):
            return None
        try:
            if step == "forward":
                epoch += 1
                yhat = forward_result(observed(record, "output"), x, w, reference, tolerance_for("forward", device), device)
            elif step == "criterion":
                if yhat is None:
                    return None
                loss_result(observed(record, "output"), yhat, y, reference, tolerance_for("loss", device), device)
            elif step == "update":
                try:
                    grad = gradient_result(observed(record, "grad"), x, y, w, reference, tolerance_for("gradient", device))
                except Feedback as found:
                    return "backward", found, epoch
                update_result(observed(record, "after"), w, lr, grad, reference, tolerance_for("update", device), device)
            elif step == "zero_grad":
                if grad is None:  # not this loop's order
                    return None
                example = zero_grad_result(observed(record, "after"), w, grad, reference, tolerance_for("zero_grad", device))
                returns_none(observed(record, "after"), "zero_grad", example)
        except Feedback as found:
            return step, found, epoch
    return None
