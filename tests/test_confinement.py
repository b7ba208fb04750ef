"""Confinement's parts (issue 25), one behaviour each: the level a host's capabilities give, the
refusal and `--unconfined`, the sandbox uids and their leases, what a box may import and open,
what the system call filter refuses, which limit a box hit, and that nothing a submission writes
where a box could is imported by the grader. The attack matrix in every mode is
tests/test_confinement_matrix.py."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.sandbox.box import confine, syscall_filter
from autograder.sandbox.grader import exits, leases
from autograder.sandbox.grader.confinement import ConfinementRefused, Level, check_allowed, choose, refusal
from autograder.sandbox.grader.limits import Limits
from autograder.sandbox.grader.zygotes import run_confinement, weakest
from autograder.usage import UsageError

KIT = Path(__file__).resolve().parents[1]
ROOT = os.geteuid() == 0
HOSTS = {  # what zygote/host.py reports -> the level
    "root": ({"root": True, "namespaces": True, "sandbox_uids": True, "landlock_abi": 7}, Level.NAMESPACES_UID),
    "root, no CAP_SYS_ADMIN, user namespaces mapping the uids": (
        {"root": True, "user_namespace": True, "namespaces": True, "sandbox_uids": True, "landlock_abi": 5}, Level.NAMESPACES_UID),
    "a TA's account": ({"root": False, "user_namespace": True, "namespaces": True, "landlock_abi": 0}, Level.NAMESPACES),
    "default container": ({"root": True, "namespaces": False, "sandbox_uids": True, "landlock_abi": 4}, Level.LANDLOCK_UID),
    "account, no user namespaces": ({"root": False, "namespaces": False, "landlock_abi": 6}, Level.LANDLOCK),
    "account, no user namespaces, old Landlock": ({"root": False, "namespaces": False, "landlock_abi": 5}, Level.UNCONFINED),
    "root, no namespaces, no Landlock": ({"root": True, "namespaces": False, "sandbox_uids": True, "landlock_abi": 0},
                                         Level.UNCONFINED),
}


@pytest.mark.parametrize("host", sorted(HOSTS))
def test_the_level_is_the_strongest_the_host_allows(host):
    facts, expected = HOSTS[host]
    assert choose(facts).level == expected


def test_no_level_refuses_with_what_to_do_unless_unconfined():
    unconfined = choose({"root": False, "namespaces": False, "landlock_abi": 3, "refused": ["user namespaces are refused"]})
    with pytest.raises(ConfinementRefused) as refused:
        check_allowed(unconfined, allow_unconfined=False)
    for advice in ("user namespaces are refused", "Landlock ABI 3", "user.max_user_namespaces", "--unconfined"):
        assert advice in refused.value.reason
    check_allowed(unconfined, allow_unconfined=True)  # graded, and marked
    assert "unconfined" in refusal(unconfined) and unconfined.stamp()["level"] == "unconfined"


def test_a_ceiling_only_ever_weakens_the_level(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    root = HOSTS["root"][0]
    assert run_confinement(root, "landlock+uid").level == Level.LANDLOCK_UID
    assert run_confinement(HOSTS["default container"][0], "namespaces+uid").level == Level.LANDLOCK_UID
    assert weakest(Level.LANDLOCK, "") == Level.LANDLOCK
    with pytest.raises(ConfinementRefused, match="names no level"):
        weakest(Level.LANDLOCK, "strong")


def test_a_grader_that_is_not_root_never_claims_sandbox_uids(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert run_confinement(HOSTS["root"][0], "").level == Level.NAMESPACES
    assert run_confinement(HOSTS["default container"][0], "").level == Level.LANDLOCK


# ---------------------------------------------------------------------------- sandbox uids


@pytest.mark.parametrize("value, problem", [("61000-61500", "systemd's dynamic users"), ("70000", "not a range"),
                                            ("10-20", "between"), ("a-b", "not a range"), ("5000-4000", "not a range")])
def test_a_sandbox_uid_range_that_could_hit_someone_else_is_refused(value, problem):
    with pytest.raises(UsageError, match=problem):
        leases.sandbox_uids(value)


def test_the_default_range_is_clear_of_systemd_and_accounts():
    uids = leases.sandbox_uids("")
    assert uids == leases.DEFAULT_UIDS and uids.stop <= leases.SYSTEMD_DYNAMIC_UIDS.start and uids.start >= 1000
    assert leases.sandbox_uids("70000-70100") == range(70000, 70101)


@pytest.mark.skipif(not ROOT, reason="leases are root's")
def test_a_lease_never_names_an_existing_account(monkeypatch):
    first = leases.DEFAULT_UIDS.start
    monkeypatch.setattr(leases, "_in_passwd", lambda uid: uid < first + 3)
    uid, fd = leases.lease_sandbox_uid(range(first, first + 10))
    try:
        assert uid >= first + 3
    finally:
        os.close(fd)


@pytest.mark.skipif(not ROOT, reason="leases are root's")
@pytest.mark.parametrize("planted", ["symlink", "world_writable"])
def test_a_lease_folder_anyone_else_could_write_is_refused(tmp_path, monkeypatch, planted):
    folder = tmp_path / "leases"
    if planted == "symlink":
        (tmp_path / "elsewhere").mkdir()
        folder.symlink_to(tmp_path / "elsewhere")
    else:
        folder.mkdir(mode=0o777)
        folder.chmod(0o777)
    monkeypatch.setattr(leases, "LEASE_DIR", folder)
    with pytest.raises(RuntimeError, match="only root can write"):
        leases.lease_sandbox_uid(range(60600, 60601))


@pytest.mark.skipif(not ROOT, reason="leases are root's")
def test_a_link_planted_as_a_lease_file_is_not_followed(tmp_path, monkeypatch):
    folder = tmp_path / "leases"
    folder.mkdir(mode=0o700)
    target = tmp_path / "student-folder-file"
    (folder / "sandbox-60600.lock").symlink_to(target)
    monkeypatch.setattr(leases, "LEASE_DIR", folder)
    uid, fd = leases.lease_sandbox_uid(range(60600, 60602))
    os.close(fd)
    assert uid == 60601 and not target.exists()


# -------------------------------------------------------------------- what a box may reach


def test_import_folders_never_include_the_kit_or_course(monkeypatch, tmp_path):
    kit, course = tmp_path / "kit", tmp_path / "course"
    venv = kit / ".venv"
    for folder in (venv / "lib", kit / "autograder", course, tmp_path / "elsewhere"):
        folder.mkdir(parents=True)
    monkeypatch.setattr(sys, "prefix", str(venv))
    monkeypatch.setattr(sys, "exec_prefix", str(venv))
    monkeypatch.setattr(sys, "path", [str(kit), str(venv / "lib"), str(tmp_path), str(course), str(tmp_path / "elsewhere")])
    kept = confine.import_dirs([str(kit), str(course)])
    assert str(venv.resolve()) in kept and str((tmp_path / "elsewhere").resolve()) in kept
    assert not any(k in (str(kit.resolve()), str(tmp_path.resolve()), str(course.resolve())) for k in kept)


def test_the_filter_refuses_what_reaches_past_a_box_everywhere():
    for name in ("socket", "mq_open", "ptrace", "process_vm_readv", "pidfd_getfd", "keyctl", "unshare"):
        assert name in syscall_filter.refused(sysv_ipc=True)
    assert "shmget" not in syscall_filter.refused(sysv_ipc=True)  # a box with its own IPC namespace keeps it
    assert {"shmget", "msgget", "semget"} <= set(syscall_filter.refused(sysv_ipc=False))
    for table in syscall_filter.TABLES.values():
        assert set(syscall_filter.refused(sysv_ipc=False)) <= set(table[1])


BOX_PROBE = """
import ctypes, errno, os, socket
libc = ctypes.CDLL(None, use_errno=True)
def refused(call):
    try:
        call()
    except OSError as error:
        return error.errno in (errno.EPERM, errno.EACCES, errno.EMFILE)
    return False
