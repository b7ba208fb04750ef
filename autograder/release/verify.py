"""Every verification of a term's release. Each check returns a list of failures (plain
sentences); `verify` runs them all and returns all failures, so one report lists everything.

  reference_scores   the reference submission (release + the master's solutions) scores full
                     marks with the kit's grader (as `grade` runs it), on each of `devices`:
                     CPU, and CUDA when a GPU is available (the report says which ran)
  release_scores     the untouched release scores 0 on every check
  release_runs       the untouched release runs top to bottom under nbclient; the only errors
                     allowed are the stubs' NotImplementedError and, in a later cell, a NameError
                     for a name that an earlier cell would have bound had it not stopped on an
                     allowed error (e.g. `loss` after `loss = criterion(...)` hit the stub);
                     every other error, or a release whose stubs are never reached, fails
  nbgrader_validate  `nbgrader validate` (nbgrader's Validator) passes for the reference and
                     fails for the release
  release_leaks      no file of the release holds solution code, a hidden test, a reference value
                     (the reference training's numbers on the notebook's data), any term's grading secret,
                     the model answer, or an output
  plots              the executed master has no error, nothing on stderr, and every plot
                     (EPOCHS + 3 of them) is a PNG that decodes
"""
from __future__ import annotations

import ast
import base64
import io
import re
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import nbformat

from autograder.assignment import ASSIGNMENT, CHECKS, GRADING_FILE, KIT_ROOT, MAX_SCORE, NOTEBOOK, PYTORCH_SLOPE, Assignment
from autograder.model.status import CheckStatus
from autograder.release.generate import released_files
from autograder.release.synthetic import solution_lines
from autograder.release.term import TermParameters, simulate
from autograder.terms import read_secrets

STUB_ERROR = "NotImplementedError"
_NAME_ERROR = re.compile(r"name '([A-Za-z_][A-Za-z0-9_]*)' is not defined")
_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "run_check",
            "autograder", "grading_seed", "grading.json", "earlier_releases")


def reference_notebook(master_path: Path, release_path: Path):
    """The release with every stub replaced by the master's solution, and the written answers by
    the master's model answers: what a perfect student hands in."""
    from autograder.release.synthetic import make_submission

    return make_submission(solved=True, answered=True, release=release_path, source=master_path)


# --------------------------------------------------------------------------- grading

class Grader:
    """Grades notebooks the way `grade` does, with one zygote for all of them (each `grade` would
    start its own, about 3 s of CPU), against `assignment`: the kit being released, whose locked
    cells come from the release just generated."""

    def __init__(self, assignment: Assignment):
        from autograder.sandbox.grader.zygotes import Zygote

        self.assignment = assignment
        self.zygote = Zygote()

    def __call__(self, path: Path, device: str):
        from autograder.pipeline import GradingContext, grade_submission

        return grade_submission(path, GradingContext(zygote=self.zygote, assignment=self.assignment, device=device))

    def close(self) -> None:
        self.zygote.close()


def grading_devices() -> list[str]:
    import torch

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def reference_scores(reference_path: Path, devices: list[str], grade: Grader) -> list[str]:
    failures = []
    for device in devices:
        result = grade(reference_path, device)
        if result.score != MAX_SCORE or any(c.status != CheckStatus.PASSED for c in result.checks):
            lost = "; ".join(f"{c.name}: {c.score:g}/{c.max_score:g} {c.status} ({c.feedback.strip()[:300]})"
                             for c in result.checks if c.status != CheckStatus.PASSED)
            failures.append(f"the reference scores {result.score:g}/{MAX_SCORE} on {device}, not full marks: {lost}")
    return failures


def release_scores(release_copy: Path, grade: Grader) -> list[str]:
    result = grade(release_copy, "cpu")
    scored = [f"{c.name} ({c.score:g})" for c in result.checks if c.score != 0]
    missing = sorted(set(CHECKS) - {c.name for c in result.checks})
    failures = []
    if scored:
        failures.append(f"the untouched release scores points on: {', '.join(scored)}")
    if missing:
        failures.append(f"the grader did not report the checks {missing} for the untouched release")
    return failures


# --------------------------------------------------------------------------- release runs

