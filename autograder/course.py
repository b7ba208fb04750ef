"""The course: nbgrader's settings for a course folder (where its gradebook lives, read from its
nbgrader_config.py/.json) and the assignment's due date. Both the batch verb and the outputs use
it; it imports nothing of the kit above it. nbgrader is imported lazily (it is slow to import).
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path


def course_settings(course_dir: Path):
    """nbgrader's CourseDirectory for `course_dir`, configured from its nbgrader_config.py/.json
    (so a course that moves its database elsewhere is honoured); root defaults to course_dir."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import Config, JSONFileConfigLoader, PyFileConfigLoader

    course_dir = Path(course_dir).resolve()
    config = Config()
    for name, loader in (("nbgrader_config.py", PyFileConfigLoader), ("nbgrader_config.json", JSONFileConfigLoader)):
        if (course_dir / name).is_file():
            config.merge(loader(name, path=str(course_dir)).load_config())
    if "root" not in config.get("CourseDirectory", {}):
        config.CourseDirectory.root = str(course_dir)
    return CourseDirectory(config=config)


def due_date(course_dir: Path, assignment: str) -> datetime | None:
    """The assignment's due date from nbgrader's gradebook, if the course has one and it is set."""
    try:
        db_url = course_settings(course_dir).db_url
    except Exception:
        return None
    if db_url.startswith("sqlite:///") and not Path(db_url.removeprefix("sqlite:///")).is_file():
        return None  # opening it would create an empty gradebook
    try:
        from nbgrader.api import Gradebook, MissingEntry

        with Gradebook(db_url) as gb:
            try:
                return gb.find_assignment(assignment).duedate
            except MissingEntry:
                return None
    except Exception:
        return None
