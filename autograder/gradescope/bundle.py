"""The kit as a Gradescope autograder zip.

Gradescope unpacks the zip into /autograder/source, runs `setup.sh` once to build the image and
`run_autograder` (copied to /autograder/run_autograder) for every submission. The zip holds what
every grader image holds (autograder/image/: setup.sh, the grader, the reference, the release, the
pinned dependencies) and `run_autograder` (templates/ here).

The zip is deterministic: sorted entries, fixed timestamps and modes, so the same kit gives the
same bytes.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from autograder import image
from autograder.assignment import KIT_ROOT

TEMPLATES = Path(__file__).resolve().parent / "templates"
ENTRY_POINT = "run_autograder"
SCRIPTS = (image.SETUP, ENTRY_POINT)


def contents(root: Path = KIT_ROOT) -> dict[str, Path]:
    """Name inside the zip -> file on disk."""
    return dict(sorted({**image.contents(root), ENTRY_POINT: TEMPLATES / ENTRY_POINT}.items()))


def build(output: Path, root: Path = KIT_ROOT) -> Path:
    return image.write_zip(output, contents(root), executables=SCRIPTS)


def main(*, output: Path = Path("autograder.zip")) -> int:
    path = build(output)
    with zipfile.ZipFile(path) as archive:
        count = len(archive.namelist())
    print(f"wrote {path} ({count} files, {path.stat().st_size // 1024} KiB): upload it as the assignment's autograder on Gradescope")
    return 0
