"""Building a box's private root works wherever the kit and its venv live: a clone under /tmp (as
a CI job may make) must not be hidden by the root mounted there or by the box's own /tmp."""
import os

import pytest

from autograder.sandbox import confine


def test_the_root_is_never_built_over_a_folder_that_is_bound_into_it():
    assert confine._new_root_mount_point(["/usr", "/work/kit/.venv"]) == "/tmp"
    chosen = confine._new_root_mount_point(["/usr", "/tmp/ci-clone/.venv"])
    assert chosen != "/tmp" and os.path.isdir(chosen)
    with pytest.raises(confine.ConfinementError):
        confine._new_root_mount_point(list(confine.NEW_ROOT_MOUNT_POINTS))


@pytest.mark.skipif(os.geteuid() != 0, reason="private roots need root")
def test_a_python_installation_under_tmp_stays_visible_in_the_box(zygote, grading_limits):
    """The box's scratch /tmp is mounted before the Python folders are bound, so one under /tmp is
    bound on top of it (seen as a failure to start any box from a clone under /tmp)."""
    with zygote.spawn(device="cpu", limits=grading_limits) as sandbox:
        report = sandbox.execute(["import sys, os\nprint(os.path.isdir(sys.prefix))"])
    assert report.died is None and "True" in report.cells[0].get("output", ""), report
