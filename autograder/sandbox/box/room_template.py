"""A clean-room template: one box per submission executes the notebook's definitions once, then
forks a fresh child per check, which answers that check's probes (clean_room.serve_room).

Forking a child from a process that already holds the definitions costs a few milliseconds;
starting a box and replaying the definitions for every check cost about 60. The property the
rooms exist for is kept: each check sees a state no other check's code touched.
  - No student code runs in the template: the definitions are made by definitions.py, which runs
    none, and decorators it does not apply are applied inside a step's own call. Once they are
    made, the template ends every other process of its box and tells the grader, which looks at
    the box from outside (sandbox/grader/room_integrity.py) before it asks for the first room.
  - Before forking the next child, the template ends every other process of its box: it runs
    as the sandbox uid in the box's own PID namespace, where kill(-1, SIGKILL) reaches only the
    box's processes (the init is root's and out of reach). It then puts back the writable
    folders (/submission as the definitions left it, /tmp and /dev/shm empty) and removes the
    System V IPC objects of the box's IPC namespace, so neither a daemon nor a file or message
    left by one check's steps reaches the next.
  - Template and children are not dumpable (no ptrace, no /proc/<pid>/mem or fd of a sibling),
    and no child holds the template's socket to the grader: each child gets a socket pair of its
    own, sent by the grader with the request.
Only in a box with its own PID namespace and uid, and never on a GPU (a fork cannot use CUDA
once its parent touched the driver): the grader falls back to one box per check there
(sandbox/rooms.py).
"""
from __future__ import annotations

import ctypes
import gc
import os
import resource
import socket
import stat
import time

from autograder.sandbox.box import clean_room
from autograder.sandbox.box.leftovers import end_other_processes, safe_here
from autograder.sandbox.shared import protocol
from autograder.sandbox.shared.messages import Event

FORK_REQUEST = b"F"  # the grader's request for a child; the child's socket comes with it (SCM_RIGHTS)
SYSV_IPC_TABLES = ("msg", "sem", "shm")  # /proc/sysvipc/<table>: a header, then one object a row, its id second
IPC_RMID = 0


class Snapshot:
    """A folder's tree (paths, modes, contents) and how to tell whether anyone changed it: an
    inode's ctime changes on every write, chmod, rename or utime, and cannot be set back."""

    def __init__(self, root: str):
        self.root = root
        self.entries: dict[str, tuple] = {}  # relative path -> (mode, bytes or None for a folder)
        self.stamps = self._stamps()
        for relative, (mode, _, _, _) in self.stamps.items():
            if stat.S_ISREG(mode):
                with open(os.path.join(root, relative), "rb") as handle:
                    self.entries[relative] = (mode, handle.read())
            elif stat.S_ISDIR(mode):
                self.entries[relative] = (mode, None)

    def _stamps(self) -> dict[str, tuple]:
        stamps = {}
        for folder, dirs, files in os.walk(self.root):
            for name in [".", *dirs, *files] if folder == self.root else [*dirs, *files]:
                path = os.path.normpath(os.path.join(folder, name))
                info = os.lstat(path)
                stamps[os.path.relpath(path, self.root)] = (info.st_mode, info.st_ino, info.st_ctime_ns, info.st_size)
        return stamps

    def restore(self) -> None:
        try:
            if self._stamps() == self.stamps:
                return
        except OSError:
            pass
        os.chmod(self.root, stat.S_IRWXU)  # a step may have locked it
        _empty(self.root)
        for relative, (mode, content) in sorted(self.entries.items()):
            if relative == ".":
                continue
            path = os.path.join(self.root, relative)
            if content is None:
                os.makedirs(path, exist_ok=True)
            else:
                with open(path, "wb") as handle:
                    handle.write(content)
            os.chmod(path, stat.S_IMODE(mode))
        os.chmod(self.root, stat.S_IMODE(self.entries["."][0]))
        self.stamps = self._stamps()


def _empty(folder: str) -> None:
    """Remove what this uid can remove in `folder` (its own entries; a sticky /tmp keeps others')."""
    for entry in os.scandir(folder):
        try:
            if entry.is_dir(follow_symlinks=False):
                os.chmod(entry.path, 0o700)
                _empty(entry.path)
                os.rmdir(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def remove_ipc_objects() -> None:
    """Remove the System V message queues, semaphores and shared memory of this IPC namespace
    (the box's own): they outlive the processes that made them."""
    libc = ctypes.CDLL(None, use_errno=True)
    for table in SYSV_IPC_TABLES:
        try:
            with open(f"/proc/sysvipc/{table}") as listing:
                rows = listing.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            ident = int(row.split()[1])
            if table == "msg":
                libc.msgctl(ident, IPC_RMID, None)
            elif table == "sem":
                libc.semctl(ident, 0, IPC_RMID)
            else:
                libc.shmctl(ident, IPC_RMID, None)


def reset_box(snapshot: Snapshot) -> None:
    """Everything a previous check's steps could have left, gone."""
    if not end_other_processes():
        raise RuntimeError("processes of the box survived SIGKILL")
    remove_ipc_objects()
    for folder in clean_room.SCRATCH_FOLDERS:
        if os.path.isdir(folder) and os.path.realpath(folder) != snapshot.root:
            _empty(folder)
    snapshot.restore()


def _fork_with_retry(tries: int = 50) -> int:
    """os.fork(), waiting a little while the process limit still counts processes being reaped."""
    for _ in range(tries - 1):
        try:
            return os.fork()
        except BlockingIOError:
            time.sleep(0.02)
    return os.fork()


def serve_template(control: socket.socket, room_request: dict, isolation: dict) -> None:
    """The template's loop; returns when the grader closes `control` (or on a request it does
    not know)."""
    if not safe_here():
        return
    room = clean_room.make_definitions(room_request)
    snapshot = Snapshot(room.root)
    protocol.send_message(control, {"event": Event.DEFINED})
    # POSIX message queues outlive their processes and cannot be listed without mounting mqueue:
    # none may be made (a limit of 0 bytes refuses every mq_open(O_CREAT)).
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))
    gc.freeze()  # the children share these pages instead of copying them on their first collection
    while True:
        message, fds, _, _ = socket.recv_fds(control, len(FORK_REQUEST), 1)
        if message != FORK_REQUEST or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            return
        child_socket = socket.socket(fileno=fds[0])
        reset_box(snapshot)
        pid = _fork_with_retry()
        if pid == 0:
            try:
                control.close()
                os.setsid()  # as a room of its own: kill(0) from a step reaches its own processes only
                clean_room.seal()  # inherited, set again: a child is never dumpable
                protocol.send_message(child_socket, {"event": Event.READY, "isolation": isolation, "pid": os.getpid()})
                clean_room.serve_room(child_socket, room_request, room=room)
            finally:
                os._exit(0)
        child_socket.close()
