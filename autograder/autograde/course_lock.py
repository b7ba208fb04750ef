"""One `autograde` at a time per course: two runs on one course would interleave their records,
their gradebook writes and their outputs.

The lock is an exclusive `flock` on `COURSE/.autograde.lock`, held for the whole run. The
kernel releases it when the run ends however it ends (SIGKILL and power cuts included), so a
lock is never stale; the file's text only names the run that holds it (pid, host, start time),
for the message a second run prints.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from autograder.usage import UsageError

LOCK_FILE = ".autograde.lock"


class CourseBusy(UsageError):
    """Another run holds the course; the message names it and says what to do."""


class CourseLock:
    def __init__(self, course_dir: Path):
        self.path = Path(course_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> CourseLock:
        """Take the lock at once, or raise CourseBusy naming the run that holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise CourseBusy(f"another autograde is running on {self.path.parent} ({holder}); wait for it to "
                             "finish, or stop it, then run this again (a stopped run keeps every finished grade)") from None
        except BaseException:
            os.close(fd)
            raise
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> CourseLock:
        return self.acquire()

    def __exit__(self, *_) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    """The holder as a TA reads it: "pid 123 on host grader-1, started 2026-12-07 10:00:00 UTC"."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {int(holder['pid'])} on host {str(holder['host'])[:100]}, started {str(holder['started'])[:40]}"
    except (OSError, ValueError, KeyError, TypeError):
        return "its pid, host and start time could not be read"
