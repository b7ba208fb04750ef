"""Executing notebooks with nbclient, and the executed master for TAs.

`execute_master` runs the master top to bottom (hidden tests included, so the master's own
checks pass on its own solutions) with matplotlib's inline backend, so every plot is a PNG
output; `write_solution` saves it as solutions/pytorch_slope_solution.ipynb.

Determinism: nbclient records no timing (`record_timing=False`, so no `execution` metadata);
execution counts, the matplotlib PNGs and the printed numbers are the same on every run of the
same term in the same environment (CPU, same torch/matplotlib builds). Two things are not, and
`normalize` removes them: a memory address printed in a repr (`<MeanBackward0 object at
0x7f...>`, replaced by `0x...`), and how the kernel happened to split printed text into stream
messages (consecutive outputs of the same stream are merged, as nbconvert's coalesce_streams does).
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import nbformat

from autograder.assignment import ASSIGNMENT, KIT_ROOT

SOLUTION_NAME = f"{ASSIGNMENT}_solution.ipynb"
CELL_TIMEOUT_S = 120
_ADDRESS = re.compile(r"\bat 0x[0-9a-fA-F]+")


def kernel_env() -> dict:
    env = dict(os.environ)
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # plots become PNG outputs
    env["PYTHONPATH"] = str(KIT_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def kernel_manager_config():
    """Settings of the kernels a release starts (nbclient's and nbgrader validate's): their sockets
    use CurveZMQ keys the kernel manager provisions, so nothing crosses the loopback in plain text
    and ipykernel has no reason for its "running over TCP without encryption" warning (printed
    once per kernel, four times a release)."""
    import zmq
    from traitlets.config import Config

    config = Config()
    if zmq.has("curve"):  # pyzmq's wheels are built with it; a build without it keeps the default
        config.KernelManager.transport_encryption = "required"
    return config


def execute(notebook, *, allow_errors: bool, workdir: Path | None = None):
    """Run every cell of `notebook` (a NotebookNode, changed in place) in a fresh python3 kernel."""
    import nbclient

    with tempfile.TemporaryDirectory(prefix="nbrun-") as scratch:
        cwd = str(workdir or scratch)
        client = nbclient.NotebookClient(
            notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3", allow_errors=allow_errors,
            record_timing=False, resources={"metadata": {"path": cwd}}, config=kernel_manager_config(),
        )
        client.execute(env=kernel_env())
    return notebook


def normalize(notebook):
    """Remove what differs between two runs of the same notebook (see the module's docstring)."""
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        merged = []
        for output in cell.get("outputs", []):
            if (output.output_type == "stream" and merged and merged[-1].output_type == "stream"
                    and merged[-1].name == output.name):
                merged[-1].text += output.text
            else:
                merged.append(output)
        if cell.cell_type == "code":
            cell.outputs = merged
        for output in cell.get("outputs", []):
            if "text" in output:
                output.text = _ADDRESS.sub("at 0x...", output.text)
            data = output.get("data", {})
            if isinstance(data.get("text/plain"), str):
                data["text/plain"] = _ADDRESS.sub("at 0x...", data["text/plain"])
    return notebook


def execute_master(master_path: Path):
    """The master, executed and normalized; raises nbclient's CellExecutionError if a cell fails."""
    notebook = nbformat.read(master_path, as_version=4)
    return normalize(execute(notebook, allow_errors=False))


def solution_text(executed) -> str:
    return nbformat.writes(executed) + "\n"


def write_solution(executed, root: Path) -> Path:
    path = Path(root) / "solutions" / SOLUTION_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(solution_text(executed), encoding="utf-8")
    return path
