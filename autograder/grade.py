"""`python -m autograder grade NOTEBOOK`: grade one notebook and print the result."""
from __future__ import annotations

import json
from pathlib import Path

from autograder.model.results import SubmissionResult
from autograder.outputs.gradescope import to_gradescope
from autograder.outputs.text import to_text
from autograder.pipeline import GradingContext, grade_submission
from autograder.sandbox.limits import Limits
from autograder.sandbox.spawn import Zygote


def grade_one(notebook: Path, *, device: str = "cpu", limits: Limits | None = None) -> SubmissionResult:
    with Zygote() as zygote:
        context = GradingContext(zygote=zygote, device=device, limits=limits or Limits())
        return grade_submission(Path(notebook), context)


def main(*, notebook: Path, device: str = "cpu", format: str = "text", cell_timeout: float | None = None) -> int:
    result = grade_one(notebook, device=device, limits=Limits(cell_timeout_s=cell_timeout) if cell_timeout else None)
    if format == "gradescope":
        print(json.dumps(to_gradescope(result), indent=2))
    else:
        print(to_text(result, title=f"{notebook}"))
    return 0
