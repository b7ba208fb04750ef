"""The grader's side of one sandbox: execute the notebook's cells, send probes, and kill
everything the submission started when done. (spawn.py starts the zygote that forks sandboxes.)

Every wait has a deadline enforced here, outside the student's processes; what comes back is
decoded as plain data only.
"""
from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import time
from dataclasses import dataclass, field

from autograder.sandbox import protocol
from autograder.sandbox.limits import Limits
from autograder.sandbox.processes import kill_processes_of

BOX_EXIT_WAIT_S = 10  # the kernel reaps a PID namespace's processes before its init counts as exited


class SandboxDied(Exception):
    """The sandbox process ended or stopped answering; `reason` says how, for the student."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class ExecutionReport:
    cells: list[dict] = field(default_factory=list)
    defined: list[str] = field(default_factory=list)
    died: str | None = None  # why execution stopped early, if it did

    def failed_cells(self) -> list[dict]:
        return [c for c in self.cells if c.get("status") != "ok"]


class Sandbox:
    """One submission's confined process."""

    def __init__(self, sock: socket.socket, pid: int, uid: int | None, workdir: str | None, device: str, limits: Limits,
                 *, pidfd: int | None = None, cgroup=None):
        self.sock, self.pid, self.uid, self.workdir = sock, pid, uid, workdir
        self.pidfd, self.cgroup = pidfd, cgroup  # the box's first process (its PID namespace's init), its cgroup
        self.device, self.limits = device, limits
        self.dead: str | None = None
        self.killed = False
        ready = self._receive(30.0, "starting up")
        self.isolation = ready.get("isolation", {})

    def _receive(self, timeout_s: float, doing: str) -> dict:
        if self.dead:
            raise SandboxDied(self.dead)
        self.sock.settimeout(max(timeout_s, 0.01))
        try:
            return protocol.recv_message(self.sock)
        except TimeoutError:
            self._die(f"it stopped responding while {doing} (no answer within {timeout_s:g} s)")
        except (EOFError, OSError, protocol.ProtocolError) as error:
            detail = "" if isinstance(error, EOFError) else f" ({error})"
            self._die(f"its Python process ended while {doing}{detail}: "
                      "the code called exit, killed its process, or ran out of memory or CPU time")
        raise AssertionError("unreachable")

    def _die(self, reason: str) -> None:
        self.dead = reason
        self.kill()
        raise SandboxDied(reason)

    def execute(self, cells: list[str]) -> ExecutionReport:
        report = ExecutionReport()
        deadline = time.monotonic() + self.limits.execute_timeout_s
        try:
            protocol.send_message(self.sock, {"op": "execute", "cells": cells, "cell_timeout_s": self.limits.cell_timeout_s})
            while True:
                left = deadline - time.monotonic()
                index = len(report.cells)
                if left <= 0:
                    self._die(f"running the notebook took longer than {self.limits.execute_timeout_s:g} s (at cell {index + 1})")
                message = self._receive(min(left, self.limits.cell_timeout_s + 10), f"running cell {index + 1}")
                if message.get("event") == "cell":
                    report.cells.append(message)
                elif message.get("event") == "executed":
                    report.defined = [n for n in message.get("defined", []) if isinstance(n, str)]
                    return report
        except (SandboxDied, OSError) as error:
            report.died = getattr(error, "reason", str(error))
            return report

    def probe(self, name: str, inputs: dict, timeout_s: float | None = None) -> dict:
        """Run probe `name`; returns the reply with observations decoded (plain data + tensors)."""
        timeout_s = timeout_s or self.limits.probe_timeout_s
        try:
            protocol.send_message(self.sock, {
                "op": "probe", "probe": name, "inputs": protocol.encode(inputs),
                "device": self.device, "timeout_s": timeout_s,
            })
        except OSError:
            self._die("its process had ended before this check")
        reply = self._receive(timeout_s + 10, f"running the {name} check")
        return decode_reply(reply, self.device)

    def kill(self) -> None:
        """End the box and everything it started, then remove what it had on the host.

        In a PID namespace, SIGKILL to its init ends every process in it, and the pidfd turns
        readable only once the kernel has reaped them all. The cgroup and the uid sweep cover
        the platforms without namespaces (and are a cheap double check where they exist)."""
        if self.killed:
            return
        self.killed = True
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            poller = select.poll()
            poller.register(self.pidfd, select.POLLIN)
            poller.poll(BOX_EXIT_WAIT_S * 1000)
            os.close(self.pidfd)
            self.pidfd = None
        else:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.cgroup is not None:
            self.cgroup.kill()
            self.cgroup.remove()
        if self.uid is not None:
            kill_processes_of(self.uid)
        try:
            self.sock.close()
        except OSError:
            pass
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def close(self) -> None:
        self.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def decode_reply(reply: dict, device: str) -> dict:
    """Decode a probe reply's observations; anything malformed becomes a crash status."""
    if not isinstance(reply.get("status"), str):
        return {"status": "crashed", "reason": "the check's answer was malformed"}
    try:
        reply["observations"] = protocol.decode(reply.get("observations") or {}, device)
    except (protocol.ProtocolError, ValueError, TypeError) as error:
        return {"status": "crashed", "reason": f"the check's answer was malformed ({error})"}
    return reply
