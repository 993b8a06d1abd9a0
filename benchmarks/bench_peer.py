"""Our simulator against the paper's official one, on the same work in the same session (optional).

Needs a checkout of the official repository (github.com/MilesCranmer/symbolic_deep_learning;
nothing of it is copied here) named by SYMDISTILL_PEER_REPO (the folder holding its
`simulate.py`), and a Python with jax, numpy, tqdm, celluloid and matplotlib:
SYMDISTILL_PEER_PYTHON, or this interpreter after `pip install -e '.[peer]'`. Skipped when
the variable is unset or that Python cannot import jax. (The official string law needs two
lines patched to run on current jax, README of benchmarks/; these cases do not use it.)

Per case, each round runs three fresh processes, alternating:
  * official: `SimulationDataset(sim, n, dim, dt, nt).simulate(n_sims)` with jax x64 (float64
    like ours). "all" is its wall time, its jit included (it re-jits a new closure on every
    `simulate` call, so a warm-up cannot remove it); "steady" excludes its first simulation,
    which carries the compilation, read from a hook on its module-level `tqdm`.
  * ours, cold: `nbody.integrate.integrate` on a new empty kernel cache (compiles): "all" is
    initial conditions + compile + integration; a second call in the process is "steady".
  * ours, warm: the same with the cache the cold run left (what every later run sees).
Imports (jax, numba) are outside every figure; each side's first-use set-up (jax's backend,
Numba's target registries and cache load) is inside "all". Each contender's median over the
rounds goes to `extra_info` (sim-steps/s), with the ratios ours / official. The official output grid
is `linspace(0, dt*nt, nt)`, ours k*dt: the same number of outputs, 0.1 % more time for it.

Run:  SYMDISTILL_PEER_REPO=/path/to/symbolic_deep_learning SYMDISTILL_PEER_PYTHON=/path/to/python \\
      .venv/bin/python -m pytest benchmarks/bench_peer.py --benchmark-only -s
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPO = os.environ.get("SYMDISTILL_PEER_REPO", "")
PEER_PYTHON = os.environ.get("SYMDISTILL_PEER_PYTHON", sys.executable)
ROUNDS = int(os.environ.get("SYMDISTILL_PEER_ROUNDS", "3"))

# (law, n, dim, n_sims, nt): the three cases; dt is each law's paper value.
CASES = [("r2", 4, 2, 1000, 1000), ("spring", 4, 2, 1000, 1000), ("r2", 8, 3, 500, 500)]

_OFFICIAL = """
import json, sys, time
import jax
jax.config.update("jax_enable_x64", True)
import simulate as official
law, n, dim, n_sims, nt, dt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
marks = []
def timed(keys):
    for key in keys:
        marks.append(time.perf_counter())
        yield key
official.tqdm = timed
start = time.perf_counter()
data = official.SimulationDataset(sim=law, n=n, dim=dim, dt=dt, nt=nt)
data.simulate(n_sims)
jax.block_until_ready(data.data)
end = time.perf_counter()
print(json.dumps({"all": end - start, "steady": (end - marks[1]) * n_sims / (n_sims - 1)}))
"""

_OURS = """
import json, sys, time
import numpy as np
from nbody.config import SimConfig
from nbody.initial import initial_conditions
from nbody.integrate import integrate
from nbody.laws import get_law
import nbody.kernels_cpu  # numba: imported before the clock, like the official side's jax
law, n, dim, n_sims, nt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
start = time.perf_counter()
cfg = SimConfig(law=law, n=n, dim=dim, nt=nt, integrator="cpu")
ics = initial_conditions(get_law(law), n, dim, n_sims, np.random.default_rng(0))
result = integrate(cfg, *ics)
first = time.perf_counter()
integrate(cfg, *ics)
end = time.perf_counter()
assert not result.failed.any()
print(json.dumps({"all": first - start, "steady": end - first}))
"""


def _peer_ready() -> str | None:
    """Why the comparison cannot run here, or None."""
    if not REPO:
        return "SYMDISTILL_PEER_REPO is not set (a checkout of MilesCranmer/symbolic_deep_learning)"
    if not (Path(REPO) / "simulate.py").is_file():
        return f"no simulate.py in SYMDISTILL_PEER_REPO={REPO}"
    probe = subprocess.run([PEER_PYTHON, "-c", "import jax, celluloid, tqdm"], capture_output=True)
    if probe.returncode != 0:
        return f"{PEER_PYTHON} cannot import jax/celluloid/tqdm (pip install -e '.[peer]' or set SYMDISTILL_PEER_PYTHON)"
    return None


_NOT_READY = _peer_ready()
pytestmark = pytest.mark.skipif(_NOT_READY is not None, reason=str(_NOT_READY))


def _run(args: list[str], env: dict | None = None, cwd: str | Path = ROOT) -> dict:
    """`args` run in `cwd` (the official simulator's `import simulate` finds its repository
    there) -> the JSON of its last line."""
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _compare(law: str, n: int, dim: int, n_sims: int, nt: int) -> dict:
    """Alternating rounds of the three contenders; sim-steps/s medians and ratios."""
    from nbody.laws import get_law
    dt = get_law(law).dt
    runs = {"official": [], "ours_cold": [], "ours_warm": []}
    for _ in range(ROUNDS):
        runs["official"].append(_run([PEER_PYTHON, "-c", _OFFICIAL, law, str(n), str(dim), str(n_sims), str(nt),
                                      str(dt)], cwd=REPO))
        with tempfile.TemporaryDirectory(prefix="symdistill-peer-cache-") as cache:
            env = {**os.environ, "SYMDISTILL_CACHE_DIR": cache}
            env.pop("NUMBA_ENABLE_CUDASIM", None)
            for name in ("ours_cold", "ours_warm"):
                runs[name].append(_run([sys.executable, "-c", _OURS, law, str(n), str(dim), str(n_sims), str(nt)], env))
    work = n_sims * nt
    rate = {f"{name}_{kind}": work / statistics.median(r[kind] for r in rounds)
            for name, rounds in runs.items() for kind in ("all", "steady")}
    info = {"law": law, "n": n, "dim": dim, "n_sims": n_sims, "nt": nt, "rounds": ROUNDS,
            "sim_steps_per_s": {k: round(v) for k, v in rate.items()},
            "seconds": {name: [round(r["all"], 3) for r in rounds] for name, rounds in runs.items()},
            "ratio_all_cold": rate["ours_cold_all"] / rate["official_all"],
            "ratio_all_warm": rate["ours_warm_all"] / rate["official_all"],
            "ratio_steady": rate["ours_warm_steady"] / rate["official_steady"],
            "load_average": os.getloadavg()}
    print(json.dumps(info))
    return info


@pytest.mark.parametrize("law,n,dim,n_sims,nt", CASES)
def test_against_official(benchmark, law, n, dim, n_sims, nt):
    info = benchmark.pedantic(_compare, args=(law, n, dim, n_sims, nt), rounds=1, iterations=1)
    benchmark.extra_info.update(info)
