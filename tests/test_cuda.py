"""Grading on a CUDA GPU: the reference scores full marks, and a step that creates a CPU tensor
(which cannot meet the GPU data) is told so with the `wrong_device` misconception. Skipped cleanly
where CUDA is absent."""
from __future__ import annotations

import pytest
import torch

from autograder.assignment import MAX_SCORE, PYTORCH_SLOPE
from autograder.feedback.misconceptions import MISCONCEPTIONS
from autograder.pipeline import GradingContext, grade_submission
from autograder.release.synthetic import make_submission, write_submission

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

# `torch.tensor([lr])` is a 1-element tensor on the CPU; against w on the GPU it raises
# "Expected all tensors to be on the same device" (only 0-dim CPU tensors mix with CUDA ones).
CPU_TENSOR_IN_UPDATE = (
    "def update(w, lr):\n"
    "    w.data = w.data - torch.tensor([lr]) * w.grad.data\n"
)


@pytest.fixture(scope="module")
def cuda_context(zygote):
    return GradingContext(zygote=zygote, assignment=PYTORCH_SLOPE, device="cuda")


def test_reference_scores_full_marks_on_cuda(cuda_context, tmp_path):
    result = grade_submission(write_submission(tmp_path / "reference.ipynb", make_submission()), cuda_context)
    assert {c.name: c.status for c in result.checks} == {c.name: "passed" for c in result.checks}, [
        c.feedback for c in result.checks if c.status != "passed"]
    assert result.score == MAX_SCORE


def test_cpu_tensor_inside_update_is_wrong_device(cuda_context, tmp_path):
    notebook = make_submission({"update": CPU_TENSOR_IN_UPDATE})
    result = grade_submission(write_submission(tmp_path / "cpu_tensor.ipynb", notebook), cuda_context)
    by_name = {c.name: c for c in result.checks}
    assert {n: c.score for n, c in by_name.items()} == {
        "forward": 1, "loss": 2, "gradient": 2, "update": 0, "zero_grad": 1, "final_loss": 0}
    for name in ("update", "final_loss"):
        assert by_name[name].misconception == "wrong_device", by_name[name].feedback
        assert MISCONCEPTIONS["wrong_device"] in by_name[name].feedback
        assert "torch.tensor([lr])" in by_name[name].feedback  # the student's own line, from the traceback
