"""The command line: a thin layer of argparse over each verb's `main(...)`.

Misuse (a missing file, a bad flag, CUDA asked for where there is none) exits with status 2
and one clear line; a submission that cannot be graded is not misuse: it gets 0 and a reason.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _cuda_or_exit(device: str) -> None:
    if device == "cuda":
        # Ask NVML, not the CUDA driver: a process that initialised the driver cannot hand CUDA
        # to its forks, and this check runs in the grader's parent process.
        os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
        import torch

        if not torch.cuda.is_available():
            sys.exit("error: --device cuda was asked for, but no CUDA GPU is available here (use --device cpu)")


def _existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {value}")
    return path


def _term_name(value: str) -> str:
    from autograder.release.term import check_term_name

    try:
        return check_term_name(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description="Grade the pytorch_slope assignment.")
    verbs = parser.add_subparsers(dest="verb", required=True)

    grade = verbs.add_parser("grade", help="grade one notebook and print the result")
    grade.add_argument("notebook", type=_existing_file, help="the submitted .ipynb file")
    grade.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the checks run (default: cpu)")
    grade.add_argument("--format", choices=["text", "gradescope"], default="text",
                       help="text: a readable report; gradescope: results.json on stdout")

    release = verbs.add_parser("release", help="derive a term's parameters, generate, verify and seal release/")
    release.add_argument("--term", type=_term_name, help="term name, e.g. 2027-spring (--check-only: default the committed term)")
    release.add_argument("--check-only", action="store_true", help="verify the committed release; change nothing")

    bundle = verbs.add_parser("gradescope-bundle", help="write the Gradescope autograder zip")
    bundle.add_argument("--output", type=Path, default=Path("autograder.zip"), help="zip to write (default: autograder.zip)")

    autograde = verbs.add_parser("autograde", help="grade a whole class in nbgrader's layout (submitted/<student>/ASSIGNMENT/)")
    autograde.add_argument("assignment", help="the assignment to grade (pytorch_slope)")
    autograde.add_argument("--course-dir", type=Path, default=Path("."), help="nbgrader course directory (default: current)")
    autograde.add_argument("--workers", type=_positive_int, default=None, help="parallel workers (default: number of CPUs)")
    autograde.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the checks run (default: cpu)")
    autograde.add_argument("--student", dest="students", action="append", metavar="ID",
                           help="grade (again) only this student; repeatable")
    autograde.add_argument("--force", action="store_true", help="grade again even submissions that did not change")
    for verb in (grade, autograde):
        verb.add_argument("--cell-timeout", type=_positive_float, default=None, metavar="SECONDS",
                          help="time limit of one notebook cell, as nbgrader's ExecutePreprocessor.timeout (default: 20)")
    return parser


def _positive(convert, what: str):
    """An argparse type: `convert` the value, which must be above zero."""
    def parse(value: str):
        try:
            number = convert(value)
        except ValueError:
            number = 0
        if not number > 0:
            raise argparse.ArgumentTypeError(f"expected a positive {what}, got {value!r}")
        return number
    return parse


_positive_int = _positive(int, "whole number")
_positive_float = _positive(float, "number of seconds")


def main(argv: list[str] | None = None) -> int:
    # nbgrader runs helper programs (alembic) from the environment's bin/ folder: make sure it
    # is found even when the venv was not activated.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    args = build_parser().parse_args(argv)
    options = {k: v for k, v in vars(args).items() if k != "verb"}
    if "device" in options:
        _cuda_or_exit(options["device"])
    if args.verb == "grade":
        from autograder.grade import main as verb
    elif args.verb == "autograde":
        from autograder.autograde.main import main as verb
    elif args.verb == "release":
        from autograder.release.main import main as verb
    elif args.verb == "gradescope-bundle":
        from autograder.gradescope.bundle import main as verb
    return verb(**options)
