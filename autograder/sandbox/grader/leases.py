"""The sandbox uids boxes run as when the grader is root, and the leases that keep two graders
on one machine from ever sharing one.

The range is configurable (`AUTOGRADER_SANDBOX_UIDS=FIRST-LAST`, default 60600-61099), must lie
outside systemd's dynamic-user range (61184-65519, where systemd's DynamicUser services take their
uids) and the regular accounts' range's low end, and any uid of it that exists in the passwd
database is never used: killing "every process of the uid" must only ever hit this grader's own
boxes.

A lease is an exclusive lock on a file in a folder only root can write (`/run/autograder`),
opened without following links: a box (or a local user) that could write the lease folder could
otherwise plant links that make leases fail, or make root create files where it points.
"""
from __future__ import annotations

import fcntl
import os
import pwd
import stat
from pathlib import Path

from autograder.usage import UsageError

DEFAULT_UIDS = range(60600, 61100)
SYSTEMD_DYNAMIC_UIDS = range(61184, 65520)
LOWEST_UID = 1000  # below: system accounts
UIDS_VARIABLE = "AUTOGRADER_SANDBOX_UIDS"
LEASE_DIR = Path("/run/autograder")


def sandbox_uids(value: str | None = None) -> range:
    """The configured range ("FIRST-LAST"), checked; UsageError says what is wrong and what to do."""
    value = os.environ.get(UIDS_VARIABLE, "") if value is None else value
    if not value:
        return DEFAULT_UIDS
    first, dash, last = value.partition("-")
    try:
        uids = range(int(first), int(last) + 1) if dash else None
    except ValueError:
        uids = None
    if not uids:
        raise UsageError(f"{UIDS_VARIABLE}={value!r} is not a range of uids: write FIRST-LAST, e.g. 60600-61099")
    if uids.start < LOWEST_UID or uids.stop - 1 >= 2**31:
        raise UsageError(f"{UIDS_VARIABLE}={value}: sandbox uids must lie between {LOWEST_UID} and 2^31")
    if uids.start < SYSTEMD_DYNAMIC_UIDS.stop and SYSTEMD_DYNAMIC_UIDS.start < uids.stop:
        raise UsageError(f"{UIDS_VARIABLE}={value} overlaps systemd's dynamic users "
                         f"({SYSTEMD_DYNAMIC_UIDS.start}-{SYSTEMD_DYNAMIC_UIDS.stop - 1}): choose another range, e.g. 60600-61099")
    return uids


def _in_passwd(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


def lease_folder() -> Path:
    """The lease folder, made root's own and 0700 if missing; refused if it is a link or anyone
    else could write it."""
    try:
        os.mkdir(LEASE_DIR, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(LEASE_DIR)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise RuntimeError(f"{LEASE_DIR} must be a folder that only root can write (it is not): remove it and grade again")
    return LEASE_DIR


def lease_sandbox_uid(uids: range, skip: set[int] = frozenset()) -> tuple[int, int]:
    """An unprivileged uid of `uids` that no other grading process on this machine is using and
    that no account has, held by an exclusive lock until this process closes the returned fd (or
    dies)."""
    folder = os.open(lease_folder(), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for uid in uids:
            if uid in skip or _in_passwd(uid):
                continue
            try:
                fd = os.open(f"sandbox-{uid}.lock", os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=folder)
            except OSError:  # a link or anything else planted in its place: never followed, that uid skipped
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return uid, fd
            except BlockingIOError:
                os.close(fd)
    finally:
        os.close(folder)
    raise RuntimeError(f"all sandbox uids ({uids.start}-{uids.stop - 1}) are in use on this machine or taken by accounts: "
                       f"set {UIDS_VARIABLE}=FIRST-LAST to a free range")
