"""Property-based tests of the checks: whatever a submission's probes report, a check ends
"passed" or "failed" with a message for the student, never "error" (reserved for faults of the
grader), and nothing a student reads shows check source, a grader path, a tolerance, a hidden
input's exact value or any number to more digits than the feedback's rounding.

A fake in-process submission answers each probe with what the reference steps give (the real
probes run in-process on the reference, as on nbgrader's path), and Hypothesis then replaces
any part of those observations with values a student's step can produce: int, bool, float16,
bfloat16 or float64 tensors, NaN and inf, wrong shapes, lists, NumPy arrays, Python numbers,
None, tensor subclasses, objects whose __eq__/__bool__/__float__/__len__ raise, huge tensors,
tensors on another device; or it makes the step raise with a message quoting its inputs at
full precision. Values cross the same wire encoding as in the sandbox.
"""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from autograder.assignment import CHECKS, REFERENCE_FILE, grading_settings
from autograder.checks.runner import CHECKS_DIR, run_checks
from autograder.feedback.case import SIGNIFICANT
from autograder.model.status import CheckStatus
from autograder.probes.in_kernel import InKernelSubmission
from autograder.probes.pytorch_slope import describe
from autograder.sandbox.box.guard import describe_error
from autograder.sandbox.shared import tensors as wire_tensors

EXAMPLES_PER_CHECK = 20  # six checks, ~0.15 s of CPU an example: about 20 s of CPU in all

# ------------------------------------------------------------------ what a step can give back


class Hostile:
    """An object whose every protocol method raises."""

    def __eq__(self, other):
        raise RuntimeError("no __eq__")

    def __bool__(self):
        raise RuntimeError("no __bool__")

    def __float__(self):
        raise RuntimeError("no __float__")

    def __len__(self):
        raise RuntimeError("no __len__")

    __hash__ = None


class MyTensor(torch.Tensor):
    """A tensor subclass, as a student might make one."""


DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.bool]
SHAPES = [(), (1,), (3,), (1, 1), (9, 1), (12,), (50, 1), (60, 1), (2, 2), (0,), (9, 9)]
FILLS = [0.0, 1.0, -2.5, 18.193, float("nan"), float("inf"), -float("inf"), 1e30, 3.0e-8]


@st.composite
def tensors(draw):
    shape = draw(st.sampled_from(SHAPES))
    numel = math.prod(shape)
    values = draw(st.lists(st.sampled_from(FILLS) | st.floats(-1e6, 1e6, width=32), min_size=numel, max_size=numel))
    tensor = torch.tensor(values, dtype=torch.float64).reshape(shape)
    dtype = draw(st.sampled_from(DTYPES))
    if dtype.is_floating_point or dtype == torch.bool:
        return tensor.to(dtype)
    return torch.nan_to_num(tensor, posinf=1e9, neginf=-1e9).clamp(-1e9, 1e9).to(dtype)


def python_values():
    """Anything a step may return."""
    return st.one_of(
        tensors(),
        tensors().map(lambda t: t.as_subclass(MyTensor)),
        tensors().map(lambda t: t.to(torch.float32).requires_grad_(True) * 1.0),  # has a grad_fn
        st.just(torch.zeros(100_001)),  # too large to send back
        st.none(),
        st.booleans(),
        st.integers(-10**12, 10**12),
        st.floats(allow_nan=True, allow_infinity=True),
        st.lists(st.floats(-10, 10), max_size=4),
        tensors().map(lambda t: t.to(torch.float64).numpy()),
        st.just(np.float32(18.193)),
        st.just(Hostile()),
        st.text(max_size=8),
    )


def described_values():
    """A probe's description of a returned value, possibly claiming another device."""
    return st.tuples(python_values(), st.sampled_from(["cpu", "cpu", "cuda", "meta"])).map(_describe_on)


def _describe_on(pair):
    value, device = pair
    description = describe(value)
    if description.get("kind") == "tensor":
        description["device"] = device
    return description


def wire_values():
    """What a forged observation can hold after the JSON wire: plain data and tensors."""
    return st.one_of(tensors(), st.none(), st.booleans(), st.integers(-10**12, 10**12),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                     st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=14), described_values())


# ------------------------------------------------------------------ the fake submission


def _reference_namespace() -> dict:
    namespace = {"torch": torch}
    exec(compile(REFERENCE_FILE.read_text(), "<reference>", "exec"), namespace)
    return namespace


