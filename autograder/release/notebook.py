"""Writing a term into the kit: the master's `parameters` cell and autograder/grading.json.

The parameters cell holds one `NAME = value` line per parameter and nothing else (tests in
tests/test_notebook.py hold it to that), so rewriting it is enough to move the whole notebook
to the new term. Files are written with nbformat's own layout, so an unchanged term rewrites
them byte for byte.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat

from autograder.release.term import PARAMETER_NAMES, TermParameters

PARAMETERS_ID = "parameters"


def parameters_source(params: TermParameters) -> str:
    return "\n".join(f"{name} = {value!r}" for name, value in params.visible().items())


def _parameters_cell(notebook):
    cells = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == PARAMETERS_ID]
    if len(cells) != 1 or "parameters" not in cells[0].metadata.get("tags", []):
        raise ValueError("the master must have exactly one cell with grade id `parameters`, tagged `parameters`")
    return cells[0]


def read_parameters(notebook_path: Path) -> dict:
    """The NAME = literal assignments of a notebook's parameters cell, in order."""
    cell = _parameters_cell(nbformat.read(notebook_path, as_version=4))
    values = {}
    for stmt in ast.parse(cell.source).body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
            raise ValueError(f"unexpected statement in the parameters cell: {ast.unparse(stmt)}")
        values[stmt.targets[0].id] = ast.literal_eval(stmt.value)
    return values


def write_parameters(master_path: Path, params: TermParameters) -> None:
    notebook = nbformat.read(master_path, as_version=4)
    cell = _parameters_cell(notebook)
    names = [line.split("=")[0].strip() for line in cell.source.strip().splitlines()]
    if names != list(PARAMETER_NAMES):
        raise ValueError(f"the parameters cell assigns {names}, expected {list(PARAMETER_NAMES)}")
    cell.source = parameters_source(params)
    Path(master_path).write_text(nbformat.writes(notebook) + "\n", encoding="utf-8")


def grading_json(params: TermParameters) -> str:
    return json.dumps({"term": params.term, "grading_seed": params.grading_seed}, indent=2) + "\n"


def write_grading(grading_path: Path, params: TermParameters) -> None:
    Path(grading_path).write_text(grading_json(params), encoding="utf-8")
