"""The layout is the architecture: layers only point down.

    model, assignment, course          the data model and the assignment's contract (bottom)
    notebook, sandbox, checks, outputs  the steps a submission goes through
    grade, autograde, release, gradescope, coursera, image, cli   the verbs (top)

Every module of the package imports; no module of a lower layer imports a verb (module-level or
lazily inside a function); the data model imports nothing but itself; the outputs are given the
`Assignment` they write for, never read the kit's own from a module; and the module-level imports
have no cycles.
"""
from __future__ import annotations

import ast
import importlib
import os
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "autograder"
VERBS = ("autograder.grade", "autograder.autograde", "autograder.release", "autograder.gradescope", "autograder.coursera",
         "autograder.image", "autograder.cli")
STEPS = ("outputs", "checks", "sandbox", "notebook", "model", "feedback")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, module_level_only: bool) -> set[str]:
    """Names of autograder modules that `path` imports."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] == "autograder" and name in MODULES}


@pytest.mark.parametrize("module", sorted(set(MODULES) - {"autograder.__main__"}))  # __main__ runs the CLI
def test_every_module_imports(module):
    saved = os.environ.copy()  # an entry point may set variables for its own process (the zygote: MPLBACKEND)
    try:
        importlib.import_module(module)
    finally:  # they must not leak into later tests (a kernel started with MPLBACKEND=Agg draws no inline plot)
        os.environ.clear()
        os.environ.update(saved)


def test_steps_never_import_a_verb():
    offenders = {}
    for module, path in MODULES.items():
        if module.split(".")[1:2] and module.split(".")[1] in STEPS:
            bad = sorted(name for name in _imports(path, module_level_only=False) if name.startswith(VERBS))
            if bad:
                offenders[module] = bad
    assert not offenders, f"lower layers import verbs: {offenders}"


# Where each part of the sandbox runs, and what it may import of the kit. Code that runs beside
# student code (the zygote, which forks boxes, and the box itself) must never load the grader's
# side: the checks, the reference, the outputs, the gradebook or the grader's half of the sandbox.
BOX_SIDE = ("autograder.sandbox.box", "autograder.sandbox.zygote")
BOX_SIDE_MAY_IMPORT = ("autograder.sandbox.box", "autograder.sandbox.zygote", "autograder.sandbox.shared",
                       "autograder.probes.pytorch_slope", "autograder.assignment", "autograder.provided",
                       "autograder.model.errors", "autograder.model.sanitize", "autograder.sandbox", "autograder")


def test_the_box_side_never_imports_the_grader_side():
    offenders = {}
    for module, path in MODULES.items():
        if module.startswith(BOX_SIDE):
            bad = sorted(n for n in _imports(path, module_level_only=False) if not n.startswith(BOX_SIDE_MAY_IMPORT)
                         or n.startswith("autograder.sandbox.grader"))
            bad = [n for n in bad if n not in ("autograder.sandbox", "autograder") or n == module]
            if bad:
                offenders[module] = bad
    assert not offenders, f"code that runs beside student code imports the grader's side: {offenders}"


def test_shared_sandbox_modules_import_neither_side():
    for module, path in MODULES.items():
        if module.startswith("autograder.sandbox.shared"):
            sides = {n for n in _imports(path, module_level_only=False)
                     if n.startswith(("autograder.sandbox.grader", "autograder.sandbox.box", "autograder.sandbox.zygote"))}
            assert not sides, f"{module} imports {sides}"


def test_data_model_imports_only_itself():
    for module, path in MODULES.items():
        if module.startswith("autograder.model"):
            above = {n for n in _imports(path, module_level_only=False) if not n.startswith("autograder.model")}
            assert not above, f"{module} imports {above}"


# Names derived from PYTORCH_SLOPE that other modules re-export.
_DERIVED = {"autograder.probes.pytorch_slope": {"STEP_FUNCTIONS"}, "autograder.checks.runner": {"CHECKS"},
            "autograder.release.synthetic": {"RELEASE_NOTEBOOK", "SOURCE_NOTEBOOK", "SOLUTION_CELLS"}}


def _assignment_data_read(path: Path) -> set[str]:
    """What a module takes of one assignment's data, whichever way it imports it."""
    taken = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "autograder.assignment":
            taken |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module in _DERIVED:
            taken |= {alias.name for alias in node.names} & _DERIVED[node.module]
        elif isinstance(node, ast.ImportFrom) and node.module == "autograder":
            taken |= {"autograder.assignment"} & {f"autograder.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            taken |= {alias.name for alias in node.names if alias.name == "autograder.assignment"}
    return taken


def test_outputs_write_for_the_assignment_they_are_given():
    """An output, the batch verb and the pipeline take the Assignment as an argument (its checks,
    points, notebook, master), so the verb decides which one; reading PYTORCH_SLOPE or CHECKS
    would tie every report to one assignment whatever the verb was asked to grade."""
    # functions of the assignment module, not its data: the name lookup, the fingerprint, the term's secret
    allowed = {"Assignment", "assignment_named", "grader_fingerprint", "grading_settings"}
    readers = {module: sorted(_assignment_data_read(path) - allowed) for module, path in MODULES.items()
               if module.startswith(("autograder.outputs", "autograder.model", "autograder.autograde"))
               or module == "autograder.pipeline"}
    offenders = {module: names for module, names in readers.items() if names}
    assert not offenders, f"these read one assignment's data instead of the Assignment they are given: {offenders}"


def test_no_import_cycles():
    graph = {m: _imports(p, module_level_only=True) - {m} for m, p in MODULES.items()}
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == 1:
                cycle = stack[stack.index(imported):] + [imported]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if imported not in state:
                visit(imported, stack + [imported])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_grade_starts_its_zygote_before_it_imports_torch():
    """`grade`'s start-up is the import of torch, once: its zygote imports torch in its own process
    while the grader imports its own, which needs every module up to starting the zygote to be
    free of torch (the tensor codec lives apart from the framing for this reason)."""
    import subprocess
    import sys

    probe = "import sys, autograder.grade, autograder.sandbox.grader.zygotes, autograder.sandbox.shared.protocol; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent).stdout.strip()
    assert out == "False"


def test_the_batch_parent_imports_neither_torch_nor_pytest():
    """The parent of `autograde`'s workers stays small (torch is about 80 MiB of RSS): moving the
    grader's bound into pipeline.py made it import both, and its largest process grew from 263 to
    346 MiB."""
    import subprocess
    import sys

    code = "import sys, autograder.autograde.main, autograder.autograde.workers; print('torch' in sys.modules, 'pytest' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "False"], done.stdout + done.stderr[-1000:]
