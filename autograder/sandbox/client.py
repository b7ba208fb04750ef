"""The grader's side of the sandbox: start the zygote, open a sandbox per submission, execute
the notebook's cells, send probes, and kill everything the submission started when done.

Every wait has a deadline enforced here, outside the student's processes; what comes back is
decoded as plain data only.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.sandbox import protocol
from autograder.sandbox.limits import Limits
from autograder.sandbox.processes import kill_processes_of

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


# Only these variables reach student code; the grader's own environment may hold secrets.
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


class Zygote:
    """A warm interpreter with torch imported, forking sandboxes on request, one at a time.

    Its sandboxes run as one leased uid (when the grader is root), so one grader process with
    several zygotes, or several graders on one machine, never share a sandbox uid."""

    def __init__(self):
        self.uid, self._lease_fd = lease_sandbox_uid() if os.geteuid() == 0 else (None, None)
        if self.uid is not None:  # leftovers of a grader that died holding this uid
            kill_all_of_uid(self.uid)
        ours, theirs = socket.socketpair()
        package_parent = str(Path(__file__).resolve().parents[2])
        env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
        env.update(MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", PYTHONPATH=package_parent)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "autograder.sandbox.zygote", str(theirs.fileno())],
            pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL,
            cwd=tempfile.gettempdir(),
        )
        theirs.close()
        self.control = ours
        self.control.settimeout(120)
        ready = protocol.recv_message(self.control)
        if ready.get("event") != "ready":
            raise RuntimeError("the sandbox zygote did not start")

    def spawn(self, *, device: str, limits: Limits) -> Sandbox:
        workdir = tempfile.mkdtemp(prefix="submission-")
        uid = self.uid
        protocol.send_message(self.control, {
            "op": "spawn", "workdir": workdir, "uid": uid, "limits": limits.rlimits(device),
        })
        payload, fds, _, _ = socket.recv_fds(self.control, 4096, 1)
        if not fds:
            raise RuntimeError("the sandbox zygote did not hand over a sandbox")
        pid = json.loads(payload)["pid"]
        return Sandbox(socket.socket(fileno=fds[0]), pid, uid, workdir, device, limits)

    def close(self) -> None:
        self.control.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.uid is not None:
            kill_all_of_uid(self.uid)
            os.close(self._lease_fd)
            self.uid = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Sandbox:
    """One submission's confined process."""

    def __init__(self, sock: socket.socket, pid: int, uid: int | None, workdir: str, device: str, limits: Limits):
        self.sock, self.pid, self.uid, self.workdir = sock, pid, uid, workdir
        self.device, self.limits = device, limits
        self.dead: str | None = None
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
        """Kill the sandbox and everything it started, then remove its working directory."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.uid is not None:
            kill_all_of_uid(self.uid)
        try:
            self.sock.close()
        except OSError:
            pass
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


def kill_all_of_uid(uid: int) -> None:
    """SIGKILL every process of `uid`, double-forked or not (the grader runs as root)."""
    kill_processes_of(uid)
