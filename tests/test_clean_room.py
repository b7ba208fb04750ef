"""Observations a notebook cannot forge, and hangs that cost only their checks (issue 7, parts 5
and 6; issue 9's magics and cell names).

* The definitions filter keeps imports, defs, classes and constants, and drops every other
  top-level statement, including code hidden in defaults, decorators and class bodies.
* Hostile notebooks with the four stubs left (`raise NotImplementedError()`) that rewrite the
  probes from top-level code score 0: the checks run in clean rooms. Where the attack works in
  the notebook's own state, the TA sees an integrity flag.
* Every valid style of the steps keeps full marks in the clean rooms, with no integrity flag.
* A forward that never returns costs forward, gradient and final_loss only; a notebook that
  spends its time budget stops, names the cells it did not run, and is still graded.
"""
from __future__ import annotations

import ctypes
import dataclasses
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import attacks
import pytest
from room_replay import in_forked_child, replay

from autograder.assignment import CHECKS, PYTORCH_SLOPE
from autograder.notebook.cell_names import code_cell_labels, relabel
from autograder.pipeline import GradingContext, grade_submission
from autograder.release.synthetic import make_submission, write_submission
from autograder.sandbox.grader.limits import Limits

FULL = dict(CHECKS)
ZERO = dict.fromkeys(CHECKS, 0)


def fn(header: str, *body: str) -> str:
    return header + "\n" + "\n".join("    " + line for line in body) + "\n"


# --------------------------------------------------------------------------- the filter itself
# (that no construct runs code while a room is made: tests/test_definition_soundness.py)

def _bound(source: str, tmp_path) -> dict[str, str]:
    """The names a clean room binds for `source`, with their types' names."""
    return replay([source], tmp_path)["names"]


@pytest.mark.parametrize("source", [
    "import sys\nsys.modules['x'] = None",
    "import torch\ntorch.mul = lambda a, b: a",
    "import gc\nfor o in gc.get_objects():\n    pass",
    "import threading\nthreading.Thread(target=print).start()",
    "import atexit\natexit.register(print)",
    "import torch\nw = torch.tensor(1.0).requires_grad_()",  # a method call on the result
    "import os\nx = os.system('true')",  # a call of a callable that is not allow-listed
    "import torch\nx = torch.load('f.pt')",
    "import torch\nx = torch.os.system('true')",  # os.system, reached through a module torch re-exports
    "with open('f') as h:\n    pass",
    "try:\n    import x\nexcept ImportError:\n    pass",
    "x = 1\nx += 1",
    "def __getattr__(name):\n    return name",
])
def test_top_level_code_is_left_out(source, tmp_path):
    bound = {name: kind for name, kind in _bound(source, tmp_path).items() if kind != "module" and name != "get_ipython"}
    assert bound in ({}, {"x": "int"}), bound  # `x = 1` is kept, `x += 1` is not


