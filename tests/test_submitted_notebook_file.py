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
from autograder.pipeline import GradingContext, grade_submission

SOLUTION = KIT_ROOT / "solutions" / "pytorch_slope_solution.ipynb"


def _not_graded(path: Path) -> str:
    """grade_submission's reason; the sandbox is never needed (the file is refused first)."""
    result = grade_submission(path, GradingContext(zygote=None, assignment=PYTORCH_SLOPE, grading_seed="00" * 32))
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
    assert _restored(real, KIT_ROOT / "release" / "pytorch_slope" / "pytorch_slope.ipynb")
    link = tmp_path / "link.ipynb"
    link.symlink_to(SOLUTION)
    assert _restored(link, KIT_ROOT / "release" / "pytorch_slope" / "pytorch_slope.ipynb") is None
