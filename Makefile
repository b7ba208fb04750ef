# Two entry points for a fresh machine: `make grade` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: grade test venv benchmark clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

grade: $(STAMP)
	$(PY) -m autograder autograde pytorch_slope --course-dir sample_class

test: $(STAMP)
	$(PY) -m pytest -q

benchmark: $(STAMP)
	$(PY) benchmarks/batch_vs_nbgrader.py

.PHONY: mutation
# Grade every mutant of the reference as one class; prints the table, writes mutation/report.md and .json.
mutation: $(STAMP)
	$(PY) -m mutation.run --workers 2

clean:
	rm -rf $(VENV) sample_class/feedback sample_class/reports sample_class/gradebook.db \
		sample_class/grades.csv sample_class/.autograde-state.sqlite autograder.zip
