"""The command line: a thin layer of argparse over each verb's `main(...)`.

Misuse (a missing file, a folder where a notebook is expected, a bad flag, an unknown student,
CUDA asked for where there is none) exits with status 2 and one line that says what to do
instead (argparse's errors, and `UsageError` raised by a verb); a submission that cannot be
graded is not misuse: it gets 0 and a reason.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from autograder.usage import USAGE_EXIT_STATUS, UsageError


def _cuda_or_refuse(device: str) -> None:
    if device == "cuda":
        # Ask NVML, not the CUDA driver: a process that initialised the driver cannot hand CUDA
        # to its forks, and this check runs in the grader's parent process.
        os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for, but no CUDA GPU is available here: use --device cpu, "
                             "or run on a machine with an NVIDIA GPU and the CUDA build of torch (make venv TORCH=cuda)")


def _existing_notebook(value: str) -> Path:
    path = Path(value)
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.ipynb"))
        hint = f" (it holds {', '.join(inside[:3])})" if inside else ""
        raise argparse.ArgumentTypeError(
            f"{value} is a folder, not a notebook{hint}: give one .ipynb file, or grade a class in nbgrader's "
            "layout with `python -m autograder autograde pytorch_slope --course-dir COURSE`")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {value} (give the path of the submitted .ipynb file)")
    return path


def _assignment(value: str):
    from autograder.assignment import assignment_named

    try:
        return assignment_named(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _zip_path(value: str) -> Path:
    path = Path(value)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{value} is a folder: give the zip file to write, e.g. {path / 'autograder.zip'}")
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
    grade.add_argument("notebook", type=_existing_notebook, help="the submitted .ipynb file")
    grade.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the checks run (default: cpu)")
    grade.add_argument("--format", choices=["text", "gradescope", "coursera"], default="text",
                       help="text: a readable report; gradescope: results.json on stdout; coursera: one JSON object "
                            "with Coursera's feedback.json and HTML page (what coursera-bundle's run_grader writes)")

    release = verbs.add_parser("release", help="derive a term's parameters, generate, verify and seal release/")
    release.add_argument("--term", type=_term_name,
                         help="the term, as YYYY-spring|summer|fall|winter, e.g. 2027-spring (--check-only: default the committed term)")
    release.add_argument("--check-only", action="store_true", help="verify the committed release; change nothing")
    release.add_argument("--force", action="store_true",
                         help="overwrite release files of another term that were not committed")

    bundle = verbs.add_parser("gradescope-bundle", help="write the Gradescope autograder zip")
    bundle.add_argument("--output", type=_zip_path, default=Path("autograder.zip"), help="zip to write (default: autograder.zip)")

    coursera = verbs.add_parser("coursera-bundle", help="write the Coursera custom grader zip (a Dockerfile and its files)")
    coursera.add_argument("--output", type=_zip_path, default=Path("coursera_grader.zip"),
                          help="zip to write (default: coursera_grader.zip)")
    coursera.add_argument("--unconfined", action="store_true",
                          help="let the image grade where the platform allows no confinement level (submissions could then "
                               "read the reference and the grading secret); by default it refuses there and records no score")

    autograde = verbs.add_parser("autograde", help="grade a whole class in nbgrader's layout (submitted/<student>/ASSIGNMENT/)")
    autograde.add_argument("assignment", type=_assignment, help="the assignment to grade (pytorch_slope)")
    autograde.add_argument("--course-dir", type=Path, default=Path("."), help="nbgrader course directory (default: current)")
    autograde.add_argument("--workers", type=_positive_int, default=None, help="parallel workers (default: number of CPUs)")
    autograde.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the checks run (default: cpu)")
    autograde.add_argument("--student", dest="students", action="append", metavar="ID",
                           help="grade (again) only this student; repeatable")
    autograde.add_argument("--force", action="store_true", help="grade again even submissions that did not change")
    for verb in (grade, autograde):
        verb.add_argument("--unconfined", action="store_true",
                          help="grade even where no confinement level can keep submissions from the course's files and "
                               "your other processes (refused by default); every result is marked unconfined")
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
    args = build_parser().parse_args(argv)  # argparse's own errors exit with 2 and the usage
    options = {k: v for k, v in vars(args).items() if k != "verb"}
    try:
        if "device" in options:
            _cuda_or_refuse(options["device"])
        return _verb(args.verb)(**options)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_EXIT_STATUS


def _verb(name: str):
    if name == "grade":
        from autograder.grade import main as verb
    elif name == "autograde":
        from autograder.autograde.main import main as verb
    elif name == "release":
        from autograder.release.main import main as verb
    elif name == "gradescope-bundle":
        from autograder.gradescope.bundle import main as verb
    elif name == "coursera-bundle":
        from autograder.coursera.bundle import main as verb
    return verb
