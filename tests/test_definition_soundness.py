"""No student code runs while a clean room makes a notebook's definitions (issue 26, part 1):
soundness by construction, tested as a property.

Hypothesis composes definition cells from the constructs Python and IPython offer to run code
while something is being defined (decorators and decorator factories, defaults of functions,
methods and lambdas, class bodies, base classes, metaclasses, `__init_subclass__`,
`__set_name__`, `__mro_entries__`, `__class_getitem__`, annotations, a module's `__getattr__`,
builtins and `torch` shadowed through `%run`, calls reached through modules torch re-exports,
magics, modules written by `%%writefile` or submitted beside the notebook and imported, `%run`,
`%run -i` or star-imported, shared objects and bytecode files) around a payload that leaves a
marker if it ever runs, nested in expressions (tuples, f-strings, lambdas, allow-listed calls).
The room makes them (tests/room_replay.py, in a forked child): no marker, ever, and the
notebook's innocent step is still defined.

`test_each_construct_runs_its_payload_in_python` is the control: the notebook's own box runs the
same cells as Jupyter would, and each construct's payload does run there.
"""
from __future__ import annotations

import shutil
import subprocess
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from room_replay import replay, run_notebook

INNOCENT = "def forward(x, w):\n    return w * x\n"
MARK = "def _mark():\n    __import__('os').mkdir({marker})\n    return 1\n"


def fn(header: str, *body: str) -> str:
    return header + "\n" + "".join(f"    {line}\n" for line in body)


@dataclass(frozen=True)
class Construct:
    """Code that runs `payload` (a Python expression) when it is defined, in plain Python."""

    name: str
    code: Callable[[str], tuple[list[str], dict]]  # payload -> (cells, files beside the notebook)
    in_module: bool = True  # its cells can be the body of a module the notebook imports
    runs_in_python: bool = True  # the notebook's box runs the payload (the control test)


def _cells(*cells: str, files: dict | None = None):
    return list(cells), dict(files or {})


SHADOW_BUILTINS = """
class property:
    def __init__(self, f):
        {payload}
class staticmethod(property):
    pass
class object:
    def __init_subclass__(cls):
        {payload}
"""
SHADOW_TORCH = """
class torch:
    class nn:
        def MSELoss():
            {payload}
"""