def _bound_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def classify_release_errors(executed) -> list[str]:
    """Apply the rule of the module's docstring to an executed release; return the failures."""
    failures, unbound, stub_errors = [], set(), 0
    for index, cell in enumerate(executed.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        for error in errors:
            if error.ename == STUB_ERROR:
                stub_errors += 1
                continue
            match = _NAME_ERROR.search(error.evalue) if error.ename == "NameError" else None
            if match and match.group(1) in unbound:
                continue
            failures.append(f"the untouched release raised {error.ename}: {error.evalue} in cell {index} "
                            f"(only the stubs' NotImplementedError and what follows from it are allowed):\n{cell.source[:400]}")
        if errors:
            unbound |= _bound_names(cell.source)
    if not stub_errors:
        failures.append("the untouched release ran without reaching a stub (no NotImplementedError)")
    return failures


def stub_sources_problems(release) -> list[str]:
    """NotImplementedError may be raised only by the solution cells' stubs."""
    failures = []
    for index, cell in enumerate(release.cells):
        if cell.cell_type == "code" and "NotImplementedError" in cell.source:
            if not cell.metadata.get("nbgrader", {}).get("solution"):
                failures.append(f"release cell {index} mentions NotImplementedError but is not a solution stub")
    return failures


def release_runs(release_path: Path) -> list[str]:
    from autograder.release.solutions import execute

    release = nbformat.read(release_path, as_version=4)
    failures = stub_sources_problems(release)
    try:
        executed = execute(release, allow_errors=True)
    except Exception as error:  # a timeout or a dead kernel: the release did not run to the end
        return failures + [f"the untouched release did not run top to bottom under nbclient: {type(error).__name__}: {error}"]
    return failures + classify_release_errors(executed)


# --------------------------------------------------------------------------- nbgrader validate

def _validator(root: Path):
    from nbgrader.validator import Validator
    from traitlets.config.loader import PyFileConfigLoader

    from autograder.release.solutions import kernel_manager_config

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    config.merge(kernel_manager_config())
    return Validator(config=config)


def nbgrader_validate(root: Path, reference_path: Path, release_copy: Path) -> list[str]:
    import os

    from autograder.release.solutions import kernel_env

    failures = []
    saved = dict(os.environ)
    os.environ.update(kernel_env())  # nbgrader's Execute starts its kernel with our environment
    try:
        reference = _validator(root).validate(str(reference_path))
        release = _validator(root).validate(str(release_copy))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if reference:
        details = "; ".join(f"{kind}: " + " | ".join((c.get("raw_error") or c.get("source", ""))[:300] for c in cells)
                            for kind, cells in reference.items())
        failures.append(f"nbgrader validate fails for the reference: {details}")
    if not release.get("failed") and not release.get("changed") and not release.get("type_changed"):
        failures.append("nbgrader validate passes for the untouched release (its tests should fail)")
    return failures


# --------------------------------------------------------------------------- leaks

def reference_values(params: TermParameters) -> list[str]:
    """The reference training's numbers on the notebook's data, as they could be printed."""
    sim = simulate(params)
    numbers = [sim["w_best"], sim["floor"]]
    for run in (sim["first"], sim["second"]):
        numbers += run["losses"] + [run["w_final"], run["final_loss"]]
    texts = set()
    for v in numbers:
        texts.update({f"{v:.4f}", f"{v:.5f}", f"{v:.6f}", repr(v), f"{v:.6g}"})
    # only texts specific enough not to occur by chance (4 or more digits after the point)
    return sorted(t for t in texts if re.search(r"\.\d{4,}", t))


def release_leaks(release_folder: Path, master_path: Path, params: TermParameters, term_secrets: tuple[str, ...] = ()) -> list[str]:
    """`term_secrets`: every term's grading secret the kit keeps (this term's is params')."""
    master = nbformat.read(master_path, as_version=4)
    secrets = solution_lines(master)
    model_answers = [c.source.split(".")[0] for c in master.cells
                     if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("solution")]
    values = reference_values(params)
    seeds = sorted({str(params.grading_seed), *term_secrets})
    failures = []
    for rel, data in released_files(release_folder).items():
        text = data.decode("utf-8", errors="replace")
        for marker in _MARKERS:
            if marker in text:
                failures.append(f"release/{ASSIGNMENT}/{rel} contains {marker!r}")
        if any(seed in text for seed in seeds):
            failures.append(f"release/{ASSIGNMENT}/{rel} contains a grading secret")
        for value in values:
            if re.search(rf"(?<![\d.]){re.escape(value)}(?!\d)", text):
                failures.append(f"release/{ASSIGNMENT}/{rel} contains the reference value {value}")
        for answer in model_answers:
            if answer.strip() and answer.strip() in text:
                failures.append(f"release/{ASSIGNMENT}/{rel} contains the model answer of a written question")
        if rel.endswith(".ipynb"):
            notebook = nbformat.reads(text, as_version=4)
            for index, cell in enumerate(notebook.cells):
                lines = {line.strip() for line in cell.source.splitlines()}
                leaked = [s for s in secrets if s in lines]
                if leaked:
                    failures.append(f"release/{ASSIGNMENT}/{rel} cell {index} contains solution code: {leaked[0]!r}")
                if cell.cell_type == "code" and cell.outputs:
                    failures.append(f"release/{ASSIGNMENT}/{rel} cell {index} has outputs")
    if not secrets:
        failures.append("the master has no ### BEGIN SOLUTION regions to check the release against")
    return failures


# --------------------------------------------------------------------------- plots

def _png_size(data: str) -> tuple[int, int] | None:
    """The picture's size if `data` (base64) is a PNG that Pillow decodes whole, else None."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(base64.b64decode(data, validate=False)), formats=["PNG"]) as image:
            image.load()  # decodes every pixel, not only the header
            return image.size
    except (ValueError, OSError, Image.DecompressionBombError):
        return None


def plots(master_run: Future, params: TermParameters) -> list[str]:
    """`master_run`: the master's execution (solutions.execute_master), which runs while the other
    verifications do."""
    try:
        executed_master = master_run.result()
    except Exception as error:  # nbclient's CellExecutionError, a dead kernel
        return [f"the master does not run top to bottom: {type(error).__name__}: {error}"]
    failures, pngs = [], 0
    for index, cell in enumerate(executed_master.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                failures.append(f"master cell {index} raised {output.ename}: {output.evalue}")
            elif output.output_type == "stream" and output.name == "stderr":
                failures.append(f"master cell {index} wrote to stderr: {output.text[:300]}")
            elif "image/png" in output.get("data", {}):
                size = _png_size(output.data["image/png"])
                if not size or min(size) < 50:
                    failures.append(f"master cell {index} has a PNG output that does not decode to a picture")
                pngs += 1
    expected = params.EPOCHS + 3  # the data, one per epoch, the loss curve, the two loss curves
    if pngs < expected:
        failures.append(f"the executed master rendered {pngs} plots, expected {expected} (EPOCHS + 3)")
    return failures


# --------------------------------------------------------------------------- all of them

def verify(root: Path, params: TermParameters, master_run: Future, *, devices: list[str] | None = None,
           log=print) -> list[str]:
    """Every verification; returns their failures. They run two at a time (each mostly waits on
    a kernel or a sandbox process of its own); the two gradings share one zygote and run one
    after the other (pytest runs one session at a time in a process). `log` gets each
    verification's lines in a fixed order, whatever finished first, so the same release gives the
    same report."""
    root = Path(root)
    master_path = PYTORCH_SLOPE.at(root).master
    release_folder = PYTORCH_SLOPE.at(root).release_folder
    release_path = release_folder / NOTEBOOK

    with tempfile.TemporaryDirectory(prefix="release-verify-") as scratch, ThreadPoolExecutor(2) as pool:
        scratch = Path(scratch)
        (scratch / "reference").mkdir()
        (scratch / "release").mkdir()
        reference_path = scratch / "reference" / NOTEBOOK
        nbformat.write(reference_notebook(master_path, release_path), reference_path)
        release_copy = scratch / "release" / NOTEBOOK
        shutil.copy(release_path, release_copy)

        def gradings() -> dict[str, list[str]]:
            grade = Grader(PYTORCH_SLOPE.at(root))
            try:
                return {"reference_scores": _attempt("reference_scores", reference_scores, reference_path,
                                                     devices or grading_devices(), grade),
                        "release_scores": _attempt("release_scores", release_scores, release_copy, grade)}
            finally:
                grade.close()

        # The longest first, so that neither thread idles at the end.
        graded = pool.submit(gradings)
        running = {
            "nbgrader_validate": pool.submit(_attempt, "nbgrader_validate", nbgrader_validate, root, reference_path, release_copy),
            "release_runs": pool.submit(_attempt, "release_runs", release_runs, release_path),
            "plots": pool.submit(_attempt, "plots", plots, master_run, params),
            "release_leaks": pool.submit(_attempt, "release_leaks", release_leaks, release_folder, master_path, params,
                                         _kept_secrets(root)),
        }
        found = {**{name: future.result() for name, future in running.items()}, **graded.result()}
    failures: list[str] = []
    for name in ("plots", "release_leaks", "reference_scores", "release_scores", "release_runs", "nbgrader_validate"):
        log(f"  {name}: {'ok' if not found[name] else f'{len(found[name])} failure(s)'}")
        failures.extend(f"[{name}] {f}" for f in found[name])
    return failures


def _kept_secrets(root: Path) -> tuple[str, ...]:
    """Every term's secret in root's grading.json (none if it cannot be read: integrity says why)."""
    try:
        return tuple(read_secrets(Path(root) / GRADING_FILE.relative_to(KIT_ROOT)).secrets.values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ()


def _attempt(name: str, check, *args) -> list[str]:
    """A verification's failures; one that cannot run is a failure, not a crash."""
    try:
        return check(*args)
    except Exception as error:
        return [f"{name} could not run: {type(error).__name__}: {error}"]
