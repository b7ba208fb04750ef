"""Clean rooms from a kit and venv anywhere (issue 26, part 3): a notebook whose valid steps import
an installed and a standard module before `forward`, give `criterion` a lambda default and raise
an exception class of their own, scores full marks, with no note and no integrity flag, graded by
a copy of the kit under /tmp

  - whose `.venv` is a symlink to this checkout's venv (the boxes had no site-packages: every
    import the zygote had not made failed, in the notebook's box and in the rooms), and
  - run by a venv of its own under /tmp, outside the kit, that reaches the installed packages
    through a .pth file (the rooms dropped that folder from their search path).

Each layout grades in its own process, in each confinement mode `grading_mode` gives: root here;
a mode of tests/confinement_modes.py (a TA's account, a container) is one more parameter.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from autograder.assignment import CHECKS, KIT_ROOT
from autograder.release.synthetic import make_submission, write_submission

pytestmark = pytest.mark.slow

COPIED = ("autograder", "solutions", "release")
STEPS = {
    "forward": "import networkx\nimport statistics\nfrom fractions import Fraction\n\n"
               "def forward(x, w):\n    return w * x\n",
    "criterion": "def criterion(yhat, y, square=lambda d: d ** 2):\n    return square(yhat - y).mean()\n",
    "update": 'class StepError(Exception):\n    """update was called before backward()."""\n\n\n'
              "def update(w, lr):\n    if w.grad is None:\n        raise StepError('call loss.backward() first')\n"
              "    w.data = w.data - lr * w.grad.data\n",
}
GRADE = """
import json, sys
from pathlib import Path
import autograder
from autograder.assignment import PYTORCH_SLOPE
from autograder.pipeline import GradingContext, grade_submission
from autograder.sandbox.grader.limits import Limits
from autograder.sandbox.grader.zygotes import Zygote
with Zygote() as zygote:
    result = grade_submission(Path(sys.argv[1]), GradingContext(zygote=zygote, assignment=PYTORCH_SLOPE,
                                                               limits=Limits(cell_timeout_s=10, probe_timeout_s=10)))
print(json.dumps({"kit": autograder.__file__, "prefix": sys.prefix, "scores": {c.name: c.score for c in result.checks},
                  "feedback": [c.feedback for c in result.checks if c.score < c.max_score],
                  "notes": result.cell_notes + result.student_notes, "integrity": result.integrity}))
"""


def _copy_kit(target: Path) -> Path:
    for name in COPIED:
        shutil.copytree(KIT_ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


def _symlinked_venv(base: Path) -> tuple[Path, str]:
    kit = _copy_kit(base / "kit")
    (kit / ".venv").symlink_to(Path(sys.prefix).resolve())
    return kit, str(kit / ".venv" / "bin" / "python")


def _venv_outside_the_kit(base: Path) -> tuple[Path, str]:
    kit = _copy_kit(base / "kit")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    site = next(venv.glob("lib/python3*/site-packages"))
    (site / "installed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return kit, str(venv / "bin" / "python")


LAYOUTS = {"kit_under_tmp_symlinked_venv": _symlinked_venv, "venv_under_tmp_outside_the_kit": _venv_outside_the_kit}


@pytest.fixture(params=["root"])
def grading_mode(request):
    """How the grader is run: as this process's user (root here)."""
    if request.param == "root" and os.geteuid() != 0:
        pytest.skip("the root mode needs root")

    def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOGRADER_", "PYTHON"))}
        return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)

    return run


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_valid_steps_score_full_marks_from_a_kit_anywhere(layout, grading_mode, tmp_path_factory):
    base = Path(tmp_path_factory.mktemp("anywhere", numbered=True))
    assert str(base).startswith("/tmp/"), "the layouts are about a kit under /tmp"
    kit, python = LAYOUTS[layout](base)
    notebook = write_submission(base / "student" / "pytorch_slope.ipynb", make_submission(STEPS))
    done = grading_mode([python, "-c", GRADE, str(notebook)], kit)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["kit"].startswith(str(kit)), result  # the copy grades, not this checkout
    assert result["scores"] == dict(CHECKS), result["feedback"]
    assert result["notes"] == [] and result["integrity"] == [], result
