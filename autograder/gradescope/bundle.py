"""The kit as a Gradescope autograder zip.

Gradescope unpacks the zip into /autograder/source, runs `setup.sh` once to build the image and
`run_autograder` (copied to /autograder/run_autograder) for every submission. The zip holds:

  setup.sh, run_autograder   the two scripts (templates/ here)
  autograder/                the grader, with grading.json (every term's grading secret) and earlier_releases.json
  solutions/pytorch_slope.py the reference the checks compare with
  release/                   the student release, whose locked cells are restored before grading
  pyproject.toml, requirements.lock   the pinned dependencies setup.sh installs

The zip is deterministic: sorted entries, fixed timestamps and modes, so the same kit gives the
same bytes.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from autograder.assignment import KIT_ROOT

TEMPLATES = Path(__file__).resolve().parent / "templates"
SCRIPTS = ("setup.sh", "run_autograder")
TOP_FILES = ("pyproject.toml", "requirements.lock", "solutions/pytorch_slope.py")
TREES = ("autograder", "release")
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _wanted(path: Path) -> bool:
    return path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")


def contents(root: Path = KIT_ROOT) -> dict[str, Path]:
    """Name inside the zip -> file on disk."""
    root = Path(root)
    entries = {name: TEMPLATES / name for name in SCRIPTS}
    entries.update({name: root / name for name in TOP_FILES})
    for tree in TREES:
        for path in (root / tree).rglob("*"):
            if _wanted(path):
                entries[path.relative_to(root).as_posix()] = path
    missing = [name for name, path in entries.items() if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"the bundle needs files the kit lacks: {', '.join(missing)}")
    return dict(sorted(entries.items()))


def build(output: Path, root: Path = KIT_ROOT) -> Path:
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in contents(root).items():
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            mode = 0o755 if name in SCRIPTS else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return output


def main(*, output: Path = Path("autograder.zip")) -> int:
    path = build(output)
    with zipfile.ZipFile(path) as archive:
        count = len(archive.namelist())
    print(f"wrote {path} ({count} files, {path.stat().st_size // 1024} KiB): upload it as the assignment's autograder on Gradescope")
    return 0
