"""Writing a term into the kit: the master's `parameters` cell and autograder/grading.json (the
new term current, every earlier term's secret kept: terms.py).

The parameters cell holds one `NAME = value` line per parameter and nothing else (tests in
tests/test_notebook.py hold it to that), so rewriting it is enough to move the whole notebook
to the new term. Files are written with nbformat's own layout, so an unchanged term rewrites
them byte for byte.
"""
from __future__ import annotations

import ast
from pathlib import Path

import nbformat

from autograder.release.term import PARAMETER_NAMES, TermParameters, is_secret
from autograder.terms import ReleaseCells, TermSecrets, earlier_releases_json, read_earlier_releases, read_secrets, secrets_json

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


def term_secrets(params: TermParameters, stored: Path) -> TermSecrets:
    """grading.json's secrets once `params`' term is released: it becomes the current term, and
    every other term stored there keeps its secret, so its class can still be graded."""
    try:
        kept = read_secrets(stored).secrets
    except FileNotFoundError:
        kept = {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{Path(stored).name} cannot be read ({type(error).__name__}: {error}): restore it "
                         "(git checkout -- autograder/grading.json); it holds every term's grading secret") from None
    secrets = {term: secret for term, secret in kept.items() if is_secret(secret)}
    secrets[params.term] = params.grading_seed
    return TermSecrets(params.term, secrets)


def write_grading(grading_path: Path, params: TermParameters) -> None:
    Path(grading_path).write_text(secrets_json(term_secrets(params, grading_path)), encoding="utf-8")


def archive_replaced(archive: Path, replaced: ReleaseCells | None, new: ReleaseCells | None) -> ReleaseCells | None:
    """Keep the cells of the release just replaced in `archive` (earlier_releases.json), so the
    submissions made from it are still graded against it; returns it if it was added. A release
    whose cells are the new one's needs no entry (a re-release that changed only text)."""
    releases = read_earlier_releases(archive)
    added = None
    if replaced is not None and replaced.locked and (new is None or replaced.id != new.id) \
            and all(r.id != replaced.id for r in releases):
        releases.append(replaced)
        added = replaced
    releases = [r for r in releases if new is None or r.id != new.id]  # the current one is read from release/
    Path(archive).write_text(earlier_releases_json(releases), encoding="utf-8")
    return added
