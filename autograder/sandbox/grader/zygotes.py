"""Starting the zygote (the warm parent of every box) and asking it for a box per submission;
leasing the sandbox uid its boxes run as (grader/leases.py); choosing the run's confinement
level from what the zygote found the host allows (grader/confinement.py).

Every zygote and zygote server is started as `python -I -c ...` from `/`: isolated from the
working folder, the user site and PYTHON* variables, so nothing anyone (a box in a container
whose /tmp it can write, another user of the host) puts in a folder a box can write is ever
imported by a process of the grader. Only allow-listed environment variables reach it.
"""
from __future__ import annotations

import contextlib
import json
import os
import pwd
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.sandbox.grader import confinement as confinement_levels
from autograder.sandbox.grader.cgroups import BoxCgroup, cgroups_worth_it
from autograder.sandbox.grader.confinement import Confinement
from autograder.sandbox.grader.leases import lease_sandbox_uid, sandbox_uids
from autograder.sandbox.grader.limits import STARTUP_TIMEOUT_S, ZYGOTE_START_S, Limits
from autograder.sandbox.grader.submitted_files import remove_tree, to_memfd
from autograder.sandbox.shared import protocol
from autograder.sandbox.shared.messages import Event, Op
from autograder.sandbox.shared.processes import children_of, is_stopped, kill_processes_of

if TYPE_CHECKING:
    from autograder.sandbox.grader.box_client import BoxClient

# The kit's own folder: never visible to a box, whatever its level (box/confine.import_dirs).
KIT_ROOT = Path(__file__).resolve().parents[3]
# A weaker level than the host allows, for tests and for comparing levels on one machine.
MAX_LEVEL_VARIABLE = "AUTOGRADER_MAX_CONFINEMENT"
EXIT_RECORD_WAIT_S = 3.0
STOPPED_GRACE_S = 2.0  # a zygote (or its server) seen stopped this long while an answer is awaited has failed

# Only these variables reach student code; the grader's own environment may hold secrets.
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def weakest(level: confinement_levels.Level, ceiling: str | None) -> confinement_levels.Level:
    """`level`, or the weaker `ceiling` (a Level's name) when one is given."""
    order = list(confinement_levels.Level)
    if not ceiling:
        return level
    try:
        capped = confinement_levels.Level(ceiling)
    except ValueError:
        raise confinement_levels.ConfinementRefused(
            f"{MAX_LEVEL_VARIABLE}={ceiling!r} names no level: use one of {', '.join(order)}") from None
    return max(level, capped, key=order.index)


def run_confinement(host: dict, ceiling: str | None = None) -> Confinement:
    """The level a run gets on the host a zygote described (its "ready" message's `host`), no
    stronger than `ceiling` (default: MAX_LEVEL_VARIABLE)."""
    ceiling = os.environ.get(MAX_LEVEL_VARIABLE) if ceiling is None else ceiling
    chosen = confinement_levels.choose(host)
    if chosen.sandbox_uid and os.geteuid() != 0:  # only a root grader leases sandbox uids
        chosen = Confinement(confinement_levels.Level.NAMESPACES if chosen.namespaces else confinement_levels.Level.LANDLOCK,
                             chosen.landlock_abi, chosen.why_not_stronger)
    capped = weakest(chosen.level, ceiling)
    if capped != chosen.level:
        chosen = Confinement(capped, chosen.landlock_abi, f"capped at {capped} by {MAX_LEVEL_VARIABLE}")
    return chosen


