"""The misconception catalogue (autograder/feedback/misconceptions.py) is all earned: every id is
produced by a corpus scenario (tests/corpus/scenarios.py, graded through the sandbox) or by a
mutant below, and each mutant, a wrong variant of the reference steps graded in-process on
nbgrader's transport, gets exactly its misconception's message, not a generic one.

Transport mutants stand for what only a sandbox or a GPU can do (a step that ends its process,
a dead sandbox, a CPU tensor against GPU data); they answer the probe as the sandbox would.
"""
from __future__ import annotations

import pytest
import torch
from corpus.scenarios import SCENARIOS

from autograder.assignment import REFERENCE_FILE, grading_settings
from autograder.checks.runner import run_checks
from autograder.feedback.misconceptions import MISCONCEPTIONS
from autograder.model.status import CheckStatus
from autograder.probes.in_kernel import InKernelSubmission
from autograder.sandbox.grader.box_client import BoxDied


def _fn(header: str, *body: str) -> str:
    return header + "\n" + "\n".join("    " + line for line in body) + "\n"


FORWARD, CRITERION, UPDATE, ZERO_GRAD = "def forward(x, w):", "def criterion(yhat, y):", "def update(w, lr):", "def zero_grad(w):"

# misconception -> (check that must report it, the wrong step's source)
MUTANTS: dict[str, tuple[str, str]] = {
    "forward_wrong_value": ("forward", _fn(FORWARD, "return w * x + 1")),
    "forward_not_tensor": ("forward", _fn(FORWARD, "return (w * x).tolist()")),
    "forward_wrong_dtype": ("forward", _fn(FORWARD, "return (w * x).double()")),
    "loss_root": ("loss", _fn(CRITERION, "return torch.sqrt(torch.mean((yhat - y) ** 2))")),
    "loss_detached": ("loss", _fn(CRITERION, "return torch.mean((yhat.detach() - y) ** 2)")),
    "loss_not_scalar": ("loss", _fn(CRITERION, "return torch.mean((yhat - y) ** 2, dim=0)")),
    "loss_wrong_value": ("loss", _fn(CRITERION, "return 1.5 * torch.mean((yhat - y) ** 2)")),
    # the int64 placeholder that used to crash the loss check and leak it
    "wrong_dtype": ("loss", _fn(CRITERION, "return torch.tensor(0)")),
    "not_finite": ("loss", _fn(CRITERION, "return torch.mean((yhat - y) ** 2) / 0")),
    # right values, wrong derivative: forward and criterion give the reference's results, so no step is blamed
    "gradient_wrong_value": ("gradient", _fn(FORWARD, "return w.detach() * x + 2 * (w - w.detach()) * x")),
    # right values on the graph, but not through w
    "gradient_none": ("gradient", _fn(FORWARD, "return (w.detach() * x).requires_grad_() * 1")),
    # clamping the step passed every check while hidden gradients were drawn from [-20, 20]
    "update_step_size": ("update", _fn(UPDATE, "w.data = w.data - torch.clamp(lr * w.grad.data, -50, 50)")),
    "update_wrong_value": ("update", _fn(UPDATE, "w.data = w.data + 2 * lr * w.grad.data")),
    "zero_grad_changed_w": ("zero_grad", _fn(ZERO_GRAD, "w.grad.data.zero_()", "w.data = w.data * 0.5")),
    # survivors of mutation/report.md: the contract's "returns None" and "only w changes"
    "update_changes_grad": ("update", _fn(UPDATE, "w.data = w.data - lr * w.grad.data", "w.grad.zero_()")),
    "returns_value": ("zero_grad", _fn(ZERO_GRAD, "w.grad.data.zero_()", "return w")),
    # steps whose result changes between calls: wrong for the scored run of the loop, right when it is run
    # again step by step (checks/blame.py), so no step can be blamed and the training's own finding stands
    "training_diverges": ("final_loss", "calls = []\n" + _fn(UPDATE, "calls.append(1)",
                                                            "w.data = w.data + (1 if len(calls) <= 12 else -1) * lr * w.grad.data")),
    "training_wrong_history": ("final_loss", "calls = []\n" + _fn(UPDATE, "calls.append(1)",
                                                                 "w.data = w.data - (0.5 if len(calls) <= 12 else 1) * lr * w.grad.data")),
}

