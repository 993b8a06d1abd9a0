#!/usr/bin/env bash
# The checks and timings that need a GPU, as one prepared script for a lent GPU machine
# (results: benchmarks/RESULTS.md, "On a GPU"). Parts, run in the order given:
#   env        the device and the packages of the machine's Python
#   tests      the CUDA kernel tests on the real device (SYMDISTILL_REAL_CUDA=1, no simulator)
#   cudastart  a small CUDA integration in three fresh processes on an empty kernel cache:
#              the first compiles, the next two load the cached kernel
#   nbody      CUDA simulation throughput: bench_nbody.py -k cuda
#   gnn        CUDA training: ours against torch_geometric, one 3.75 M-graph epoch under
#              float32, bf16 AMP and torch.compile: bench_gnn.py -k cuda
#   papersim   `run.py simulate --preset paper` (r2: 10,000 simulations x 1,000 steps) on the
#              CUDA kernel, twice, files and plot included
# Usage, from the repository root:  OUT=<folder> benchmarks/gpu_session.sh [part ...]
# (default: all, in that order). Each part's output goes to $OUT/<part>.log, benchmark JSON to
# $OUT/<part>.json. PYTHON names the interpreter (default python3). Wheels in .whl/ are
# installed into a temporary folder first: numba-cuda 0.30 fails to compile any kernel under
# numpy 2.5 (it registers np.row_stack, which numpy 2.5 removed), so a machine with numpy 2.5
# needs a numpy 2.4 wheel there.
set -u
OUT=${OUT:?set OUT to the output folder}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
if compgen -G ".whl/*.whl" > /dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site:$PWD
fi
CUDA_START='
import time
start = time.perf_counter()
import numpy as np
from nbody.config import SimConfig
from nbody.initial import initial_conditions
from nbody.integrate import integrate
from nbody.laws import get_law
ics = initial_conditions(get_law("r2"), 4, 2, 20, np.random.default_rng(0))
ready = time.perf_counter()
integrate(SimConfig(law="r2", n=4, dim=2, n_sims=20, nt=50, integrator="cuda"), *ics)
print(f"imports {ready - start:.2f} s, first CUDA integration (20 x 50) {time.perf_counter() - ready:.2f} s")'
BENCH=(-m pytest -q -p no:cacheprovider --benchmark-columns=min,mean,rounds)

part() {
    case $1 in
        env) nvidia-smi
             $PY -c "import torch, numba, numpy; print('torch', torch.__version__, torch.cuda.get_device_name(0)); print('numba', numba.__version__, 'numpy', numpy.__version__)"
             $PY -m pip list 2>/dev/null | grep -i -E "numba|cuda-bindings|torch|pyoperon|geometric" ;;
        tests) SYMDISTILL_REAL_CUDA=1 timeout 300 $PY -m pytest -q -p no:cacheprovider tests/test_kernels.py \
                   tests/test_integrate.py -k "cuda or gpu" ;;
        cudastart) rm -rf /tmp/cuda-start-cache
                   for k in 1 2 3; do
                       SYMDISTILL_CACHE_DIR=/tmp/cuda-start-cache timeout 120 $PY -c "$CUDA_START"
                   done ;;
        nbody) timeout 300 $PY "${BENCH[@]}" benchmarks/bench_nbody.py -k cuda --benchmark-json="$OUT/nbody.json" ;;
        gnn) timeout 400 $PY "${BENCH[@]}" benchmarks/bench_gnn.py -k cuda --benchmark-json="$OUT/gnn.json" ;;
        papersim) for k in 1 2; do
                      TIMEFORMAT="run $k: %R s, process start to files written"
                      time timeout 120 $PY run.py simulate --preset paper --law r2 --integrator cuda \
                          --out "/tmp/papersim$k" --quiet || return 1
                  done ;;
        *) echo "unknown part $1"; return 2 ;;
    esac
}

for name in "${@:-env tests cudastart nbody gnn papersim}"; do
    for p in $name; do
        start=$(date +%s)
        part "$p" > "$OUT/$p.log" 2>&1
        rc=$?
        echo "== $p: rc $rc, $(( $(date +%s) - start )) s"
        tail -n 15 "$OUT/$p.log"
    done
done