class Zygote:
    """A warm interpreter with torch imported, forking boxes on request, one at a time.

    Each box is confined at the run's level (`confinement`, chosen from what the zygote found
    the host allows): its own PID namespace and private root where namespaces are allowed, its
    own cgroup where cgroup v2 is writable, the leased sandbox uid where the grader is root (so
    one grader process with several zygotes, or several graders on one machine, never share a
    sandbox uid), and Landlock and the seccomp filter everywhere. A uid is handed to a new box
    only once no process of it is alive.

    Creating one starts the zygote's interpreter and returns at once: it imports torch while the
    grader imports its own (this module imports no torch), and the first `spawn` waits for it.
    That overlap is most of what `grade` costs above the bare import of torch. A host where no
    level can protect the course refuses the first `spawn` (ConfinementRefused), unless
    `allow_unconfined`."""

    def __init__(self, control: socket.socket | None = None, *, allow_unconfined: bool = False,
                 protected: list[Path] = (), server_pid: int | None = None):
        """`control`: a zygote a `ZygoteServer` forked (`ZygoteServer.new_zygote`), `server_pid` that
        server's pid (a stopped server never forks it); by default a new interpreter is started.
        `protected`: folders no box may see besides the kit (the course, the notebook's folder)."""
        self.uids = sandbox_uids()
        self.uid, self._lease_fd = lease_sandbox_uid(self.uids) if os.geteuid() == 0 else (None, None)
        self._retired_leases: list[tuple[int, int]] = []  # (uid, lease fd): survivors could not be killed; never reused
        self.uid_notes: list[str] = []
        self.leased_uids: list[int] = [self.uid] if self.uid is not None else []
        self.allow_unconfined = allow_unconfined
        self.protected = [str(KIT_ROOT), *(str(Path(p).resolve()) for p in protected)]
        self._ceiling = os.environ.get(MAX_LEVEL_VARIABLE, "")
        self._spawned = 0
        self._boxes: list[BoxClient] = []  # spawned since the uid was last found clean
        self._box_folders: str | None = None  # the boxes' folders on the host, where they have no private root
        if self.uid is not None:  # leftovers of a grader that died holding this uid
            self._ensure_uid_is_clean()
        self.process, self.control = (None, control) if control is not None else _start_zygote_interpreter(self.uids)
        self._starter = server_pid if control is not None else self.process.pid  # who must be running for it to start
        self._pidfd: int | None = None  # the zygote's, from its "ready" message
        self._start_failed = False

    @cached_property
    def _ready(self) -> dict:
        """The zygote's "ready" message, waited for (at most ZYGOTE_START_S) when first needed."""
        try:
            self._await_answer(self._starter, ZYGOTE_START_S, "starting")
            ready = _receive_ready(self.control)
            if ready.get("pidfd"):
                _, fds, _, _ = socket.recv_fds(self.control, 1, 1)
                self._pidfd = fds[0] if fds else None
        except RuntimeError:
            self._start_failed = True  # alive() says so: a forked zygote has no process to poll
            raise
        return ready

    def alive(self) -> bool:
        """False once the zygote has exited or failed to start (one still starting counts as alive)."""
        if self._start_failed:
            return False
        if self.process is not None:
            return self.process.poll() is None
        return self._pidfd is None or not select.select([self._pidfd], [], [], 0)[0]

    @cached_property
    def confinement(self) -> Confinement:
        """The run's level, from what the zygote found (waits for its "ready")."""
        return run_confinement(self._ready.get("host") or {}, self._ceiling)

    @cached_property
    def pid_namespace(self) -> bool:
        """Whether boxes get their own PID namespace here."""
        return self.confinement.namespaces

    @cached_property
    def use_cgroup(self) -> bool:
        # Joining a cgroup costs 5 to 30 ms a box (the kernel synchronises RCU on migration):
        # worth it for memory and pids caps, or for cgroup.kill where no PID namespace ends the box.
        return cgroups_worth_it(self.pid_namespace)

    @property
    def box_uid(self) -> int | None:
        """The uid boxes run as, where the level has a sandbox uid."""
        return self.uid if self.confinement.sandbox_uid else None

    def _ensure_uid_is_clean(self) -> None:
        """Kill what still runs as the leased uid; if something survives, retire that uid (its
        lease stays held, so no grader on this machine uses it again) and lease another."""
        while not kill_processes_of(self.uid, patience_s=2.0):
            self.uid_notes.append(f"processes of sandbox uid {self.uid} survived SIGKILL; that uid was retired")
            warnings.warn(self.uid_notes[-1], RuntimeWarning, stacklevel=2)
            self._retired_leases.append((self.uid, self._lease_fd))
            self.uid, self._lease_fd = lease_sandbox_uid(self.uids, skip={uid for uid, _ in self._retired_leases})
            self.leased_uids.append(self.uid)

    def _box_folder(self) -> str:
        """A new folder for one box on the host (levels without a private root), inside this
        zygote's own folder (0711: the sandbox uid may enter it, not list it)."""
        if self._box_folders is None:
            self._box_folders = tempfile.mkdtemp(prefix="autograder-boxes-")
            os.chmod(self._box_folders, 0o711)
        return tempfile.mkdtemp(prefix="box-", dir=self._box_folders)

    def exit_record(self, handle: int) -> dict:
        """How the box the zygote gave as `handle` ended (its first process's exit code or
        signal, CPU time and peak memory), or {} if the zygote cannot say."""
        try:
            protocol.send_message(self.control, {"op": Op.EXIT_RECORD, "pid": handle},
                                  deadline=time.monotonic() + EXIT_RECORD_WAIT_S)
            reply = protocol.recv_message(self.control, deadline=time.monotonic() + EXIT_RECORD_WAIT_S, max_bytes=4096)
        except (OSError, EOFError, TimeoutError, protocol.ProtocolError):
            return {}
        return reply if reply.get("event") == Event.EXIT_RECORD and reply.get("exited") else {}

    def spawn(self, *, device: str, limits: Limits, files: dict[str, bytes] | None = None, **request_fields) -> BoxClient:
        """A new box. `files` (relative name -> bytes) are put in its /submission before it drops
        privileges; `request_fields` go into the spawn request unchanged (box/main.py reads them)."""
        from autograder.sandbox.grader.box_client import BoxClient  # imports torch: after the zygote was started

        confinement_levels.check_allowed(self.confinement, self.allow_unconfined)
        uid = self.box_uid
        # In a PID namespace a box is over, with every process in it, once its init has exited
        # (BoxClient.kill sees that through the pidfd); /proc is scanned (~5 ms) only when some
        # earlier box was not seen to end, or without namespaces.
        if uid is not None and (not self.pid_namespace or not all(box.box_ended for box in self._boxes)):
            self._ensure_uid_is_clean()
            uid = self.box_uid
        self._boxes = []
        self._spawned += 1
        # Without a private root the submission needs a folder on the host (removed by BoxClient.kill).
        workdir = None if self.pid_namespace else self._box_folder()
        cgroup = BoxCgroup.create(f"box-{os.getpid()}-{uid}-{self._spawned}",
                                  memory_bytes=limits.rlimits(device)["memory_bytes"], processes=limits.processes + 8) \
            if self.use_cgroup else None
        files_fd = to_memfd(files) if files else None
        settings = {**self.confinement.box_settings(), "protected": self.protected, "cuda": device.startswith("cuda")}
        try:
            protocol.send_message(self.control, {
                **request_fields, "op": Op.SPAWN, "workdir": workdir, "uid": uid, "limits": limits.rlimits(device),
                "cgroup": cgroup.path if cgroup else None, "files": files_fd is not None,
                "pid_namespace": self.pid_namespace, "confinement": settings,
            })
            if files_fd is not None:
                socket.send_fds(self.control, [b"F"], [files_fd])
            self._await_answer(self._ready.get("pid"), STARTUP_TIMEOUT_S, "starting a sandbox")
            payload, fds, _, _ = socket.recv_fds(self.control, 4096, 2)
            if not fds:
                raise RuntimeError("the sandbox zygote did not hand over a sandbox")
            reply = json.loads(payload)
            pidfd = fds[1] if reply.get("pidfd") and len(fds) > 1 else None
            handle = reply["pid"]
            sandbox = BoxClient(socket.socket(fileno=fds[0]), handle, uid, workdir, device, limits,
                                pidfd=pidfd, cgroup=cgroup, exit_record=lambda: self.exit_record(handle))
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
        sandbox.isolation["uid"] = uid
        sandbox.isolation["level"] = str(self.confinement.level)  # the grader's word, not the box's
        if self.uid_notes:
            sandbox.isolation["notes"] = list(self.uid_notes)
        return sandbox

    def _await_answer(self, pid: int | None, limit_s: float, doing: str) -> None:
        """await_readable on the control socket; a failure marks the zygote failed (alive() says so,
        so that the worker replaces it)."""
        try:
            await_readable(self.control, pid, limit_s, f"the sandbox zygote {{}} while {doing}")
        except RuntimeError:
            self._start_failed = True
            raise

    def _stopped(self) -> bool:
        """Whether the zygote is stopped (SIGSTOP): it then never sees its control socket close.
        (Its own pid, from its "ready", where it said: in a user namespace of its own the process
        started is only the zygote's waiting parent.)"""
        pid = self.__dict__.get("_ready", {}).get("pid") or (self.process.pid if self.process is not None else None)
        return isinstance(pid, int) and is_stopped(pid)

    def close(self) -> None:
        self.control.close()  # the zygote ends its boxes and exits when its control socket closes
        if self._stopped():  # one that is stopped is ended at once
            if self._pidfd is not None:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            if self.process is not None:
                self.process.kill()
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
        if self._box_folders is not None:
            remove_tree(self._box_folders)
            self._box_folders = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def await_readable(control: socket.socket, pid: int | None, limit_s: float, failure: str) -> None:
    """Until `control` has something to read: an answer, or its end. The process that must answer
    (`pid`: a zygote, or the server forking it) having been stopped (SIGSTOP) for
    STOPPED_GRACE_S, or `limit_s` passing, raises RuntimeError(`failure` with how it failed)."""
    deadline, stopped_since = time.monotonic() + limit_s, None
    while not select.select([control], [], [], 1.0)[0]:
        now = time.monotonic()
        stopped_since = (stopped_since or now) if isinstance(pid, int) and is_stopped(pid) else None
        if now >= deadline or (stopped_since is not None and now - stopped_since >= STOPPED_GRACE_S):
            raise RuntimeError(failure.format("was stopped" if stopped_since is not None else f"gave no answer within {limit_s:g} s"))


