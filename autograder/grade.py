"""`python -m autograder grade NOTEBOOK`: grade one notebook and print the result.

This is what Gradescope runs for every submission, so its start-up is what a student waits
for: the zygote (the sandboxes' warm parent) is started first, and imports torch in its own
process while this one imports the checks, pytest and torch. Only the light modules are
imported above for that reason; the rest is imported once the zygote is on its way.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from autograder.sandbox.limits import Limits
from autograder.sandbox.spawn import Zygote

if TYPE_CHECKING:
    from autograder.model.results import SubmissionResult


def grade_one(notebook: Path, *, device: str = "cpu", limits: Limits | None = None) -> SubmissionResult:
    with Zygote() as zygote:
        from autograder.assignment import PYTORCH_SLOPE  # the one a Gradescope submission is
        from autograder.pipeline import GradingContext, grade_submission  # while the zygote starts

        context = GradingContext(zygote=zygote, assignment=PYTORCH_SLOPE, device=device, limits=limits or Limits())
        return grade_submission(Path(notebook), context)


def main(*, notebook: Path, device: str = "cpu", format: str = "text", cell_timeout: float | None = None) -> int:
    result = grade_one(notebook, device=device, limits=Limits(cell_timeout_s=cell_timeout) if cell_timeout else None)
    if format == "gradescope":
        import json

        from autograder.outputs.gradescope import to_gradescope

        print(json.dumps(to_gradescope(result), indent=2))
    else:
        from autograder.assignment import PYTORCH_SLOPE
        from autograder.outputs.text import to_text

        print(to_text(result, PYTORCH_SLOPE, title=f"{notebook}"))
    return 0
