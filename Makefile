# Fresh-machine entry points. `make run`: set up and run the tiny experiment.
# `make test`: set up and run the test suite. `make bench`: benchmarks.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch on a machine without an NVIDIA GPU: PyPI's Linux torch is the CUDA build (several GB
# with its libraries), so the CPU build comes first from a wheel pip finds without an index
# (its find-links, as on the project's machines), else from this index.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH := torch>=2.4

.PHONY: run test bench clean

# A torch the venv already has is kept (pyproject.toml asks for a range, which it meets).
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || command -v nvidia-smi >/dev/null || \
		$(VENV)/bin/pip install -q --no-index --no-deps '$(TORCH)' 2>/dev/null || \
		$(VENV)/bin/pip install -q '$(TORCH)' --index-url $(TORCH_CPU_INDEX)
	$(VENV)/bin/pip install -q -e '.[test]'
	$(PY) run.py warm
	touch $(STAMP)

run: $(STAMP)
	$(PY) run.py all --preset tiny --out runs/tiny
	@echo
	@echo "Other force laws on this CPU (the cpu preset: bottleneck 3-10 min a run, median 5, with two runs sharing 2 cores), e.g. r2 in 2D"
	@echo "(what it recovers, per seed: results/recipe-grid/third-law/relative/robust-refit/README.md):"
	@echo "  $(PY) run.py all --preset cpu --law r2 --dim 2 --out runs/r2-2d"
	@echo "The paper's Table 5 grid (4 laws x 2 dims x 4 strategies x 3 seeds; resumable):"
	@echo "  $(PY) run.py sweep --preset cpu --seeds 0,1,2 --workers 2 --out runs/cpu"

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/pip install -q -e '.[bench]'
	$(PY) -m pytest benchmarks -q --benchmark-columns=min,mean,stddev,rounds

clean:
	rm -rf $(VENV) runs .pytest_cache .benchmarks