def _receive_ready(control: socket.socket) -> dict:
    """A zygote's (or server's) "ready", within ZYGOTE_START_S; RuntimeError if it did not come."""
    try:
        ready = protocol.recv_message(control, deadline=time.monotonic() + ZYGOTE_START_S)
        if ready.get("event") != Event.READY:
            raise protocol.ProtocolError(f"its first message was not \"ready\": {str(ready)[:200]}")
    except (OSError, EOFError, TimeoutError, protocol.ProtocolError) as error:
        raise RuntimeError(f"the sandbox zygote did not start ({error})") from None
    return ready


def matplotlib_folder_env(home: str | None = None, prefix: str = sys.prefix) -> dict[str, str]:
    """MPLCONFIGDIR for the zygote where the grading account has no home it can write (a service
    account, an account made without one): matplotlib would print a warning at every start and
    rebuild its font cache in a new temporary folder. It gets `<venv>/var/matplotlib` instead,
    which only the grading account writes (no box can write the installation). Nothing where the
    home serves, or where the venv cannot be written either (matplotlib's own fallback then)."""
    if home is None:  # as the zygote finds it: its environment has no HOME, so the account's entry
        try:
            home = pwd.getpwuid(os.getuid()).pw_dir
        except KeyError:
            home = ""
    if home and _can_create(os.path.join(home, ".cache")) and _can_create(os.path.join(home, ".config")):
        return {}
    folder = os.path.join(prefix, "var", "matplotlib")
    return {"MPLCONFIGDIR": folder} if _can_create(folder) else {}


