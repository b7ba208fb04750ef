"""nbgrader settings of the bundled sample class, a course of its own: this folder is its root
and `gradebook.db` here its gradebook. `make grade` (the kit's `autograde`) records every
student's per-check scores there, so nbgrader's own commands run in this folder see them:

    cd sample_class && nbgrader export      # nbgrader's grades.csv, here
    nbgrader formgrader                     # (from Jupyter, in this folder) the same gradebook

The kit's own per-check CSV is reports/pytorch_slope/grades-by-check.csv, so the two never collide.
"""
import os

c = get_config()  # noqa: F821 (injected by traitlets when nbgrader loads this file)

_root = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.course_id = "pytorch-slope-sample"
c.CourseDirectory.root = _root
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_root, "gradebook.db")
