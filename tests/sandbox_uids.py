"""What a finished batch left running under the sandbox uids it leased, looked at fairly on a busy
machine: uids are leased lowest first, so another grader (another test module, a TA's run) may
hold the same uid by the time a test looks. Each uid is leased here first, as a grader would,
waiting while someone else holds it; a process that runs as the uid while this holds its lease is
a leftover (of the batch under test, or of whoever held the uid before: a bug either way)."""
from __future__ import annotations

import contextlib
import os
import time

from autograder.sandbox.grader.leases import lease_sandbox_uid
from autograder.sandbox.shared.processes import live_processes_of


def processes_left_on(uids, *, wait_s: float = 300.0) -> dict[int, list[int]]:
    """uid -> pids of live processes of that uid, for the uids that have any."""
    left = {}
    for uid in uids:
        deadline = time.monotonic() + wait_s
        while True:
            with contextlib.suppress(RuntimeError):  # held by another grader right now
                _, lease = lease_sandbox_uid(range(uid, uid + 1))
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"sandbox uid {uid} stayed leased by another grader for {wait_s:.0f} s")
            time.sleep(0.05)
        try:
            if pids := live_processes_of(uid):
                left[uid] = pids
        finally:
            os.close(lease)
    return left
