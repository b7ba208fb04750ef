"""The one validation layer between what a probe reports and a check's comparisons.

Observations are untrusted data: student code runs in the process that makes them (it can return
anything, and can even forge what a probe reports), and they cross the wire as JSON (dicts,
lists, numbers, strings, None and tensors of any dtype and shape). A check reads every value
through these functions, which either hand back what the comparison needs (a finite float32
tensor of the right shape on the grading device, a flag, a list of numbers) or raise `Feedback`
naming what came back. So an unexpected value fails the check with a message, and "error" stays
reserved for faults of the grader.
"""
from __future__ import annotations

import dataclasses
import math

import torch

from autograder.feedback.case import Case, rounded
from autograder.feedback.misconceptions import Feedback

_FLOAT_DTYPES = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32", torch.float64: "float64"}
_NAME_CAP = 60


def observed(seen, key: str):
    """seen[key], or None when the observations are not a dict or lack the key."""
    return seen.get(key) if isinstance(seen, dict) else None


def _is_description(value) -> bool:
    """A probe's `describe()` of a returned value (sandbox/probes.py)."""
    return isinstance(value, dict) and isinstance(value.get("kind"), str)


def _type_name(value) -> str:
    name = str(value)[:_NAME_CAP]
    return name if name.replace(".", "").replace("_", "").isalnum() else "object"


def _shape(shape) -> str:
    return str(tuple(shape)) if isinstance(shape, (list, tuple)) else "(unknown)"


def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def _tensor_text(tensor: torch.Tensor) -> str:
    return _a(f"{str(tensor.dtype).removeprefix('torch.')} tensor of shape {tuple(tensor.shape)}")


def described(value) -> str:
    """What came back, in a few words a student recognises ("a float (18.19)", "an int64 tensor
    of shape (3, 1)", "None")."""
    if _is_description(value):
        kind, type_name = value["kind"], _type_name(value.get("type", "object"))
        if kind == "tensor":
            tensor = value.get("value")
            text = _tensor_text(tensor) if isinstance(tensor, torch.Tensor) else \
                _a(f"{_type_name(value.get('dtype', '?'))} tensor of shape {_shape(value.get('shape'))}")
            return text
        if kind == "number" and isinstance(value.get("number"), (int, float)):
            return _a(f"{type_name} ({rounded(value['number'])})")
        if kind == "none":
            return "None"
        return _a(type_name)
    if isinstance(value, torch.Tensor):
        return _tensor_text(value)
    if value is None:
        return "None"
    if isinstance(value, bool):
        return f"the bool {value}"
    if isinstance(value, (int, float)):
        return _a(f"{type(value).__name__} ({rounded(value)})")
    if isinstance(value, (list, dict)):
        return f"a {type(value).__name__} of {len(value)} item(s)"
    return _a(type(value).__name__)


def _fail(misconception: str, example: Case, what: str, value, note: str = "", got: str = "") -> Feedback:
    text = described(value) + (f" {note}" if note else "")
    return Feedback(misconception, dataclasses.replace(example, got=got or text), f"{what} {text}.")


def expect_tensor(value, *, what: str, example: Case, device: str | None = None, shape=None,
                  not_tensor: str = "unexpected_result", wrong_shape: str = "unexpected_result",
                  wrong_dtype: str = "wrong_dtype", not_finite: str = "not_finite") -> torch.Tensor:
    """The float32 tensor `value` holds, finite and of `shape` (if given), or Feedback naming what
    came back. `value` is a probe's description of a returned value or a tensor the probe took;
    `what` starts the sentence that names it ("It returned", "After update(w, lr), w is");
    `device` is the grading device a returned tensor must live on."""
    tensor = value
    if _is_description(value):
        if value["kind"] != "tensor":
            raise _fail(not_tensor, example, what, value)
        tensor = value.get("value")
        if not isinstance(tensor, torch.Tensor):
            raise _fail(not_tensor, example, what, value, "(too large to compare)" if tensor is None else "")
        if device is not None and isinstance(value.get("device"), str) and value["device"] != torch.device(device).type:
            raise _fail("wrong_device", example, what, value,
                        f"on the {_type_name(value['device'])} while the data are on the {torch.device(device).type}")
    if not isinstance(tensor, torch.Tensor):
        raise _fail(not_tensor, example, what, value)
    if shape is not None and tuple(tensor.shape) != tuple(shape):
        raise _fail(wrong_shape, example, what, value, got=f"shape {tuple(tensor.shape)}, expected shape {tuple(shape)}")
    if _FLOAT_DTYPES.get(tensor.dtype) != "float32":
        raise _fail(wrong_dtype, example, what, value)
    if tensor.numel() == 0:
        raise _fail(not_tensor, example, what, value, "with no values")
    if not bool(torch.isfinite(tensor).all()):
        kind = "NaN" if bool(torch.isnan(tensor).any()) else "infinity"
        raise _fail(not_finite, example, what, value, f"holding {kind}")
    return tensor


def expect_flag(value, *, what: str, example: Case) -> bool:
    """A True/False observation (e.g. `is_leaf`), or Feedback naming what came back."""
    if not isinstance(value, bool):
        raise _fail("unexpected_result", example, what, value)
    return value


def expect_numbers(value, *, what: str, example: Case) -> list[float]:
    """A list of real numbers (possibly NaN or infinite), or Feedback naming what came back."""
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise _fail("unexpected_result", example, what, value)
    return [float(v) for v in value]


def optional_number(value) -> float | None:
    """A finite real number, or None for anything else (for hints that may be missing)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def close(got: torch.Tensor, expected: torch.Tensor, tol) -> bool:
    """Same shape and equal within `tol` (got is cast to expected's device and dtype first)."""
    if tuple(got.shape) != tuple(expected.shape):
        return False
    got = got.detach().to(expected.device, expected.dtype)
    return bool(torch.allclose(got, expected, rtol=tol.rtol, atol=tol.atol))
