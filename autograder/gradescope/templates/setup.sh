#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu base image).
# It installs Python 3.11 if the image lacks it, then a virtual environment with the kit's pinned
# dependencies (requirements.lock) and the CPU build of torch.
set -euo pipefail

ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="${AUTOGRADER_SOURCE:-$ROOT/source}"
VENV="${AUTOGRADER_VENV:-$ROOT/venv}"
TORCH_INDEX="${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"

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
# torch first, from the CPU wheel index, at the version the lock pins
torch_pin="$(grep -E '^torch==' "$SOURCE/requirements.lock")"
"$VENV/bin/python" -m pip install --index-url "$TORCH_INDEX" "$torch_pin"
"$VENV/bin/python" -m pip install -r "$SOURCE/requirements.lock"
# the grader runs from $SOURCE (PYTHONPATH), so the kit itself needs no install
cd "$SOURCE" && PYTHONPATH="$SOURCE" "$VENV/bin/python" -c "import torch, autograder.grade"
# Gradescope's containers may refuse the namespaces the sandbox asks for; then the sandbox still
# runs student code as an unprivileged uid, so make what it must not read readable by root only.
chmod -R go-rwx "$SOURCE/solutions" "$SOURCE/autograder/checks" "$SOURCE/autograder/grading.json"
