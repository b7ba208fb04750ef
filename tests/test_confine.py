"""Building a box's private root works wherever the kit and its venv live: a clone under /tmp (as
a CI job may make) must not be hidden by the root mounted there or by the box's own /tmp."""
import os

import pytest

from autograder.sandbox.box import confine


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


KEYCTL_PROBE = """
import ctypes, errno, os, platform, subprocess, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
NR = {"x86_64": {"add_key": 248, "keyctl": 250, "request_key": 249}, "aarch64": {"add_key": 217, "keyctl": 219, "request_key": 218}}[platform.machine()]
def refused(result):
    return result == -1 and ctypes.get_errno() == errno.EPERM
KEY_SPEC_USER_KEYRING, KEYCTL_READ = -4, 11
added = libc.syscall(NR["add_key"], b"user", b"kit-test-key", b"secret", 6, KEY_SPEC_USER_KEYRING)
read = libc.syscall(NR["keyctl"], KEYCTL_READ, KEY_SPEC_USER_KEYRING, None, 0)
found = libc.syscall(NR["request_key"], b"user", b"kit-test-key", None, 0)
new_user_namespace = libc.unshare(0x10000000)
user_namespace_refused = new_user_namespace == -1 and ctypes.get_errno() == errno.EPERM
thread = threading.Thread(target=lambda: None); thread.start(); thread.join()
child = os.fork()
if child == 0:
    os._exit(7)
forked = os.waitpid(child, 0)[1] >> 8 == 7
spawned = subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True, text=True).stdout.strip() == "42"
print(refused(added), refused(read), refused(found), user_namespace_refused, forked, spawned)
"""


def test_the_system_call_filter_refuses_keyrings_and_namespaces_and_keeps_threads_forks_and_spawns():
    """Installed in a child of this process (no root needed): what a notebook needs still works."""
    import subprocess
    import sys

    from autograder.sandbox.box import syscall_filter

    code = ("import ctypes; ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)\n"
            "from autograder.sandbox.box import syscall_filter\nassert syscall_filter.install() is None\n" + KEYCTL_PROBE)
    if platform_machine() not in syscall_filter.TABLES:
        pytest.skip("no system call table for this machine")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["True"] * 6, done.stdout + done.stderr[-2000:]


@pytest.mark.skipif(os.geteuid() != 0, reason="sandbox uids need root")
def test_a_key_one_sandbox_adds_is_never_read_by_the_next(zygote, grading_limits):
    """Keyrings belong to a uid, and uids are reused: a key was readable by later sandboxes."""
    reports = []
    for _ in range(2):
        with zygote.spawn(device="cpu", limits=grading_limits) as sandbox:
            reports.append(sandbox.execute([KEYCTL_PROBE]))
            assert any("system call filter" in item for item in sandbox.isolation["applied"]), sandbox.isolation
    for report in reports:
        assert report.cells[0].get("output", "").split() == ["True"] * 6, report.cells[0]


def platform_machine() -> str:
    import platform

    return platform.machine()
