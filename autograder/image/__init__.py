"""The grader image: what it holds and how it installs, described once for every platform that
builds one. `gradescope-bundle` (Gradescope runs `setup.sh` to build its image) and
`coursera-bundle` (a Dockerfile that runs the same `setup.sh`) write their zips from here, and
`tools/gradescope_check.py` and `tools/coursera_check.py` install from here in a clean root.

An image holds, under `SOURCE` (/autograder/source):

  setup.sh                   the install steps (this folder's setup.sh): Python 3.11, a venv at
                             VENV with the CPU build of the pinned torch and requirements.lock
  autograder/                the grader, with grading.json (every term's grading secret) and
                             earlier_releases.json
  solutions/pytorch_slope.py the reference the checks compare with
  release/                   the student release, whose locked cells are restored before grading
  source/                    the instructor's master, which nbgrader's gradebook is built from (a
                             TA's `autograde` in a container; it holds the solutions, as solutions/ does)
  pyproject.toml, requirements.lock   the pinned dependencies setup.sh installs

plus each platform's own files (Gradescope's run_autograder; Coursera's Dockerfile and
run_grader). Zips are deterministic: sorted entries, fixed timestamps and modes.
"""
from __future__ import annotations

import shlex
import zipfile
from pathlib import Path, PurePosixPath

from autograder.assignment import KIT_ROOT

ROOT = PurePosixPath("/autograder")
SOURCE = ROOT / "source"  # the kit, unpacked from the zip
VENV = ROOT / "venv"  # the interpreter the grader runs with
SETUP = "setup.sh"
SETUP_SCRIPT = Path(__file__).resolve().parent / SETUP

# A container image (coursera-bundle): Debian 12, whose python3.11 is the Python the kit pins, and
# the non-root account it grades as.
BASE_IMAGE = "debian:bookworm-slim"
USER = "grader"

KIT_FILES = ("pyproject.toml", "requirements.lock", "solutions/pytorch_slope.py")
KIT_TREES = ("autograder", "release", "source")
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _wanted(path: Path) -> bool:
    return path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")


def contents(root: Path = KIT_ROOT) -> dict[str, Path]:
    """What every grader image holds: name under SOURCE -> file on disk."""
    root = Path(root)
    entries = {SETUP: SETUP_SCRIPT}
    entries.update({name: root / name for name in KIT_FILES})
    for tree in KIT_TREES:
        for path in (root / tree).rglob("*"):
            if _wanted(path):
                entries[path.relative_to(root).as_posix()] = path
    missing = [name for name, path in entries.items() if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"the grader image needs files the kit lacks: {', '.join(missing)}")
    return dict(sorted(entries.items()))


def install_command(*, user: str | None = None) -> str:
    """The shell command, run as root, that installs an image whose SOURCE holds `contents()`:
    `setup.sh` as Gradescope runs it (user None: the grader is root), or for a container image that
    grades as the non-root `user`, without pip's cache or apt's lists (they would only make the
    image larger)."""
    command = f"cd {SOURCE} && "
    if user is None:
        return command + f"bash ./{SETUP}"
    return command + (f"AUTOGRADER_USER={shlex.quote(user)} PIP_NO_CACHE_DIR=1 bash ./{SETUP}"
                      " && rm -rf /var/lib/apt/lists/* /root/.cache")


def write_zip(output: Path, entries: dict[str, Path | bytes], executables: tuple[str, ...] = ()) -> Path:
    """A deterministic zip of `entries` (name -> file or bytes); `executables` get mode 0755."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    executables = (*executables, SETUP)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in sorted(entries.items()):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = (0o100000 | (0o755 if name in executables else 0o644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content if isinstance(content, bytes) else content.read_bytes())
    return output


def unpack(bundle: Path, target: Path) -> None:
    """A zip written by `write_zip` unpacked as a platform does, file modes included."""
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(bundle) as archive:
        for info in archive.infolist():
            archive.extract(info, target)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                (target / info.filename).chmod(mode)
