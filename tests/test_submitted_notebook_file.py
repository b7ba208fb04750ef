"""The submitted notebook is read as a file of the student's, never through a link, never from a
pipe or device, and never whole when it is huge: on Gradescope a zip can hold a link to the kit's
own solution notebook, which a grader that follows links would grade as the student's."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from autograder.assignment import KIT_ROOT, PYTORCH_SLOPE
from autograder.autograde.discover import content_hash
from autograder.notebook.load import MAX_NOTEBOOK_BYTES, SubmissionError, load_submission
from autograder.notebook.releases import KnownReleases
from autograder.pipeline import GradingContext, grade_submission

SOLUTION = KIT_ROOT / "solutions" / "pytorch_slope_solution.ipynb"


def _not_graded(path: Path) -> str:
    """grade_submission's reason; the sandbox is never needed (the file is refused first)."""
    result = grade_submission(path, GradingContext(zygote=None, assignment=PYTORCH_SLOPE))
    assert result.score == 0 and result.not_graded, result
    return result.not_graded


@pytest.mark.parametrize("hops", [1, 2])
def test_a_link_to_the_solution_is_refused_not_followed(tmp_path, hops):
    target = SOLUTION
    for hop in range(hops):
        link = tmp_path / f"hop{hop}.ipynb"
        link.symlink_to(target)
        target = link
    assert "symbolic link" in _not_graded(target)


def test_a_pipe_or_a_folder_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pytorch_slope.ipynb"
    os.mkfifo(fifo)  # nobody writes: reading it would block forever
    assert "not a regular file" in _not_graded(fifo)
    folder = tmp_path / "folder.ipynb"
    folder.mkdir()
    assert "not a regular file" in _not_graded(folder)


def test_a_huge_notebook_is_refused_before_it_is_read(tmp_path):
    huge = tmp_path / "pytorch_slope.ipynb"
    with huge.open("wb") as handle:
        handle.truncate(MAX_NOTEBOOK_BYTES + 1)  # sparse: no disk used
    with pytest.raises(SubmissionError, match="larger than 64 MiB"):
        load_submission(huge, PYTORCH_SLOPE.release_notebook)


def test_the_content_hash_reads_files_in_chunks_with_the_same_digest(tmp_path):
    """Streaming must not change the digest: a changed digest regrades every stored submission."""
    data = os.urandom(3 * (1 << 20) + 17)
    (tmp_path / "pytorch_slope.ipynb").write_bytes(data)
    expected = hashlib.sha256(b"pytorch_slope.ipynb\0" + len(data).to_bytes(8, "big") + data).hexdigest()
    assert content_hash(tmp_path) == expected


def test_the_autograded_copy_reads_the_notebook_as_grading_does(tmp_path):
    """formgrader's copy (outputs/autograded_folder.py) never follows a link either."""
    from autograder.outputs.autograded_folder import _restored
    from autograder.release.synthetic import make_submission, write_submission

    real = write_submission(tmp_path / "real.ipynb", make_submission())
    locked = KnownReleases.single(KIT_ROOT / "release" / "pytorch_slope" / "pytorch_slope.ipynb").current.locked
    assert _restored(real, locked)
    link = tmp_path / "link.ipynb"
    link.symlink_to(SOLUTION)
    assert _restored(link, locked) is None


def _deeply_nested(depth: int) -> bytes:
    return b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {"x": ' + b"[" * depth + b"]" * depth + b'}, "cells": []}'


def _solved_with(change) -> bytes:
    import json

    from autograder.release.synthetic import make_submission

    data = json.loads(json.dumps(make_submission()))
    change(data)
    return json.dumps(data).encode()


