"""What `release` asks git about the kit: the commit (HEAD), what differs from it, and HEAD's
files exported to a folder (what `--check-only` checks). Every function answers None or nothing
where the kit is not a git checkout or git is missing; nothing here changes the repository.
"""
from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

# Set in the process that checks an export of HEAD (release/main.py check_commit): the commit it
# was exported from, so that the export is checked as a folder and named by its commit.
EXPORTED_FROM = "AUTOGRADER_RELEASE_CHECKS_COMMIT"


def _git(root: Path, *args: str, text: bool = True) -> subprocess.CompletedProcess | None:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=text, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc if proc.returncode == 0 else None


def head(root: Path) -> str | None:
    """HEAD's short commit id, if `root` is in a git checkout with a commit."""
    proc = _git(root, "rev-parse", "--short=12", "HEAD")
    return proc.stdout.strip() if proc else None


def uncommitted(root: Path, paths: list[Path]) -> list[str] | None:
    """Which of `paths` (files or folders) differ from HEAD, untracked files included, by their
    path relative to `root`; None if `root` is not a git checkout."""
    proc = _git(root, "status", "--porcelain", "--untracked-files=all", "--", *map(str, paths))
    if proc is None:
        return None
    return sorted(line[3:] for line in proc.stdout.splitlines() if line.strip())


def describe(root: Path) -> tuple[str, list[str]]:
    """The state of the kit, for a report: its commit and whether it has changes, in words, and
    the changed files (for the terminal: the report goes to students)."""
    commit = head(root)
    if commit is None:
        return "a folder that is not a git checkout (no commit to name)", []
    changed = uncommitted(root, [Path(root)]) or []
    return f"commit {commit}" + (f" with {len(changed)} uncommitted change(s)" if changed else ""), changed


def export(root: Path, target: Path, names: list[str]) -> None:
    """HEAD's version of the files and folders `names` of `root` (their names in it; those HEAD
    does not have are left out) written under `target`, laid out as under `root`."""
    listed = _git(root, "ls-tree", "--name-only", "HEAD")
    present = [name for name in dict.fromkeys(names) if listed is not None and name in listed.stdout.splitlines()]
    if not present:
        raise RuntimeError(f"HEAD of {root} holds none of {', '.join(names)}")
    archive = _git(root, "archive", "--format=tar", "HEAD", "--", *present, text=False)
    if archive is None:
        raise RuntimeError(f"git archive of HEAD failed in {root}")
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