@pytest.mark.parametrize("source, name, kind", [
    ("import torch.nn as nn\ncriterion = nn.MSELoss()", "criterion", "MSELoss"),
    ("import torch\ncriterion = torch.nn.MSELoss(reduction='mean')", "criterion", "MSELoss"),
    ("import torch\nSCALE = torch.tensor(1.0, dtype=torch.float32) * 2", "SCALE", "Tensor"),
    ("import torch\nEPS = torch.finfo(torch.float32).eps", "EPS", "float"),
    ("LR = 0.1\nSTEPS = (LR, LR / 2)[::-1]", "STEPS", "tuple"),
    ("import math\nC = math.sqrt(2) / 2", "C", "float"),
    ("forward = lambda x, w: w * x", "forward", "function"),
    ("def criterion(yhat, y, sq=lambda d: d ** 2):\n    return sq(yhat - y).mean()", "criterion", "function"),
    ("import torch\n@torch.no_grad()\ndef update(w, lr):\n    w -= lr * w.grad", "update", "function"),
    ("import functools\n@functools.lru_cache(maxsize=None)\ndef helper(n):\n    return n", "helper", "_lru_cache_wrapper"),
    ('class Helper:\n    """doc"""\n    RATE = 2\n    TWICE = RATE * 2\n    def __init__(self, k=TWICE):\n        pass',
     "Helper", "type"),
    ("class StepError(Exception):\n    pass", "StepError", "type"),
    ('class Quiet(ValueError):\n    """doc"""', "Quiet", "type"),
    ("from torch import nn\nclass Net(nn.Module):\n    def forward(self, x):\n        return x", "Net", "type"),
    ("def forward(x: 'torch.Tensor', w=1.0) -> 'torch.Tensor':\n    return w * x", "forward", "function"),
    ("import functools\ndef _step(w, lr, scale):\n    pass\nupdate = functools.partial(_step, scale=1.0)", "update", "partial"),
    ("def deco(f):\n    return f\n@deco\ndef forward(x, w):\n    return w * x", "forward", "LazilyDecorated"),
    ("import networkx\nimport statistics\ndef forward(x, w):\n    return w * x", "forward", "function"),
])
def test_definitions_are_kept(source, name, kind, tmp_path):
    assert _bound(source, tmp_path).get(name) == kind


def test_a_name_is_what_it_is_after_the_replay(tmp_path):
    """`property`, `object` or `torch` rebound by a `%run` file are no longer the builtins or the
    module: used as a decorator or a callee, they are not applied while the room is made; the
    real ones, and classes of the room, still work."""
    shadow = "class property:\n    pass\nclass object:\n    pass\nclass torch:\n    class nn:\n        def MSELoss():\n            pass\n"
    cells = ["%run shadow.py", "class C:\n    @property\n    def x(self):\n        return 1",
             "criterion = torch.nn.MSELoss()", "import builtins\nclass D:\n    @builtins.property\n    def x(self):\n        return 1",
             "class E(object):\n    pass"]
    names = replay(cells, tmp_path, {"shadow.py": shadow})["names"]
    assert "C" not in names and "criterion" not in names, names
    assert names["D"] == names["E"] == "type"  # a class of the room is a safe base


def test_cells_that_cannot_be_parsed_are_reported_not_fatal(tmp_path):
    """A null byte, absurd nesting or a syntax error in one cell leaves the other definitions."""
    result = replay(["def forward(x, w):\n    return w * x\n", "x = 1\0", "(" * 300 + ")" * 300,
                     "def criterion(a, b):\n    return (a\n", "%%time\ndef update(w, lr):\n    pass\n"], tmp_path)
    assert result["defined"] == ["forward", "update"]
    assert [b["cell"] for b in result["broken"]] == [1, 2, 3]
    assert result["why"]["criterion"]["kind"] == "syntax_error"


def test_what_is_left_out_is_explained(tmp_path):
    """Why a step is missing: the statement that raised (which, in which cell, and why), the
    refusal of its definition, or of a name it uses."""
    cells = ["import not_installed_anywhere\ndef forward(x, w):\n    return w * x",
             "import os\nSCALE = os.getpid()\ndef criterion(yhat, y, s=SCALE):\n    return ((yhat - y) ** 2).mean()",
             "def deco(c):\n    return c\n@deco\nclass Steps:\n    pass\nupdate = Steps"]
    why = replay(cells, tmp_path)["why"]
    assert why["forward"] == {"kind": "raised", "cell": 0, "file": "", "line": 1, "statement": "import not_installed_anywhere",
                              "message": "ModuleNotFoundError: No module named 'not_installed_anywhere'"}
    assert why["criterion"]["kind"] == "refused", why
    assert "uses `SCALE`, which the checks left out (line 2 of <cell 1>)" in why["criterion"]["message"]
    assert why["update"]["kind"] == "refused" and why["update"]["line"] == 6 and "`Steps`" in why["update"]["message"]


# --------------------------------------------------------------------------- cell names

