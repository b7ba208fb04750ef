"""The same verdicts on CPU and GPU (issue 8): grade every mutant of the reference, every correct
seed and the corpus scenarios as one class with `--device cpu`, then again with `--device cuda`, and
compare each check's score and misconception between the two.

    python tools/gpu_compare.py [--workers 2] [--keep DIR]

Differences are expected only where the mistake is device-specific: a CPU tensor made inside a step
meets GPU data (`wrong_device` on CUDA). Every other difference is printed and makes the script exit
1. Needs a CUDA GPU (exit 2 without one); meant for the device machine, run as one prepared script.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

KIT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(KIT))
sys.path.insert(0, str(KIT / "tests"))

DEVICE_SPECIFIC = {"wrong_device"}  # misconceptions that exist only where data lives on a GPU


def _write_corpus(course: Path) -> None:
    from corpus.scenarios import SCENARIOS

    from autograder.assignment import ASSIGNMENT, NOTEBOOK
    from autograder.release.synthetic import write_submission

    for scenario in SCENARIOS:
        if not scenario.hangs:  # hangs prove only the time limits, which both devices share
            write_submission(course / "submitted" / f"corpus_{scenario.name}" / ASSIGNMENT / NOTEBOOK, scenario.notebook())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="grade in this folder and keep it")
    args = parser.parse_args()
    import os

    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # the graders' parent must not initialise CUDA
    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU is visible here: run this on a machine with one", file=sys.stderr)
        return 2
    from mutation.generate import generate
    from mutation.run import _autograde, read_outcomes, write_class

    generated = generate()
    root = args.keep or Path(tempfile.mkdtemp(prefix="gpu-compare-"))
    outcomes, seconds = {}, {}
    for device in ("cpu", "cuda"):
        course = root / device
        shutil.rmtree(course, ignore_errors=True)
        write_class(course, generated.mutants, generated.seeds)
        _write_corpus(course)
        start = time.monotonic()
        _autograde(course, args.workers, device)
        seconds[device] = time.monotonic() - start
        outcomes[device] = read_outcomes(course)
    cpu, cuda = outcomes["cpu"], outcomes["cuda"]
    differences, device_specific = [], []
    for student in sorted(set(cpu) | set(cuda)):
        a, b = cpu.get(student), cuda.get(student)
        if a is None or b is None:
            differences.append(f"{student}: graded on one device only")
            continue
        if (a.lost, a.misconceptions) == (b.lost, b.misconceptions):
            continue
        line = f"{student}: cpu lost {a.lost} {a.misconceptions}; cuda lost {b.lost} {b.misconceptions}"
        (device_specific if set(b.misconceptions.values()) & DEVICE_SPECIFIC else differences).append(line)
    print(f"{len(cpu)} submissions; cpu {seconds['cpu']:.1f} s, cuda {seconds['cuda']:.1f} s")
    print(f"identical verdicts: {len(cpu) - len(differences) - len(device_specific)}")
    print(f"device-specific (expected): {len(device_specific)}")
    for line in device_specific:
        print("  " + line)
    print(f"other differences: {len(differences)}")
    for line in differences:
        print("  " + line)
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
