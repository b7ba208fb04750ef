"""Checks of the instructor's master notebook and of the committed student release.

* (that the master runs top to bottom with its plots, and that the committed release is what
  `nbgrader generate_assignment` makes from the master now: `release --check-only`, in
  tests/test_release.py, which does both once)
* the release gives nothing away (solutions, hidden tests, the grader's bridge);
* the provided training loop is the grader's own `train_model`, verbatim;
* the parameters cell is the one a per-term tool can rewrite;
* grade ids and points are the ones the grader and the gradebook expect.
"""
import ast
import inspect
import re
from pathlib import Path

import nbformat
import pytest

from autograder.assignment import CHECKS, MANUAL_CHECKS
from autograder.release.synthetic import solution_lines

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "pytorch_slope"
MASTER = ROOT / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
RELEASE = ROOT / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
REFRESH_HINT = (
    f"run `nbgrader generate_assignment {ASSIGNMENT} --force` from the repository root "
    "(with the venv's bin/ on PATH) and commit release/ to refresh it"
)

# Autograded test cells: grade_id -> points, the grader's own table (the hidden part of each calls
# run_check(grade_id)); the test below also pins the totals the issue asks for.
TEST_CELLS = CHECKS
MANUAL_CELLS = MANUAL_CHECKS
SOLUTION_CELLS = ["forward_impl", "criterion_impl", "update_impl", "zero_grad_impl"]
LOCKED_PROVIDED = ["parameters", "provided_train_model", "provided_plot_helper"]
PARAMETERS = ["TRUE_SLOPE", "NOISE_STD", "DATA_SEED", "W_INIT", "LR", "EPOCHS", "W_INIT_SECOND"]
# which cell each test cell must follow directly
TESTED_BY = {"forward": "forward_impl", "loss": "criterion_impl",
             "update": "update_impl", "zero_grad": "zero_grad_impl"}
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


def nbg(cell):
    return cell.metadata.get("nbgrader", {})


def by_id(nb):
    return {nbg(c)["grade_id"]: (i, c) for i, c in enumerate(nb.cells) if nbg(c).get("grade_id")}


@pytest.fixture(scope="module")
def master():
    return nbformat.read(MASTER, as_version=4)


@pytest.fixture(scope="module")
def release():
    assert RELEASE.exists(), f"{RELEASE.relative_to(ROOT)} is missing: {REFRESH_HINT}"
    return nbformat.read(RELEASE, as_version=4)


# The master running top to bottom with every plot, and the release being what a fresh
# `nbgrader generate_assignment` makes, are verified by `release --check-only` on the committed
# state (tests/test_release.py), which executes the master and generates the release once.


# --------------------------------------------------------------------------- release is clean

def test_release_gives_nothing_away(master, release):
    secrets = solution_lines(master)
    assert secrets, "no ### BEGIN SOLUTION regions found in the master"
    for i, cell in enumerate(release.cells):
        src = cell.source
        for marker in ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN SOLUTION", "END SOLUTION",
                       "run_check", "autograder"):
            assert marker not in src, f"release cell {i} contains {marker!r}"
        released_lines = {line.strip() for line in src.splitlines()}
        for secret in secrets:
            assert secret not in released_lines, f"release cell {i} contains solution line {secret!r}"
        if cell.cell_type == "code":
            assert not cell.outputs, f"release cell {i} has outputs"

    answer = by_id(release)["why_updates_shrink"][1]
    assert answer.source.strip() == "YOUR ANSWER HERE"
    model_answer = by_id(master)["why_updates_shrink"][1].source
    first_sentence = model_answer.split(".")[0]
    assert all(first_sentence not in c.source for c in release.cells), "the model answer leaked"


def test_release_stubs_raise_not_implemented(release):
    cells = by_id(release)
    for grade_id in SOLUTION_CELLS:
        cell = cells[grade_id][1]
        meta = nbg(cell)
        assert meta["solution"] and not meta["grade"] and not meta["locked"], grade_id
        assert STUB in "\n".join(line.strip() for line in cell.source.splitlines()), grade_id
        tree = ast.parse(cell.source)
        funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        assert len(funcs) == 1 and len(tree.body) == 1, f"{grade_id}: one function per cell"
        body = funcs[0].body
        assert ast.get_docstring(funcs[0]), f"{grade_id}: the docstring stating the contract is missing"
        rest = body[1:]
        assert len(rest) == 1 and ast.unparse(rest[0]) == "raise NotImplementedError()", (
            f"{grade_id}: the released body should be only `raise NotImplementedError()`")


