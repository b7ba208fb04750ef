# Entry points for a fresh machine: `make grade` and `make test` (see README.md).
#
# TORCH picks the torch 2.13.0 build that the venv gets:
#   auto  (default) the plain pin from requirements.lock, from whatever pip's configuration serves
#         first: on this project's machines and CI a CPU build kept on local disk (about 190 MB);
#         from plain PyPI on Linux x86_64 that is the CUDA build with its NVIDIA libraries (several GB),
#         which runs on a CPU too.
#   cpu   torch==2.13.0+cpu from the PyTorch CPU index (about 190 MB; no GPU support).
#   cuda  torch==2.13.0 from PyPI's default index, ignoring local wheel folders: the CUDA build
#         (several GB with its NVIDIA libraries), for `autograde --device cuda` on an NVIDIA GPU.
# The choice is remembered per venv: `make venv TORCH=cuda` again after a change re-installs torch.
PYTHON ?= python3
TORCH ?= auto
TORCH_VERSION := $(shell sed -n 's/^torch==//p' requirements.lock)
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-torch-$(TORCH)

.PHONY: grade test lint venv benchmark gradescope-check coursera-check clean

ifeq ($(filter $(TORCH),auto cpu cuda),)
$(error TORCH must be auto, cpu or cuda (got '$(TORCH)'))
endif

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	rm -f $(VENV)/.installed-torch-*
ifeq ($(TORCH),cpu)
	$(PY) -m pip install --quiet --index-url $(TORCH_CPU_INDEX) "torch==$(TORCH_VERSION)+cpu"
endif
ifeq ($(TORCH),cuda)
	PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= $(PY) -m pip install --quiet "torch==$(TORCH_VERSION)"
endif
	$(PY) tools/install_lock.py requirements.lock  # uv (given pip's sources) or pip, --no-deps; then pip check
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

grade: $(STAMP)
	$(PY) -m autograder autograde pytorch_slope --course-dir sample_class

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# The test modules are spread over the cores (pytest-xdist; a module stays on one worker, so its
# fixtures are built once), slowest first in the order tests/conftest.py gives, so that no worker
# idles at the end; `make test TEST_WORKERS=0` runs them in this process, one at a time.
TEST_WORKERS ?= auto
test: lint
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# Both graders on the same class of N submissions (default 100; `make benchmark N=4` for a quick
# end-to-end run), ours also in every confinement mode this machine can make (as root); exits 1
# unless every per-check score is identical.
N ?= 100
MODES ?= root,ta,container,ta-no-userns
benchmark: $(STAMP)
	$(PY) benchmarks/batch_vs_nbgrader.py --n $(N) --modes $(MODES)
	$(PY) benchmarks/grade_startup.py

.PHONY: mutation
# Grade every mutant of the reference as one class; prints the table, writes mutation/report.md and .json.
mutation: $(STAMP)
	$(PY) -m mutation.run --workers 2

# The Gradescope bundle end to end in a debootstrapped Debian chroot (root, debootstrap, network
# to the package registries; about 10 minutes; not part of `make test`). The base root is shared
# with coursera-check (tools/image_check.py; cached under $IMAGE_CHECK_DIR).
gradescope-check: $(STAMP)
	$(PY) tools/gradescope_check.py

# The Coursera grader image end to end: the bundle's Dockerfile built by podman (runc) from a
# debootstrapped Debian 12 root, or its install command in a chroot where podman cannot run; then
# run_grader per submission as the image's user with no network (root, debootstrap, the package
# registries; about 10 minutes; not part of `make test`). Prints the learner's wait and the image size.
coursera-check: $(STAMP)
	$(PY) tools/coursera_check.py

clean:
	rm -rf $(VENV) sample_class/feedback sample_class/reports sample_class/gradebook.db \
		sample_class/grades.csv sample_class/.autograde-state.sqlite sample_class/.autograde.lock sample_class/autograded autograder.zip coursera_grader.zip grades.csv
