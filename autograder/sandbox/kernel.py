"""The sandbox process: confines itself, executes the notebook's cells, then answers probes.

It is forked by the zygote and talks to the grader over one socket. Each probe runs in a
further fork of the executed state, so a step that hangs, crashes or exits costs that probe
only; the fork's answer comes back through a pipe as JSON and is forwarded unchanged.
"""
from __future__ import annotations

import json
import os
import resource
import select
import signal
import socket
import time

import torch

from autograder.sandbox import protocol
from autograder.sandbox.cells import execute_cells
from autograder.sandbox.confine import confine
from autograder.sandbox.probe_runner import CRASHED, TIMEOUT, run_probe
from autograder.sandbox.probes import STEP_FUNCTIONS

PROBE_GRACE_S = 2.0


def _isolate_fds(sock: socket.socket) -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    keep = sock.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def _describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return f"killed by signal {signal.Signals(number).name}" if number in signal.Signals._value2member_map_ else f"killed by signal {number}"
    return f"exited with status {os.WEXITSTATUS(status)}"


def _probe_in_fork(namespace: dict, request: dict) -> dict:
    timeout_s = float(request["timeout_s"])
    args = (namespace, request["probe"], request["inputs"], request["device"], timeout_s)
    if request["device"].startswith("cuda") or torch.cuda.is_initialized():
        # On a GPU, probes run in this process: a fork cannot use CUDA once its parent touched
        # the driver, and forks that each start CUDA failed intermittently with "initialization
        # error" on an H200. The probe's own deadline still applies; a probe that crashes the
        # process costs the checks after it (the grader reports the sandbox as dead).
        return run_probe(*args)
    read_end, write_end = os.pipe()
    pid = _fork_with_retry()
    if pid is None:
        os.close(read_end)
        os.close(write_end)
        return {"status": CRASHED, "reason": "no process could be started for it (the notebook's processes used up the limit)"}
    if pid == 0:
        os.close(read_end)
        me = os.getpid()
        try:
            body = json.dumps(run_probe(*args)).encode()
        except BaseException as error:  # an observation that cannot be encoded
            body = json.dumps({"status": CRASHED, "reason": f"its answer could not be read: {error}"}).encode()
        _exit_if_forked_by_student(me)
        view = memoryview(body)
        while view:
            view = view[os.write(write_end, view):]
        os._exit(0)
    os.close(write_end)
    chunks, size, deadline = [], 0, time.monotonic() + timeout_s + PROBE_GRACE_S
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([read_end], [], [], left)[0]:
            timed_out = True
            break
        chunk = os.read(read_end, 1 << 20)
        if not chunk:
            break
        size += len(chunk)
        if size > protocol.MAX_MESSAGE_BYTES:
            break
        chunks.append(chunk)
    os.close(read_end)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if timed_out:
        return {"status": TIMEOUT, "error": {"type": "Timeout", "message": f"did not finish within {timeout_s:g} s", "traceback": ""}}
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return {"status": CRASHED, "reason": f"the process running it {_describe_exit(status)} before answering"}


def _fork_with_retry(tries: int = 20) -> int | None:
    """os.fork(), waiting a little while the process limit is still full of dying processes."""
    for _ in range(tries):
        try:
            return os.fork()
        except BlockingIOError:
            time.sleep(0.1)
    return None


def _sweep_strays(uid: int | None) -> None:
    """Kill every other process of this sandbox's uid (what the notebook left running: a fork
    bomb's survivors, background workers) and reap our own exited children, so that they hold
    neither the process limit nor the CPU while the checks run. Only when the sandbox runs as
    its own uid: otherwise kill(-1) would reach the grader's processes."""
    if uid is None or os.getuid() != uid:
        return
    for _ in range(50):
        try:
            os.kill(-1, signal.SIGKILL)  # every process of this uid except this one
        except ProcessLookupError:
            pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            return  # no children left; orphans of the uid are gone with kill(-1)
        time.sleep(0.01)


def _exit_if_forked_by_student(owner: int) -> None:
    """A process that student code forked returns from the same call as its parent; it must
    not go on to answer the grader (its messages would interleave with the real ones)."""
    if os.getpid() != owner:
        os._exit(0)


def serve(sock: socket.socket, request: dict) -> None:
    """Entry point of the forked sandbox process; never returns."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _isolate_fds(sock)
        isolation = confine(request["workdir"], request.get("uid"), request["limits"])
        protocol.send_message(sock, {"event": "ready", "isolation": isolation, "pid": os.getpid()})
        namespace: dict = {}
        me = os.getpid()
        while True:
            message = protocol.recv_message(sock)
            if message["op"] == "execute":
                for result in execute_cells(message["cells"], namespace, float(message["cell_timeout_s"])):
                    _exit_if_forked_by_student(me)
                    protocol.send_message(sock, {"event": "cell", **result})
                _sweep_strays(request.get("uid"))
                defined = [name for name in STEP_FUNCTIONS if callable(namespace.get(name))]
                protocol.send_message(sock, {"event": "executed", "defined": defined})
            elif message["op"] == "probe":
                _sweep_strays(request.get("uid"))
                protocol.send_message(sock, {"event": "probe", **_probe_in_fork(namespace, message)})
            else:
                break
    except BaseException:
        pass
    os._exit(0)
