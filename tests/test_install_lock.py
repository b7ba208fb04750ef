"""tools/install_lock.py, which `make venv` runs: one installer for the whole lock (uv given pip's
package sources, else pip), then `pip check`, and a plain resolving pip if that still fails."""
from __future__ import annotations

import importlib.util
import subprocess

from autograder.assignment import KIT_ROOT

spec = importlib.util.spec_from_file_location("install_lock", KIT_ROOT / "tools" / "install_lock.py")
install_lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(install_lock)


def test_uv_is_given_every_package_source_pip_is_configured_with():
    listing = ("global.cert='/etc/ssl/certs/ca.crt'\n"
               "global.constraint='/etc/xdg/pip/constraints.txt'\n"
               "global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'\n"
               "global.find-links='/opt/wheels'\n"
               ":env:.find-links='/opt/wheels'\n"
               ":env:.index-url='https://mirror.example/simple'\n")
    assert install_lock.pip_sources(listing) == [
        "--constraint", "/etc/xdg/pip/constraints.txt",
        "--extra-index-url", "file:///opt/pypi/simple", "--extra-index-url", "file:///opt/pypi-more/simple",
        "--find-links", "/opt/wheels", "--index-url", "https://mirror.example/simple"]
    assert install_lock.pip_sources("") == []


def test_pip_installs_the_lock_where_uv_cannot(monkeypatch):
    ran = []

    def run(command, **kwargs):
        ran.append(" ".join(command[2:5]) if command[1:3] == ["-m", "pip"] else "uv")
        failed = command[-1] == install_lock.UV  # uv cannot be had (offline, no wheel for this machine)
        return subprocess.CompletedProcess(command, 1 if failed else 0, stdout="")

    monkeypatch.setattr(install_lock.subprocess, "run", run)
    assert install_lock.main(["requirements.lock"]) == 0
    assert ran == ["pip install --quiet", "pip install --quiet", "pip check"]


def test_a_lock_that_gives_an_inconsistent_environment_falls_back_to_a_resolving_pip(monkeypatch):
    ran = []

    def run(command, **kwargs):
        ran.append(command)
        return subprocess.CompletedProcess(command, 1 if command[3:4] == ["check"] else 0, stdout="")

    monkeypatch.setattr(install_lock.subprocess, "run", run)
    install_lock.main(["requirements.lock"])
    assert "--no-deps" not in ran[-1] and ran[-1][-2:] == ["-r", "requirements.lock"]
