"""The warm parent of every box: a fresh interpreter that imports torch, matplotlib and the box's
code once, holds no secrets (no reference, no checks, no gradebook), and forks one box per
submission on request. Forking from it costs milliseconds instead of the seconds a new
interpreter with torch costs.

Started by the grader (grader/zygotes.py) as `python -I -c ...` from `/`: isolated from the
working folder, the user site and PYTHON* variables, so nothing a box (or anyone) writes in a
temporary folder is ever imported here. It first probes what the host allows (zygote/host.py;
that may move it into a user namespace of its own, which needs a single thread, so before torch
is imported), then warms up and says "ready" with what it found; the grader chooses the run's
confinement level from that (grader/confinement.py). Each box is started by zygote/boxes.py;
the box's socket and a pidfd on it go back to the grader with SCM_RIGHTS. The submitted files
come as a memfd holding a tar archive, so nothing of them touches the host's disk. On a GPU the
zygote must not initialise CUDA: each box initialises its own after the fork.

With the role `fork-server` it is a zygote server instead: it warms up the same way, then only
forks zygotes, one per request ({"op": "fork"} with the new zygote's control socket passed
along), so that a batch pays for torch in one zygote however many workers it has. It never
receives anything of a submission: each forked zygote holds exactly what a freshly started one
holds (in a user namespace of its own where the host gives one), and the boxes it forks are the
same.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import socket
import sys

from autograder.sandbox.shared import protocol
from autograder.sandbox.shared.messages import Event, Op
from autograder.sandbox.zygote import host as host_probe
from autograder.sandbox.zygote import user_namespace

# Modules the grader may ask the zygote to import once, before forking, when a submission will
# need them (grader/rooms.py): torch.optim's first step imports torch._dynamo, about 3.7 s that
# every clean room of the submission would pay again.
PRELOADABLE = frozenset({"torch._dynamo"})


def _warm_up() -> None:
    """Import what every box uses and draw one labelled figure, so fonts and text layout are
    loaded once here, not per fork (the first legend or tight_layout of a process costs about
    0.4 s); then freeze what every fork shares."""
    os.environ["MPLBACKEND"] = "Agg"
    import matplotlib.pyplot
    import numpy  # noqa: F401
    import torch  # noqa: F401

    import autograder.sandbox.box.main  # noqa: F401  the box's code, before any fork
    figure, axes = matplotlib.pyplot.subplots()
    axes.plot([0, 1], [0, 1], "o-", label="warm-up")
    axes.set_title("warm-up")
    axes.legend()
    figure.tight_layout()
    figure.canvas.draw()
    matplotlib.pyplot.close(figure)
    gc.freeze()  # forks then share these objects' pages instead of copying them on the first collection


def _receive_announced_fd(control: socket.socket, announced: bool) -> int | None:
    """The descriptor sent right after a request that announces one (the memfd with the
    submitted files; a new zygote's control socket)."""
    if not announced:
        return None
    _, fds, _, _ = socket.recv_fds(control, 1, 1)
    return fds[0] if fds else None


def _preload(names) -> None:
    for name in names if isinstance(names, list) else ():
        if name in PRELOADABLE and name not in sys.modules:
            importlib.import_module(name)
            gc.freeze()


def _announce_ready(control: socket.socket, host: dict) -> None:
    """The "ready" message with what the host allows, then a pidfd on this process (the grader
    watches the zygote through it: a forked zygote is not the grader's child)."""
    try:
        own_pidfd = os.pidfd_open(os.getpid())
    except (AttributeError, OSError):
        own_pidfd = None
    try:
        protocol.send_message(control, {"event": Event.READY, "pid": int(os.readlink("/proc/self")),
                                        "pid_namespace": bool(host["namespaces"]), "host": host,
                                        "pidfd": own_pidfd is not None})
        if own_pidfd is not None:
            socket.send_fds(control, [b"P"], [own_pidfd])
    except (BrokenPipeError, ConnectionResetError):  # the grader let this zygote go while it warmed up
        os._exit(0)
    if own_pidfd is not None:
        os.close(own_pidfd)


def serve(control: socket.socket, host: dict) -> None:
    """Fork one box per spawn request on `control` until it closes; never returns."""
    from autograder.sandbox.box import main as box_main
    from autograder.sandbox.zygote.boxes import Boxes

    boxes = Boxes(pid_namespaces=bool(host["namespaces"]))  # this zygote's own: its boxes end with it
    _announce_ready(control, host)
    while True:
        try:
            request = protocol.recv_message(control)
            files_fd = _receive_announced_fd(control, bool(request.get("files")))
        except (EOFError, OSError, protocol.ProtocolError):
            boxes.end_all()
            os._exit(0)
        if request.get("op") == Op.EXIT_RECORD:
            protocol.send_message(control, boxes.exit_record(int(request.get("pid") or 0)))
            continue
        if request.get("op") != Op.SPAWN:
            continue
        _preload(request.get("preload"))  # before the fork: every box of the submission shares it
        ours, theirs = socket.socketpair()

        def close_in_child(ours: socket.socket = ours) -> None:  # the zygote's ends are not the box's to hold
            control.close()
            ours.close()

        box = boxes.start(request, theirs, files_fd, close_in_child=close_in_child, serve=box_main.serve)
        theirs.close()
        if files_fd is not None:
            os.close(files_fd)
        sent = os.dup(box.pidfd) if box.pidfd is not None else None
        fds = [ours.fileno()] + ([sent] if sent is not None else [])
        socket.send_fds(control, [json.dumps({"event": Event.SPAWNED, "pid": box.handle,
                                                           "pidfd": sent is not None}).encode()], fds)
        ours.close()
        if sent is not None:
            os.close(sent)


def serve_forks(control: socket.socket, host: dict, sandbox_uids: range) -> None:
    """The zygote server: one forked zygote per {"op": "fork"} request, whose control socket
    comes with the request; ends when `control` closes. Its zygotes outlive it: each ends when
    its own control socket closes, and each has a user namespace of its own where the server
    had one, so that the process limit of one zygote's boxes counts no other zygote's."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked zygotes are reaped by the kernel
    _announce_ready(control, host)
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
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                control.close()  # a zygote holds its own control socket, and nothing else of the server
                if host["user_namespace"] and user_namespace.enter(sandbox_uids, close_in_waiter=(zygote_fd,)) is not None:
                    host = {**host, "refused": [*host["refused"], "no user namespace of its own for this zygote"]}
                serve(socket.socket(fileno=zygote_fd), host)
            finally:
                os._exit(1)
        os.close(zygote_fd)


# Python's own: it ignores both at start-up, and a box's Python would again.
_PYTHON_IGNORES = frozenset({signal.SIGPIPE, signal.SIGXFSZ})


def default_signals() -> None:
    """Default signal dispositions and no blocked signal, whatever the process that started this
    zygote had: an ignored signal and the blocked mask survive exec (a batch's worker ignores
    SIGINT and SIGTERM), and every box would inherit them: a box deaf to SIGTERM, and rooms that
    grader/room_integrity.py rightly finds ignoring signals."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    for number in signal.valid_signals():
        if number in _PYTHON_IGNORES or number in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            if signal.getsignal(number) == signal.SIG_IGN:
                signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    # Python installs its KeyboardInterrupt handler only where SIGINT was not ignored at start-up.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def main(control_fd: str, role: str = "zygote", sandbox_uids: str = "", allow_user_namespace: str = "1") -> None:
    """`sandbox_uids`: "FIRST-LAST", the uids boxes may run as (grader/leases.py)."""
    default_signals()
    first, _, last = sandbox_uids.partition("-")
    uids = range(int(first), int(last) + 1) if first and last else range(0)
    try:
        host = host_probe.probe(uids, enter_user_namespace=allow_user_namespace == "1",  # one thread still
                                close_in_waiter=(int(control_fd),))
    except host_probe.ProbeInterrupted as interrupted:  # no "ready": the grader starts another zygote
        print(f"autograder zygote: {interrupted}; ending before \"ready\"", file=sys.stderr, flush=True)
        os._exit(1)
    _warm_up()
    control = socket.socket(fileno=int(control_fd))
    if role == "fork-server":
        serve_forks(control, host, uids)
    else:
        serve(control, host)
