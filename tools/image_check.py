"""What `make gradescope-check` and `make coursera-check` share: a grader image installed from the
kit's one description of it (autograder/image/) in a clean Debian root filesystem, with nothing
of this machine's Python inside, then graded in.

  1. a base root filesystem from Debian's packages (`debootstrap --variant=minbase`, once; cached
     under $IMAGE_CHECK_DIR/base, default /var/tmp/pytorch-slope-image-check/base);
  2. a fresh copy of it for every run, bind-mounted on itself (a container's root is a mount
     point), with /proc, /sys and /dev mounted, the host's /run/lock (where sandbox uids are
     leased, shared with graders outside), the machine's DNS settings and CA certificates (HTTPS
     may go through a proxy with its own CA; pip is told to trust them too);
  3. each check's own steps (tools/gradescope_check.py, tools/coursera_check.py).

A check stops at the first step that fails and says which; every step's output is in its log.
Needs root, debootstrap and chroot (`apt-get install debootstrap`), the network for Debian's and
Python's package registries, and about 3 GB of disk.

Where the PyTorch CPU index cannot be reached, setup.sh is given a folder of wheels to look in
first (TORCH_WHEELS, pip --find-links): this machine's copy of the same torch CPU wheel, if pip's
configuration names one (find-links); the rest comes from the package registry.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

KIT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(KIT))

SUITE = "bookworm"  # Debian 12: its python3.11 is the Python the kit pins (and coursera-bundle's base image)
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CHROOT_ENV = {"PATH": CHROOT_PATH, "HOME": "/root", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
WRONG_CRITERION = "def criterion(yhat, y):\n    return ((yhat - y) ** 2).sum()\n"
TORCH_WHEELS_INSIDE = "/var/cache/torch-wheels"
PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu/"


def default_workdir() -> Path:
    return Path(os.environ.get("IMAGE_CHECK_DIR") or os.environ.get("GRADESCOPE_CHECK_DIR")
                or "/var/tmp/pytorch-slope-image-check")


class StepFailed(Exception):
    pass


class Check:
    """One check's run: its log, its steps' outcomes, and the clean root it installs into."""

    name = "image-check"

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.base = workdir / "base"  # shared by every check
        self.here = workdir / self.name
        self.here.mkdir(parents=True, exist_ok=True)
        self.root = self.here / "root"
        self.log = (self.here / f"{self.name}.log").open("a", encoding="utf-8")
        self.mounts: list[Path] = []
        self.steps: list[tuple[str, str, float]] = []
        self.facts: list[str] = []  # measured figures, repeated in the summary

    # ------------------------------------------------------------------ plumbing
    def say(self, message: str) -> None:
        print(message, flush=True)
        self.log.write(message + "\n")
        self.log.flush()

    def sh(self, command: list[str], *, timeout: float, env: dict | None = None, check: bool = True,
           stdin: bytes | None = None) -> subprocess.CompletedProcess:
        self.log.write(f"$ {' '.join(command)}\n")
        self.log.flush()
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, env=env,
                              input=stdin)
        output = proc.stdout.decode("utf-8", "replace")
        self.log.write(output)
        self.log.flush()
        if check and proc.returncode != 0:
            tail = "\n".join(output.strip().splitlines()[-25:])
            raise StepFailed(f"`{' '.join(command)[:200]}` exited {proc.returncode}:\n{tail}")
        return subprocess.CompletedProcess(proc.args, proc.returncode, output)

    def in_chroot(self, script: str, *, timeout: float, env: dict | None = None, user: str | None = None,
                  network: bool = True, check: bool = True) -> subprocess.CompletedProcess:
        """`script` by bash in the root, in its own PID namespace with its own /proc (as a container
        has), as root or as `user`, with or without the network."""
        variables = [f"{k}={v}" for k, v in {**CHROOT_ENV, **(env or {})}.items()]
        if user:
            variables = [v for v in variables if not v.startswith("HOME=")] + [f"HOME=/home/{user}"]
        command = ["unshare", "--pid", "--fork", f"--mount-proc={self.root / 'proc'}", *([] if network else ["--net"]),
                   "chroot", *([f"--userspec={user}:{user}"] if user else []), str(self.root),
                   "/usr/bin/env", "-i", *variables, "/bin/bash", "-c", script]
        return self.sh(command, timeout=timeout, env={"PATH": CHROOT_PATH}, check=check)

    def step(self, name: str, action: Callable[[], None]) -> None:
        start = time.monotonic()
        self.say(f"== {name} ...")
        try:
            action()
        except (StepFailed, subprocess.TimeoutExpired, OSError, AssertionError, ValueError, KeyError) as error:
            seconds = time.monotonic() - start
            self.steps.append((name, "FAILED", seconds))
            raise StepFailed(f"stopped at step '{name}' after {seconds:.0f} s: {error!r}") from error
        seconds = time.monotonic() - start
        self.steps.append((name, "ok", seconds))
        self.say(f"   {name}: ok ({seconds:.0f} s)")

    def fact(self, text: str) -> None:
        self.facts.append(text)
        self.say(f"   {text}")

    # ------------------------------------------------------------------ the clean root
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
        """A fresh copy of the base, mounted as a container's root is, that trusts this machine's CAs."""
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
        self.trust_this_machine(self.root)

    def trust_this_machine(self, root: Path) -> None:
        """DNS settings and CA certificates as this machine has them, and pip told to use them
        (pip's own bundle lacks a proxy's CA; the system bundle has it)."""
        shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
        local_cas = Path("/usr/local/share/ca-certificates")
        if local_cas.is_dir():
            shutil.copytree(local_cas, root / "usr" / "local" / "share" / "ca-certificates", dirs_exist_ok=True)
            self.sh(["chroot", str(root), "/usr/sbin/update-ca-certificates"], timeout=120, env={"PATH": CHROOT_PATH})
        (root / "etc" / "pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")

    def torch_wheels(self, root: Path) -> dict[str, str]:
        """setup.sh's settings for torch where the PyTorch CPU index may be unreachable: this
        machine's copy of the pinned CPU wheel, put into `root`."""
        wheel = local_torch_wheel()
        if wheel is None:
            return {}
        target = root / TORCH_WHEELS_INSIDE.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(wheel, target / wheel.name)
        self.say(f"   the PyTorch CPU index may be unreachable here: setup.sh may also take {wheel.name} from this machine")
        env = {"TORCH_WHEELS": TORCH_WHEELS_INSIDE}
        if not reachable(PYTORCH_CPU_INDEX):
            env["TORCH_INDEX"] = ""  # pip's default index for torch's dependencies
        return env

    def unmount(self) -> None:
        for target in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(target)], capture_output=True)
        self.mounts.clear()

    # ------------------------------------------------------------------ run
    def run(self, steps: list[tuple[str, Callable[[], None]]]) -> int:
        start = time.monotonic()
        try:
            for name, action in steps:
                self.step(name, action)
        except StepFailed as error:
            self.say(f"\n{self.name}: FAILED, {error}")
            return 1
        finally:
            self.cleanup()
            self.say("steps: " + "; ".join(f"{n}: {s} ({t:.0f} s)" for n, s, t in self.steps))
            for fact in self.facts:
                self.say(f"measured: {fact}")
            self.say(f"total {time.monotonic() - start:.0f} s; log: {self.log.name}")
        self.say(f"\n{self.name}: OK")
        return 0

    def cleanup(self) -> None:
        self.unmount()


def notebook_bytes(overrides: dict | None = None) -> bytes:
    """A submission: the reference's steps, with `overrides` (function -> source) instead."""
    import nbformat

    from autograder.release.synthetic import make_submission

    return nbformat.writes(make_submission(overrides)).encode("utf-8")


def local_torch_wheel() -> Path | None:
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


def reachable(url: str) -> bool:
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=10).close()
        return True
    except Exception:
        return False


def needs_root(name: str) -> int | None:
    if os.geteuid() != 0:
        print(f"error: {name} needs root (debootstrap, mount, chroot)", file=sys.stderr)
        return 2
    return None
