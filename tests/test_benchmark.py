"""The benchmark script runs end to end on a tiny class and both graders agree on every score."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _has_autograde_verb() -> bool:
    probe = subprocess.run([sys.executable, "-m", "autograder", "autograde", "--help"], capture_output=True, cwd=ROOT)
    return probe.returncode == 0


@pytest.mark.slow
def test_benchmark_smoke(tmp_path):
    if not _has_autograde_verb():
        pytest.skip("`python -m autograder autograde` is not available yet")
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "batch_vs_nbgrader.py"), "--n", "4",
                          "--workers", "2", "--keep", str(tmp_path)],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "per-check scores identical for every student" in run.stdout
    assert "speed ratio" in run.stdout and "nbgrader autograde" in run.stdout
