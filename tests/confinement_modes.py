"""The four ways people run the grader, made on one machine for the confinement tests:

  root           root with every capability (a grading server, Gradescope's container)
  ta             an ordinary account that owns its own copy of the kit and its venv (a TA on
                 JupyterHub): user namespaces allowed, as on this machine
  container      root with Docker's default capabilities (no CAP_SYS_ADMIN) and new namespaces
                 refused by a seccomp filter (tests/launchers/default_container.py)
  ta-no-userns   the ordinary account with user namespaces refused the same way

The account is created for the test session (`useradd`) and removed after it; its kit is a copy
of this checkout's files under /tmp, its venv a fresh one outside the kit that the kit's `.venv`
links to, whose search path also reaches this checkout's installed packages (a .pth file), so
that no install is needed. Everything is skipped cleanly
where the machine cannot make a mode (not root, no Python the account can run, no `useradd`).
"""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

KIT = Path(__file__).resolve().parents[1]
LAUNCHER = KIT / "tests" / "launchers" / "default_container.py"
MODES = ("root", "ta", "container", "ta-no-userns")
# The level each mode gets on a host like this project's (unprivileged user namespaces, Landlock ABI 6+).
EXPECTED_LEVEL = {"root": "namespaces+uid", "ta": "namespaces", "container": "landlock+uid", "ta-no-userns": "landlock"}
_COPIED = ("autograder", "solutions", "release", "source", "pyproject.toml", "nbgrader_config.py")


@dataclass
class Mode:
    name: str
    user: str | None  # None: root
    kit: Path
    python: str
    home: Path

    def command(self, *argv: str) -> list[str]:
        """`argv` as this mode runs it (as its user, through the container launcher)."""
        inner = list(argv)
        if self.name in ("container", "ta-no-userns"):
            inner = [self.python, str(self.kit / "tests" / "launchers" / "default_container.py"), *inner]
        if self.user is not None:
            inner = ["runuser", "-u", self.user, "--", "env", f"HOME={self.home}", *inner]
        return inner

    def run(self, *argv: str, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOGRADER_", "PYTHON"))}
        return subprocess.run(self.command(*argv), capture_output=True, text=True, timeout=timeout,
                              cwd=cwd or self.kit, env=env)

    def own(self, path: Path) -> None:
        """Give `path` (recursively) to the mode's account."""
        if self.user is not None:
            subprocess.run(["chown", "-R", f"{self.user}:{self.user}", str(path)], check=True)


def _runnable_python(user: str) -> str | None:
    """A Python 3.11 the account can run (this machine's own may sit under root's 0700 home)."""
    for candidate in (getattr(sys, "_base_executable", None), "/usr/bin/python3.11", "/usr/local/bin/python3.11"):
        if candidate and os.path.exists(candidate):
            done = subprocess.run(["runuser", "-u", user, "--", candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 11)"],
                                  capture_output=True)
            if done.returncode == 0:
                return candidate
    return None


def _copy_kit(target: Path) -> None:
    for name in _COPIED:
        source = KIT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.exists():
            shutil.copy2(source, target / name)
    shutil.copytree(KIT / "tests" / "launchers", target / "tests" / "launchers")


class Account:
    """An ordinary account for the session, with its own kit and venv; removed by `remove`."""

    def __init__(self, base: Path):
        self.name = f"kit{secrets.token_hex(3)}"
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", self.name], check=True,
                       capture_output=True)
        self.home = base / self.name
        self.home.mkdir()
        self.kit = self.home / "kit"
        self.kit.mkdir()
        _copy_kit(self.kit)
        subprocess.run(["chown", "-R", f"{self.name}:{self.name}", str(self.home)], check=True)
        self.home.chmod(0o700)
        python = _runnable_python(self.name)
        if python is None:
            self.remove()
            raise RuntimeError("no Python 3.11 that an ordinary account can run")
        # The venv lives outside the kit and the kit's .venv is a link to it: both ways of keeping
        # a venv must grade (the box binds the folders Python really imports from).
        venv = self.home / "venv"
        subprocess.run(["runuser", "-u", self.name, "--", python, "-m", "venv", "--without-pip", str(venv)],
                       check=True, capture_output=True)
        (self.kit / ".venv").symlink_to(venv)
        site = next(venv.glob("lib/python3*/site-packages"))
        # The account's kit first, then this checkout's installed packages (torch, nbgrader...).
        (site / "kit.pth").write_text(f"{self.kit}\n{sysconfig.get_paths()['purelib']}\n")
        subprocess.run(["chown", "-R", f"{self.name}:{self.name}", str(venv)], check=True)
        self.python = str(self.kit / ".venv" / "bin" / "python")

    def remove(self) -> None:
        subprocess.run(["pkill", "-KILL", "-u", self.name], capture_output=True)
        subprocess.run(["userdel", self.name], capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)


def can_make_modes() -> str | None:
    """Why the modes cannot be made here, or None."""
    if os.geteuid() != 0:
        return "making the modes needs root (an account to create, capabilities to drop)"
    for tool in ("useradd", "userdel", "runuser"):
        if shutil.which(tool) is None:
            return f"no {tool} here"
    return None


def mode(name: str, account: Account | None) -> Mode:
    if name in ("root", "container"):
        return Mode(name, None, KIT, sys.executable, Path(pwd.getpwuid(0).pw_dir))
    return Mode(name, account.name, account.kit, account.python, account.home)
