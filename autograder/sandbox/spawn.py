"""Starting the zygote (the warm parent of every sandbox) and asking it for a sandbox per
submission; leasing the unprivileged uid its sandboxes run as."""
from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder.sandbox import protocol
from autograder.sandbox.client import Sandbox
from autograder.sandbox.limits import Limits
from autograder.sandbox.processes import kill_processes_of

SANDBOX_UID_BASE = 61000
SANDBOX_UID_COUNT = 1000
LEASE_DIR = Path("/run/lock") if Path("/run/lock").is_dir() else Path(tempfile.gettempdir())


def lease_sandbox_uid() -> tuple[int, int]:
    """An unprivileged uid that no other grading process on this machine is using, held by an
    exclusive lock on a file until this process closes the returned fd (or dies). Killing
    "every process of the uid" is then safe: it can only hit this grader's own sandboxes."""
    for uid in range(SANDBOX_UID_BASE, SANDBOX_UID_BASE + SANDBOX_UID_COUNT):
        fd = os.open(LEASE_DIR / f"autograder-sandbox-{uid}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return uid, fd
        except BlockingIOError:
            os.close(fd)
    raise RuntimeError(f"all {SANDBOX_UID_COUNT} sandbox uids are in use on this machine")


# Only these variables reach student code; the grader's own environment may hold secrets.
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


class Zygote:
    """A warm interpreter with torch imported, forking sandboxes on request, one at a time.

    Its sandboxes run as one leased uid (when the grader is root), so one grader process with
    several zygotes, or several graders on one machine, never share a sandbox uid."""

    def __init__(self):
        self.uid, self._lease_fd = lease_sandbox_uid() if os.geteuid() == 0 else (None, None)
        if self.uid is not None:  # leftovers of a grader that died holding this uid
            kill_all_of_uid(self.uid)
        ours, theirs = socket.socketpair()
        package_parent = str(Path(__file__).resolve().parents[2])
        env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
        env.update(MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", PYTHONPATH=package_parent)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "autograder.sandbox.zygote", str(theirs.fileno())],
            pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL,
            cwd=tempfile.gettempdir(),
        )
        theirs.close()
        self.control = ours
        self.control.settimeout(120)
        ready = protocol.recv_message(self.control)
        if ready.get("event") != "ready":
            raise RuntimeError("the sandbox zygote did not start")

    def spawn(self, *, device: str, limits: Limits) -> Sandbox:
        workdir = tempfile.mkdtemp(prefix="submission-")
        uid = self.uid
        protocol.send_message(self.control, {
            "op": "spawn", "workdir": workdir, "uid": uid, "limits": limits.rlimits(device),
        })
        payload, fds, _, _ = socket.recv_fds(self.control, 4096, 1)
        if not fds:
            raise RuntimeError("the sandbox zygote did not hand over a sandbox")
        pid = json.loads(payload)["pid"]
        return Sandbox(socket.socket(fileno=fds[0]), pid, uid, workdir, device, limits)

    def close(self) -> None:
        self.control.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.uid is not None:
            kill_all_of_uid(self.uid)
            os.close(self._lease_fd)
            self.uid = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def kill_all_of_uid(uid: int) -> None:
    """SIGKILL every process of `uid`, double-forked or not (the grader runs as root)."""
    kill_processes_of(uid)
