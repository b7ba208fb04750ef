"""The assignment's contract in one place (`PYTORCH_SLOPE`): its name, paths, the student's
functions, and the checks with their points. The names are also the grade ids of the notebook's test cells and the test
names in Gradescope's results, so they never change between paths.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True)
class Assignment:
    """One assignment, as every verb, step and output sees it. Its paths are relative to `root`
    (the kit's folder; a scratch copy during `release`: see `at`)."""

    name: str
    checks: dict[str, int]  # check name -> points; check `x` is `test_x` in autograder/checks/test_x.py
    manual_checks: dict[str, int]  # written answers graded by hand in formgrader
    student_functions: tuple[str, ...]  # the steps students write, in the order reports name them
    solution_cells: dict[str, str]  # student function -> grade id of the master cell that defines it
    # check -> the checks whose student steps it also runs: its failure after theirs is a
    # downstream symptom in the class report (outputs/class_summary.py), not a second cause
    check_uses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    root: Path = Path(__file__).resolve().parent.parent

    def __post_init__(self):
        # a misspelt or renamed check here would silently turn every symptom into a root cause
        unknown = {name for name, uses in self.check_uses.items() for name in (name, *uses)} - set(self.checks)
        if unknown:
            raise ValueError(f"{self.name}: check_uses names checks that do not exist: {', '.join(sorted(unknown))}")

    @property
    def notebook(self) -> str:
        return f"{self.name}.ipynb"

    @property
    def master(self) -> Path:
        return self.root / "source" / self.name / self.notebook

    @property
    def release_folder(self) -> Path:
        return self.root / "release" / self.name

    @property
    def release_notebook(self) -> Path:
        return self.release_folder / self.notebook

    @property
    def reference(self) -> Path:
        return self.root / "solutions" / f"{self.name}.py"

    @property
    def max_score(self) -> int:
        return sum(self.checks.values())

    def at(self, root: Path) -> Assignment:
        """The same assignment in another copy of the kit."""
        return replace(self, root=Path(root))


PYTORCH_SLOPE = Assignment(
    name="pytorch_slope",
    checks={"forward": 1, "loss": 2, "gradient": 2, "update": 2, "zero_grad": 1, "final_loss": 2},
    manual_checks={"why_updates_shrink": 2},
    student_functions=("forward", "criterion", "update", "zero_grad"),
    solution_cells={"forward": "forward_impl", "criterion": "criterion_impl", "update": "update_impl",
                    "zero_grad": "zero_grad_impl"},
    # README: "the reference supplies every other step", except in these two checks
    check_uses={"gradient": ("forward", "loss"), "final_loss": ("forward", "loss", "gradient", "update", "zero_grad")},
)

# The assignments this kit grades, by name: the command line turns a name into one of these values.
ASSIGNMENTS: dict[str, Assignment] = {PYTORCH_SLOPE.name: PYTORCH_SLOPE}


def assignment_named(name: str) -> Assignment:
    """The assignment called `name`; ValueError, naming the known ones, for any other name."""
    try:
        return ASSIGNMENTS[name]
    except KeyError:
        raise ValueError(f"unknown assignment {name!r}: this kit grades {', '.join(map(repr, ASSIGNMENTS))}") from None


# The names most modules read, all from the one value above.
ASSIGNMENT = PYTORCH_SLOPE.name
NOTEBOOK = PYTORCH_SLOPE.notebook
CHECKS: dict[str, int] = PYTORCH_SLOPE.checks
MANUAL_CHECKS: dict[str, int] = PYTORCH_SLOPE.manual_checks
MAX_SCORE = PYTORCH_SLOPE.max_score
KIT_ROOT = PYTORCH_SLOPE.root
REFERENCE_FILE = PYTORCH_SLOPE.reference
GRADING_FILE = Path(__file__).resolve().parent / "grading.json"


def grading_settings() -> dict:
    """The term's grading seed and hidden-data settings (never released to students)."""
    return json.loads(GRADING_FILE.read_text())


# Package files that can change a score: all grading code, its settings and configuration
# (not templates or docs: changing how feedback looks does not make a grade stale).
_FINGERPRINT_SUFFIXES = (".py", ".json", ".ini")


# What each term's releases and secrets are (terms.py): a grade covers only the release it was
# graded against (notebook/releases.py KnownReleases.fingerprint), so a new term's release leaves
# the current class's grades standing.
_TERM_FILES = ("grading.json", "earlier_releases.json")


def _fingerprinted_files(assignment: Assignment) -> list[Path]:
    package = Path(__file__).resolve().parent
    files = [p for p in package.rglob("*") if p.suffix in _FINGERPRINT_SUFFIXES and "__pycache__" not in p.parts
             and p.relative_to(package).as_posix() not in _TERM_FILES]
    return sorted(files) + [assignment.reference]


def grader_fingerprint(assignment: Assignment, device: str = "cpu", limits: object = None) -> str:
    """sha256 over everything but the term that decides a score: every .py/.json/.ini file of the
    grader package (checks, probes, sandbox, provided loop: found by walking the package, not from
    a hand-kept list) but the terms' files, the reference, the torch version, the grading device
    and the limits (`repr` of sandbox.limits.Limits). A grade's own fingerprint adds the release
    it was graded against and its term's secret (KnownReleases.fingerprint); a stored grade made
    with another is stale: `autograde` grades it again."""
    digest = hashlib.sha256()
    for path in _fingerprinted_files(assignment):
        # named relative to its kit (the package's, or the assignment's copy), so a copy hashes the same
        root = next((r for r in (assignment.root, KIT_ROOT) if path.is_relative_to(r)), path.parent)
        name = path.relative_to(root).as_posix()
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
    try:
        torch_version = importlib.metadata.version("torch")  # no torch import: the batch's parent avoids it
    except importlib.metadata.PackageNotFoundError:
        torch_version = "none"
    digest.update(f"torch={torch_version}\0device={device}\0limits={limits!r}".encode())
    return digest.hexdigest()