MALFORMED = {  # each made grade crash (or, in a batch, stopped the worker) before
    "JSON nested 100,000 deep": (_deeply_nested(100_000), "nested too deeply"),
    "nbformat as text": (b'{"nbformat": "4", "nbformat_minor": 5, "metadata": {}, "cells": []}', "whole number"),
    "nbgrader metadata as text": (lambda: _solved_with(lambda d: d["cells"][0]["metadata"].update(nbgrader="x")), "metadata of cell 1"),
    "grade_id as a number": (lambda: _solved_with(lambda d: d["cells"][1]["metadata"].update(nbgrader={"grade_id": 7})), "grade_id"),
    "metadata as a list": (lambda: _solved_with(lambda d: d["cells"][2].update(metadata=[1])), "not a readable Jupyter notebook"),
    "a 17 MB code cell": (lambda: _solved_with(lambda d: d["cells"].append(
        {"cell_type": "code", "id": "big", "metadata": {}, "source": "x = 1  # " + "y" * 17_000_000, "outputs": [], "execution_count": None})),
        "more than 8 MiB of source"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_notebook_is_not_graded_with_a_reason(tmp_path, name):
    """Refused while loading (the sandbox is never started) with a reason a student can act on,
    and the copy formgrader gets is skipped rather than raising."""
    from autograder.outputs.autograded_folder import _restored

    raw, expected = MALFORMED[name]
    path = tmp_path / "pytorch_slope.ipynb"
    path.write_bytes(raw() if callable(raw) else raw)
    reason = _not_graded(path)
    assert expected in reason and len(reason) < 400, reason
    _restored(path, KnownReleases.single(PYTORCH_SLOPE.release_notebook).current.locked)  # raised for several of these before


def test_any_error_while_loading_makes_that_notebook_not_graded(tmp_path, monkeypatch):
    """The last net: whatever loading raises is this submission's reason, never the run's crash."""
    from autograder import pipeline

    def broken(*_):
        raise AttributeError("'str' object has no attribute 'get'")

    monkeypatch.setattr(pipeline, "load_submission", broken)
    assert "could not be read (AttributeError)" in _not_graded(tmp_path / "any.ipynb")


def test_a_line_of_a_million_spaces_is_labelled_in_linear_time(tmp_path):
    """A heading regex was quadratic on such a line: `grade` waited 13 minutes in load. Labels
    now read a code cell's first line: a cell that starts with a million spaces, and a heading
    of a million spaces, are labelled in one pass. Run in a child process with a generous bound
    (a hang guard, not a benchmark)."""
    import subprocess
    import sys

    import nbformat

    from autograder.release.synthetic import make_submission, write_submission

    notebook = make_submission()
    notebook.cells.insert(3, nbformat_markdown("# x" + " " * 1_000_000 + "y\n## 1. Data\n# z" + " " * 300_000 + "#"))
    notebook.cells.insert(1, nbformat.v4.new_code_cell(" " * 1_000_000 + "\n" + " " * 1_000_000 + "y = 1"))
    path = write_submission(tmp_path / "pytorch_slope.ipynb", notebook)
    code = ("import sys; from autograder.notebook.load import load_submission; from autograder.assignment import PYTORCH_SLOPE\n"
            "print(load_submission(sys.argv[1], PYTORCH_SLOPE.release_notebook).labels[0])")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "cell 2 (`y = 1`)", done.stdout[:300]


def nbformat_markdown(source: str):
    import nbformat

    return nbformat.v4.new_markdown_cell(source)


def test_labels_stay_bounded_whatever_the_notebook_names(tmp_path):
    """Variants found by an attacker pass: a 1 MB first line (each `<cell 0>` of a message
    became the label: gigabytes), a lone surrogate in a first line, 100,000 cells (labels were
    counted in quadratic time), a 5,000-digit cell number (int() refused it), execution counts
    that are not small whole numbers."""
    import time

    from autograder.notebook.cell_names import RELABELLED_CHARS, code_cell_labels, relabel

    cells = [{"cell_type": "code", "source": f"def {'A' * 1_000_000}(): pass", "execution_count": 10**30},
             {"cell_type": "code", "source": "x = '\ud800'", "execution_count": -3},
             {"cell_type": "code", "source": "x = 1", "execution_count": "7"}]
    cells += [{"cell_type": "code", "source": f"def f{i}(): pass", "execution_count": i + 1} for i in range(100_000)]
    started = time.process_time()
    labels = code_cell_labels(cells)
    assert time.process_time() - started < 30  # a hang guard (was quadratic: hours), not a benchmark
    assert max(len(label.prose) for label in labels) < 200 and "\ud800" not in labels[1].prose
    assert [label.where for label in labels[:4]] == ["cell 1", "cell 2", "cell 3", "cell In [1]"]
    labels[1].prose.encode("utf-8")
    message = relabel("<cell 0>" * 1000 + " <cell " + "9" * 5000 + ">", labels)
    assert len(message) <= RELABELLED_CHARS + 100


def test_a_notebook_of_too_many_cells_is_refused_before_nbformat_reads_it(tmp_path):
    from autograder.notebook.load import MAX_CELLS

    cell = '{"cell_type": "raw", "metadata": {}, "source": ""}'
    path = tmp_path / "pytorch_slope.ipynb"
    path.write_text('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [' + ",".join([cell] * (MAX_CELLS + 1)) + "]}")
    assert "more than 10,000 cells" in _not_graded(path)
