"""Per-submission limits: plain settings, importable without torch (the batch's parent needs
them and never imports torch)."""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class Limits:
    """Per-submission limits. Times in seconds, sizes in bytes."""

    cell_timeout_s: float = 20.0  # nbgrader's cell timeout, per cell
    execute_timeout_s: float = 120.0  # the whole notebook, wall clock
    probe_timeout_s: float = 10.0  # one check's call into student code
    cpu_seconds: int = 300
    memory_bytes: int = 6 * 1024**3  # address space; torch alone reserves about 1.5 GB of it
    file_bytes: int = 64 * 1024**2
    open_files: int = 256
    processes: int = 64

    def rlimits(self, device: str) -> dict:
        return {
            "cpu_seconds": self.cpu_seconds,
            # CUDA maps tens of GB of address space; an address-space cap would break it.
            "memory_bytes": None if device.startswith("cuda") else self.memory_bytes,
            "file_bytes": self.file_bytes,
            "open_files": self.open_files,
            "processes": self.processes if os.geteuid() == 0 else None,
        }