CONSTRUCTS = [
    Construct("decorator_expression", lambda p: _cells(f"@(lambda f: ({p}, f)[1])\ndef g():\n    pass\n")),
    Construct("decorator_function", lambda p: _cells(fn("def deco(f):", p, "return f") + "@deco\ndef g():\n    pass\n")),
    Construct("decorator_factory", lambda p: _cells(fn("def deco(x):", p, "return lambda f: f") + "@deco(1)\ndef g():\n    pass\n")),
    Construct("decorator_in_class", lambda p: _cells(fn("def deco(f):", p, "return f")
                                                      + fn("class C:", "@deco", "def m(self):", "    pass"))),
    Construct("class_decorator", lambda p: _cells(fn("def deco(c):", p, "return c") + "@deco\nclass C:\n    pass\n")),
    Construct("default", lambda p: _cells(fn(f"def g(x={p}):", "return x"))),
    Construct("keyword_only_default", lambda p: _cells(fn(f"def g(*, x={p}):", "return x"))),
    Construct("lambda_default", lambda p: _cells(f"g = lambda x={p}: x\n")),
    Construct("lambda_in_lambda_default", lambda p: _cells(f"g = lambda f=(lambda y={p}: y): f\n")),
    Construct("method_default", lambda p: _cells(fn("class C:", f"def m(self, x={p}):", "    return x"))),
    Construct("class_body_statement", lambda p: _cells(fn("class C:", p))),
    Construct("class_body_value", lambda p: _cells(fn("class C:", f"x = {p}"))),
    Construct("nested_class_body", lambda p: _cells(fn("class C:", "class D:", f"    x = {p}"))),
    Construct("base_class", lambda p: _cells(fn("def base():", p, "return object") + "class C(base()):\n    pass\n")),
    Construct("metaclass", lambda p: _cells(fn("class M(type):", "def __new__(m, *a):", f"    {p}",
                                               "    return super().__new__(m, *a)") + "class C(metaclass=M):\n    pass\n")),
    Construct("init_subclass", lambda p: _cells(fn("class B:", "def __init_subclass__(cls, **k):", f"    {p}")
                                                + "class C(B):\n    pass\n")),
    Construct("set_name", lambda p: _cells(fn("class D:", "def __set_name__(self, owner, name):", f"    {p}")
                                           + fn("class C:", "d = D()"))),
    Construct("mro_entries", lambda p: _cells(fn("class E:", "def __mro_entries__(self, bases):", f"    {p}",
                                                 "    return (object,)") + "class C(E()):\n    pass\n")),
    Construct("class_getitem", lambda p: _cells(fn("class B:", "def __class_getitem__(cls, item):", f"    {p}",
                                                   "    return item") + "X = B[int]\n")),
    Construct("annotations", lambda p: _cells(fn(f"def g(x: {p}) -> {p}:", "pass") + f"Y: {p} = 1\n"
                                              + fn("class C:", f"z: {p} = 2"))),
    Construct("assignment", lambda p: _cells(f"X = {p}\n")),
    Construct("unpacking", lambda p: _cells(f"a, b = {p}, 1\n")),
    Construct("comprehension", lambda p: _cells(f"X = [{p} for _ in range(1)]\n")),
    Construct("operator_on_a_class", lambda p: _cells(fn("class A:", "def __radd__(self, other):", f"    {p}")
                                                      + "X = 1 + A\n"), runs_in_python=False),
    Construct("allow_listed_call_of_a_student_object", lambda p: _cells(
        "import torch\n" + fn("class L:", "def __len__(self):", f"    {p}", "    return 0",
                              "def __getitem__(self, i):", "    raise IndexError") + "T = torch.tensor(L())\n")),
    Construct("partial_then_called", lambda p: _cells(f"import functools\nX = functools.partial(print, {p})()\n")),
    Construct("module_getattr", lambda p: _cells("from helper_mod import anything\nimport helper_mod\nY = helper_mod.other\n",
                                                 files={"helper_mod.py": fn("def __getattr__(name):", p, "return 1")}),
              in_module=False),
    Construct("module_getattr_by_import_alias", lambda p: _cells(
        "from helper_mod import anything\n",
        files={"helper_mod.py": fn("def _hook(name):", p, "return 1") + "from helper_mod2 import _hook as __getattr__\n",
               "helper_mod2.py": fn("def _hook(name):", p, "return 1")}), in_module=False),
    Construct("shadowed_builtins_by_run", lambda p: _cells(
        "%run shadow.py\n", fn("class C:", "@property", "def x(self):", "    return 1", "@staticmethod", "def y():", "    pass")
        + "class D(object):\n    pass\n", files={"shadow.py": SHADOW_BUILTINS.format(payload=p)}), in_module=False),
    Construct("shadowed_builtins_by_run_i", lambda p: _cells(
        "%run -i shadow.py\n", "@property\ndef x():\n    return 1\nclass D(object):\n    pass\n",
        files={"shadow.py": SHADOW_BUILTINS.format(payload=p)}), in_module=False),
    Construct("shadowed_builtins_by_import", lambda p: _cells(
        "from shadow import property, object\n" + fn("class C:", "@property", "def x(self):", "    return 1")
        + "class D(object):\n    pass\n", files={"shadow.py": SHADOW_BUILTINS.format(payload=p)}), in_module=False),
    Construct("shadowed_torch_by_run", lambda p: _cells(
        "%run shadow.py\n", "criterion = torch.nn.MSELoss()\n", files={"shadow.py": SHADOW_TORCH.format(payload=p)}),
        in_module=False),
    Construct("re_exported_exec", lambda p: _cells(
        f"import torch\nX = torch.builtins.exec({p!r})\nY = torch.builtins.eval({p!r})\n"
        "from multiprocessing.pool import ThreadPool\n"
        f"POOL = ThreadPool(1, torch.builtins.exec, ({p!r}, {{'__builtins__': torch.builtins}}))\n")),
    Construct("re_exported_os", lambda p: _cells(
        "import torch\nfrom torch import os as tos\nX = torch.os.system('true')\n"
        f"Y = tos.popen('true')\nZ = torch.utils.collect_env.subprocess.run(['true'])\nW = torch.builtins.eval({p!r})\n")),
    Construct("writefile_and_import", lambda p: _cells("%%writefile written_mod.py\n" + p + "\n", "import written_mod\n"),
              in_module=False),
    Construct("writefile_and_run", lambda p: _cells("%%writefile written_mod.py\n" + p + "\n", "%run written_mod.py\n"),
              in_module=False),
    Construct("submitted_package", lambda p: _cells("import sub_pkg.inner\nfrom sub_pkg import inner\n",
                                                    files={"sub_pkg/__init__.py": "", "sub_pkg/inner.py": p + "\n"}),
              in_module=False),
    Construct("shadowed_standard_module", lambda p: _cells("import fractions\nimport statistics\n",
                                                          files={"fractions.py": p + "\n", "statistics.py": p + "\n"}),
              in_module=False, runs_in_python=False),  # imported already where the notebook runs
    Construct("time_magic", lambda p: _cells(f"%%time\n{p}\n"), in_module=False),
    Construct("capture_magic", lambda p: _cells(f"%%capture out\nX = {p}\n"), in_module=False),
    Construct("shell_line", lambda p: _cells("!python -c 'import os; os.mkdir(\"never\")'\nX = !ls\n"),
              in_module=False, runs_in_python=False),  # the notebook's shell skips `!` lines too
    Construct("f_string", lambda p: _cells(f'X = f"""{{{p}}}"""\n')),
]
BY_NAME = {c.name: c for c in CONSTRUCTS}

