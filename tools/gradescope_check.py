"""`make gradescope-check`: the Gradescope bundle end to end in a clean Debian root filesystem.

Gradescope builds an image by running the bundle's `setup.sh` as root on a bare Linux, then runs
`/autograder/run_autograder` once per submission. This script does the same with nothing of this
machine's Python inside:

  1. a base root filesystem from Debian's packages (`debootstrap --variant=minbase`, once; cached
     under $GRADESCOPE_CHECK_DIR, default /var/tmp/pytorch-slope-gradescope-check);
  2. a fresh copy of it for every run, bind-mounted on itself (a container's root is a mount
     point), run in its own PID namespace with /proc, /sys and /dev mounted, the host's
     /run/lock (where sandbox uids are leased, shared with graders outside), the machine's DNS
     settings and CA certificates (HTTPS may go through a proxy with its own CA), and the bundle
     unpacked into /autograder/source as Gradescope does;
  3. `setup.sh` in a chroot with an empty environment: it installs Python 3.11 with apt-get, a
     venv, torch (CPU build) and requirements.lock with pip;
  4. `run_autograder` on a correct, a wrong and a broken submission; each results.json is
     validated against Gradescope's documented format (autograder/gradescope/results_schema.json)
     and its scores checked.

It stops at the first step that fails and says which; every step's output is in the log.
Needs root, debootstrap and chroot (`apt-get install debootstrap`), the network for Debian's and
Python's package registries, and about 3 GB of disk. Not part of `make test` (about 10 minutes).

Where the PyTorch CPU index cannot be reached, setup.sh is given a folder of wheels to look in
first (TORCH_WHEELS, pip --find-links): this machine's copy of the same torch CPU wheel, if
pip's configuration names one (find-links); the rest comes from the package registry.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

KIT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(KIT))

from autograder.assignment import CHECKS, MAX_SCORE  # noqa: E402

SCHEMA = KIT / "autograder" / "gradescope" / "results_schema.json"
SUITE = "bookworm"  # its python3.11 is the Python the kit pins
CHROOT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
              "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
WRONG_CRITERION = "def criterion(yhat, y):\n    return ((yhat - y) ** 2).sum()\n"


class StepFailed(Exception):
    pass


class Check:
    def __init__(self, workdir: Path, log_path: Path):
        self.workdir = workdir
        self.base = workdir / "base"
        self.root = workdir / "run"
        self.log = log_path.open("a", encoding="utf-8")
        self.mounts: list[Path] = []
        self.steps: list[tuple[str, str, float]] = []

    # ------------------------------------------------------------------ plumbing
    def say(self, message: str) -> None:
        print(message, flush=True)
        self.log.write(message + "\n")
        self.log.flush()

    def sh(self, command: list[str], *, timeout: float, env: dict | None = None) -> str:
        self.log.write(f"$ {' '.join(command)}\n")
        self.log.flush()
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, env=env, errors="replace")
        self.log.write(proc.stdout)
        self.log.flush()
        if proc.returncode != 0:
            tail = "\n".join(proc.stdout.strip().splitlines()[-25:])
            raise StepFailed(f"`{' '.join(command)[:200]}` exited {proc.returncode}:\n{tail}")
        return proc.stdout

    def in_chroot(self, script: str, *, timeout: float, env: dict | None = None) -> str:
        variables = [f"{k}={v}" for k, v in {**CHROOT_ENV, **(env or {})}.items()]
        # its own PID namespace and /proc, as a container has
        return self.sh(["unshare", "--pid", "--fork", f"--mount-proc={self.root / 'proc'}",
                        "chroot", str(self.root), "/usr/bin/env", "-i", *variables, "/bin/bash", "-c", script],
                       timeout=timeout, env={"PATH": CHROOT_ENV["PATH"]})

    def step(self, name: str, action) -> None:
        start = time.monotonic()
        self.say(f"== {name} ...")
        try:
            action()
        except (StepFailed, subprocess.TimeoutExpired, OSError, AssertionError, ValueError) as error:
            seconds = time.monotonic() - start
            self.steps.append((name, "FAILED", seconds))
            raise StepFailed(f"stopped at step '{name}' after {seconds:.0f} s: {error}") from error
        seconds = time.monotonic() - start
        self.steps.append((name, "ok", seconds))
        self.say(f"   {name}: ok ({seconds:.0f} s)")

    # ------------------------------------------------------------------ steps
    def make_base(self) -> None:
        stamp = self.base / ".complete"
        if stamp.is_file():
            self.say(f"   reusing the base root filesystem {self.base}")
            return
        if shutil.which("debootstrap") is None:
            raise StepFailed("debootstrap is not installed: run `apt-get install debootstrap`")
        shutil.rmtree(self.base, ignore_errors=True)
        # debootstrap's default mirror is Debian's own; no Python is part of minbase
        self.sh(["debootstrap", "--variant=minbase", "--include=ca-certificates", SUITE, str(self.base)], timeout=1800)
        stamp.write_text(SUITE + "\n")

    def make_root(self) -> None:
        self.unmount()
        shutil.rmtree(self.root, ignore_errors=True)
        self.sh(["cp", "-a", str(self.base), str(self.root)], timeout=600)
        if (self.root / "usr" / "bin" / "python3").exists():
            raise StepFailed("the base root filesystem already holds a Python; delete it and run again")
        # The root a mount point of its own, as a container's is (the sandbox makes "/" a private
        # mount, which the kernel refuses on a plain directory), then what a container has mounted.
        self.sh(["mount", "--bind", str(self.root), str(self.root)], timeout=60)
        self.mounts.append(self.root)
        # /run/lock is the host's: the sandbox leases its uids with lock files there, and a grader
        # in here must not take a uid a grader outside holds (each kills every process of its uid).
        for name, kind in (("proc", ["-t", "proc", "proc"]), ("sys", ["-t", "sysfs", "sysfs"]), ("dev", ["--bind", "/dev"]),
                           ("run/lock", ["--bind", "/run/lock"])):
            target = self.root / name
            target.mkdir(parents=True, exist_ok=True)
            self.sh(["mount", *kind, str(target)], timeout=60)
            self.mounts.append(target)
        shutil.copy("/etc/resolv.conf", self.root / "etc" / "resolv.conf")
        local_cas = Path("/usr/local/share/ca-certificates")
        if local_cas.is_dir():
            shutil.copytree(local_cas, self.root / "usr" / "local" / "share" / "ca-certificates", dirs_exist_ok=True)
            self.in_chroot("update-ca-certificates >/dev/null", timeout=120)

    def unpack_bundle(self) -> None:
        bundle = self.workdir / "autograder.zip"
        self.sh([sys.executable, "-m", "autograder", "gradescope-bundle", "--output", str(bundle)], timeout=300,
                env={**os.environ, "PYTHONPATH": str(KIT)})
        source = self.root / "autograder" / "source"
        source.mkdir(parents=True)
        with zipfile.ZipFile(bundle) as archive:
            for info in archive.infolist():
                archive.extract(info, source)
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    (source / info.filename).chmod(mode)
        for folder in ("submission", "results"):
            (self.root / "autograder" / folder).mkdir()
        shutil.copy(source / "run_autograder", self.root / "autograder" / "run_autograder")
        wheel = _local_torch_wheel()
        if wheel:
            target = self.root / "var" / "cache" / "torch-wheels"
            target.mkdir(parents=True)
            shutil.copy(wheel, target / wheel.name)
            self.say(f"   the PyTorch CPU index may be unreachable here: setup.sh may also take {wheel.name} from this machine")

    def setup(self) -> None:
        # pip's own certificate bundle lacks a proxy's CA; the chroot's system bundle has it
        env = {"PIP_CERT": "/etc/ssl/certs/ca-certificates.crt"}
        if (self.root / "var" / "cache" / "torch-wheels").is_dir():
            env["TORCH_WHEELS"] = "/var/cache/torch-wheels"
            if not _reachable("https://download.pytorch.org/whl/cpu/"):
                env["TORCH_INDEX"] = ""  # pip's default index for torch's dependencies
        self.in_chroot("cd /autograder/source && bash ./setup.sh", timeout=3600, env=env)
        version = self.in_chroot("/autograder/venv/bin/python -c 'import sys, torch; print(sys.version.split()[0], torch.__version__)'",
                                 timeout=120)
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

    # ------------------------------------------------------------------ run
    def unmount(self) -> None:
        for target in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(target)], capture_output=True)
        self.mounts.clear()

    def run(self) -> int:
        start = time.monotonic()
        try:
            self.step("debootstrap a base Debian root filesystem", self.make_base)
            self.step("fresh copy, mounts, DNS and CA certificates", self.make_root)
            self.step("bundle unpacked into /autograder/source", self.unpack_bundle)
            self.step("setup.sh (Python 3.11, venv, torch, requirements.lock)", self.setup)
            self.step("run_autograder: correct submission", self.correct)
            self.step("run_autograder: wrong submission", self.wrong)
            self.step("run_autograder: broken submission", self.broken)
        except StepFailed as error:
            self.say(f"\ngradescope-check: FAILED, {error}")
            return 1
        finally:
            self.unmount()
            self.say("steps: " + "; ".join(f"{n}: {s} ({t:.0f} s)" for n, s, t in self.steps))
            self.say(f"total {time.monotonic() - start:.0f} s; log: {self.log.name}")
        self.say("\ngradescope-check: OK")
        return 0

    def correct(self) -> None:
        report = self.grade("correct", {"pytorch_slope.ipynb": _notebook_bytes()})
        assert report["score"] == MAX_SCORE, report
        assert [t["name"] for t in report["tests"]] == list(CHECKS), report
        assert all(t["status"] == "passed" for t in report["tests"]), report

    def wrong(self) -> None:
        report = self.grade("wrong (sum instead of mean)", {"pytorch_slope.ipynb": _notebook_bytes({"criterion": WRONG_CRITERION})})
        tests = {t["name"]: t for t in report["tests"]}
        assert 0 < report["score"] < MAX_SCORE, report
        assert tests["loss"]["status"] == "failed" and tests["forward"]["status"] == "passed", report

    def broken(self) -> None:
        report = self.grade("broken (not JSON)", {"pytorch_slope.ipynb": b'{"cells": ['})
        assert report["score"] == 0, report
        assert "not a valid notebook" in report["output"] + "".join(t["output"] for t in report.get("tests", [])), report


def _notebook_bytes(overrides: dict | None = None) -> bytes:
    import nbformat

    from autograder.release.synthetic import make_submission

    return nbformat.writes(make_submission(overrides)).encode("utf-8")


def _validate(report: dict) -> None:
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(report), key=lambda e: list(e.path))
    if errors:
        raise StepFailed("results.json does not follow Gradescope's format: "
                         + "; ".join(f"{'/'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in errors[:5]))


def _local_torch_wheel() -> Path | None:
    """The torch CPU wheel pinned by requirements.lock in one of pip's configured find-links folders."""
    pin = next(line.split("==")[1].strip() for line in (KIT / "requirements.lock").read_text().splitlines()
               if line.startswith("torch=="))
    folders = [os.environ.get("PIP_FIND_LINKS", "")]
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    folders += [line.split("=", 1)[1].strip("'\"") for line in proc.stdout.splitlines() if "find-links" in line]
    for folder in folders:
        for path in sorted(Path(folder).glob(f"torch-{pin}+cpu-*.whl")) if folder and Path(folder).is_dir() else []:
            return path
    return None


def _reachable(url: str) -> bool:
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=10).close()
        return True
    except Exception:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path,
                        default=Path(os.environ.get("GRADESCOPE_CHECK_DIR", "/var/tmp/pytorch-slope-gradescope-check")))
    parser.add_argument("--fresh-base", action="store_true", help="debootstrap the base again")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("error: gradescope-check needs root (debootstrap, mount, chroot)", file=sys.stderr)
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.fresh_base:
        shutil.rmtree(args.workdir / "base", ignore_errors=True)
    return Check(args.workdir, args.workdir / "gradescope-check.log").run()


if __name__ == "__main__":
    sys.exit(main())
