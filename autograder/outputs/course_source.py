"""The assignment's folder in the course's source/, where nbgrader looks for a course's
assignments (NbGraderAPI.get_source_assignments): without it formgrader's "Manage Assignments"
and "Manual Grading" pages list nothing, whatever the gradebook holds. A course made of
submitted/ only (the bundled sample class too) gets the kit's master there, as `nbgrader
generate_assignment` expects it; a course's own source/<assignment>/ is never touched.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from autograder.assignment import Assignment


def write_course_source(coursedir, assignment: Assignment) -> Path | None:
    """`coursedir`: nbgrader's CourseDirectory of the course. Returns the folder if it wrote it."""
    folder = Path(coursedir.format_path(coursedir.source_directory, ".", assignment.name))
    if folder.exists() or not assignment.master.is_file():
        return None
    folder.mkdir(parents=True)
    shutil.copyfile(assignment.master, folder / assignment.notebook)
    return folder
