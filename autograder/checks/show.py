"""Short, rounded renderings of values for feedback cases (feedback/case.py): a few values of a
tensor and its shape, numbers to four significant digits, never a tensor's exact bits."""
from __future__ import annotations

import torch

from autograder.feedback.case import SIGNIFICANT, Case, rounded


def show(value, items: int = 4, digits: int = SIGNIFICANT) -> str:
    if isinstance(value, torch.Tensor):
        flat = value.detach().to("cpu", torch.float64).reshape(-1)
        if value.dim() == 0:
            return _number(flat.item(), digits)
        shown = ", ".join(_number(v, digits) for v in flat[:items].tolist())
        more = f", … ({flat.numel()} values)" if flat.numel() > items else ""
        return f"tensor([{shown}{more}], shape {tuple(value.shape)})"
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, (int, float)):
        return _number(value, digits)
    return type(value).__name__


def _number(value: float, digits: int) -> str:
    return rounded(value) if digits == SIGNIFICANT else f"{float(value):.{digits}g}"


def show_pair(expected, got) -> tuple[str, str]:
    """Expected and got, with one or two more digits where four would show them equal."""
    for digits in (SIGNIFICANT, SIGNIFICANT + 1, SIGNIFICANT + 2):
        pair = show(expected, digits=digits), show(got, digits=digits)
        if pair[0] != pair[1]:
            break
    return pair


def case(inputs: dict, expected: dict | None = None, got: str = "", note: str = "") -> Case:
    """A Case from raw values: every input and expected value rendered with `show` (a string is
    taken as already rendered)."""
    def render(value) -> str:
        return value if isinstance(value, str) else show(value)

    return Case({name: render(value) for name, value in inputs.items()},
                {name: render(value) for name, value in (expected or {}).items()}, got, note)
