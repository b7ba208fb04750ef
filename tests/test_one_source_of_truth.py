"""One source of truth: every expected value comes from the reference (solutions/pytorch_slope.py),
so a changed reference changes every check that uses the changed step; and tolerances live in
autograder/checks/tolerances.py only."""
from __future__ import annotations

import ast

import pytest
import torch

import autograder.checks.conftest as checks_conftest
from autograder.assignment import REFERENCE_FILE, grading_settings
from autograder.checks.runner import CHECKS_DIR, run_checks
from autograder.model.status import CheckStatus
from autograder.probes.in_kernel import InKernelSubmission

# A step of the grader's reference changed slightly -> the checks that must then fail the
# unchanged reference submitted as a student's work.
PERTURBED = {
    "forward": ("return w * x", "return 1.01 * w * x", {"forward", "gradient", "final_loss"}),
    "criterion": ("return torch.mean((yhat - y) ** 2)", "return 1.01 * torch.mean((yhat - y) ** 2)",
                  {"loss", "gradient", "final_loss"}),
    "update": ("w.data = w.data - lr * w.grad.data", "w.data = w.data - 1.01 * lr * w.grad.data", {"update", "final_loss"}),
    "zero_grad": ("w.grad.data.zero_()", "w.grad.data.mul_(0.5)", {"zero_grad", "final_loss"}),
}


def _student_namespace() -> dict:
    namespace = {"torch": torch}
    exec(REFERENCE_FILE.read_text(), namespace)
    return namespace


@pytest.mark.parametrize("step", sorted(PERTURBED))
def test_a_changed_reference_changes_the_checks_of_that_step(step, tmp_path, monkeypatch):
    original, changed, must_fail = PERTURBED[step]
    source = REFERENCE_FILE.read_text()
    assert source.count(original) == 1, f"the reference no longer has {original!r}: update this test"
    perturbed = tmp_path / "pytorch_slope.py"
    perturbed.write_text(source.replace(original, changed))
    monkeypatch.setattr(checks_conftest, "REFERENCE_FILE", perturbed)
    results = run_checks(InKernelSubmission(_student_namespace()), grading_seed=grading_settings()["grading_seed"])
    failed = {r.name for r in results if r.status != CheckStatus.PASSED}
    assert failed == must_fail, {r.name: r.feedback for r in results}
    assert all(r.status != CheckStatus.ERROR for r in results)


def test_tolerances_live_in_tolerances_py_only():
    """No check compares with a literal tolerance: rtol/atol keywords and allclose/isclose calls
    take their values from the `tol` fixture or tolerance_for()."""
    offenders = []
    for path in sorted(CHECKS_DIR.glob("test_*.py")) + [CHECKS_DIR / "expect.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg in ("rtol", "atol", "rel_tol", "abs_tol") \
                    and isinstance(node.value, ast.Constant):
                offenders.append(f"{path.name}:{node.lineno} {node.arg}={node.value.value}")
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                    "allclose", "isclose") and any(isinstance(a, ast.Constant) for a in node.args):
                offenders.append(f"{path.name}:{node.lineno} literal tolerance")
    assert not offenders, offenders


def test_check_uses_names_only_checks_the_assignment_has():
    """A misspelt or renamed check in `check_uses` would silently make every downstream symptom
    look like a root cause in the class report; the Assignment refuses it when it is made."""
    import dataclasses

    from autograder.assignment import PYTORCH_SLOPE

    with pytest.raises(ValueError, match="final_los, gradiant"):
        dataclasses.replace(PYTORCH_SLOPE, check_uses={"final_los": ("forward",), "loss": ("gradiant",)})
    assert set(PYTORCH_SLOPE.check_uses) <= set(PYTORCH_SLOPE.checks)
