"""`make gradescope-check`: the Gradescope bundle end to end in a clean Debian root filesystem.

Gradescope builds an image by running the bundle's `setup.sh` as root on a bare Linux, then runs
`/autograder/run_autograder` once per submission. This script does the same with nothing of this
machine's Python inside (the clean root and its plumbing: tools/image_check.py, shared with
`make coursera-check`):

  1. the base root filesystem (debootstrap, cached) and a fresh copy of it, mounted as a
     container's root, the bundle unpacked into /autograder/source as Gradescope does;
  2. the image's install command (autograder/image/: `setup.sh`, as root) in a chroot with an empty
     environment: Python 3.11 with apt-get, a venv, torch (CPU build) and requirements.lock with pip;
  3. `run_autograder` on a correct, a wrong and a broken submission; each results.json is
     validated against Gradescope's documented format (autograder/gradescope/results_schema.json)
     and its scores checked.

Needs root, debootstrap, the network for Debian's and Python's package registries, and about 3 GB
of disk. Not part of `make test` (about 10 minutes).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from image_check import KIT, WRONG_CRITERION, Check, StepFailed, default_workdir, needs_root, notebook_bytes  # noqa: E402

from autograder import image  # noqa: E402
from autograder.assignment import CHECKS, MAX_SCORE  # noqa: E402

SCHEMA = KIT / "autograder" / "gradescope" / "results_schema.json"


class GradescopeCheck(Check):
    name = "gradescope-check"

    def unpack_bundle(self) -> None:
        bundle = self.here / "autograder.zip"
        self.sh([sys.executable, "-m", "autograder", "gradescope-bundle", "--output", str(bundle)], timeout=300,
                env={**os.environ, "PYTHONPATH": str(KIT)})
        image.unpack(bundle, self.root / image.SOURCE.relative_to("/"))
        for folder in ("submission", "results"):
            (self.root / "autograder" / folder).mkdir()
        shutil.copy(self.root / "autograder" / "source" / "run_autograder", self.root / "autograder" / "run_autograder")
        self.setup_env = self.torch_wheels(self.root)

    def setup(self) -> None:
        self.in_chroot(image.install_command(), timeout=3600, env=self.setup_env)
        version = self.in_chroot(f"{image.VENV}/bin/python -c 'import sys, torch; print(sys.version.split()[0], torch.__version__)'",
                                 timeout=120).stdout
        self.say(f"   inside: Python and torch {version.strip()}")

    def grade(self, name: str, files: dict[str, bytes]) -> dict:
        submission = self.root / "autograder" / "submission"
        results = self.root / "autograder" / "results"
        for folder in (submission, results):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
        for file_name, data in files.items():
            (submission / file_name).write_bytes(data)
        self.in_chroot("cd /autograder && ./run_autograder", timeout=600)
        report = json.loads((results / "results.json").read_text())
        _validate(report)
        self.say(f"   {name}: score {report['score']}/{MAX_SCORE}, "
                 + ", ".join(f"{t['name']} {t['status']}" for t in report.get("tests", [])))
        return report

    def correct(self) -> None:
        report = self.grade("correct", {"pytorch_slope.ipynb": notebook_bytes()})
        assert report["score"] == MAX_SCORE, report
        assert [t["name"] for t in report["tests"]] == list(CHECKS), report
        assert all(t["status"] == "passed" for t in report["tests"]), report

    def wrong(self) -> None:
        report = self.grade("wrong (sum instead of mean)", {"pytorch_slope.ipynb": notebook_bytes({"criterion": WRONG_CRITERION})})
        tests = {t["name"]: t for t in report["tests"]}
        assert 0 < report["score"] < MAX_SCORE, report
        assert tests["loss"]["status"] == "failed" and tests["forward"]["status"] == "passed", report

    def broken(self) -> None:
        report = self.grade("broken (not JSON)", {"pytorch_slope.ipynb": b'{"cells": ['})
        assert report["score"] == 0, report
        assert "not a valid notebook" in report["output"] + "".join(t["output"] for t in report.get("tests", [])), report

    def plan(self) -> list:
        return [("debootstrap a base Debian root filesystem", self.make_base),
                ("fresh copy, mounts, DNS and CA certificates", self.make_root),
                ("bundle unpacked into /autograder/source", self.unpack_bundle),
                ("setup.sh (Python 3.11, venv, torch, requirements.lock)", self.setup),
                ("run_autograder: correct submission", self.correct),
                ("run_autograder: wrong submission", self.wrong),
                ("run_autograder: broken submission", self.broken)]


def _validate(report: dict) -> None:
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(report), key=lambda e: list(e.path))
    if errors:
        raise StepFailed("results.json does not follow Gradescope's format: "
                         + "; ".join(f"{'/'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in errors[:5]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=default_workdir())
    parser.add_argument("--fresh-base", action="store_true", help="debootstrap the base again")
    args = parser.parse_args(argv)
    refused = needs_root("gradescope-check")
    if refused:
        return refused
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.fresh_base:
        shutil.rmtree(args.workdir / "base", ignore_errors=True)
    check = GradescopeCheck(args.workdir)
    return check.run(check.plan())


if __name__ == "__main__":
    sys.exit(main())
