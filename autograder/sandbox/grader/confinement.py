"""Which confinement a host allows, chosen once at start-up: always the strongest available.

The zygote probes what it may do (zygote/host.py) and says so in its "ready" message; this
module turns that into a level, the settings every box of the run applies (box/confine.py), and
the refusal when no level can protect the course. Levels, strongest first:

  namespaces+uid  root, or root without CAP_SYS_ADMIN inside a user namespace that maps the
                  sandbox uids: each box its own PID, mount, network, IPC and UTS namespaces, a
                  private read-only root, and a sandbox uid of its own
  namespaces      an ordinary account (a TA's) where unprivileged user namespaces are allowed,
                  as bubblewrap does: the same namespaces and private root, the grader's uid
  landlock+uid    root where namespaces are refused (Docker's default profile): a sandbox uid,
                  and Landlock keeps files to the Python installation, system folders and the
                  box's own folder
  landlock        an ordinary account without user namespaces: Landlock as above, and (ABI 6+)
                  no signal and no abstract socket reaching any process outside the box
  unconfined      none of those: refused unless `--unconfined`

Every level also gets the seccomp filter, no_new_privs, every capability dropped, rlimits and
Landlock where the kernel has it (defence in depth). What a level must guarantee, and the tests
that show it in each mode this machine can produce, are in docs/isolation.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from autograder.model.errors import ExplainedError

# Landlock ABI 6 (Linux 6.12) scopes signals: below it, a box running as the grader's own uid
# without a PID namespace could kill(-1) every process of the account.
LANDLOCK_SIGNAL_SCOPE_ABI = 6
UNCONFINED_FLAG = "--unconfined"


class Level(StrEnum):
    NAMESPACES_UID = "namespaces+uid"
    NAMESPACES = "namespaces"
    LANDLOCK_UID = "landlock+uid"
    LANDLOCK = "landlock"
    UNCONFINED = "unconfined"


WHAT_IT_STOPS = {
    Level.NAMESPACES_UID: "own PID, mount, network, IPC and UTS namespaces; private read-only root; sandbox uid",
    Level.NAMESPACES: "own PID, mount, network, IPC and UTS namespaces (in a user namespace); private read-only root",
    Level.LANDLOCK_UID: "Landlock file allow-list; sandbox uid; no sockets or System V IPC (seccomp)",
    Level.LANDLOCK: "Landlock file allow-list and signal scoping; no sockets or System V IPC (seccomp)",
    Level.UNCONFINED: "nothing keeps a submission from the course's files or your other processes",
}


class ConfinementRefused(ExplainedError):
    """No level can protect the course on this host, and `--unconfined` was not given."""


@dataclass(frozen=True)
class Confinement:
    """The level of a run and what each of its boxes applies."""

    level: Level
    landlock_abi: int = 0
    why_not_stronger: str = ""  # what the host refused, for the report

    @property
    def namespaces(self) -> bool:
        return self.level in (Level.NAMESPACES_UID, Level.NAMESPACES)

    @property
    def sandbox_uid(self) -> bool:
        return self.level in (Level.NAMESPACES_UID, Level.LANDLOCK_UID)

    def box_settings(self) -> dict:
        """The `confinement` field of every spawn request (messages.SpawnRequest)."""
        return {"level": str(self.level), "private_root": self.namespaces, "landlock": self.landlock_abi >= 1,
                "ipc_namespace": self.namespaces, "network_namespace": self.namespaces}

    def describe(self) -> str:
        extra = f"; Landlock ABI {self.landlock_abi}" if self.landlock_abi and self.level != Level.UNCONFINED else ""
        return f"{self.level} ({WHAT_IT_STOPS[self.level]}{extra})"

    def stamp(self) -> dict:
        """What every record and report keeps of it."""
        return {"level": str(self.level), "landlock_abi": self.landlock_abi, "why_not_stronger": self.why_not_stronger}


def describe_stamp(stamp: dict) -> str:
    """A stored `Confinement.stamp()` in words, as `Confinement.describe` puts it."""
    try:
        level = Level(stamp.get("level"))
    except ValueError:
        return str(stamp.get("level"))[:40]
    return Confinement(level, int(stamp.get("landlock_abi") or 0)).describe()


def choose(host: dict) -> Confinement:
    """The strongest level `host` (the zygote's probe, zygote/host.py) allows."""
    abi = int(host.get("landlock_abi") or 0)
    namespaces, uids = bool(host.get("namespaces")), bool(host.get("sandbox_uids"))
    refused = "; ".join(str(r) for r in host.get("refused", []) if r)
    if namespaces and uids:
        level = Level.NAMESPACES_UID
    elif namespaces:
        level = Level.NAMESPACES
    elif uids and abi >= 1:
        level = Level.LANDLOCK_UID
    elif abi >= LANDLOCK_SIGNAL_SCOPE_ABI:
        level = Level.LANDLOCK
    else:
        level = Level.UNCONFINED
    return Confinement(level, abi, refused)


def refusal(confinement: Confinement) -> str:
    """Why grading is refused here, and what to do instead."""
    abi = confinement.landlock_abi
    landlock = (f"Landlock ABI {abi} (ABI {LANDLOCK_SIGNAL_SCOPE_ABI}, Linux 6.12+, is needed to keep signals in)"
                if abi else "no Landlock")
    return (f"this host lets the grader confine submissions at no level that keeps them from reading the reference, "
            f"the checks and other students' work, or from signalling your other processes ({confinement.why_not_stronger or 'no namespaces'}; "
            f"{landlock}). Grade as root, or allow unprivileged user namespaces (sysctl user.max_user_namespaces, "
            f"kernel.unprivileged_userns_clone or kernel.apparmor_restrict_unprivileged_userns), or use a kernel with "
            f"Landlock ABI {LANDLOCK_SIGNAL_SCOPE_ABI}; or pass {UNCONFINED_FLAG} to grade anyway, which marks every result as unconfined")


def check_allowed(confinement: Confinement, allow_unconfined: bool) -> None:
    if confinement.level == Level.UNCONFINED and not allow_unconfined:
        raise ConfinementRefused(refusal(confinement))
