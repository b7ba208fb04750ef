"""Submitted files reach the sandbox as a tar archive (confine.unpack_files). On Python >= 3.11.4
tarfile's "data" filter refuses names that leave the folder; older 3.11 releases (Debian 12's
3.11.2, Ubuntu 22.04's 3.11.0, both possible on Gradescope's image) have no `filter` argument,
and the sandbox died at start-up there. Both must extract regular files and refuse escapes."""
from __future__ import annotations

import io
import os
import tarfile

import pytest

from autograder.sandbox.box.confine import unpack_files


def _archive_fd(tmp_path, members: dict[str, bytes]) -> int:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    path = tmp_path / "files.tar"
    path.write_bytes(buffer.getvalue())
    return os.open(path, os.O_RDONLY)


def _as_before_3_11_4(monkeypatch) -> None:
    """tarfile as Python 3.11.0-3.11.3 has it: no data_filter, extract() without `filter`, and
    no filtering at all."""
    original = tarfile.TarFile.extract

    def extract(self, member, path="", set_attrs=True, *, numeric_owner=False):
        return original(self, member, path, set_attrs, numeric_owner=numeric_owner, filter="fully_trusted")

    monkeypatch.delattr(tarfile, "data_filter")
    monkeypatch.setattr(tarfile.TarFile, "extract", extract)


@pytest.mark.parametrize("python", ["3.11.4 and later", "before 3.11.4"])
def test_regular_files_are_unpacked_and_escapes_refused(tmp_path, monkeypatch, python):
    if python == "before 3.11.4":
        _as_before_3_11_4(monkeypatch)
    folder = tmp_path / "box" / "submission"
    folder.mkdir(parents=True)
    absolute = tmp_path / "absolute.py"
    members = {"helper.py": b"X = 1\n", "data/points.csv": b"1,2\n",
               "../escaped.py": b"bad", "../../escaped2.py": b"bad", str(absolute): b"bad"}
    try:
        unpack_files(_archive_fd(tmp_path, members), str(folder), None)
    except tarfile.FilterError:  # the data filter refuses by raising at the first bad name
        pass
    assert (folder / "helper.py").read_bytes() == b"X = 1\n"
    assert (folder / "data" / "points.csv").read_bytes() == b"1,2\n"
    assert not (tmp_path / "box" / "escaped.py").exists() and not (tmp_path / "escaped2.py").exists()
    assert not absolute.exists()
