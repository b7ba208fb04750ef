"""nbgrader settings of the pytorch_slope kit; the course root is the folder of this file."""
import os

c = get_config()  # noqa: F821 (injected by traitlets when nbgrader loads this file)

_root = os.path.dirname(os.path.abspath(__file__))
_db_dir = os.path.join(_root, ".nbgrader")
os.makedirs(_db_dir, exist_ok=True)

c.CourseDirectory.course_id = "pytorch-slope"
c.CourseDirectory.root = _root
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_db_dir, "gradebook.db")

c.ExecutePreprocessor.timeout = 60

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
