"""A cgroup v2 per box, where the platform offers a writable v2 hierarchy (grader running as root).

It gives what rlimits cannot: `cgroup.kill` ends every process of the box in one write, and
`cgroup.events` says when none is left; with the `memory` and `pids` controllers enabled it also
caps the box's resident memory (memory.max) and its number of tasks (pids.max) as a whole, and
with `cpu` its share of the processors (cpu.max): without it, 64 spinning processes of one box
slowed another worker's boxes about 28x.

Machines differ: a pure v2 host has every controller at /sys/fs/cgroup; a hybrid host (this
project's) mounts v2 at /sys/fs/cgroup/unified with the controllers bound to v1, so only
cgroup.kill and cgroup.events work; containers often have none writable. `create` returns None
where no v2 hierarchy can be written, and `limits` says which caps were applied.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from autograder.sandbox.shared.processes import write_kernel_file

PARENT_NAME = "autograder-boxes"
WANTED_CONTROLLERS = ("memory", "pids")  # what makes a cgroup worth it where a PID namespace ends boxes
OPTIONAL_CONTROLLERS = ("cpu",)
BOX_CPUS = 2  # cpu.max: a box may use two processors' time at most, whatever it starts
CPU_PERIOD_US = 100_000


def v2_root() -> str | None:
    """The mount point of a cgroup v2 hierarchy this process may create cgroups in."""
    if os.geteuid() != 0:
        return None
    try:
        with open("/proc/self/mounts") as mounts:
            points = [line.split()[1] for line in mounts if line.split()[2:3] == ["cgroup2"]]
    except OSError:
        return None
    for point in points:
        if os.access(os.path.join(point, "cgroup.procs"), os.W_OK):
            return point
    return None


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def _enable_controllers(parent: str) -> set[str]:
    """Enable the wanted controllers for the children of `parent` (and of its own parent)."""
    available = set(_read(os.path.join(os.path.dirname(parent), "cgroup.controllers")).split())
    wanted = [c for c in (*WANTED_CONTROLLERS, *OPTIONAL_CONTROLLERS) if c in available]
    if wanted:
        write_kernel_file(os.path.join(os.path.dirname(parent), "cgroup.subtree_control"), " ".join(f"+{c}" for c in wanted))
        write_kernel_file(os.path.join(parent, "cgroup.subtree_control"), " ".join(f"+{c}" for c in wanted))
    return set(_read(os.path.join(parent, "cgroup.subtree_control")).split())


def cgroups_worth_it(pid_namespace: bool) -> bool:
    """Whether boxes should get a cgroup: where it caps memory and tasks, or where no PID
    namespace ends a box whole (then cgroup.kill does)."""
    root = v2_root()
    if root is None:
        return False
    return not pid_namespace or set(WANTED_CONTROLLERS) <= set(_read(os.path.join(root, "cgroup.controllers")).split())


@dataclass
class BoxCgroup:
    path: str
    limits: list[str] = field(default_factory=list)  # the caps applied, for the report

    @classmethod
    def create(cls, name: str, *, memory_bytes: int | None, processes: int | None) -> BoxCgroup | None:
        root = v2_root()
        if root is None:
            return None
        parent = os.path.join(root, PARENT_NAME)
        try:
            os.makedirs(parent, exist_ok=True)
            path = os.path.join(parent, name)
            os.mkdir(path)
        except OSError:
            return None
        box = cls(path)
        enabled = _enable_controllers(parent)
        if "memory" in enabled and memory_bytes and write_kernel_file(os.path.join(path, "memory.max"), str(memory_bytes)):
            write_kernel_file(os.path.join(path, "memory.swap.max"), "0")
            box.limits.append(f"memory.max {memory_bytes // 2**20} MiB for the whole box")
        if "pids" in enabled and processes and write_kernel_file(os.path.join(path, "pids.max"), str(processes)):
            box.limits.append(f"pids.max {processes} for the whole box")
        if "cpu" in enabled and write_kernel_file(os.path.join(path, "cpu.max"), f"{BOX_CPUS * CPU_PERIOD_US} {CPU_PERIOD_US}"):
            box.limits.append(f"cpu.max {BOX_CPUS} processors for the whole box")
        return box

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the box for exceeding memory.max."""
        for line in _read(os.path.join(self.path, "memory.events")).splitlines():
            name, _, count = line.partition(" ")
            if name == "oom_kill" and count.strip().isdigit():
                return int(count) > 0
        return False

    def populated(self) -> bool:
        return "populated 1" in _read(os.path.join(self.path, "cgroup.events"))

    def kill(self, timeout_s: float = 5.0) -> bool:
        """End every process in the cgroup; True once it is empty."""
        if not os.path.isdir(self.path):
            return True
        if not write_kernel_file(os.path.join(self.path, "cgroup.kill"), "1"):  # kernels before 5.14
            for pid in _read(os.path.join(self.path, "cgroup.procs")).split():
                try:
                    os.kill(int(pid), 9)
                except OSError:
                    pass
        deadline = time.monotonic() + timeout_s
        while self.populated() and time.monotonic() < deadline:
            time.sleep(0.002)
        return not self.populated()

    def remove(self) -> None:
        for _ in range(50):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:  # EBUSY for a moment after the last process exits
                time.sleep(0.01)
