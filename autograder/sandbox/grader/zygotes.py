"""Starting the zygote (the warm parent of every sandbox) and asking it for a sandbox per
submission; leasing the unprivileged uid its sandboxes run as."""
from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import warnings
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.sandbox.grader.cgroups import BoxCgroup, cgroups_worth_it
from autograder.sandbox.grader.limits import ZYGOTE_START_S, Limits
from autograder.sandbox.grader.submitted_files import remove_tree, to_memfd
from autograder.sandbox.shared import protocol
from autograder.sandbox.shared.messages import Event, Op
from autograder.sandbox.shared.processes import kill_processes_of

if TYPE_CHECKING:
    from autograder.sandbox.grader.box_client import BoxClient

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

    Each sandbox is a box (box.py): its own PID namespace where the platform allows it, its own
    cgroup where cgroup v2 is writable, and the leased uid (when the grader is root), so one
    grader process with several zygotes, or several graders on one machine, never share a
    sandbox uid. A uid is handed to a new sandbox only once no process of it is alive.

    Creating one starts the zygote's interpreter and returns at once: it imports torch while the
    grader imports its own (this module imports no torch), and the first `spawn` waits for it.
    That overlap is most of what `grade` costs above the bare import of torch."""

    def __init__(self, control: socket.socket | None = None):
        """`control`: a zygote a `ZygoteServer` forked (`ZygoteServer.new_zygote`); by default a
        new interpreter is started."""
        self.uid, self._lease_fd = lease_sandbox_uid() if os.geteuid() == 0 else (None, None)
        self._retired_leases: list[tuple[int, int]] = []  # (uid, lease fd): survivors could not be killed; never reused
        self.uid_notes: list[str] = []
        self.leased_uids: list[int] = [self.uid] if self.uid is not None else []
        self._spawned = 0
        self._boxes: list[BoxClient] = []  # spawned since the uid was last found clean
        if self.uid is not None:  # leftovers of a grader that died holding this uid
            self._ensure_uid_is_clean()
        self.process, self.control = (None, control) if control is not None else _start_zygote_interpreter()
        self._pidfd: int | None = None  # the zygote's, from its "ready" message
        self._start_failed = False
        # AUTOGRADER_PID_NAMESPACE=0 forces the fallback (what platforms without namespaces get), for tests.
        self._namespaces_allowed = os.environ.get("AUTOGRADER_PID_NAMESPACE") != "0"

    @cached_property
    def _ready(self) -> dict:
        """The zygote's "ready" message, waited for (at most ZYGOTE_START_S) when first needed."""
        self.control.settimeout(ZYGOTE_START_S)
        try:
            ready = protocol.recv_message(self.control)
            if ready.get("event") != Event.READY:
                raise protocol.ProtocolError(f"its first message was not \"ready\": {str(ready)[:200]}")
            if ready.get("pidfd"):
                _, fds, _, _ = socket.recv_fds(self.control, 1, 1)
                self._pidfd = fds[0] if fds else None
        except (OSError, EOFError, protocol.ProtocolError) as error:
            self._start_failed = True  # alive() says so: a forked zygote has no process to poll
            raise RuntimeError(f"the sandbox zygote did not start ({error})") from None
        return ready

    def alive(self) -> bool:
        """False once the zygote has exited or failed to start (one still starting counts as alive)."""
        if self._start_failed:
            return False
        if self.process is not None:
            return self.process.poll() is None
        return self._pidfd is None or not select.select([self._pidfd], [], [], 0)[0]

    @cached_property
    def pid_namespace(self) -> bool:
        """Whether boxes get their own PID namespace here (the zygote's "ready" says)."""
        return bool(self._ready.get("pid_namespace")) and self._namespaces_allowed

    @cached_property
    def use_cgroup(self) -> bool:
        # Joining a cgroup costs 5 to 30 ms a box (the kernel synchronises RCU on migration):
        # worth it for memory and pids caps, or for cgroup.kill where no PID namespace ends the box.
        return cgroups_worth_it(self.pid_namespace)

    def _ensure_uid_is_clean(self) -> None:
        """Kill what still runs as the leased uid; if something survives, retire that uid (its
        lease stays held, so no grader on this machine uses it again) and lease another."""
        while not kill_processes_of(self.uid, patience_s=2.0):
            self.uid_notes.append(f"processes of sandbox uid {self.uid} survived SIGKILL; that uid was retired")
            warnings.warn(self.uid_notes[-1], RuntimeWarning, stacklevel=2)
            self._retired_leases.append((self.uid, self._lease_fd))
            self.uid, self._lease_fd = lease_sandbox_uid()
            self.leased_uids.append(self.uid)

    def spawn(self, *, device: str, limits: Limits, files: dict[str, bytes] | None = None, **request_fields) -> BoxClient:
        """A new sandbox. `files` (relative name -> bytes) are put in its /submission before it
        drops privileges; `request_fields` go into the spawn request unchanged (kernel.py reads them)."""
        from autograder.sandbox.grader.box_client import BoxClient  # imports torch: after the zygote was started

        # In a PID namespace a box is over, with every process in it, once its init has exited
        # (BoxClient.kill sees that through the pidfd); /proc is scanned (~5 ms) only when some
        # earlier box was not seen to end, or without namespaces.
        if self.uid is not None and (not self.pid_namespace or not all(box.box_ended for box in self._boxes)):
            self._ensure_uid_is_clean()
        self._boxes = []
        self._spawned += 1
        # Without a private root the submission needs a folder on the host (removed by BoxClient.kill).
        workdir = None if self.pid_namespace else tempfile.mkdtemp(prefix="submission-")
        cgroup = BoxCgroup.create(f"box-{os.getpid()}-{self.uid}-{self._spawned}",
                                  memory_bytes=limits.rlimits(device)["memory_bytes"], processes=limits.processes + 8) \
            if self.use_cgroup else None
        files_fd = to_memfd(files) if files else None
        try:
            protocol.send_message(self.control, {
                **request_fields, "op": Op.SPAWN, "workdir": workdir, "uid": self.uid, "limits": limits.rlimits(device),
                "cgroup": cgroup.path if cgroup else None, "files": files_fd is not None,
                "pid_namespace": self.pid_namespace,
            })
            if files_fd is not None:
                socket.send_fds(self.control, [b"F"], [files_fd])
            payload, fds, _, _ = socket.recv_fds(self.control, 4096, 2)
            if not fds:
                raise RuntimeError("the sandbox zygote did not hand over a sandbox")
            reply = json.loads(payload)
            pidfd = fds[1] if reply.get("pidfd") and len(fds) > 1 else None
            sandbox = BoxClient(socket.socket(fileno=fds[0]), reply["pid"], self.uid, workdir, device, limits,
                              pidfd=pidfd, cgroup=cgroup)
        except BaseException:  # nothing of a box that never started may stay on the host
            if workdir:
                remove_tree(workdir)
            if cgroup is not None:
                cgroup.kill()
                cgroup.remove()
            raise
        finally:
            if files_fd is not None:
                os.close(files_fd)
        sandbox.pid_namespace = self.pid_namespace and pidfd is not None
        self._boxes.append(sandbox)
        sandbox.isolation.setdefault("applied", [])
        if cgroup is not None:
            sandbox.isolation["applied"] += ["own cgroup (cgroup.kill)"] + cgroup.limits
        sandbox.isolation["uid"] = self.uid
        if self.uid_notes:
            sandbox.isolation["notes"] = list(self.uid_notes)
        return sandbox

    def close(self) -> None:
        self.control.close()  # the zygote ends its boxes and exits when its control socket closes
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        elif self._pidfd is not None and not select.select([self._pidfd], [], [], 5)[0]:
            try:  # forked by a server, which reaps it; the pidfd still names it
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            select.select([self._pidfd], [], [], 5)
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        if self.uid is not None:
            kill_all_of_uid(self.uid)
            os.close(self._lease_fd)
            self.uid = None
        for uid, fd in self._retired_leases:  # a last try; the lease ends with this grader anyway
            kill_all_of_uid(uid)
            os.close(fd)
        self._retired_leases = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _start_zygote_interpreter(*args: str) -> tuple[subprocess.Popen, socket.socket]:
    """`python -m autograder.sandbox.zygote.main FD [args]` with only `_PASSED_ENV` of this process's
    environment; returns the process and this side's control socket."""
    ours, theirs = socket.socketpair()
    package_parent = str(Path(__file__).resolve().parents[2])
    env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
    env.update(MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", PYTHONPATH=package_parent)
    process = subprocess.Popen(
        [sys.executable, "-m", "autograder.sandbox.zygote.main", str(theirs.fileno()), *args],
        pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL,
        cwd=tempfile.gettempdir(),
    )
    theirs.close()
    return process, ours


class ZygoteServer:
    """One warm zygote interpreter that forks ready zygotes on request (zygote.py, "fork-server"):
    a batch of N workers imports torch for its zygotes once, not N times, and a replaced
    worker's zygote is ready in milliseconds. Like `Zygote`, creating one returns at once; a
    request sent before the server is warm waits in its socket. Its zygotes are what a freshly
    started zygote is: the server is never sent anything of a submission."""

    def __init__(self):
        self.process, self.control = _start_zygote_interpreter("fork-server")

    def new_zygote(self) -> socket.socket:
        """The control socket of a new zygote, for `Zygote(control=...)` (in this process or,
        passed along, in another). The zygote ends when every copy of this socket is closed."""
        ours, theirs = socket.socketpair()
        try:
            protocol.send_message(self.control, {"op": Op.FORK})
            socket.send_fds(self.control, [b"Z"], [theirs.fileno()])
        finally:
            theirs.close()
        return ours

    def close(self) -> None:
        """Stop forking, at once (a server still importing torch is not waited for); zygotes
        already forked live on until their own control sockets close."""
        self.control.close()
        if self.process.poll() is None:
            self.process.kill()  # it holds nothing but its warm interpreter
            self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def kill_all_of_uid(uid: int) -> None:
    """SIGKILL every process of `uid`, double-forked or not (the grader runs as root)."""
    kill_processes_of(uid)
