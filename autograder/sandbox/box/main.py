"""The sandbox process: confines itself, executes the notebook's cells, then answers probes.

It is forked by the zygote and talks to the grader over one socket. A spawn request with a
`room` field makes it a clean room instead (clean_room.py): sealed, it runs only the notebook's
definitions and answers one check's probes, or, as a template (room_template.py), forks a fresh
child holding the definitions for each check.

The probes this box answers are the checks on the notebook's own state, which only flag a
disagreement with the clean rooms (pipeline.py): they run in this process, after the notebook,
as nbgrader's hidden tests run in the notebook's kernel. A step that hangs is stopped at its
limit; one that ends the box leaves the later checks of this pass without evidence ("sandbox
died", never a flag and never a score). A fork for them (a probe worker, until 2026-12-08) cost
about three times what the probes themselves cost: it copied the executed notebook's page tables.
"""
from __future__ import annotations

import os
import resource
import signal
import socket

from autograder.probes.pytorch_slope import STEP_FUNCTIONS
from autograder.sandbox.box import clean_room, room_template
from autograder.sandbox.box.cells import execute_cells
from autograder.sandbox.box.confine import confine
from autograder.sandbox.box.probe_runner import run_probe
from autograder.sandbox.shared import protocol
from autograder.sandbox.shared.clocks import wall_factor
from autograder.sandbox.shared.messages import Event, Op
from autograder.sandbox.shared.processes import kill_processes_of


def _isolate_fds(sock: socket.socket) -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    keep = sock.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def _sweep_strays(uid: int | None) -> None:
    """Kill what the notebook left running under this sandbox's uid (a fork bomb's survivors,
    background workers) and reap our own exited children, so that they hold neither the process
    limit nor the CPU while the checks run. Only when the sandbox runs as its own uid."""
    if uid is None or os.getuid() != uid:
        return
    kill_processes_of(uid, spare={os.getpid()}, patience_s=2.0)
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def _probe(namespace: dict, request: dict) -> dict:
    return run_probe(namespace, request["probe"], request["inputs"], request["device"], float(request["timeout_s"]),
                     wall_factor(request))


def refuse_to_start(sock: socket.socket, reason: str) -> None:
    """Tell the grader this box cannot run at the level it was asked for, and end (never
    returns): a box never runs student code with less confinement than the run's level."""
    try:
        protocol.send_message(sock, {"event": Event.READY, "isolation": {"failed": reason[:180]}, "pid": os.getpid()})
    finally:
        os._exit(1)


def serve(sock: socket.socket, request: dict) -> None:
    """Entry point of the forked sandbox process; never returns."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _isolate_fds(sock)
        try:
            isolation = confine(request)
        except OSError as error:
            refuse_to_start(sock, f"it could not be confined ({error})")
        if request.get("room") is not None:
            clean_room.seal()
            if request["room"].get("template"):  # whether it can be one here: the grader falls back if not
                isolation = {**isolation, "room_template": room_template.safe_here()}
            protocol.send_message(sock, {"event": Event.READY, "isolation": isolation, "pid": os.getpid()})
            if request["room"].get("template"):
                room_template.serve_template(sock, request["room"], isolation)
            else:
                clean_room.serve_room(sock, request["room"])
            os._exit(0)
        protocol.send_message(sock, {"event": Event.READY, "isolation": isolation, "pid": os.getpid()})
        namespace: dict = {}
        me = os.getpid()
        while True:
            message = protocol.recv_message(sock)
            if os.getpid() != me:  # a process the student's code forked must never answer the grader
                os._exit(0)
            if message["op"] == Op.EXECUTE:
                # The notebook's budget is its CPU time; the grader's own deadline sits above its wall ceiling.
                budget = message.get("execute_timeout_s")
                cells = execute_cells(message["cells"], namespace, float(message["cell_timeout_s"]),
                                      float(budget) if budget else None, wall_factor(message))
                for result in cells:
                    if os.getpid() != me:
                        os._exit(0)
                    protocol.send_message(sock, {"event": Event.CELL, **result})
                _sweep_strays(request.get("uid"))
                defined = [name for name in STEP_FUNCTIONS if callable(namespace.get(name))]
                protocol.send_message(sock, {"event": Event.EXECUTED, "defined": defined})
            elif message["op"] == Op.PROBE:
                _sweep_strays(request.get("uid"))
                reply = _probe(namespace, message)
                if os.getpid() != me:  # a fork made by the student's step returned here: it must not answer
                    os._exit(0)
                protocol.send_message(sock, {"event": Event.PROBE, **reply})
            else:
                break
    except BaseException:
        pass
    os._exit(0)
