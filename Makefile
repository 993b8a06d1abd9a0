# Fresh-machine entry points. `make run`: set up and run the tiny experiment.
# `make test`: set up and run the test suite. `make bench`: benchmarks.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) run.py all --preset tiny --out runs/tiny

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/pip install -q -e '.[bench]'
	$(PY) -m pytest benchmarks -q --benchmark-columns=min,mean,stddev,rounds

clean:
	rm -rf $(VENV) runs .pytest_cache .benchmarks