def test_cells_are_named_as_a_student_finds_them():
    """Jupyter shows a cell's execution number beside it and numbers no cells; a student also
    finds a cell by its first line (search). A test cell's helper is never named."""
    cells = [
        {"cell_type": "code", "source": "import torch", "execution_count": 1},
        {"cell_type": "markdown", "source": "Intro\n## 1. The data"},
        {"cell_type": "code", "source": "\n\nX = 1", "execution_count": 4},
        {"cell_type": "code", "source": "print(X)", "execution_count": 4},  # run again after a restart
        {"cell_type": "code", "source": "def criterion(yhat, y):\n    return (yhat - y ** 2).mean(", "execution_count": None},
        {"cell_type": "code", "source": "# Self-check\ndef _check_criterion():\n    pass", "execution_count": True},
        {"cell_type": "code", "source": "x = '" + "a" * 100 + "'"},
    ]
    labels = [label.prose for label in code_cell_labels(cells)]
    assert labels == [
        "cell In [1] (`import torch`)",
        "cell 3 (`X = 1`)",  # its number is shared: its place among all the cells, Markdown counted
        "cell 4 (`print(X)`)",
        "cell 5 (`def criterion(yhat, y):`)",
        "cell 6 (`# Self-check`)",  # never "the cell that defines `_check_criterion`"
        "cell 7 (`x = '" + "a" * 74 + "…`)",
    ]
    assert relabel('File "<cell 3>", line 2, in criterion', code_cell_labels(cells)) == "Cell 5, line 2, in criterion"
    assert relabel('File "<cell 0>", line 1', code_cell_labels(cells)) == "Cell In [1], line 1"


# --------------------------------------------------------------------------- grading

@pytest.fixture(scope="module")
def grade(zygote, grading_limits, tmp_path_factory):
    folder = tmp_path_factory.mktemp("clean_room")

    def run(name: str, notebook, limits: Limits | None = None):
        path = write_submission(folder / name / "pytorch_slope.ipynb", notebook)
        return grade_submission(path, GradingContext(zygote=zygote, assignment=PYTORCH_SLOPE, limits=limits or grading_limits))

    return run


def scores(result) -> dict:
    return {c.name: c.score for c in result.checks}


# What correct steps would report; each attack below installs it from code outside the steps.
PATCH = '''
def _good_steps():
    def forward(x, w):
        return w * x
    def criterion(yhat, y):
        return ((yhat - y) ** 2).mean()
    def update(w, lr):
        w.data = w.data - lr * w.grad.data
    def zero_grad(w):
        w.grad.data.zero_()
    return {"forward": forward, "criterion": criterion, "update": update, "zero_grad": zero_grad}

def _patch(probes):
    """Make every probe observe the good steps instead of the student's."""
    if probes.get("_patched"):
        return
    good = _good_steps()
    for name, probe in list(probes.items()):
        probes[name] = (lambda probe: lambda steps, **inputs: probe(good, **inputs))(probe)
    probes["_patched"] = lambda *a, **k: None

def _probes():
    import sys
    return sys.modules["autograder.probes.pytorch_slope"].PROBES
'''