def test_release_grade_cells(release):
    graded = {nbg(c)["grade_id"]: (c.cell_type, nbg(c)["points"]) for c in release.cells
              if nbg(c).get("grade")}
    expected = {g: ("code", p) for g, p in TEST_CELLS.items()}
    expected.update({g: ("markdown", p) for g, p in MANUAL_CELLS.items()})
    assert graded == expected


# --------------------------------------------------------------------------- master structure

def test_provided_train_model_is_the_graders(master):
    import autograder.provided

    cell = by_id(master)["provided_train_model"][1]
    meta = nbg(cell)
    assert meta["locked"] and not meta["solution"] and not meta["grade"]

    def norm(text):
        return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())

    assert norm(cell.source) == norm(inspect.getsource(autograder.provided.train_model)), (
        "the provided cell must hold exactly autograder.provided.train_model")


def test_parameters_cell(master):
    index, cell = by_id(master)["parameters"]
    assert "parameters" in cell.metadata.get("tags", []), "the parameters cell must be tagged `parameters`"
    meta = nbg(cell)
    assert meta["locked"] and not meta["solution"] and not meta["grade"]
    lines = cell.source.strip().splitlines()
    assert len(lines) == len(PARAMETERS), "one assignment per line, nothing else"
    names = []
    for line in lines:
        (stmt,) = ast.parse(line).body
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1, line
        assert isinstance(stmt.targets[0], ast.Name), line
        value = ast.literal_eval(stmt.value)
        assert isinstance(value, (int, float)) and not isinstance(value, bool), line
        names.append(stmt.targets[0].id)
    assert names == PARAMETERS

    # no other cell may set these names: a per-term rewrite of the parameters cell must be enough
    for i, other in enumerate(master.cells):
        if i == index or other.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(other.source)):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                assert node.id not in PARAMETERS, f"cell {i} assigns {node.id}"


def test_grade_ids_and_points(master):
    cells = by_id(master)
    graded = [c for c in master.cells if nbg(c).get("grade")]
    assert len({nbg(c)["grade_id"] for c in graded}) == len(graded), "grade ids must be unique"

    for grade_id, points in TEST_CELLS.items():
        index, cell = cells[grade_id]
        meta = nbg(cell)
        assert cell.cell_type == "code" and meta["grade"] and meta["locked"] and not meta["solution"], grade_id
        assert meta["points"] == points, grade_id
        assert meta["schema_version"] == 3, grade_id
        hidden = re.search(r"### BEGIN HIDDEN TESTS\n(.*)### END HIDDEN TESTS", cell.source, re.S)
        assert hidden and f'run_check("{grade_id}", globals())' in hidden.group(1), grade_id
        before = master.cells[index - 1]
        if grade_id in TESTED_BY:
            assert nbg(before).get("grade_id") == TESTED_BY[grade_id], f"{grade_id} must follow its function"
        elif grade_id == "gradient":
            assert ".backward()" in before.source, "the gradient test must follow the backward() cell"
        elif grade_id == "final_loss":
            assert "train_model(" in before.source, "the final_loss test must follow the training cell"

    for grade_id, points in MANUAL_CELLS.items():
        cell = cells[grade_id][1]
        meta = nbg(cell)
        assert cell.cell_type == "markdown" and meta["grade"] and meta["solution"] and not meta["locked"]
        assert meta["points"] == points

    for grade_id in SOLUTION_CELLS:
        meta = nbg(cells[grade_id][1])
        assert meta["solution"] and not meta["grade"] and not meta["locked"], grade_id
    for grade_id in LOCKED_PROVIDED:
        meta = nbg(cells[grade_id][1])
        assert meta["locked"] and not meta["solution"] and not meta["grade"], grade_id

    autograded = sum(nbg(c)["points"] for c in graded if c.cell_type == "code")
    assert autograded == 10
