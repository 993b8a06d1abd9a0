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
	@echo
	@echo "Every force law on this CPU (the cpu preset, ~5 min an experiment on 2 cores), e.g. r2 in 3D:"
	@echo "  $(PY) run.py all --preset cpu --law r2 --dim 3 --out runs/r2-3d"
	@echo "The paper's Table 5 grid (4 laws x 2 dims x 4 strategies x 3 seeds; resumable):"
	@echo "  $(PY) run.py sweep --preset cpu --seeds 0,1,2 --workers 2 --out runs/cpu"

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/pip install -q -e '.[bench]'
	$(PY) -m pytest benchmarks -q --benchmark-columns=min,mean,stddev,rounds

clean:
	rm -rf $(VENV) runs .pytest_cache .benchmarks
