"""Blame (checks/blame.py): a check that runs several steps and fails names the first step whose
result departs from the reference's, with that step's own misconception, never its own subject's;
and blame never changes a score. Graded in-process on nbgrader's transport (no sandbox)."""
from __future__ import annotations

import pytest
import torch

from autograder.assignment import REFERENCE_FILE, grading_settings
from autograder.checks.runner import run_checks
from autograder.feedback.misconceptions import MISCONCEPTIONS
from autograder.probes.in_kernel import InKernelSubmission


def _fn(header: str, *body: str) -> str:
    return header + "\n" + "\n".join("    " + line for line in body) + "\n"


FORWARD, CRITERION, UPDATE, ZERO_GRAD = "def forward(x, w):", "def criterion(yhat, y):", "def update(w, lr):", "def zero_grad(w):"


def grade(*overrides: str, only=("gradient", "final_loss")) -> dict:
    namespace = {"torch": torch}
    exec(compile(REFERENCE_FILE.read_text(), "<reference>", "exec"), namespace)
    for source in overrides:
        exec(compile(source, "<cell 3>", "exec"), namespace)
    results = run_checks(InKernelSubmission(namespace), grading_seed=grading_settings()["grading_seed"], only=list(only))
    return {r.name: r for r in results}


# (wrong step, its source, the misconception its own check gives): each fails the checks that run it
WRONG_STEPS = [
    ("forward", _fn(FORWARD, "return (w * x).view(-1)"), "forward_wrong_shape"),  # issue 29's case
    ("forward", _fn(FORWARD, "return (w * x).squeeze(1)"), "forward_wrong_shape"),
    ("forward", _fn(FORWARD, "return (w * x).t()"), "forward_wrong_shape"),
    ("forward", _fn(FORWARD, "return w * x + 0.5"), "forward_wrong_value"),
    ("forward", _fn(FORWARD, "return w.detach() * x"), "forward_detached"),
    ("criterion", _fn(CRITERION, "return ((yhat - y) ** 2).sum()"), "loss_sum"),
    ("criterion", _fn(CRITERION, "return torch.mean(torch.abs(yhat - y))"), "loss_absolute"),
    ("criterion", _fn(CRITERION, "return torch.mean((yhat - y) ** 2).item()"), "loss_not_tensor"),
]


@pytest.mark.parametrize("step, source, misconception", WRONG_STEPS, ids=[s for _, s, _ in WRONG_STEPS])
def test_a_wrong_forward_or_loss_is_named_by_the_checks_that_run_it(step, source, misconception):
    results = grade(source)
    for name in ("gradient", "final_loss"):
        result = results[name]
        assert result.score == 0 and result.misconception == misconception, (name, result.feedback)
        assert f"what your `{step}` gives back" in result.feedback, result.feedback
        assert MISCONCEPTIONS[misconception] in result.feedback
        other = {"forward": "criterion", "criterion": "forward"}[step]
        assert f"your `{other}` gives back" not in result.feedback and "not the MSE" not in result.feedback


@pytest.mark.parametrize("step, source, misconception", [
    ("update", _fn(UPDATE, "w.data = w.data + lr * w.grad.data"), "update_sign"),
    ("update", _fn(UPDATE, "w.data = w.data - 3 * lr * w.grad.data"), "update_step_size"),
    ("zero_grad", _fn(ZERO_GRAD, "pass"), "zero_grad_not_reset"),
    ("zero_grad", _fn(ZERO_GRAD, "w.data.zero_()"), "zero_grad_weight"),
])
def test_a_wrong_update_or_zero_grad_is_named_by_the_training_check(step, source, misconception):
    results = grade(source)
    assert results["gradient"].score == results["gradient"].max_score  # gradient does not run them
    result = results["final_loss"]
    assert result.score == 0 and result.misconception == misconception, result.feedback
    assert f"what your `{step}` gives back (at epoch 0)" in result.feedback, result.feedback


def test_an_error_raised_in_a_helper_blames_the_step_that_called_it():
    helper = "def _step(w, lr):\n    w -= lr * w.grad\n"
    result = grade(helper, _fn(UPDATE, "_step(w, lr)"), only=["final_loss"])["final_loss"]
    assert result.misconception == "update_inplace_leaf" and "your `update` raised an error" in result.feedback, result.feedback


def test_blame_never_changes_a_score():
    """A forward that is wrong only on one row (the forward check tests one) departs nowhere the
    gradient and training checks look: they pass, whatever forward's own check says."""
    results = grade(_fn(FORWARD, "return w * x if x.shape[0] > 1 else w * x + 1"),
                    only=["forward", "gradient", "final_loss"])
    assert results["forward"].score == 0
    assert results["gradient"].score == results["gradient"].max_score
    assert results["final_loss"].score == results["final_loss"].max_score


def test_a_forged_or_broken_trace_blames_nothing_and_raises_nothing():
    """The trace comes from the sandbox: whatever it holds, blame finds a step or nothing."""
    import importlib.util

    from autograder.checks.blame import first_departure

    spec = importlib.util.spec_from_file_location("reference", REFERENCE_FILE)
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    x, y, w = torch.ones(4, 1), torch.ones(4, 1), torch.tensor(2.0)
    good_forward = {"step": "forward", "w": w, "output": {"kind": "tensor", "value": w * x, "has_grad_fn": True}}
    for trace in ([], [{}], ["forward"], [{"step": "forward", "w": "2"}], [{"step": "zero_grad", "w": w, "after": {}}],
                  [{"step": "criterion", "output": 1.0}], [good_forward, {"step": "update", "w": torch.ones(3), "grad": w}],
                  [{"step": "forward", "w": torch.tensor(float("nan")), "output": None}],
                  [{"step": ["boom"], "w": None}], [{"step": {"a": 1}, "w": w}], [{"step": None, "w": w}]):
        assert first_departure(trace, x, y, 0.1, reference, "cpu") is None, trace
    step, found, epoch = first_departure([{**good_forward, "output": {"kind": "number", "number": 1.0}}], x, y, 0.1,
                                         reference, "cpu")
    assert (step, found.misconception, epoch) == ("forward", "forward_not_tensor", 0)


def test_a_trace_forged_by_a_step_costs_the_check_its_points_and_is_never_a_grader_error():
    """A wrong forward that appends an unhashable record to the recorder's trace made blame raise
    TypeError: a grader error, retried and never scored, so the notebook dodged its 0 on every run
    (found by a red-team review). Blame now refines messages only; whatever it raises, the failure stands."""
    forged = _fn(FORWARD, "import sys", "t = sys._getframe(1).f_locals.get('trace')",
                 "if isinstance(t, list) and not t:", "    t.append({'step': ['boom'], 'w': None})", "return w * x * 1.1")
    result = grade(forged, only=["final_loss"])["final_loss"]
    assert result.status == "failed" and result.score == 0, (result.status, result.feedback)
