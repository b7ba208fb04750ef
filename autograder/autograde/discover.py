"""Finding the class's submissions in nbgrader's layout:

    COURSE/submitted/<student>/<assignment>/<notebook>.ipynb   (+ timestamp.txt, as nbgrader collects it)

Every student folder becomes one `WorkItem`: the notebook to grade (or None and a `problem` if
there is nothing gradable: a link or special file anywhere in the folder makes it not gradable,
since a link could point at the reference), a content hash over every submitted file (so an unchanged
submission is not graded again), the timestamp and whether it is late (after the assignment's
due date in the course's gradebook, when one is set there).
"""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from autograder.assignment import Assignment
from autograder.course import due_date
from autograder.sandbox.grader.submitted_files import Walk, shown, walk

MISSING_HASH = "missing"
SKIPPED = frozenset({".ipynb_checkpoints"})  # Jupyter's autosaves: not part of what was submitted


@dataclass
class WorkItem:
    student: str
    folder: Path  # COURSE/submitted/<student>/<assignment>
    notebook: Path | None  # the .ipynb to grade; None when there is nothing gradable
    content_hash: str
    timestamp: datetime | None = None
    late: bool = False
    problem: str = ""  # why it cannot be graded, for a TA (set when notebook is None)
    notes: list[str] = field(default_factory=list)  # for a TA: graded, but something was unusual

    @property
    def gradable(self) -> bool:
        return self.notebook is not None


def links_and_special_files(listing: Walk) -> list[str]:
    """Names (as a TA can read them) of the links, fifos, sockets and devices in `listing`."""
    return [shown(e.relative) for e in listing.entries if not (stat.S_ISREG(e.mode) or stat.S_ISDIR(e.mode))]


def content_hash(folder: Path, listing: Walk | None = None) -> str:
    """sha256 over the relative name (as bytes: a name need not be UTF-8) and bytes of every
    regular file under `folder`, and the name and target of every link."""
    if not folder.is_dir():
        return MISSING_HASH
    digest = hashlib.sha256()
    for entry in (listing if listing is not None else walk(folder, SKIPPED)).entries:
        relative = os.fsencode(entry.relative)
        if stat.S_ISLNK(entry.mode):
            try:
                target = os.fsencode(os.readlink(entry.path))
            except OSError:
                target = UNREADABLE
            digest.update(b"link\0" + relative + b"\0" + target + b"\0")
        elif stat.S_ISREG(entry.mode):
            digest.update(relative + b"\0")
            _hash_file(digest, entry.path)
    return digest.hexdigest()


UNREADABLE = b"<unreadable>"  # what a file that cannot be opened contributes to the hash


def _hash_file(digest, path: str) -> None:
    """The file's length and bytes into `digest`, read in chunks (a student's folder may hold a
    file of any size); never through a link or from a pipe swapped in since it was listed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        digest.update(len(UNREADABLE).to_bytes(8, "big") + UNREADABLE)
        return
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        return
    with os.fdopen(fd, "rb") as handle:
        digest.update(info.st_size.to_bytes(8, "big"))
        while chunk := handle.read(1 << 20):
            digest.update(chunk)


def read_timestamp(folder: Path) -> tuple[datetime | None, str]:
    """nbgrader's timestamp.txt as a naive UTC datetime (nbgrader's convention), and a note if
    it exists but cannot be read."""
    path = folder / "timestamp.txt"
    if not path.is_file():
        return None, ""
    from nbgrader.utils import parse_utc

    text = path.read_text(errors="replace").strip()
    try:
        return parse_utc(text), ""
    except Exception:  # dateutil raises several types
        return None, f"timestamp.txt could not be read ({text[:40]!r}); the submission is not marked late"


def _pick_notebook(folder: Path, expected_name: str, listing: Walk) -> tuple[Path | None, str, list[str]]:
    """(notebook, problem, notes) for one assignment folder; `expected_name` is the notebook's
    file name, `listing` the walk of the folder."""
    if not folder.is_dir():
        return None, f"no submission: the folder submitted/<student>/{shown(folder.name)}/ does not exist", []
    if not any(p for p in folder.iterdir() if p.name != "timestamp.txt"):
        return None, "empty submission: the folder holds no files", []
    if not listing.complete:  # what lies beyond the walk's bounds cannot be checked for links
        return None, f"the submission cannot be checked: {listing.why_incomplete()}", []
    odd = links_and_special_files(listing)
    if odd:  # a link could point at the reference or another student's work: never followed
        return None, ("the submission holds links or special files, which are never followed: "
                      + ", ".join(odd[:5])), []
    notebooks = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    if not notebooks:
        others = ", ".join(sorted(shown(p.name) for p in folder.iterdir() if p.name != "timestamp.txt")[:5])
        return None, f"no notebook: no .ipynb file in the submission (found: {others})", []
    expected = folder / expected_name
    if expected in notebooks:
        notes = []
        if len(notebooks) > 1:
            ignored = ", ".join(shown(p.name) for p in notebooks if p != expected)
            notes.append(f"several notebooks submitted: graded {expected_name}, ignored {ignored}")
        return expected, "", notes
    if len(notebooks) == 1:
        return notebooks[0], "", [f"renamed notebook: graded {shown(notebooks[0].name)} (expected {expected_name})"]
    names = ", ".join(shown(p.name) for p in notebooks)
    return None, f"several notebooks and none named {expected_name}: {names}; cannot tell which to grade", []


def discover(course_dir: Path, assignment: Assignment, students: list[str] | None = None) -> list[WorkItem]:
    """One WorkItem per student folder under COURSE/submitted/ (only `students`, if given; a
    named student without a folder gets an item too), sorted by student id."""
    submitted = Path(course_dir) / "submitted"
    if students:
        names = sorted(set(students))
    else:
        names = sorted(p.name for p in submitted.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if submitted.is_dir() else []
    deadline = due_date(course_dir, assignment.name) if names else None
    return [_work_item(submitted, student, assignment, deadline) for student in names]


def student_id(name: str) -> str:
    """A student folder's name as the id a TA reads, one-to-one: undecodable bytes as \\xNN,
    backslashes doubled. Decoding with replacement was not one-to-one: folders `bob\\xff` and
    `bob\ufffd` both read `bob\ufffd` and shared one record, one feedback page and one grade."""
    return os.fsencode(name).replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def _work_item(submitted: Path, student: str, assignment: Assignment, deadline: datetime | None) -> WorkItem:
    folder = submitted / student / assignment.name
    try:
        listing = walk(folder, SKIPPED)
        notebook, problem, notes = _pick_notebook(folder, assignment.notebook, listing)
        if not (submitted / student).is_dir():
            problem = f"no submission: there is no folder submitted/{shown(student)}/"
        timestamp, note = read_timestamp(folder) if folder.is_dir() else (None, "")
        if note:
            notes.append(note)
        late = bool(deadline and timestamp and timestamp > deadline)
        digest = content_hash(folder, listing)
    except Exception as error:  # a folder no check foresaw: this student is not gradable, the batch goes on
        notebook, notes, timestamp, late, digest = None, [], None, False, MISSING_HASH
        problem = f"the submission folder could not be read: {type(error).__name__}: {shown(str(error))[:200]}"
    # The folder keeps the real name.
    return WorkItem(student_id(student), folder, notebook, digest, timestamp, late, problem, notes)
