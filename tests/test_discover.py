"""Discovery of a class's submissions (issue 7, parts 2 and 8): a submission is made of files,
never links or special files, and a file name that is not UTF-8 neither stops the batch nor
reaches a TA undecodable."""
from __future__ import annotations

import os

from autograder.assignment import KIT_ROOT, PYTORCH_SLOPE
from autograder.autograde.discover import content_hash, discover

A, NB = "pytorch_slope", "pytorch_slope.ipynb"
LATIN1 = os.fsdecode(b"caf\xe9")  # a name nbgrader collect copies from a Latin-1 file system


def _folder(tmp_path, student: str):
    folder = tmp_path / "submitted" / student / A
    folder.mkdir(parents=True)
    return folder


def test_a_notebook_that_links_to_the_reference_is_not_graded(tmp_path):
    _folder(tmp_path, "linker")
    (tmp_path / "submitted" / "linker" / A / NB).symlink_to(KIT_ROOT / "solutions" / "pytorch_slope_solution.ipynb")
    item = discover(tmp_path, PYTORCH_SLOPE)[0]
    assert item.notebook is None and "links or special files" in item.problem and NB in item.problem


def test_links_and_special_files_beside_the_notebook_are_refused(tmp_path):
    for student, make in {"fifo": lambda p: os.mkfifo(p), "dirlink": lambda p: p.symlink_to("/etc"),
                          "filelink": lambda p: p.symlink_to("/etc/passwd")}.items():
        folder = _folder(tmp_path, student)
        (folder / NB).write_text("{}")
        make(folder / "extra")
    (_folder(tmp_path, "plain") / NB).write_text("{}")
    items = {i.student: i for i in discover(tmp_path, PYTORCH_SLOPE)}
    for student in ("fifo", "dirlink", "filelink"):
        assert items[student].notebook is None and "extra" in items[student].problem, items[student]
    assert items["plain"].notebook is not None


def test_names_that_are_not_utf8_are_hashed_and_shown_with_replacement(tmp_path):
    folder = _folder(tmp_path, "s")
    (folder / NB).write_text("{}")
    (folder / f"{LATIN1}.txt").write_text("notes")
    first = content_hash(folder)  # raised UnicodeEncodeError before
    (folder / f"{LATIN1}.txt").write_text("other notes")
    assert content_hash(folder) != first
    renamed = _folder(tmp_path, "r")
    (renamed / f"{LATIN1}.ipynb").write_text("{}")
    odd_student = tmp_path / "submitted" / LATIN1 / A
    odd_student.mkdir(parents=True)
    (odd_student / NB).write_text("{}")
    items = {i.student: i for i in discover(tmp_path, PYTORCH_SLOPE)}
    assert items["r"].notebook is not None and "caf\ufffd.ipynb" in items["r"].notes[0]
    assert "caf\ufffd" in items and items["caf\ufffd"].folder == odd_student
    for item in items.values():  # everything a TA reads encodes as UTF-8
        " ".join([item.student, item.problem, *item.notes]).encode("utf-8")
