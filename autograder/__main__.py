"""`python -m autograder`: the grader never imports from its working folder.

`python -m` puts the working folder first on the module search path, so a `json.py` left in
/tmp (by anyone) would be imported by a grader started there, and by the forkserver and workers
it starts. Before anything else is imported, the grader runs itself again with `-P` (Python
3.11+: no unsafe path first; inherited by multiprocessing's processes) and `-s` (no user site),
the kit found through its own folder instead. The zygotes go further: `-I` (grader/zygotes.py).
"""
import os
import sys

if not (sys.flags.safe_path and sys.flags.no_user_site):
    kit = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = kit + (os.pathsep + paths if paths else "")
    os.execv(sys.executable, [sys.executable, "-P", "-s", "-m", "autograder", *sys.argv[1:]])

from autograder.cli import main  # noqa: E402

if sys.argv[1:2] == ["autograde"]:
    from autograder.autograde.orphans import adopting_orphans

    with adopting_orphans():  # nothing the run started outlives it (autograde/orphans.py)
        status = main()
    # Everything autograde writes is written, synced and closed by now; tearing down the
    # interpreter's modules (nbgrader, SQLAlchemy, matplotlib, jupyter) took another 1 to 3 s of
    # wall time on this project's machine, after the summary. The exit handlers still run
    # (multiprocessing removes its temporary folder there).
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
sys.exit(main())
