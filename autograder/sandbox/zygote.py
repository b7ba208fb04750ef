"""The warm parent of every sandbox: a fresh interpreter that imports torch, matplotlib and the
sandbox code once, holds no secrets (no reference, no checks, no gradebook), and forks one
sandbox per submission on request. Forking from it costs milliseconds instead of the seconds a
new interpreter with torch costs.

Run by the grader as `python -m autograder.sandbox.zygote FD`, FD being its end of a socket
pair; each spawned sandbox's socket goes back to the grader over it with SCM_RIGHTS. On a GPU it
must not initialise CUDA: each sandbox initialises its own after the fork.
"""
from __future__ import annotations

import gc
import json
import os
import signal
import socket
import sys

os.environ["MPLBACKEND"] = "Agg"

import matplotlib.pyplot  # noqa: E402,F401  warm import, shared by every fork
import numpy  # noqa: E402,F401
import torch  # noqa: E402,F401

from autograder.sandbox import kernel, protocol  # noqa: E402


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


def main(control_fd: int) -> None:
    _warm_up_matplotlib()
    gc.freeze()  # forks then share these objects' pages instead of copying them on the first collection
    control = socket.socket(fileno=control_fd)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # sandboxes are reaped automatically
    protocol.send_message(control, {"event": "ready", "pid": os.getpid()})
    while True:
        try:
            request = protocol.recv_message(control)
        except (EOFError, OSError):
            os._exit(0)
        if request.get("op") != "spawn":
            continue
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            control.close()
            ours.close()
            kernel.serve(theirs, request)
        theirs.close()
        socket.send_fds(control, [json.dumps({"event": "spawned", "pid": pid}).encode()], [ours.fileno()])
        ours.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