print("socket", refused(lambda: socket.socket(socket.AF_UNIX)), refused(lambda: socket.socket(socket.AF_INET)))
print("mq", libc.mq_open(b"/kit-q", os.O_CREAT | os.O_RDWR, 0o600, None) == -1)
print("devices", sorted(n for n in os.listdir("/dev") if not n.startswith(("fd", "std", "shm"))))
print("pair", len(socket.socketpair()))
"""


def test_a_box_has_no_socket_no_message_queue_and_a_minimal_dev(zygote, grading_limits):
    if not zygote.pid_namespace:
        pytest.skip("the private root with a minimal /dev needs namespaces")
    with zygote.spawn(device="cpu", limits=grading_limits) as box:
        report = box.execute([BOX_PROBE])
    output = report.cells[0].get("output", "")
    assert "socket True True" in output and "mq True" in output and "pair 2" in output, report
    assert "devices ['full', 'null', 'random', 'urandom', 'zero']" in output, output


# ------------------------------------------------------------------ which limit a box hit


def test_exit_records_name_the_limit_a_student_hit():
    limits = Limits(cpu_seconds=30, memory_bytes=2**30)
    assert "CPU time limit (30 s" in exits.explained({"signal": int(signal.SIGXCPU), "cpu_s": 30.0}, limits)
    assert "CPU time limit" in exits.explained({"signal": int(signal.SIGKILL), "cpu_s": 34.2}, limits)
    assert "ran out of memory (the limit is 1024 MiB)" in exits.explained({"signal": 9, "cpu_s": 1.0}, limits, out_of_memory=True)
    assert "exit status 7" in exits.explained({"exit_code": 7, "cpu_s": 0.1}, limits)
    assert "crashed (SIGSEGV)" in exits.explained({"signal": int(signal.SIGSEGV)}, limits)
    assert "killed (SIGKILL)" in exits.explained({"signal": 9, "cpu_s": 1.0}, limits)
    assert exits.accepted({"exit_code": 10**9, "signal": "x", "cpu_s": -5, "max_rss_bytes": True}) == \
        {"exit_code": None, "signal": None, "cpu_s": 0.0, "max_rss_bytes": 0}


@pytest.mark.parametrize("cell, said", [("import os\nos._exit(7)", "exit status 7"),
                                        ("while True:\n    pass", "CPU time limit (1 s")])
def test_a_student_reads_which_limit_their_box_hit(zygote, cell, said):
    limits = Limits(cell_timeout_s=10.0, cpu_seconds=1)
    with zygote.spawn(device="cpu", limits=limits) as box:
        report = box.execute([cell])
    assert report.died and said in report.died, report.died


# -------------------------------------------------- nothing written where a box can is read


@pytest.fixture(scope="module")
def reference_notebook(tmp_path_factory):
    from autograder.release.synthetic import make_submission, write_submission

    return write_submission(tmp_path_factory.mktemp("isolated") / "reference.ipynb", make_submission())


@pytest.mark.slow
def test_the_grader_imports_nothing_from_its_working_folder_or_temporary_folder(tmp_path, reference_notebook):
    planted = tmp_path / "planted"
    planted.mkdir()
    marker = tmp_path / "imported"
    for module in ("json", "colorsys", "statistics", "fractions"):
        (planted / f"{module}.py").write_text(f"open({str(marker)!r}, 'a').write('{module} ')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")}
    env.update(TMPDIR=str(planted))
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", str(reference_notebook)], cwd=planted,
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Total: 10/10" in done.stdout
    assert not marker.exists(), marker.read_text()


def test_no_package_of_the_kit_ships_the_grading_secret(tmp_path):
    """The secret stays in the course's repository: neither a wheel nor an sdist carries it
    (built from a copy of the kit's packaging files, so the checkout gets no build folders)."""
    import shutil
    import tarfile
    import zipfile

    source = tmp_path / "kit"
    shutil.copytree(KIT / "autograder", source / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "MANIFEST.in", "README.md", "LICENSE"):
        shutil.copy2(KIT / name, source / name)
    out = tmp_path / "dist"

    def build(kind: str) -> str:  # each in a process of its own, as pip runs them
        done = subprocess.run([sys.executable, "-c", f"import sys; from setuptools import build_meta as b; "
                               f"print('BUILT', b.build_{kind}(sys.argv[1]))", str(out)],
                              cwd=source, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return next(line for line in done.stdout.splitlines() if line.startswith("BUILT")).split()[1]

    wheel, sdist = build("wheel"), build("sdist")
    names = zipfile.ZipFile(out / wheel).namelist()
    assert any(n.endswith("autograder/assignment.py") for n in names)
    assert not [n for n in names if n.endswith("grading.json")]
    with tarfile.open(out / sdist) as archive:
        members = archive.getnames()
    assert any(n.endswith("autograder/assignment.py") for n in members)
    assert not [n for n in members if n.endswith("grading.json")]


def test_processes_are_signalled_only_while_they_are_still_the_uid_swept(monkeypatch):
    from autograder.sandbox.shared import processes

    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        processes.signal_if_still_of(sleeper.pid, os.getuid() + 12345)  # not its uid: spared
        time.sleep(0.1)
        assert sleeper.poll() is None
        processes.signal_if_still_of(sleeper.pid, os.getuid())
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
    finally:
        sleeper.kill()


@pytest.mark.slow
def test_an_unconfined_host_is_refused_by_default_and_marked_when_allowed(tmp_path, reference_notebook):
    """Made unconfined by the ceiling: `grade` and `autograde` refuse (status 2, the reason and
    what to do, nobody graded); with --unconfined they grade and say so."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")},
           "AUTOGRADER_MAX_CONFINEMENT": "unconfined"}

    def run(*argv):
        return subprocess.run([sys.executable, "-m", "autograder", *argv], capture_output=True, text=True, env=env,
                              timeout=300, cwd=KIT)

    refused = run("grade", str(reference_notebook))
    assert refused.returncode == 2 and "--unconfined" in refused.stderr and "Total" not in refused.stdout
    allowed = run("grade", str(reference_notebook), "--unconfined")
    assert allowed.returncode == 0 and "Total: 10/10" in allowed.stdout and "Confinement: unconfined" in allowed.stdout
    course = tmp_path / "course"
    (course / "submitted" / "ada" / "pytorch_slope").mkdir(parents=True)
    (course / "submitted" / "ada" / "pytorch_slope" / "pytorch_slope.ipynb").write_bytes(reference_notebook.read_bytes())
    batch = run("autograde", "pytorch_slope", "--course-dir", str(course))
    assert batch.returncode == 2 and "--unconfined" in batch.stderr
    assert not (course / "gradebook.db").exists() and not (course / "reports").exists()


@pytest.mark.slow
@pytest.mark.skipif(not ROOT, reason="the root mode's private root binds the venv")
def test_a_kit_under_tmp_with_a_linked_venv_outside_it_grades(tmp_path, reference_notebook):
    """As root too (the TA's mode does the same in the matrix): once a box died at start-up here."""
    import sysconfig

    from confinement_modes import _copy_kit

    kit, venv = tmp_path / "kit", tmp_path / "elsewhere" / "venv"
    kit.mkdir()
    _copy_kit(kit)
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)], check=True)
    (kit / ".venv").symlink_to(venv)
    site = next(venv.glob("lib/python3*/site-packages"))
    (site / "kit.pth").write_text(f"{kit}\n{sysconfig.get_paths()['purelib']}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOGRADER_", "PYTHON"))}
    done = subprocess.run([str(kit / ".venv" / "bin" / "python"), "-m", "autograder", "grade", str(reference_notebook)],
                          cwd=kit, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and "Total: 10/10" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Confinement: namespaces+uid" in done.stdout


@pytest.mark.skipif(not ROOT, reason="makes a user namespace from root to stand for a container's account")
def test_a_containers_partly_hidden_proc_rules_out_the_namespace_levels():
    """podman's and Docker's containers cover parts of /proc (masked paths); inside a user namespace
    the kernel then refuses the fresh /proc a box's private root needs. The probe must find that
    (here: /proc/timer_list covered, then a user namespace, as in a container), or every box of a
    `namespaces` run fails to start (found by `make coursera-check` in podman's default container)."""
    from autograder.sandbox.zygote import host

    def in_user_namespace(masked: bool) -> str:
        """host._try_namespaces() from a user namespace (root mapped to root), with /proc partly covered or not."""
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(read_end)
                confine.unshare(confine.CLONE_NEWNS)
                confine._mount("none", "/", None, confine.MS_REC | confine.MS_PRIVATE)
                if masked:  # as a container's masked paths are
                    confine._mount("/dev/null", "/proc/timer_list", None, confine.MS_BIND)
                confine.unshare(0x10000000)  # CLONE_NEWUSER
                for name, line in (("setgroups", "deny"), ("uid_map", "0 0 1"), ("gid_map", "0 0 1")):
                    with open(f"/proc/self/{name}", "w") as mapping:
                        mapping.write(line)
                os.write(write_end, ("answer:" + host._try_namespaces()).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as answer:
            said = answer.read()
        os.waitpid(pid, 0)
        assert said.startswith("answer:"), "the user namespace could not be made"
        return said.removeprefix("answer:")

    assert host._try_namespaces() == ""  # this machine's root: namespaces and a fresh /proc
    assert in_user_namespace(masked=False) == ""
    assert in_user_namespace(masked=True) == ("new namespaces are made, but a fresh /proc is refused in them "
                                              "(a container's partly hidden /proc)")


def test_a_probe_child_killed_from_outside_is_a_fault_not_a_refusal(monkeypatch):
    """A probe child ended by SIGKILL (an out-of-memory kill, an operator; a test's zygote killer once)
    said nothing about the host, yet was read as "new namespaces are refused": the zygote then
    looked for a user namespace and the whole run went on at a lower level. It is a fault now (the
    zygote ends before "ready" and the grader starts another); a seccomp filter that kills (SIGSYS)
    is still the host refusing, and a grandchild killed from outside counts as its parent killed."""
    import signal

    from autograder.sandbox.zygote import host

    def killed(number):
        def attempt():
            os.kill(os.getpid(), number)
        return attempt

    with pytest.raises(host.ProbeInterrupted):
        host._in_child(killed(signal.SIGKILL))
    assert host._in_child(killed(signal.SIGSYS)) is False
    monkeypatch.setattr(host, "_namespaces", killed(signal.SIGKILL))
    with pytest.raises(host.ProbeInterrupted):
        host._try_namespaces()
    monkeypatch.setattr(host, "_namespaces", killed(signal.SIGSYS))
    assert host._try_namespaces() == "new namespaces are refused"
    # The grandchild killed: its parent passes it on. (Without new namespaces here: a PID namespace's
    # first process cannot SIGKILL itself, only be killed from outside.)
    monkeypatch.undo()
    monkeypatch.setattr(host.confine, "unshare", lambda flags: None)
    monkeypatch.setattr(host.confine, "try_fresh_proc", killed(signal.SIGKILL))
    with pytest.raises(host.ProbeInterrupted):
        host._try_namespaces()


@pytest.mark.skipif(not ROOT, reason="maps the sandbox uids from root, as root without CAP_SYS_ADMIN in a container does")
def test_a_zygote_that_maps_the_sandbox_uids_goes_on_inside_its_user_namespace():
    """Root where new namespaces need a user namespace (podman's default container): the zygote
    enters one that maps the sandbox uids, through a helper process, and goes on as PID 1 of its
    own PID namespace. The process that goes on is not the helper's parent; it waited for it and
    died (ChildProcessError), so such a container graded nobody. A zygote server's zygotes do it
    again, from inside the server's namespaces."""
    from autograder.sandbox.zygote import user_namespace

    def entered(nested: bool) -> str:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(read_end)
                why = user_namespace.enter(range(60600, 60610), close_in_waiter=(write_end,))
                if why is None and nested:  # a zygote server's zygote: a user namespace in the server's
                    child = os.fork()
                    if child:
                        os._exit(os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]))
                    why = user_namespace.enter(range(60600, 60610), close_in_waiter=(write_end,))
                os.write(write_end, f"inside as pid {os.getpid()}, maps the uids: {user_namespace.maps_sandbox_uids()}"
                         .encode() if why is None else why.encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as answer:
            said = answer.read()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, (said, status)
        return said

    assert entered(nested=False) == "inside as pid 1, maps the uids: True"
    # in a PID namespace already, the helper that writes the maps must name this process as /proc
    # does: by getppid() it named another, and the zygote's boxes had no uid of their own (chown: EINVAL)
    assert entered(nested=True) == "inside as pid 1, maps the uids: True"
