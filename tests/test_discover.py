"""Discovery of a class's submissions (issue 7, parts 2 and 8): a submission is made of files,
never links or special files, and a file name that is not UTF-8 neither stops the batch nor
reaches a TA undecodable."""
from __future__ import annotations

import os

import pytest

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
    assert "caf\\xe9" in items and items["caf\\xe9"].folder == odd_student
    for item in items.values():  # everything a TA reads encodes as UTF-8
        " ".join([item.student, item.problem, *item.notes]).encode("utf-8")


@pytest.fixture
def nest(tmp_path):
    """nest(folder, depth): `depth` folders, one inside the other; removed after the test with
    the kit's remove_tree (pytest's own clean-up recurses, and stops at such a tree)."""
    from autograder.sandbox.grader.submitted_files import remove_tree

    made = []

    def make(folder, depth: int):
        made.append(folder / "d")
        _nest(folder, depth)

    yield make
    for top in made:
        remove_tree(top)
        assert not top.exists()


def _nest(folder, depth: int) -> None:
    """Built relative to each parent (a path this deep is longer than PATH_MAX, which is how an
    attacker builds it too)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)


def test_a_folder_nested_too_deep_makes_that_student_not_gradable_and_the_others_are_found(tmp_path, nest):
    """1,500 nested folders made os.walk raise RecursionError in the grader: the batch stopped."""
    deep = _folder(tmp_path, "deep")
    (deep / NB).write_text("{}")
    nest(deep, 1500)
    (_folder(tmp_path, "plain") / NB).write_text("{}")
    items = {i.student: i for i in discover(tmp_path, PYTORCH_SLOPE)}
    assert items["deep"].notebook is None and "levels deep" in items["deep"].problem, items["deep"]
    assert items["plain"].notebook is not None


def test_a_folder_with_too_many_files_is_not_walked_whole(tmp_path):
    from autograder.sandbox.grader import submitted_files

    crowded = _folder(tmp_path, "crowded")
    (crowded / NB).write_text("{}")
    for i in range(50):
        (crowded / f"f{i}").write_text("")
    listing = submitted_files.walk(crowded)
    assert listing.complete and len(listing.entries) == 51
    original, submitted_files.MAX_ENTRIES = submitted_files.MAX_ENTRIES, 20
    try:
        assert submitted_files.walk(crowded).too_many
        assert len(submitted_files.walk(crowded).entries) == 20  # read one past the bound, kept to it
        exact = tmp_path / "exact"
        (exact / ".ipynb_checkpoints").mkdir(parents=True)
        for i in range(20):
            (exact / f"f{i}").write_text("")
        assert submitted_files.walk(exact, frozenset({".ipynb_checkpoints"})).complete  # skipped names never count
        item = discover(tmp_path, PYTORCH_SLOPE)[0]
    finally:
        submitted_files.MAX_ENTRIES = original
    assert item.notebook is None and "more than 20 files" in item.problem


def test_files_beside_a_notebook_in_a_deep_tree_are_copied_within_the_bounds(tmp_path, nest):
    """`grade` copies the files beside the notebook: a deep tree there is walked to MAX_DEPTH and noted."""
    from autograder.sandbox.grader.submitted_files import MAX_DEPTH, collect

    (tmp_path / "steps.py").write_text("x = 1\n")
    nest(tmp_path, 1500)
    found = collect(tmp_path, max_bytes=10**6, max_count=1000)
    assert "steps.py" in found.files and any("levels deep" in note for note in found.notes)
    assert max(name.count(os.sep) for name in found.files) <= MAX_DEPTH


def test_a_folder_that_cannot_be_read_makes_only_that_student_not_gradable(tmp_path, monkeypatch):
    """Whatever a student's folder raises in discovery stays with that student."""
    from autograder.autograde import discover as module

    (_folder(tmp_path, "a_odd") / NB).write_text("{}")
    (_folder(tmp_path, "b_plain") / NB).write_text("{}")
    real = module.read_timestamp

    def failing(folder):
        if "a_odd" in str(folder):
            raise RecursionError("maximum recursion depth exceeded")
        return real(folder)

    monkeypatch.setattr(module, "read_timestamp", failing)
    items = {i.student: i for i in discover(tmp_path, PYTORCH_SLOPE)}
    assert items["a_odd"].notebook is None and "RecursionError" in items["a_odd"].problem
    assert items["b_plain"].notebook is not None


def test_student_folders_whose_names_decode_alike_keep_apart(tmp_path):
    """b"bob\\xff" decoded with replacement reads "bob\ufffd", the id of another folder: the two
    shared one record and one grade. Each id now names one folder."""
    names = [os.fsdecode(b"bob\xff"), "bob\ufffd", "bob\\xff", "bob"]
    for name in names:
        (_folder(tmp_path, name) / NB).write_text("{}")
    items = discover(tmp_path, PYTORCH_SLOPE)
    assert len({item.student for item in items}) == len(names) == len(items)
    assert {item.student: item.folder.parent.name for item in items}["bob\\xff"] == os.fsdecode(b"bob\xff")
    for item in items:
        item.student.encode("utf-8")
