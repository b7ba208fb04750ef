"""The small concrete case a failed check shows a student, as structured data, and the rounding
that keeps hidden inputs from being read back out of feedback.

A `Case` holds rendered (already rounded) texts only: the inputs, the expected values and what
came back. Every output takes it as data (`to_dict`) or as one line (`text`). Numbers are shown
to `SIGNIFICANT` significant digits, never a tensor's exact bits; `round_numbers` applies the
same rounding to text that comes back from student code (exception messages, tracebacks that
may quote a hidden input). This module imports nothing heavy (no torch): the batch's parent
process reads cases without importing torch.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

SIGNIFICANT = 4

# A decimal or scientific number, or an integer of 8 or more digits (no line number is that
# long; a float scaled to an integer to dodge the rounding is). Not part of a word or of a
# dotted name such as a version string.
_NUMBER = re.compile(
    r"(?<![\w.])(?:\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\d{8,})(?![\w.])"
)


def rounded(number: float) -> str:
    """`number` to SIGNIFICANT significant digits ("nan", "inf" and "-inf" as such)."""
    number = float(number)
    if math.isnan(number) or math.isinf(number):
        return str(number)
    return f"{number:.{SIGNIFICANT}g}"


def _significant_digits(text: str) -> int:
    mantissa = re.split(r"[eE]", text)[0].replace(".", "").lstrip("0")
    return len(mantissa.rstrip("0")) if "." in text or "e" in text.lower() else len(mantissa)


def round_numbers(text: str) -> str:
    """`text` with every number longer than SIGNIFICANT significant digits rounded to it."""
    def shorten(match: re.Match) -> str:
        found = match.group(0)
        return rounded(float(found)) if _significant_digits(found) > SIGNIFICANT else found

    return _NUMBER.sub(shorten, text)


@dataclass(frozen=True)
class Case:
    """One small input the step got wrong: name -> rendered value for the inputs and the expected
    values; `got` says what came back (e.g. "w = 0.7", "shape (1,)")."""

    inputs: dict[str, str] = field(default_factory=dict)
    expected: dict[str, str] = field(default_factory=dict)
    got: str = ""
    note: str = ""

    def text(self) -> str:
        parts = [f"{name} = {value}" for name, value in self.inputs.items()]
        parts += [f"expected{'_' + name if name else ''} = {value}" for name, value in self.expected.items()]
        if self.got:
            parts.append(f"got {self.got}")
        line = "Case: " + "; ".join(parts)
        return line + (f" ({self.note})" if self.note else "")

    def to_dict(self) -> dict:
        return {"input": dict(self.inputs), "expected": dict(self.expected), "got": self.got, "note": self.note,
                "rounded_to_significant_digits": SIGNIFICANT}

    @classmethod
    def from_dict(cls, data: dict) -> Case:
        return cls(dict(data.get("input") or {}), dict(data.get("expected") or {}),
                   str(data.get("got") or ""), str(data.get("note") or ""))
