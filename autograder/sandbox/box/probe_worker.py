"""A fork of the executed notebook that answers the checks' probes one after another.

Forking once per submission instead of once per probe saves ~15 ms a probe (a fork of a
process holding torch). A probe that hangs past its deadline, or kills its process, costs that
probe only: the worker is killed and the next probe gets a fresh fork of the notebook's state.
Probes share one worker as nbgrader's test cells share one kernel, so a step that mutates global
state affects later probes the same way on both paths.
"""
from __future__ import annotations

import gc
import json
import os
import signal
import time

from autograder.sandbox.box.probe_runner import CRASHED, TIMEOUT, run_probe
from autograder.sandbox.shared import protocol
from autograder.sandbox.shared.clocks import wall_ceiling_s, wall_factor

PROBE_GRACE_S = 2.0


def _read_frame(fd: int, deadline: float | None = None) -> bytes | None:
    """One frame from the other end of a pipe (protocol's framing); None if it closed or sent
    a frame over the cap (the worker is then replaced)."""
    try:
        return protocol.read_frame(fd, deadline=deadline)
    except (EOFError, protocol.ProtocolError):
        return None


def _describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return f"was killed by signal {number} ({signal.strsignal(number) or 'unknown signal'})"
    return f"exited with status {os.WEXITSTATUS(status)}"


def _fork_with_retry(tries: int = 20) -> int | None:
    """os.fork(), waiting a little while the process limit is still full of dying processes."""
    for _ in range(tries):
        try:
            return os.fork()
        except BlockingIOError:
            time.sleep(0.1)
    return None


class ProbeWorker:
    def __init__(self, namespace: dict):
        self.namespace = namespace
        self.pid: int | None = None
        self._requests = self._replies = -1
        self._answered_cpu_s = 0.0  # CPU time the current worker's answers reported, together
        self.last_cpu_s = 0.0

    def _start(self) -> bool:
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        gc.freeze()  # the fork need not copy every page for the collector to scan it
        pid = _fork_with_retry()
        if pid is None:
            for fd in (request_read, request_write, reply_read, reply_write):
                os.close(fd)
            return False
        if pid == 0:
            os.close(request_write)
            os.close(reply_read)
            self._serve(request_read, reply_write)
        os.close(request_read)
        os.close(reply_write)
        self.pid, self._requests, self._replies = pid, request_write, reply_read
        self._answered_cpu_s = 0.0
        return True

    def _serve(self, requests: int, replies: int) -> None:
        """The worker's loop; never returns."""
        me = os.getpid()
        while True:
            frame = _read_frame(requests)
            if frame is None:
                os._exit(0)
            request = json.loads(frame)
            try:
                body = json.dumps(run_probe(self.namespace, request["probe"], request["inputs"], request["device"],
                                            float(request["timeout_s"]), wall_factor(request))).encode()
            except BaseException as error:  # an observation that cannot be encoded
                body = json.dumps({"status": CRASHED, "reason": f"its answer could not be read: {error}"}).encode()
            if os.getpid() != me:  # a fork made by the student's step: it must not answer
                os._exit(0)
            protocol.write_frame(replies, body)

    def stop(self) -> int | None:
        """Kill the worker; returns its wait status (None if there was none). `self.last_cpu_s` is
        then the CPU time it used since its last answer (the kernel's account of the dead process)."""
        if self.pid is None:
            return None
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status, usage = os.wait4(self.pid, 0)
        self.last_cpu_s = max(0.0, usage.ru_utime + usage.ru_stime - self._answered_cpu_s)
        os.close(self._requests)
        os.close(self._replies)
        self.pid = None
        return status

    def ask(self, request: dict) -> dict:
        """Run one probe in the worker (starting one if needed); always returns a reply dict, with
        the CPU time the probe used as `cpu_s`."""
        if self.pid is None and not self._start():
            return {"status": CRASHED, "reason": "no process could be started for it (the notebook's processes used up the limit)",
                    "cpu_s": 0.0}
        timeout_s = float(request["timeout_s"])
        try:
            protocol.write_frame(self._requests, json.dumps(request).encode())
            # The probe ends itself at its CPU limit or wall ceiling; this is the backstop.
            frame = _read_frame(self._replies, time.monotonic() + wall_ceiling_s(timeout_s, wall_factor(request)) + PROBE_GRACE_S)
        except TimeoutError:
            self.stop()
            return {"status": TIMEOUT, "error": {"type": "Timeout", "message": f"did not finish within {timeout_s:g} s", "traceback": ""},
                    "cpu_s": self.last_cpu_s}
        except OSError:  # BrokenPipeError: the worker had died
            frame = None
        if frame is None:
            status = self.stop()
            how = _describe_exit(status) if status is not None else "ended"
            return {"status": CRASHED, "reason": f"the process running it {how} before answering", "cpu_s": self.last_cpu_s}
        try:
            reply = json.loads(frame)
        except ValueError:
            self.stop()
            return {"status": CRASHED, "reason": "its answer could not be read", "cpu_s": self.last_cpu_s}
        if isinstance(reply, dict) and isinstance(reply.get("cpu_s"), (int, float)):
            self._answered_cpu_s += reply["cpu_s"]
        return reply
