"""nbgrader settings of the pytorch_slope kit; the course root is the folder of this file.

`release` runs nbgrader with it (generate_assignment, validate), and a course may copy it: its
gradebook is then the copy's own .nbgrader/gradebook.db. The kit's folder itself is no class:
run here, nbgrader's commands that read grades (`nbgrader export`, formgrader's gradebook) use
the gradebook of the bundled sample class, which `make grade` fills, instead of an empty one.
"""
import os

c = get_config()  # noqa: F821 (injected by traitlets when nbgrader loads this file)

_root = os.path.dirname(os.path.abspath(__file__))
_db_dir = os.path.join(_root, ".nbgrader")
os.makedirs(_db_dir, exist_ok=True)

c.CourseDirectory.course_id = "pytorch-slope"
c.CourseDirectory.root = _root
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_db_dir, "gradebook.db")
_sample_class = os.path.join(_root, "sample_class")
if os.path.isfile(os.path.join(_sample_class, "nbgrader_config.py")):  # the kit's own folder, not a copy
    c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_sample_class, "gradebook.db")

c.ExecutePreprocessor.timeout = 60

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
