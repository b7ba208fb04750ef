"""A readable per-check report for a terminal."""
from __future__ import annotations

import textwrap

from autograder.model.results import SubmissionResult
from autograder.model.status import CheckStatus

MARKS = {CheckStatus.PASSED: "PASS", CheckStatus.FAILED: "FAIL", CheckStatus.ERROR: "ERROR"}


def to_text(result: SubmissionResult, title: str = "") -> str:
    lines = [title] if title else []
    for check in result.checks:
        lines.append(f"  {MARKS[check.status]:5} {check.name:<11} {check.score:g}/{check.max_score:g}")
        if check.status != CheckStatus.PASSED:
            lines.append(textwrap.indent(check.feedback, "          "))
    lines.append(f"  Total: {result.score:g}/{result.max_score:g}  ({result.execution_time_s:.2f} s)")
    lines.extend(f"  Note: {note}" for note in result.notes)
    return "\n".join(lines)
