"""`python -m autograder grade NOTEBOOK`: grade one notebook and print the result."""
from __future__ import annotations

import json
from pathlib import Path

from autograder.outputs.gradescope import to_gradescope
from autograder.outputs.text import to_text
from autograder.pipeline import GradingContext, grade_submission
from autograder.results import SubmissionResult
from autograder.sandbox.client import Zygote


def grade_one(notebook: Path, *, device: str = "cpu") -> SubmissionResult:
    with Zygote() as zygote:
        return grade_submission(Path(notebook), GradingContext(zygote=zygote, device=device))


def main(*, notebook: Path, device: str = "cpu", format: str = "text") -> int:
    result = grade_one(notebook, device=device)
    if format == "gradescope":
        print(json.dumps(to_gradescope(result), indent=2))
    else:
        print(to_text(result, title=f"{notebook}"))
    return 0