# misconception -> (check, the probe reply a sandbox would give, or the exception it raises)
TRANSPORT_MUTANTS: dict[str, tuple[str, object]] = {
    "crashed": ("update", {"status": "crashed", "reason": "the process ended (exit code 3)"}),
    "sandbox_died": ("update", BoxDied("its process had ended")),
    "wrong_device": ("update", {"status": "error", "error": {
        "type": "RuntimeError", "traceback": "  File \"<cell 5>\", line 2, in update\nRuntimeError: Expected all tensors "
        "to be on the same device, but found at least two devices, cuda:0 and cpu!",
        "message": "Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!"}}),
    "syntax_error": ("forward", {"status": "missing", "missing": ["forward"], "why_missing": {
        "forward": {"kind": "syntax_error", "cell": 3, "line": 2, "message": "invalid syntax"}}}),
}

# Ids no submission produces on its own, and why.
UNREACHABLE = {
    "unexpected_result": "only a malformed or forged probe report (student code rewriting what the probe saw) "
                         "gives it; tests/test_checks_properties.py feeds such reports to every check",
}


def _reference_namespace(*overrides: str) -> dict:
    namespace = {"torch": torch}
    exec(compile(REFERENCE_FILE.read_text(), "<reference>", "exec"), namespace)
    for source in overrides:
        exec(compile(source, "<cell 3>", "exec"), namespace)
    return namespace


class TransportMutant:
    def __init__(self, reply):
        self.reply = reply

    def probe(self, name, inputs):
        if isinstance(self.reply, BaseException):
            raise self.reply
        return dict(self.reply)


def test_every_misconception_is_produced_by_a_scenario_or_a_mutant():
    produced = {m for s in SCENARIOS for m in s.misconceptions.values()} | set(MUTANTS) | set(TRANSPORT_MUTANTS)
    unproduced = set(MISCONCEPTIONS) - produced - set(UNREACHABLE)
    assert not unproduced, f"misconceptions no scenario or mutant produces: {sorted(unproduced)}"
    assert not (set(UNREACHABLE) & produced), "listed as unreachable but produced"
    assert produced | set(UNREACHABLE) <= set(MISCONCEPTIONS)


@pytest.mark.parametrize("misconception", sorted(MUTANTS))
def test_mutant_gets_its_misconception(misconception):
    check, source = MUTANTS[misconception]
    (result,) = run_checks(InKernelSubmission(_reference_namespace(source)),
                           grading_seed=grading_settings()["grading_seed"], only=[check])
    assert result.status == CheckStatus.FAILED and result.score == 0, result.feedback
    assert result.misconception == misconception, result.feedback
    assert MISCONCEPTIONS[misconception] in result.feedback
    assert result.case is not None, "a judged step shows one structured case"


def test_update_that_returns_w_is_told_so():
    source = _fn(UPDATE, "w.data = w.data - lr * w.grad.data", "return w")
    (result,) = run_checks(InKernelSubmission(_reference_namespace(source)),
                           grading_seed=grading_settings()["grading_seed"], only=["update"])
    assert result.misconception == "returns_value" and "update returned a float32 tensor" in result.feedback, result.feedback


def test_a_pytorch_not_implemented_error_is_an_exception_not_a_stub():
    """mutation/report.md: `w * x` mutated to `w >> x` raised PyTorch's NotImplementedError, and
    the student was told they had left the stub."""
    (result,) = run_checks(InKernelSubmission(_reference_namespace(_fn(FORWARD, "return w >> x"))),
                           grading_seed=grading_settings()["grading_seed"], only=["forward"])
    assert result.misconception == "exception", result.feedback
    assert "not implemented for" in result.feedback and "NotImplementedError" in result.feedback


@pytest.mark.parametrize("misconception", sorted(TRANSPORT_MUTANTS))
def test_transport_mutant_gets_its_misconception(misconception):
    check, reply = TRANSPORT_MUTANTS[misconception]
    (result,) = run_checks(TransportMutant(reply), grading_seed=grading_settings()["grading_seed"], only=[check])
    assert result.status == CheckStatus.FAILED and result.misconception == misconception, result.feedback
    assert MISCONCEPTIONS[misconception] in result.feedback


def test_the_reference_itself_passes_in_process():
    results = run_checks(InKernelSubmission(_reference_namespace()), grading_seed=grading_settings()["grading_seed"])
    assert all(r.status == CheckStatus.PASSED for r in results), [r.feedback for r in results]
