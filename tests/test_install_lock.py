"""tools/install_lock.py, which `make venv` runs: the lock split into groups for parallel pips."""
from __future__ import annotations

import importlib.util

from autograder.assignment import KIT_ROOT

spec = importlib.util.spec_from_file_location("install_lock", KIT_ROOT / "tools" / "install_lock.py")
install_lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(install_lock)

LOCK = (KIT_ROOT / "requirements.lock").read_text()


def test_every_pin_of_the_lock_is_installed_once_and_torch_alone():
    pins = install_lock.pins(LOCK)
    groups = install_lock.groups(pins)
    assert sorted(pin for group in groups for pin in group) == sorted(pins)
    with_torch = [group for group in groups if any(install_lock._name(pin) == "torch" for pin in group)]
    assert len(with_torch) == 1 and len(with_torch[0]) == 1, "torch, the longest install, has a pip of its own"
    assert len(groups) == install_lock.GROUPS


def test_comments_blank_lines_and_options_are_not_pins():
    text = "# a comment\n\n--find-links /x\nalpha==1.0  # why\nBeta_Pkg[extra]==2\n"
    assert install_lock.pins(text) == ["alpha==1.0", "Beta_Pkg[extra]==2"]


def test_the_lock_is_the_whole_environment():
    """--no-deps installs only what the lock names: torch needs setuptools, which `pip freeze` omits."""
    names = {install_lock._name(pin) for pin in install_lock.pins(LOCK)}
    assert {"torch", "setuptools", "pytest", "nbgrader"} <= names
