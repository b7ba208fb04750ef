"""Install requirements.lock into this interpreter's environment with one standard installer.

    python tools/install_lock.py requirements.lock      (what `make venv` runs)

The lock pins the whole environment (setuptools included), so nothing needs resolving: one
installer installs exactly its pins (`--no-deps`), then `pip check` proves the result consistent.
The installer is uv (from PyPI, pinned below, installed into the venv by pip: about 3 s) where it
can be had, because it installs the lock in about 15 s where one pip takes well over a minute; it
is given the package sources pip is configured with (index, extra indexes, find-links,
constraints, from `pip config list`: pip's files and PIP_* variables), so both installers take
the same files (a torch build kept on local disk included). Where uv cannot be installed or
fails, one `pip install --no-deps -r LOCK` runs instead, and if the environment is then still
inconsistent, one ordinary resolving `pip install -r LOCK`: the result is never worse than the
plain command. Standard library only: it runs before anything is installed.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

UV = "uv==0.13.10"


def _pip(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", *args]


def pip_sources(config_listing: str) -> list[str]:
    """uv's options for the package sources in `pip config list` output (its lines look like
    `global.find-links='/opt/wheels'` or `:env:.extra-index-url='a b'`)."""
    options, seen = [], set()
    flags = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
             "constraint": "--constraint"}
    for line in config_listing.splitlines():
        key, _, value = line.partition("=")
        name = key.rsplit(".", 1)[-1].strip()
        if name not in flags:
            continue
        values = shlex.split(value)[0].split() if value.strip() else []
        for item in values:
            if (name, item) not in seen:
                seen.add((name, item))
                options += [flags[name], item]
    return options


def install_with_uv(lock: Path) -> bool:
    if subprocess.run(_pip("install", "--quiet", UV)).returncode != 0:
        return False
    listing = subprocess.run(_pip("config", "list"), capture_output=True, text=True).stdout
    uv = Path(sys.executable).parent / "uv"
    command = [str(uv), "pip", "install", "--quiet", "--python", sys.executable, "--no-deps", "-r", str(lock),
               "--index-strategy", "unsafe-best-match", *pip_sources(listing)]  # pip's rule: the best match of every source
    return subprocess.run(command).returncode == 0


def consistent() -> bool:
    return subprocess.run(_pip("check"), stdout=subprocess.DEVNULL).returncode == 0


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 2
    lock = Path(argv[0])
    if install_with_uv(lock) and consistent():
        return 0
    print("install_lock: uv could not install the lock; installing it with pip instead", file=sys.stderr)
    if subprocess.run(_pip("install", "--quiet", "--no-deps", "-r", str(lock))).returncode == 0 and consistent():
        return 0
    print("install_lock: the lock's pins did not give a consistent environment; installing with one resolving pip",
          file=sys.stderr)
    return subprocess.run(_pip("install", "--quiet", "-r", str(lock))).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
