"""A readable per-check report for a terminal. The feedback is Markdown (model/markdown_text.py),
which reads as it is: backticks around code, code blocks indented.

Every piece of text is cleaned on its way out (model/sanitize.py): a file name or a record's
text may hold what a terminal or a UTF-8 stdout refuses (lone surrogates, escape sequences)."""
from __future__ import annotations

import textwrap

from autograder.assignment import Assignment
from autograder.model.results import CheckResult, SubmissionResult
from autograder.model.sanitize import clean_text
from autograder.model.status import CheckStatus

MARKS = {CheckStatus.PASSED: "PASS", CheckStatus.FAILED: "FAIL", CheckStatus.ERROR: "ERROR"}
FEEDBACK_CHARS, NOTE_CHARS, TITLE_CHARS = 20_000, 2_000, 1_000


def check_cell_output(check: CheckResult) -> str:
    """What a check prints in its test cell on nbgrader's path (nbgrader_bridge.run_check), and
    what the autograded/ copy shows there."""
    if check.status == CheckStatus.PASSED:
        return f"[{check.name}] passed ({check.max_score:g} points)."
    return f"[{check.name}] {check.status}: {check.score:g}/{check.max_score:g}\n{clean_text(check.feedback, FEEDBACK_CHARS)}"


def to_text(result: SubmissionResult, assignment: Assignment, title: str = "") -> str:
    lines = [clean_text(title, TITLE_CHARS)] if title else []
    for check in result.checks:
        lines.append(f"  {MARKS[check.status]:5} {clean_text(check.name, 100):<11} {check.score:g}/{check.max_score:g}")
        if check.status != CheckStatus.PASSED:
            lines.append(textwrap.indent(clean_text(check.feedback, FEEDBACK_CHARS), "          "))
    lines.append(f"  Total: {result.score:g}/{result.max_score:g}  ({result.execution_time_s:.2f} s)")
    if assignment.manual_checks:  # the written answers are not in the automatic total
        manual = ", ".join(f"{name} ({points} points)" for name, points in assignment.manual_checks.items())
        total = result.max_score + sum(assignment.manual_checks.values())
        lines.append(f"  Graded by hand later: {manual}, out of {total:g} in all.")
    # a note's later lines (a code block: the line a syntax error names) stay under it
    lines.extend("  Note: " + clean_text(note, NOTE_CHARS).replace("\n", "\n        ") for note in result.student_notes)
    if result.isolation.get("level"):
        lines.append(f"  Confinement: {clean_text(result.isolation['level'], 40)}")
    return "\n".join(lines)
