"""The Gradescope bundle: `python -m autograder gradescope-bundle`.

The zip is unpacked into a temporary copy of Gradescope's layout (autograder/source, submission,
results, run_autograder) and `run_autograder` runs there with this venv's interpreter
(setup.sh, which installs Python and the dependencies, is checked to be valid bash here; `make
gradescope-check` runs the whole bundle, setup.sh included, in a clean Debian chroot). Every
results.json is validated against Gradescope's documented format.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

from autograder.assignment import CHECKS, KIT_ROOT, MAX_SCORE
from autograder.gradescope.bundle import build
from autograder.release.synthetic import make_submission, write_submission

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "autograder" / "gradescope" / "results_schema.json").read_text())
WRONG_CRITERION = "def criterion(yhat, y):\n    return ((yhat - y) ** 2).sum()\n"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("bundle") / "autograder.zip")


def test_bundle_holds_what_gradescope_needs(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
    for needed in ("setup.sh", "run_autograder", "autograder/__main__.py", "autograder/grade.py",
                   "autograder/grading.json", "autograder/checks/test_forward.py", "solutions/pytorch_slope.py",
                   "release/pytorch_slope/pytorch_slope.ipynb", "release/pytorch_slope/MANIFEST.json",
                   "pyproject.toml", "requirements.lock"):
        assert needed in names, needed
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert "solutions/pytorch_slope_solution.ipynb" not in names
    assert not any(n.startswith(("tools/", "tests/", "sample_class/")) for n in names)
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    again = build(tmp_path / "again.zip")
    assert again.read_bytes() == bundle.read_bytes(), "the same kit must give the same zip"


def test_scripts_are_valid_bash(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(tmp_path)
    for script in ("setup.sh", "run_autograder"):
        proc = subprocess.run(["bash", "-n", str(tmp_path / script)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


@pytest.fixture
def gradescope(bundle, tmp_path):
    """Gradescope's directory layout in a temporary folder; returns a function that grades the
    given files {name: notebook or bytes} and returns results.json."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "run_autograder").chmod(0o755)

    def run(files: dict) -> dict:
        shutil.rmtree(root / "submission", ignore_errors=True)
        shutil.rmtree(root / "results", ignore_errors=True)
        (root / "submission").mkdir()
        for name, content in files.items():
            if isinstance(content, Path):  # a link to it, as a zip can hold
                (root / "submission" / name).symlink_to(content)
            elif isinstance(content, bytes):
                (root / "submission" / name).write_bytes(content)
            else:
                write_submission(root / "submission" / name, content)
        env = dict(os.environ, AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable)
        env.pop("PYTHONPATH", None)
        proc = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        results = json.loads((root / "results" / "results.json").read_text())
        jsonschema.validate(results, SCHEMA)
        return results

    return run


@pytest.mark.slow
def test_run_autograder_grades_the_reference_and_a_wrong_submission(gradescope):
    results = gradescope({"pytorch_slope.ipynb": make_submission()})
    assert results["score"] == MAX_SCORE, results
    assert {t["name"] for t in results["tests"]} == set(CHECKS)
    assert all(t["status"] == "passed" for t in results["tests"])

    results = gradescope({"my work.ipynb": make_submission({"criterion": WRONG_CRITERION})})
    tests = {t["name"]: t for t in results["tests"]}
    assert 0 < results["score"] < MAX_SCORE
    assert tests["loss"]["status"] == "failed" and tests["loss"]["score"] == 0
    assert tests["forward"]["status"] == "passed"


@pytest.mark.slow
def test_run_autograder_without_exactly_one_notebook_scores_zero_with_a_message(gradescope):
    results = gradescope({"notes.txt": b"hello"})
    assert results["score"] == 0 and "No notebook was submitted" in results["output"]
    assert "notes.txt" in results["output"]

    results = gradescope({"a.ipynb": make_submission(), "b.ipynb": make_submission()})
    assert results["score"] == 0 and "Several notebooks were submitted" in results["output"]
    assert "a.ipynb" in results["output"] and "b.ipynb" in results["output"]


@pytest.mark.slow
def test_run_autograder_refuses_a_notebook_that_links_to_the_solution(gradescope):
    results = gradescope({"pytorch_slope.ipynb": KIT_ROOT / "solutions" / "pytorch_slope_solution.ipynb"})
    assert results["score"] == 0 and "symbolic link" in results["output"], results


def test_setup_installs_the_cpu_build_of_the_pinned_torch(bundle, tmp_path):
    """Gradescope has no GPU: the plain PyPI torch would bring gigabytes of CUDA libraries."""
    with zipfile.ZipFile(bundle) as archive:
        setup = archive.read("setup.sh").decode()
        lock = archive.read("requirements.lock").decode()
    assert "whl/cpu" in setup and "+cpu" in setup and "requirements.lock" in setup
    assert "torch==" in lock


@pytest.mark.slow
def test_run_autograder_keeps_the_watchdogs_result_of_a_grader_it_ended(gradescope, tmp_path, monkeypatch):
    """The watchdog prints a complete results.json and the grader ends with a SIGKILL status:
    run_autograder must keep that result, not replace it with "the grader itself failed"."""
    fake = tmp_path / "python"
    fake.write_text(f"""#!/usr/bin/env bash
if [ "$1 $2 $3" = "-m autograder grade" ]; then
    echo '{{"score": 0, "output": "Not graded: the grader did not finish", "tests": []}}'
    kill -KILL $$
fi
exec {sys.executable} "$@"
""")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))  # the fixture's AUTOGRADER_PYTHON
    results = gradescope({"pytorch_slope.ipynb": make_submission()})
    assert results["output"] == "Not graded: the grader did not finish", results