# name -> (cells after PATCH, whether the attack also fools the notebook's own state)
ATTACKS = {
    "sys_modules": (["import sys\nif 'autograder.probes.pytorch_slope' in sys.modules:\n    _patch(_probes())"], True),
    "gc_get_objects": (["import gc\ngc.unfreeze()\nfor _o in gc.get_objects():\n"
                        "    if isinstance(_o, dict) and 'probe_forward' in _o and 'PROBES' in _o:\n"
                        "        _patch(_o['PROBES'])"], True),
    "torch_function_replaced": (["import torch\n_enter = torch.autograd.grad_mode.enable_grad.__enter__\n"
                                 + fn("def _hijack(self):", "_patch(_probes())", "return _enter(self)")
                                 + "torch.autograd.grad_mode.enable_grad.__enter__ = _hijack"], True),
    "writefile_module_patches_on_import": (
        ["%%writefile evil.py\n" + PATCH + "\n_patch(_probes())\n", "import evil"], True),
    "decorator_patches": ([fn("def _patcher(f):", "_patch(_probes())", "return f") + "\n@_patcher\ndef _helper():\n    pass\n"], True),
    "class_body_patches": (["class _Evil:\n    _patch(_probes())\n"], True),
    "default_argument_patches": ([fn("def _helper(x=_patch(_probes())):", "return x")], True),
    "lambda_default_patches": (["_helper = lambda x=_patch(_probes()): x"], True),
    "metaclass_patches": ([fn("class _Meta(type):", "def __new__(meta, name, bases, body):",
                              "    _patch(_probes())", "    return super().__new__(meta, name, bases, body)")
                           + "\nclass _Thing(metaclass=_Meta):\n    pass\n"], True),
    "init_subclass_patches": ([fn("class _Base:", "def __init_subclass__(cls):", "    _patch(_probes())")
                               + "\nclass _Sub(_Base):\n    pass\n"], True),
    "thread_and_atexit": (["import atexit, threading\natexit.register(_patch, _probes())\n"
                           "_t = threading.Thread(target=_patch, args=(_probes(),))\n_t.start()\n_t.join()"], True),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_code_outside_the_steps_cannot_forge_a_check(attack, grade):
    cells, fools_notebook = ATTACKS[attack]
    result = grade(f"attack_{attack}", make_submission(extra_cells=[PATCH, *cells], solved=False))
    assert scores(result) == ZERO, "\n".join(f"{c.name}: {c.feedback}" for c in result.checks if c.score)
    assert all(c.misconception == "not_implemented" for c in result.checks), [c.feedback for c in result.checks]
    if fools_notebook:  # the attack is real: the notebook's own state scores it; the TA is told
        assert len(result.integrity) == len(CHECKS), result.integrity
        assert "in the notebook's own state but 0/1 in a clean room" in result.integrity[0]


def test_a_decorator_on_a_stub_runs_only_inside_its_own_call(grade):
    patcher = fn("def _patcher(f):", "_patch(_probes())", "return f")
    stub = "@_patcher\ndef forward(x, w):\n    raise NotImplementedError()\n"
    result = grade("decorated_stub", make_submission({"forward": stub}, extra_cells=[PATCH, patcher], solved=False))
    assert scores(result) == ZERO


def test_a_step_body_that_patches_answers_only_its_own_check(grade):
    forward = fn("def forward(x, w):", "_patch(_probes())", "return w * x")
    stubs = {"update": "def update(w, lr):\n    raise NotImplementedError()\n",
             "zero_grad": "def zero_grad(w):\n    raise NotImplementedError()\n"}
    result = grade("body_patches", make_submission({"forward": forward, **stubs}, extra_cells=[PATCH]))
    assert scores(result) == {**FULL, "update": 0, "zero_grad": 0, "final_loss": 0}
    assert {flag.split(":")[0] for flag in result.integrity} == {"update", "zero_grad", "final_loss"}


FORWARD, CRITERION = "def forward(x, w):", "def criterion(yhat, y):"
UPDATE, ZERO_GRAD = "def update(w, lr):", "def zero_grad(w):"
ALL_STEPS = (fn(FORWARD, "return w * x") + fn(CRITERION, "return ((yhat - y) ** 2).mean()")
             + fn(UPDATE, "w.data = w.data - lr * w.grad.data") + fn(ZERO_GRAD, "w.grad.data.zero_()"))

# name -> (overrides, extra cells)
VALID_STYLES = {
    "torch_mul": ({"forward": fn(FORWARD, "return torch.mul(w, x)")}, []),
    "F_linear": ({"forward": "import torch.nn.functional as F\n\n" + fn(FORWARD, "return F.linear(x, w.view(1, 1))")}, []),
    "einsum": ({"forward": fn(FORWARD, "return torch.einsum('ij,->ij', x, w)")}, []),
    "F_mse_loss": ({"criterion": "import torch.nn.functional as F\n\n" + fn(CRITERION, "return F.mse_loss(yhat, y)")}, []),
    "nn_MSELoss_object": ({"criterion": "import torch.nn as nn\n\ncriterion = nn.MSELoss()\n"}, []),
    "torch_nn_MSELoss_reduction": ({"criterion": "criterion = torch.nn.MSELoss(reduction=\"mean\")\n"}, []),
    "data_sub_": ({"update": fn(UPDATE, "w.data.sub_(lr * w.grad.data)")}, []),
    "isub_under_no_grad": ({"update": fn(UPDATE, "with torch.no_grad():", "    w -= lr * w.grad")}, []),
    "copy_": ({"update": fn(UPDATE, "with torch.no_grad():", "    w.copy_(w - lr * w.grad)")}, []),
    "optim_SGD_step": ({"update": fn(UPDATE, "torch.optim.SGD([w], lr=lr).step()")}, []),
    "no_grad_decorator": ({"update": "@torch.no_grad()\n" + fn(UPDATE, "w -= lr * w.grad")}, []),
    "inference_mode": ({"zero_grad": "@torch.inference_mode()\n" + fn(ZERO_GRAD, "w.grad.zero_()")}, []),
    "grad_set_to_none": ({"zero_grad": fn(ZERO_GRAD, "w.grad = None")}, []),
    "helper_in_another_cell": ({"update": fn(UPDATE, "w.data = w.data - _step(w, lr).data")},
                               [fn("def _step(w, lr):", "return lr * w.grad")]),
    "module_constants": ({"criterion": fn(CRITERION, "return SCALE * ((yhat - y) ** POWER).mean()")},
                         ["SCALE = 1.0\nPOWER = 2\nLR = 0.1"]),
    "lambda": ({"forward": "forward = lambda x, w: w * x\n"}, []),
    "notebook_decorator": ({"forward": "@_passthrough\n" + fn(FORWARD, "return w * x")},
                           ["import functools\n\n" + fn("def _passthrough(f):", "@functools.wraps(f)",
                                                         "def inner(*args, **kwargs):", "    return f(*args, **kwargs)",
                                                         "return inner")]),
    "writefile_and_import": ({name: f"from steps import {name}\n" for name in ("forward", "criterion", "update", "zero_grad")},
                             ["%%writefile steps.py\nimport torch\n\n" + ALL_STEPS]),
    "writefile_and_run": ({"forward": "%run helpers.py\n"}, ["%%writefile helpers.py\n" + fn(FORWARD, "return w * x")]),
    "time_magic": ({"forward": "%%time\n" + fn(FORWARD, "return w * x")}, []),
    # issue 26: definitions the clean rooms once refused or lost
    "lambda_default": ({"criterion": fn("def criterion(yhat, y, square=lambda d: d ** 2):", "return square(yhat - y).mean()")}, []),
    "builtin_base_class": ({"update": "class StepError(Exception):\n    pass\n\n" + fn(
        UPDATE, "if w.grad is None:", "    raise StepError('call backward() first')", "w.data = w.data - lr * w.grad.data")}, []),
    "installed_and_standard_imports": ({"forward": "import networkx\nimport statistics\nfrom fractions import Fraction\n\n"
                                                   + fn(FORWARD, "return w * x")}, []),
    "run_i_sees_the_notebook": ({"forward": "%run -i helpers.py\n"},
                                ["SCALE = 1.0", "%%writefile helpers.py\n" + fn(FORWARD, "return SCALE * w * x")]),
    "star_import_of_a_written_module": ({name: "from steps import *\n" for name in ("forward", "criterion", "update", "zero_grad")},
                                        ["%%writefile steps.py\nimport torch\n\n" + ALL_STEPS]),
    "computed_constants": ({"criterion": fn(CRITERION, "return SCALE * ((yhat - y) ** 2).mean() + 0 * EPS")},
                           ["import torch, math\nEPS = torch.finfo(torch.float32).eps\nSCALE = math.sqrt(4) / 2"]),
    "partial_step": ({"update": "import functools\n\n" + fn("def _step(w, lr, scale):", "w.data = w.data - scale * lr * w.grad.data")
                      + "update = functools.partial(_step, scale=1.0)\n"}, []),
    "helper_class_with_property": ({"forward": fn("class Line:", "SLOPE_SIGN = 1", "@property", "def sign(self):",
                                                  "    return self.SLOPE_SIGN") + fn(FORWARD, "return Line().sign * w * x")}, []),
}


@pytest.mark.parametrize("style", sorted(VALID_STYLES))
def test_valid_styles_keep_full_marks(style, grade):
    overrides, extra = VALID_STYLES[style]
    result = grade(f"style_{style}", make_submission(overrides, extra_cells=extra))
    assert scores(result) == FULL, "\n".join(f"{c.name}: {c.feedback}" for c in result.checks if c.score < c.max_score)
    assert result.integrity == [], result.integrity


def test_a_syntax_error_says_so_and_folds_the_name_errors(grade):
    broken = fn(CRITERION, "return ((yhat - y) ** 2).mean(")
    result = grade("syntax_error", make_submission({"criterion": broken}))
    assert scores(result) == {**FULL, "loss": 0, "gradient": 0, "final_loss": 0}
    loss = next(c for c in result.checks if c.name == "loss")
    assert loss.misconception == "syntax_error", loss.feedback
    assert "`criterion` is missing because cell 14 (`def criterion(yhat, y):`) has a syntax error at line 2" in loss.feedback
    assert "\n\n        return ((yhat - y) ** 2).mean(" in loss.feedback  # the offending line, as a code block
    notes = "\n".join(result.student_notes)
    assert "Cell 14 (`def criterion(yhat, y):`) has a syntax error at line 2" in notes, notes
    assert "return ((yhat - y) ** 2).mean(" in notes, notes
    # one note for the cause: the NameErrors it leads to (on criterion, and on what failing cells never assigned)
    assert len([n for n in result.student_notes if "NameError" in n]) == 1, result.student_notes
    assert "syntax error" in next(n for n in result.student_notes if "NameError" in n)
    assert "<cell" not in notes and "Code cell" not in notes


def test_a_missing_step_says_which_statement_where_and_why(grade):
    """A definition that raised while the room was made (an import that fails) and a default that
    uses a name the checks left out: the feedback names the statement, its cell as Jupyter shows
    it, and the reason, not only "Not found"."""
    steps = {"forward": "import not_installed_anywhere\n\n" + fn(FORWARD, "return w * x"),
             "criterion": "import os\nSCALE = os.getpid() * 0 + 1\n\n" + fn("def criterion(yhat, y, s=SCALE):",
                                                                            "return s * ((yhat - y) ** 2).mean()")}
    result = grade("explained_missing", make_submission(steps))
    feedback = {c.name: c.feedback for c in result.checks}
    assert "line 1 raised `ModuleNotFoundError: No module named 'not_installed_anywhere'`" in feedback["forward"], feedback
    assert "`import not_installed_anywhere`" in feedback["forward"] and "did not run" in feedback["forward"]
    assert "was not used by the checks" in feedback["loss"] and "uses `SCALE`, which the checks left out" in feedback["loss"]
    assert "<cell" not in feedback["forward"] + feedback["loss"]


def test_a_step_defined_inside_top_level_code_is_explained(grade):
    hidden = "if True:\n    " + fn(FORWARD, "return w * x").replace("\n", "\n    ")
    result = grade("nested_def", make_submission({"forward": hidden}))
    assert scores(result) == {**FULL, "forward": 0, "gradient": 0, "final_loss": 0}
    forward = next(c for c in result.checks if c.name == "forward")
    assert forward.misconception == "missing_function" and "inside top-level code" in forward.feedback, forward.feedback
    assert {flag.split(":")[0] for flag in result.integrity} == {"forward", "gradient", "final_loss"}


def test_tracebacks_name_the_cell_as_jupyter_shows_it(grade):
    result = grade("raises", make_submission({"zero_grad": fn(ZERO_GRAD, "w.grad.zero()")}))
    zero_grad = next(c for c in result.checks if c.name == "zero_grad")
    assert "Cell 28, line 2, in zero_grad" in zero_grad.feedback, zero_grad.feedback
    assert "<cell" not in zero_grad.feedback


# --------------------------------------------------------------------------- hangs

SHORT = Limits(cell_timeout_s=1, execute_timeout_s=3, probe_timeout_s=1)


# The same, with a wall-clock ceiling far above the CPU limits: a cell that spins is always stopped
# by its CPU time first, so which cells the budget leaves unrun does not depend on the machine's
# load (by the default ceiling, 3x, a spinning cell given a sixth of a core is stopped by the wall
# clock with a third of its CPU time used, and the budget lasts to the notebook's last cell).
SHORT_BY_CPU = dataclasses.replace(SHORT, wall_factor=20)


def test_a_forward_that_never_returns_costs_only_its_checks(grade):
    result = grade("forward_hangs", make_submission({"forward": fn(FORWARD, "while True:", "    pass")}), SHORT_BY_CPU)
    assert scores(result) == {**FULL, "forward": 0, "gradient": 0, "final_loss": 0}
    assert {c.misconception for c in result.checks if not c.score} == {"timeout"}
    notes = "\n".join(result.student_notes)
    assert "used up its time budget" in notes and "these cells were not run:" in notes, notes
    # named as the student finds them
    assert re.search(r"these cells were not run: cell \d+ \(`[^`]+`\)", notes), notes


def test_a_notebook_that_spends_its_budget_is_still_graded(grade):
    """The budget counts the CPU time the cells use: seven cells computing for 0.9 s each spend 3 s."""
    exploring = ["import time\nstart = time.process_time()\nwhile time.process_time() - start < 0.9:\n    pass"] * 7
    result = grade("long_exploration", make_submission(extra_cells=exploring), SHORT)
    assert scores(result) == FULL
    notes = "\n".join(result.student_notes)
    assert "used up its time budget" in notes and "(`def forward(x, w):`)" in notes, notes
    assert "ended" not in notes


def test_a_step_that_forks_answers_each_check_once(grade):
    """The fork's copy returns from the step too, in the notebook's own box and in every room:
    only the process the grader asked answers, so no check reads another's answer."""
    result = grade("forward_forks", attacks.forker())
    assert scores(result) == FULL, [c.feedback for c in result.checks if not c.score]
    assert result.integrity == []


def test_a_thread_the_notebook_leaves_spinning_costs_no_check(grade):
    """The notebook's own-state checks run in its box, beside whatever threads it left; the
    scores come from the rooms, which never start one."""
    result = grade("thread_left_spinning", attacks.spinner())
    assert scores(result) == FULL, [c.feedback for c in result.checks if not c.score]
    assert result.integrity == []


def test_a_cell_that_cannot_be_interrupted_costs_no_check(grade):
    stubborn = fn("while True:", "try:", "    while True:", "        pass", "except BaseException:", "    pass")
    result = grade("uninterruptible", make_submission(extra_cells=[stubborn]), SHORT)
    assert scores(result) == FULL
    notes = "\n".join(result.student_notes)
    assert "Execution stopped" in notes and "These cells did not run" in notes, notes


# --------------------------------------------------------------------------- the sandbox's magics and seal

def test_magics_run_as_in_jupyter(zygote, grading_limits):
    cells = ["%pip install numpy", "!pip install requests", "!ls", "%%writefile ../outside.py\nx = 1",
             "%%writefile inside.py\nVALUE = 41", "import inside\nprint(inside.VALUE + 1)",
             "%run inside.py\nprint(VALUE)"]
    with zygote.spawn(device="cpu", limits=grading_limits) as sandbox:
        report = sandbox.execute(cells)
    outputs = [c["output"] for c in report.cells]
    assert "refused" in outputs[0] and "cannot be installed" in outputs[0]
    assert "refused" in outputs[1]
    assert "skipped" in outputs[2]
    assert "refused" in outputs[3]
    assert outputs[5].strip() == "42" and outputs[6].strip() == "41", report.cells


def test_a_room_is_sealed_against_its_siblings():
    """PR_SET_DUMPABLE 0: a process of the same uid can neither ptrace the room nor write its
    memory through /proc/<pid>/mem; imports from the submission's folders go through the filter."""
    import ctypes
    import sys

    from autograder.sandbox.box.clean_room import seal

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child seals itself and reports
        try:
            libc = ctypes.CDLL(None)
            libc.prctl(4, 1, 0, 0, 0)
            sys.path.insert(0, "")
            seal()
            os.write(write, bytes([libc.prctl(3, 0, 0, 0, 0), int("" in sys.path)]))
        finally:
            os._exit(0)
    os.close(write)
    dumpable, empty_entry = os.read(read, 2)
    os.waitpid(pid, 0)
    assert dumpable == 0 and empty_entry == 0


def test_the_integrity_flag_reaches_the_csv():
    from autograder.model.records import GRADED, GradedSubmission
    from autograder.model.results import zero_result
    from autograder.outputs.csv_report import csv_row

    result = zero_result(CHECKS, "stub")
    result.integrity = ["forward: 1/1 in the notebook's own state but 0/1 in a clean room"]
    record = GradedSubmission("s1", "pytorch_slope", None, "", None, False, GRADED, result=result)
    assert csv_row(record, PYTORCH_SLOPE)["integrity"] == result.integrity[0]


@pytest.fixture
def sandbox_reachable():
    """A folder a sandbox uid can reach (pytest's own are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="kit-seal-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="a sandbox uid of its own needs root")
def test_a_room_imports_only_from_folders_it_cannot_write(sandbox_reachable):
    """Seen as a sandbox uid, and again under Landlock (which access(2) does not consult): the
    submission's folder, a folder the box may write, a relative or missing entry are dropped;
    the installation, a folder only readable to the box and a link to it are kept."""
    from autograder.sandbox.box import landlock
    from autograder.sandbox.box.clean_room import importable_entries
    from autograder.sandbox.grader.leases import lease_sandbox_uid, sandbox_uids

    tmp_path = sandbox_reachable
    folders = {name: tmp_path / name for name in ("submission", "readable", "open_to_all")}
    for name, folder in folders.items():
        folder.mkdir()
        folder.chmod(0o777 if name in ("submission", "open_to_all") else 0o755)
    (tmp_path / "link").symlink_to(folders["readable"])
    entries = ["", "relative", str(folders["submission"]), str(folders["readable"]), str(tmp_path / "link"),
               str(folders["open_to_all"]), str(tmp_path / "missing"), sys.prefix]
    uid, lease = lease_sandbox_uid(sandbox_uids())
    try:
        def as_the_sandbox_uid():
            os.setgid(uid)
            os.setuid(uid)
            os.chdir(folders["submission"])
            plain = importable_entries(entries, str(folders["submission"]))
            ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS, which Landlock needs
            try:
                landlock.Ruleset(landlock.Policy(read=["/"], write=[str(folders["submission"])], devices=[])).enforce()
                confined = importable_entries(entries, str(folders["submission"]))
            except OSError:  # no Landlock on this kernel
                confined = None
            return [plain, confined]

        plain, confined = in_forked_child(as_the_sandbox_uid)
    finally:
        os.close(lease)
    assert plain == [str(folders["readable"]), str(tmp_path / "link"), sys.prefix]
    assert confined in (None, [str(folders["readable"]), str(tmp_path / "link"), str(folders["open_to_all"]), sys.prefix])