class FakeSubmission:
    """Answers each probe with the reference's true observations, parts replaced by Hypothesis."""

    def __init__(self, data):
        self.data = data
        self.reference = InKernelSubmission(_reference_namespace())
        self.inputs: list[torch.Tensor] = []

    def probe(self, name: str, inputs: dict) -> dict:
        self.inputs += [v for v in inputs.values() if isinstance(v, torch.Tensor)]
        how = self.data.draw(st.sampled_from(["mutate", "mutate", "mutate", "true", "forged", "raises"]))
        if how == "raises":
            with torch._tensor_str.printoptions(precision=10):
                quoted = ", ".join(repr(v) for v in inputs.values())
            return {"status": "error", "error": {"type": "ValueError", "message": quoted[:2000],
                                                 "traceback": f'  File "<cell 3>", line 2, in step\nValueError: {quoted}'}}
        reply = self.reference.probe(name, inputs)
        observations = reply["observations"]
        if how == "forged":
            observations = self.data.draw(wire_values() | st.dictionaries(st.text(max_size=5), wire_values(), max_size=3))
        elif how == "mutate":
            for key in list(observations):
                if self.data.draw(st.booleans()):
                    strategy = described_values() if key in ("output", "loss", "returned") else wire_values()
                    observations[key] = self.data.draw(strategy)
        try:  # as in the sandbox (probe_runner.py): what cannot be sent is the step's error
            wire = wire_tensors.decode(json.loads(json.dumps(wire_tensors.encode(observations))))
        except Exception as error:
            return {"status": "error", "error": describe_error(error)}
        return {"status": "ok", "observations": wire}


# ------------------------------------------------------------------ what a student must never see


def _check_source_lines() -> set[str]:
    lines = set()
    for path in sorted(CHECKS_DIR.glob("*.py")) + [REFERENCE_FILE]:
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if len(stripped) >= 16 and not stripped.startswith(("#", '"""')):
                lines.add(stripped)
    return lines


SOURCE_LINES = _check_source_lines()
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
TOLERANCE_WORDS = ("rtol", "atol", "tolerance", "Tolerance(", "allclose", "isclose")
GRADER_PATHS = (str(CHECKS_DIR.parent), "autograder/", "site-packages", "solutions/", ".py\"")


def _significant(number: str) -> int:
    mantissa = re.split(r"[eE]", number.lstrip("+-"))[0]
    digits = mantissa.replace(".", "").lstrip("0")
    return len(digits.rstrip("0")) if "." in mantissa else len(digits)


def assert_nothing_given_away(result, hidden_inputs: list[torch.Tensor]) -> None:
    visible = result.feedback + "\n" + json.dumps(result.case or {}, ensure_ascii=False)
    leaked = [line for line in SOURCE_LINES if line in visible]
    assert not leaked, f"check source in feedback: {leaked}\n{visible}"
    for marker in TOLERANCE_WORDS + GRADER_PATHS:
        assert marker not in visible, f"{marker!r} in feedback:\n{visible}"
    too_precise = [n for n in NUMBER.findall(visible) if _significant(n) > SIGNIFICANT + 2]
    assert not too_precise, f"numbers shown beyond the feedback's rounding: {too_precise}\n{visible}"
    for tensor in hidden_inputs:
        for value in tensor.detach().reshape(-1)[:8].tolist():
            exact = f"{value:.7g}"
            if _significant(exact) > SIGNIFICANT + 2:
                assert exact not in visible, f"hidden input {exact} shown exactly:\n{visible}"


# ------------------------------------------------------------------ the property


@pytest.mark.parametrize("check", list(CHECKS))
@settings(max_examples=EXAMPLES_PER_CHECK, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # no shrinking: minutes here
@given(data=st.data())
def test_any_observation_gives_a_verdict_never_a_grader_error(check, data):
    submission = FakeSubmission(data)
    (result,) = run_checks(submission, grading_seed=grading_settings()["grading_seed"], only=[check])
    assert result.status in (CheckStatus.PASSED, CheckStatus.FAILED), \
        f"{check}: {result.status}\n{result.feedback}\n{result.staff_detail}"
    if result.status == CheckStatus.FAILED:
        assert result.feedback and result.misconception
    assert_nothing_given_away(result, submission.inputs)


def test_the_fake_reference_passes_every_check():
    """The fake's baseline is the reference: unmutated, it scores full marks."""
    class Always:
        def draw(self, strategy):
            return "true"

    results = run_checks(FakeSubmission(Always()), grading_seed=grading_settings()["grading_seed"])
    assert [r.status for r in results] == [CheckStatus.PASSED] * len(CHECKS), [r.feedback for r in results]
