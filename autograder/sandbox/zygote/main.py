"""The warm parent of every sandbox: a fresh interpreter that imports torch, matplotlib and the
sandbox code once, holds no secrets (no reference, no checks, no gradebook), and forks one
sandbox per submission on request. Forking from it costs milliseconds instead of the seconds a
new interpreter with torch costs.

Run by the grader as `python -m autograder.sandbox.zygote.main FD`, FD being its end of a socket
pair. Each sandbox is a box (box.py): its own PID namespace where the platform allows it; the
box's socket and a pidfd on its first process go back to the grader with SCM_RIGHTS. The
submitted files come as a memfd holding a tar archive, so nothing of them touches the host's
disk. On a GPU the zygote must not initialise CUDA: each sandbox initialises its own after the
fork.

Run as `python -m autograder.sandbox.zygote.main FD fork-server`, it is a zygote server instead: it
warms up the same way, then only forks zygotes, one per request ({"op": "fork"} with the new
zygote's control socket passed along), so that a batch pays for torch in one zygote however
many workers it has. It never receives anything of a submission: each forked zygote holds
exactly what a freshly started one holds, and the boxes it forks are the same.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import socket
import sys

os.environ["MPLBACKEND"] = "Agg"

import matplotlib.pyplot  # noqa: E402,F401  warm import, shared by every fork
import numpy  # noqa: E402,F401
import torch  # noqa: E402,F401

from autograder.sandbox.box import main as box_main  # noqa: E402
from autograder.sandbox.shared import protocol  # noqa: E402
from autograder.sandbox.shared.messages import Event, Op  # noqa: E402
from autograder.sandbox.zygote import boxes, hugepages  # noqa: E402


def _warm_up_matplotlib() -> None:
    """Draw one labelled figure so fonts and text layout are loaded once here, not per fork
    (the first legend or tight_layout of a process costs about 0.4 s)."""
    figure, axes = matplotlib.pyplot.subplots()
    axes.plot([0, 1], [0, 1], "o-", label="warm-up")
    axes.set_title("warm-up")
    axes.legend()
    figure.tight_layout()
    figure.canvas.draw()
    matplotlib.pyplot.close(figure)


def _receive_announced_fd(control: socket.socket, announced: bool) -> int | None:
    """The descriptor sent right after a request that announces one (the memfd with the
    submitted files; a new zygote's control socket)."""
    if not announced:
        return None
    _, fds, _, _ = socket.recv_fds(control, 1, 1)
    return fds[0] if fds else None


# Modules the grader may ask the zygote to import once, before forking, when a submission will
# need them (sandbox/rooms.py): torch.optim's first step imports torch._dynamo, about 3.7 s that
# every clean room of the submission would pay again.
PRELOADABLE = frozenset({"torch._dynamo"})


def _preload(names) -> None:
    for name in names if isinstance(names, list) else ():
        if name in PRELOADABLE and name not in sys.modules:
            importlib.import_module(name)
            gc.freeze()
            hugepages.collapse_into_huge_pages()


def _warm_up() -> None:
    _warm_up_matplotlib()
    gc.freeze()  # forks then share these objects' pages instead of copying them on the first collection
    hugepages.collapse_into_huge_pages()  # a fork then copies ~360 page-table entries, not ~45,000


def _announce_ready(control: socket.socket, pid_namespace: bool) -> None:
    """The "ready" message, then a pidfd on this process (the grader watches the zygote through
    it: a forked zygote is not the grader's child)."""
    try:
        own_pidfd = os.pidfd_open(os.getpid())
    except (AttributeError, OSError):
        own_pidfd = None
    protocol.send_message(control, {"event": Event.READY, "pid": os.getpid(), "pid_namespace": pid_namespace,
                                    "pidfd": own_pidfd is not None})
    if own_pidfd is not None:
        socket.send_fds(control, [b"P"], [own_pidfd])
        os.close(own_pidfd)


def serve(control: socket.socket, pid_namespace: bool) -> None:
    """Fork one box per spawn request on `control` until it closes; never returns."""
    inits = boxes.Inits() if pid_namespace else None  # this zygote's own: its boxes end with it
    # Children are reaped by the kernel at once: a box's init exits only once every process of
    # its namespace is reaped, the kernel process (the zygote's child) included.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    live_boxes: list[int] = []  # pidfds of the boxes' first processes, ended when the zygote ends
    _announce_ready(control, inits is not None)
    while True:
        try:
            request = protocol.recv_message(control)
            files_fd = _receive_announced_fd(control, bool(request.get("files")))
        except (EOFError, OSError, protocol.ProtocolError):
            boxes.end_boxes(live_boxes)
            os._exit(0)
        if request.get("op") != Op.SPAWN:
            continue
        _preload(request.get("preload"))  # before the fork: every box of the submission shares it
        for fd in [fd for fd in live_boxes if boxes.ended(fd)]:
            live_boxes.remove(fd)
            os.close(fd)
        ours, theirs = socket.socketpair()

        def close_in_child(ours: socket.socket = ours) -> None:  # the zygote's ends are not the box's to hold
            control.close()
            ours.close()
            if inits is not None:
                os.close(inits.write_end)
                os.close(inits.read_end)
            for fd in live_boxes:  # no box may signal another's init
                os.close(fd)

        pid, pidfd = boxes.start(request, theirs, files_fd, inits=inits if request.get("pid_namespace", True) else None,
                               close_in_child=close_in_child, serve=box_main.serve)
        theirs.close()
        if files_fd is not None:
            os.close(files_fd)
        fds = [ours.fileno()] + ([pidfd] if pidfd is not None else [])
        socket.send_fds(control, [json.dumps({"event": Event.SPAWNED, "pid": pid, "pidfd": pidfd is not None}).encode()], fds)
        ours.close()
        if pidfd is not None:
            live_boxes.append(pidfd)


def serve_forks(control: socket.socket, pid_namespace: bool) -> None:
    """The zygote server: one forked zygote per {"op": "fork"} request, whose control socket
    comes with the request; ends when `control` closes. Its zygotes outlive it: each ends when
    its own control socket closes."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked zygotes are reaped by the kernel
    while True:
        try:
            request = protocol.recv_message(control)
            zygote_fd = _receive_announced_fd(control, request.get("op") == Op.FORK)
        except (EOFError, OSError, protocol.ProtocolError):
            os._exit(0)
        if zygote_fd is None:
            continue
        if os.fork() == 0:
            try:
                control.close()  # a zygote holds its own control socket, and nothing else of the server
                serve(socket.socket(fileno=zygote_fd), pid_namespace)
            finally:
                os._exit(1)
        os.close(zygote_fd)


def main(control_fd: int, role: str = "zygote") -> None:
    _warm_up()
    control = socket.socket(fileno=control_fd)
    pid_namespace = boxes.pid_namespace_available()
    (serve_forks if role == "fork-server" else serve)(control, pid_namespace)


if __name__ == "__main__":
    main(int(sys.argv[1]), *sys.argv[2:3])
