"""Test helpers: a notebook's cells made into definitions as a clean room makes them, or run as
the notebook's box runs them, each in a forked child of the test process (so that whatever runs
there, the test process is untouched), in a folder holding the submitted `files`."""
from __future__ import annotations

import json
import os
from pathlib import Path

# Imported here, once: each forked child shares them (torch included) instead of importing them.
from autograder.sandbox.box import landlock
from autograder.sandbox.box.cells import execute_cells
from autograder.sandbox.box.clean_room import CleanRoom, seal
from autograder.sandbox.box.guard import captured_output


def in_forked_child(work):
    """`work()` run in a forked child of this process; its answer (JSON-able) comes back. An
    exception in the child fails the test here, with the child's error."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        try:
            os.close(read)
            try:
                answer = {"answer": work()}
            except BaseException as error:
                answer = {"error": repr(error)}
            os.write(write, json.dumps(answer, default=repr).encode())
        finally:
            os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 1 << 16):
        data += chunk
    os.close(read)
    os.waitpid(pid, 0)
    assert data, "the child process answered nothing"
    answer = json.loads(data)
    assert "error" not in answer, f"the child process failed: {answer['error']}"
    return answer["answer"]


def _in_child(folder: Path, files: dict[str, str | bytes], work, env: dict | None = None) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    def in_folder():
        os.chdir(folder)
        os.environ.update(env or {})
        return work()

    return in_forked_child(in_folder)


def writing_as_a_box() -> None:
    """Files writable only as in a box, its own folder (the working folder), where Landlock
    allows: this test process may write the kit and its venv, which no box can, and a room rightly
    drops a search-path entry it can write in a scratch folder (a kit cloned under /tmp)."""
    if landlock.abi_version() >= 1:
        landlock.restrict(landlock.Policy(read=["/"], write=[os.getcwd()], scoped=False, tcp=True))


def replay(cells: list[str], folder: Path, files: dict[str, str | bytes] | None = None, env: dict | None = None) -> dict:
    """The clean room's definitions of `cells`: its report, the steps it defines, every name it
    bound with its type's name, and why each of the four steps is missing, where one is."""
    def work():
        writing_as_a_box()
        seal()
        room = CleanRoom(os.getcwd())
        with captured_output():
            room.define(cells)
        names = {k: type(v).__name__ for k, v in room.namespace.items() if not k.startswith("__")}
        return {**room.report, "names": names, "why": room.why_missing(["forward", "criterion", "update", "zero_grad"])}

    return _in_child(folder, files or {}, work, env)


def run_notebook(cells: list[str], folder: Path, files: dict[str, str | bytes] | None = None, env: dict | None = None) -> dict:
    """The cells as the notebook's box runs them (cells.execute_cells): each cell's result."""
    def work():
        return {"cells": list(execute_cells(cells, {}, cell_timeout_s=10.0))}

    return _in_child(folder, files or {}, work, env)
