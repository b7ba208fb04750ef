"""The files submitted beside the notebook, read on the grader's side for the sandbox's /submission
(nbgrader's autograde runs a notebook in its submission folder, so `%run helper.py` or
`import steps` of a submitted file must work here too).

Only regular files are taken, opened without following links; links, fifos, sockets and devices
are refused with a note, never followed. The total is capped (Limits.submitted_files_bytes and
submitted_files_count). A folder of the kit itself (solutions/, the checks, the master) is never
copied: `grade solutions/pytorch_slope_solution.ipynb` must not hand the reference to the sandbox.
The files travel to the sandbox as a tar archive in a memfd: nothing is written to the host's disk.
"""
from __future__ import annotations

import io
import itertools
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from autograder.assignment import KIT_ROOT

SKIPPED_FOLDERS = {".ipynb_checkpoints", "__pycache__"}
# Never copied into a sandbox: the reference, the checks and grading seed, the master notebook.
KIT_SECRETS = (KIT_ROOT / "solutions", KIT_ROOT / "autograder", KIT_ROOT / "source")


def shown(name: str | bytes) -> str:
    """A file name as a TA can read it: undecodable bytes become U+FFFD, never an exception."""
    return (name if isinstance(name, bytes) else os.fsencode(name)).decode("utf-8", "replace")


# How far a walk of a submission folder goes. A student's folder is hostile: 1,500 nested folders
# made os.walk (recursive in Python 3.11) raise RecursionError in the grader and stop the batch.
MAX_DEPTH = 32  # folders below the submission folder
MAX_ENTRIES = 20_000  # files and folders in all


@dataclass
class Entry:
    relative: str  # the path below the walked folder (os.fsdecode'd: bytes round-trip through os.fsencode)
    path: str
    mode: int  # lstat's st_mode: links are never followed
    size: int


@dataclass
class Walk:
    entries: list[Entry] = field(default_factory=list)  # sorted by name as bytes
    too_deep: bool = False  # some folder lies deeper than MAX_DEPTH: it was not entered
    too_many: bool = False  # the walk stopped at MAX_ENTRIES

    @property
    def complete(self) -> bool:
        return not (self.too_deep or self.too_many)

    def why_incomplete(self) -> str:
        if self.too_many:
            return f"the folder holds more than {MAX_ENTRIES} files and folders"
        return f"the folder nests folders more than {MAX_DEPTH} levels deep" if self.too_deep else ""


def _unskipped(path: str, skip) -> Iterator[os.DirEntry]:
    """The entries of one folder not named in `skip`, as they are read; none if it cannot be read."""
    try:
        with os.scandir(path) as listing:
            yield from (entry for entry in listing if entry.name not in skip)
    except OSError:
        return


def walk(folder: Path | str, skip: frozenset[str] | set[str] = frozenset()) -> Walk:
    """Every entry under `folder`, iteratively and within MAX_DEPTH and MAX_ENTRIES; links and
    special files are listed, never followed or entered; folders named in `skip` are left out.
    An entry that vanishes or cannot be read while walking is left out, never an exception."""
    found = Walk()
    pending = [(os.fspath(folder), "", 0)]
    while pending:
        path, relative, depth = pending.pop()
        # A folder of a million files is read only one past the bound (the walk is then incomplete).
        wanted = itertools.islice(_unskipped(path, skip), MAX_ENTRIES - len(found.entries) + 1)
        for child in sorted(wanted, key=lambda e: os.fsencode(e.name)):
            if len(found.entries) >= MAX_ENTRIES:
                found.too_many = True
                break
            try:
                info = child.stat(follow_symlinks=False)
            except OSError:
                continue
            name = os.path.join(relative, child.name) if relative else child.name
            found.entries.append(Entry(name, child.path, info.st_mode, info.st_size))
            if stat.S_ISDIR(info.st_mode):
                if depth + 1 > MAX_DEPTH:
                    found.too_deep = True
                else:
                    pending.append((child.path, name, depth + 1))
    found.entries.sort(key=lambda e: os.fsencode(e.relative))
    return found


def remove_tree(path: Path | str) -> None:
    """Remove a folder a sandbox or a student may have filled, whatever it holds: shutil.rmtree
    recurses once per level and raises RecursionError (not an OSError, so ignore_errors does not
    catch it) on a tree 1,000 folders deep; GNU rm walks any depth."""
    try:
        shutil.rmtree(path, ignore_errors=True)
    except RecursionError:
        subprocess.run(["rm", "-rf", "--one-file-system", "--", os.fspath(path)], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@dataclass
class SubmittedFiles:
    files: dict[str, bytes] = field(default_factory=dict)  # relative name -> content
    notes: list[str] = field(default_factory=list)  # for the TA and the student: what was left out


def _is_kit_folder(folder: Path) -> bool:
    folder = folder.resolve()
    return folder == KIT_ROOT or any(folder == s or s in folder.parents for s in KIT_SECRETS)


def _read_regular(path: str, at_most: int) -> bytes | None:
    """Up to `at_most` bytes of `path` if it is a regular file (opened without following a link)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return handle.read(at_most)


def collect(folder: Path, *, max_bytes: int, max_count: int) -> SubmittedFiles:
    """Every regular file under `folder`, within the caps."""
    found = SubmittedFiles()
    if not folder.is_dir():
        return found
    if _is_kit_folder(folder):
        found.notes.append("files beside the notebook were not copied into the sandbox: its folder is part of the grading kit")
        return found
    refused, over, total = [], [], 0
    listing = walk(folder, SKIPPED_FOLDERS)
    for entry in listing.entries:
        if stat.S_ISDIR(entry.mode):
            continue
        if not stat.S_ISREG(entry.mode):
            refused.append(shown(entry.relative))
            continue
        if len(found.files) >= max_count or total + entry.size > max_bytes:
            over.append(shown(entry.relative))
            continue
        data = _read_regular(entry.path, max_bytes - total + 1)
        if data is None:
            refused.append(shown(entry.relative))
        elif total + len(data) > max_bytes:  # it grew while we read it
            over.append(shown(entry.relative))
        else:
            found.files[entry.relative] = data
            total += len(data)
    if not listing.complete:
        found.notes.append(f"some files beside the notebook were not copied into the sandbox: {listing.why_incomplete()}")
    if refused:
        found.notes.append("not copied into the sandbox (links and special files are never followed): " + ", ".join(refused[:10]))
    if over:
        found.notes.append(f"not copied into the sandbox (over {max_count} files or {max_bytes // 2**20} MiB in all): "
                           + ", ".join(over[:10]))
    return found


def to_memfd(files: dict[str, bytes]) -> int:
    """A memfd holding `files` as an uncompressed tar archive, positioned at its start."""
    fd = os.memfd_create("submitted-files", os.MFD_CLOEXEC)
    with os.fdopen(os.dup(fd), "wb") as raw, tarfile.open(fileobj=raw, mode="w:", format=tarfile.GNU_FORMAT) as archive:
        for name, data in files.items():
            member = tarfile.TarInfo(name)
            member.size, member.mode = len(data), 0o644
            archive.addfile(member, io.BytesIO(data))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