# Expressions around the payload, as definitions nest them.
WRAPPERS = [
    lambda e: f"({e}, 1)[0]",
    lambda e: f"[{e}]",
    lambda e: f"{{{e}: 1}}",
    lambda e: f"(lambda y={e}: y)",
    lambda e: f"({e} if True else 0)",
    lambda e: f"-({e})",
    lambda e: f"__import__('torch').tensor({e})",
    lambda e: f"__import__('functools').partial(print, {e})",
]


def payloads(marker: Path) -> list[str]:
    m = repr(str(marker))
    return [f"__import__('os').mkdir({m})", "_mark()", f"exec('import os; os.mkdir({m})')"]


# ------------------------------------------------------------------------ shared objects

SHARED_OBJECT_C = r"""
#include <stdlib.h>
#include <sys/stat.h>
__attribute__((constructor)) static void leave_marker(void) {
    const char *path = getenv("SOUNDNESS_MARKER");
    if (path) mkdir(path, 0700);
}
"""


@pytest.fixture(scope="module")
def shared_object(tmp_path_factory) -> bytes | None:
    """A shared object whose constructor leaves the marker named by $SOUNDNESS_MARKER (None
    without a C compiler)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    folder = tmp_path_factory.mktemp("so")
    (folder / "evil.c").write_text(SHARED_OBJECT_C)
    built = subprocess.run([compiler, "-shared", "-fPIC", "-o", str(folder / "evil.so"), str(folder / "evil.c")],
                           capture_output=True, timeout=60)
    return (folder / "evil.so").read_bytes() if built.returncode == 0 else None


def shared_object_cells(so: bytes) -> tuple[list[str], dict]:
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    files = {f"evil_ext{suffix}": so, "evil.so": so, "so_pkg/__init__.py": "", f"so_pkg/evil_ext{suffix}": so,
             "bytecode_mod.pyc": b"", "so_pkg/bytecode_mod.pyc": b""}
    return ["import evil_ext\n", "import so_pkg.evil_ext\n", "import ctypes\nLIB = ctypes.CDLL('./evil.so')\n"
            "LIB2 = ctypes.cdll.LoadLibrary('./evil.so')\n", "import bytecode_mod\nimport so_pkg.bytecode_mod\n"], files


# ------------------------------------------------------------------------ composing a notebook

PLACEMENTS = ("cell", "import", "star_import", "run", "run_i", "writefile_import")


@dataclass(frozen=True)
class Block:
    construct: Construct
    wrappers: tuple
    payload: int
    placement: str


def _notebook(blocks: list[Block], marker: Path, so: bytes | None, with_so: bool) -> tuple[list[str], dict]:
    cells, files = [MARK.format(marker=repr(str(marker)))], {}
    for number, block in enumerate(blocks):
        payload = payloads(marker)[block.payload]
        for wrap in block.wrappers:
            payload = wrap(payload)
        block_cells, block_files = block.construct.code(payload)
        files.update(block_files)
        if block.placement == "cell" or not block.construct.in_module:
            cells += block_cells
            continue
        module = f"part_{number}"
        body = MARK.format(marker=repr(str(marker))) + "\n".join(block_cells)
        if block.placement == "writefile_import":
            cells += [f"%%writefile {module}.py\n{body}", f"import {module}\n"]
            continue
        files[f"{module}.py"] = body
        cells.append({"import": f"import {module}\n", "star_import": f"from {module} import *\n",
                      "run": f"%run {module}.py\n", "run_i": f"%run -i {module}.py\n"}[block.placement])
    if with_so and so is not None:
        so_cells, so_files = shared_object_cells(so)
        cells += so_cells
        files.update(so_files)
    return cells + [INNOCENT], files


blocks = st.builds(Block, construct=st.sampled_from(CONSTRUCTS), wrappers=st.lists(st.sampled_from(WRAPPERS), max_size=2).map(tuple),
                   payload=st.integers(0, 2), placement=st.sampled_from(PLACEMENTS))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(notebook=st.lists(blocks, min_size=1, max_size=4), with_so=st.booleans())
def test_no_construct_runs_code_while_a_room_is_made(notebook, with_so, shared_object, tmp_path_factory):
    folder = tmp_path_factory.mktemp("room")
    marker = folder.parent / f"{folder.name}-marker"
    cells, files = _notebook(notebook, marker, shared_object, with_so)
    result = replay(cells, folder, files, env={"SOUNDNESS_MARKER": str(marker)})
    assert not marker.exists(), f"student code ran while the room was made:\n{cells}"
    assert "forward" in result["defined"], result


@pytest.mark.parametrize("name", sorted(c.name for c in CONSTRUCTS if c.runs_in_python))
def test_each_construct_runs_its_payload_in_python(name, tmp_path):
    """The control: in the notebook's own box (plain Python, as Jupyter runs it) the payload of
    every construct above runs, so the property test above can fail."""
    marker = tmp_path / "marker"
    cells, files = BY_NAME[name].code(payloads(marker)[0])
    run_notebook([MARK.format(marker=repr(str(marker))), *cells], tmp_path / "nb", files)
    assert marker.exists(), cells


def test_a_shared_object_runs_its_constructor_in_python(shared_object, tmp_path):
    if shared_object is None:
        pytest.skip("no C compiler to build the shared object")
    marker = tmp_path / "marker"
    env = {"SOUNDNESS_MARKER": str(marker)}
    cells, files = shared_object_cells(shared_object)
    run_notebook(cells, tmp_path / "nb", files, env)
    assert marker.exists()
    marker.rmdir()
    result = replay(cells + [INNOCENT], tmp_path / "room", files, env)
    assert not marker.exists() and result["defined"] == ["forward"]
