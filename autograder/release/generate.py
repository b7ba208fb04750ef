"""`nbgrader generate_assignment` through nbgrader's Python API (NbGraderAPI), with the kit's
nbgrader_config.py, in a scratch course directory: only source/ and the config are copied
there, so the gradebook it creates never touches the kit, and the result is the same wherever
it runs. nbgrader 0.9.6 writes no timestamps into the release: two runs give the same bytes.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from autograder.assignment import ASSIGNMENT


class GenerateError(RuntimeError):
    pass


@contextlib.contextmanager
def _venv_on_path():
    """nbgrader's gradebook migrations run the `alembic` script that sits beside the interpreter."""
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + old
    try:
        yield
    finally:
        os.environ["PATH"] = old


def generate(root: Path, course: Path) -> Path:
    """Generate the release of `root`'s master inside the scratch course `course`; return the
    generated release/ASSIGNMENT folder."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    root, course = Path(root), Path(course)
    shutil.copytree(root / "source", course / "source")
    shutil.copy(root / "nbgrader_config.py", course / "nbgrader_config.py")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    with _venv_on_path(), contextlib.chdir(course):
        result = NbGraderAPI(config=config).generate_assignment(ASSIGNMENT, force=True)
    out = course / "release" / ASSIGNMENT
    if not result.get("success") or not out.is_dir():
        raise GenerateError(f"nbgrader generate_assignment failed:\n{result.get('error') or ''}\n{result.get('log') or ''}")
    return out


def released_files(folder: Path, *, exclude: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file under `folder` by its POSIX path relative to it (sorted)."""
    folder = Path(folder)
    files = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and rel not in exclude:
            files[rel] = path.read_bytes()
    return files


def regenerate_release(root: Path) -> None:
    """Replace root/release/ASSIGNMENT with a fresh generation (the manifest is written later)."""
    with tempfile.TemporaryDirectory(prefix="release-") as scratch:
        fresh = generate(root, Path(scratch) / "course")
        target = Path(root) / "release" / ASSIGNMENT
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(fresh, target)