def _can_create(path: str) -> bool:
    """Whether `path` is a folder this account may write, or could be made as one."""
    while not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


# The zygote's whole command: the kit's folder is put first on the search path explicitly (the
# zygote runs isolated, from /), then the zygote's main runs with its arguments.
_BOOTSTRAP = "import sys; sys.path.insert(0, sys.argv[1]); from autograder.sandbox.zygote.main import main; main(*sys.argv[2:])"


def _start_zygote_interpreter(uids: range, role: str = "zygote") -> tuple[subprocess.Popen, socket.socket]:
    """The zygote's interpreter, isolated (`-I`, from /), with only `_PASSED_ENV` of this
    process's environment; returns the process and this side's control socket."""
    ours, theirs = socket.socketpair()
    env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
    env.update(MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", **matplotlib_folder_env())
    user_namespaces = "0" if os.environ.get(MAX_LEVEL_VARIABLE, "").startswith("landlock") else "1"
    process = subprocess.Popen(
        [sys.executable, "-I", "-c", _BOOTSTRAP, str(KIT_ROOT), str(theirs.fileno()), role,
         f"{uids.start}-{uids.stop - 1}", user_namespaces],
        pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL, cwd="/",
        # Out of the terminal's process group: Ctrl-C is the grader's to handle (it ends the zygote
        # through its control socket); the zygote printed a KeyboardInterrupt traceback of its own.
        start_new_session=True,
    )
    theirs.close()
    return process, ours


class ZygoteServer:
    """One warm zygote interpreter that forks ready zygotes on request (zygote/main.py,
    "fork-server"): a batch of N workers imports torch for its zygotes once, not N times, and a
    replaced worker's zygote is ready in milliseconds. Like `Zygote`, creating one returns at
    once; a request sent before the server is warm waits in its socket. Its zygotes are what a
    freshly started zygote is: the server is never sent anything of a submission. Its "ready"
    says what the host allows, so a batch knows its confinement level before it grades anyone."""

    def __init__(self):
        self.process, self.control = _start_zygote_interpreter(sandbox_uids(), "fork-server")

    @cached_property
    def confinement(self) -> Confinement:
        """The run's level, from the server's "ready" (RuntimeError if it died or was stopped first)."""
        await_readable(self.control, self.process.pid, ZYGOTE_START_S, "the sandbox zygote server {} while starting")
        ready = _receive_ready(self.control)
        if ready.get("pidfd"):  # the server is this process's child: its pidfd is not needed
            _, fds, _, _ = socket.recv_fds(self.control, 1, 1)
            for fd in fds:
                os.close(fd)
        return run_confinement(ready.get("host") or {})

    def serving(self) -> bool:
        """Whether the server can still fork zygotes: it has not exited and is not stopped."""
        return self.process.poll() is None and not is_stopped(self.process.pid)

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

    def close(self, *, end_zygotes: bool = False) -> None:
        """Stop forking, at once (a server still importing torch is not waited for); zygotes
        already forked live on until their own control sockets close, unless `end_zygotes` (at the
        end of a run, when none is in use: one that was stopped, SIGSTOP, while its worker was
        killed would never see its socket close)."""
        self.control.close()
        if self.process.poll() is None:
            if end_zygotes:
                for zygote in children_of(self.process.pid):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(zygote, signal.SIGKILL)
            self.process.kill()  # it holds nothing but its warm interpreter
            self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def kill_all_of_uid(uid: int) -> None:
    """SIGKILL every process of `uid`, double-forked or not (the grader runs as root)."""
    kill_processes_of(uid)


def ready_or_replaced(process, make_another, attempts: int, on_replace=None):
    """`process` (a Zygote or a ZygoteServer) once its "ready" has come, which sets the run's
    confinement level; one that died or was stopped first (a grader fault) is closed and replaced
    by `make_another()`, up to `attempts` in all (`on_replace(error)` is told of each); then the
    last RuntimeError."""
    for attempt in range(1, attempts + 1):
        try:
            process.confinement  # noqa: B018 (waits for the "ready")
            return process
        except RuntimeError as error:
            process.close()
            if attempt == attempts:
                raise
            if on_replace is not None:
                on_replace(error)
            process = make_another()
    return process
