#!/usr/bin/env bash
# The grader image's install steps (autograder/image/), run once as root from the kit's folder:
# Gradescope runs this as the bundle's setup.sh when it builds its image (Ubuntu base image);
# coursera-bundle's Dockerfile runs it on Debian 12 for Coursera and any container platform.
# It installs Python 3.11 if the image lacks it, then a virtual environment with the kit's pinned
# dependencies (requirements.lock) and the CPU build of torch (about 190 MB; these platforms have
# no GPU, and the plain PyPI torch would bring gigabytes of CUDA libraries).
#   TORCH_INDEX      where torch comes from (default: the PyTorch CPU index; empty: pip's default index)
#   TORCH_WHEELS     optional folder of wheels pip looks in first (pip --find-links)
#   AUTOGRADER_USER  the non-root account a container image grades as (created if missing). Without
#                    it the grader runs as root (Gradescope) and boxes as sandbox uids, so the
#                    reference, the checks and the grading secret are made readable by root only.
set -euo pipefail

ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="${AUTOGRADER_SOURCE:-$ROOT/source}"
VENV="${AUTOGRADER_VENV:-$ROOT/venv}"
TORCH_INDEX="${TORCH_INDEX-https://download.pytorch.org/whl/cpu}"
TORCH_WHEELS="${TORCH_WHEELS:-}"
GRADER_USER="${AUTOGRADER_USER:-}"

if ! command -v python3.11 >/dev/null 2>&1 || ! python3.11 -c "import venv, ensurepip" >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    if ! apt-get install -y python3.11 python3.11-venv; then
        apt-get install -y software-properties-common
        add-apt-repository -y ppa:deadsnakes/ppa
        apt-get update
        apt-get install -y python3.11 python3.11-venv
    fi
fi

python3.11 -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade pip
# torch first, the CPU build of the version the lock pins (requirements.lock's torch==X is then satisfied)
torch_pin="$(grep -E '^torch==' "$SOURCE/requirements.lock")+cpu"
"$VENV/bin/python" -m pip install ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} ${TORCH_WHEELS:+--find-links "$TORCH_WHEELS"} "$torch_pin"
"$VENV/bin/python" -m pip install -r "$SOURCE/requirements.lock"
# the grader runs from $SOURCE (PYTHONPATH), so the kit itself needs no install
cd "$SOURCE" && PYTHONPATH="$SOURCE" "$VENV/bin/python" -c "import torch, autograder.grade"

if [ -z "$GRADER_USER" ]; then
    # Gradescope's containers may refuse the namespaces the sandbox asks for; then the sandbox still
    # runs student code as an unprivileged uid, so make what it must not read readable by root only.
    chmod -R go-rwx "$SOURCE/solutions" "$SOURCE/source" "$SOURCE/autograder/checks" "$SOURCE/autograder/grading.json"
else
    id -u "$GRADER_USER" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$GRADER_USER"
    # A container platform may run the image as another non-root uid (Coursera does not say which):
    # every account may read the kit and the venv, none but root may change them. What keeps a
    # submission from the reference there is the confinement level (docs/platforms.md).
    chmod -R a+rX,go-w "$SOURCE" "$VENV"
fi
