"""The kit as a Coursera custom grader: `python -m autograder coursera-bundle`.

Coursera builds the image from a zip whose top level holds a Dockerfile (`coursera_autograder
upload ZIP COURSE ITEM PART`), then runs it once per submission with the learner's file in
/shared/submission/, as a non-root user with no network. The zip holds what every grader image
holds (autograder/image/: setup.sh, the grader, the reference, the release, the pinned
dependencies), and:

  Dockerfile   Debian 12; the zip copied to /autograder/source; setup.sh as root (Python 3.11, a venv
               with the CPU build of the pinned torch and requirements.lock), the account `grader`;
               then USER grader, and run_grader as the entry point
  run_grader   the entry point (templates/): grades the one notebook, writes /shared/feedback.json
               and /shared/htmlFeedback.html (run.py, outputs/coursera.py); with arguments, the kit's
               command line (a TA's `autograde` on a mounted course)

The same image serves any platform that runs one container per submission, and TAs on macOS or
Windows (docs/platforms.md). The zip is deterministic, as Gradescope's is.
"""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from autograder import image
from autograder.assignment import KIT_ROOT
from autograder.outputs.coursera import NOT_YOUR_FAULT

TEMPLATES = Path(__file__).resolve().parent / "templates"
ENTRY_POINT = "run_grader"
DOCKERFILE = "Dockerfile"


def dockerfile() -> str:
    """The Dockerfile: the image's install steps (image.install_command) for the non-root grader."""
    return "\n".join([
        "# The PyTorch Slope grader for Coursera, or any platform that runs one container per submission.",
        "# Written by `python -m autograder coursera-bundle`; edit the kit, not this file (docs/platforms.md).",
        f"FROM {image.BASE_IMAGE}",
        "# Optional, for building where the PyTorch CPU index is unreachable (see setup.sh):",
        "# --build-arg TORCH_WHEELS=<folder of wheels inside the build> and TORCH_INDEX= (pip's default index).",
        "ARG TORCH_INDEX",
        "ARG TORCH_WHEELS",
        f"COPY . {image.SOURCE}",
        f"RUN {image.install_command(user=image.USER)}",
        "# Coursera runs the image as a non-root user; so does this image wherever it runs.",
        f"USER {image.USER}",
        f"WORKDIR {image.ROOT}",
        f'ENTRYPOINT ["{image.SOURCE / ENTRY_POINT}"]',
        "",
    ])


def entry_point(*, unconfined: bool = False) -> bytes:
    """run_grader, with its options and its last-resort message written in."""
    if not re.fullmatch(r"[\w .,:;'()-]+", NOT_YOUR_FAULT):  # it goes into a shell string and a JSON string
        raise ValueError("the grader-failure message must stay plain text")
    text = (TEMPLATES / ENTRY_POINT).read_text()
    text = text.replace("@@GRADE_OPTIONS@@", "--unconfined" if unconfined else "")
    text = text.replace("@@NOT_YOUR_FAULT@@", json.dumps(NOT_YOUR_FAULT)[1:-1])
    return text.encode()


def contents(root: Path = KIT_ROOT, *, unconfined: bool = False) -> dict[str, Path | bytes]:
    """Name inside the zip -> file on disk or its bytes."""
    return dict(sorted({**image.contents(root), DOCKERFILE: dockerfile().encode(),
                        ENTRY_POINT: entry_point(unconfined=unconfined)}.items()))


def build(output: Path, root: Path = KIT_ROOT, *, unconfined: bool = False) -> Path:
    return image.write_zip(output, contents(root, unconfined=unconfined), executables=(ENTRY_POINT,))


def main(*, output: Path = Path("coursera_grader.zip"), unconfined: bool = False) -> int:
    path = build(output, unconfined=unconfined)
    with zipfile.ZipFile(path) as archive:
        count = len(archive.namelist())
    print(f"wrote {path} ({count} files, {path.stat().st_size // 1024} KiB): upload it as the part's custom grader "
          "(coursera_autograder upload ZIP COURSE_ID ITEM_ID PART_ID), with the part's file name set to pytorch_slope.ipynb"
          + ("; it grades unconfined where the host allows no confinement level (docs/platforms.md)" if unconfined else ""))
    return 0
