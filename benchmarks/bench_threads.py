"""Training steps/s against torch's CPU thread count, on a quiet CPU and on a shared one.

What `--threads` defaults to (`pipeline.config.DEFAULT_THREADS`) was chosen from these figures
(benchmarks/RESULTS.md, "CPU threads"). A case trains the GNN step of `gnn.train` (batch
draw, translation augmentation, forward, loss, backward, fused Adam) at 1, 2 and all CPU
threads (`torch.set_num_threads`), for the tiny preset's network (bottleneck, 128 wide, 2
hidden layers, batch 32) and the paper's (L1, 300 wide, 3 hidden layers, batch 64), each

    quiet   nothing else started by the benchmark (note the machine's load beside the figures);
    busy    beside one busy Python loop in a subprocess (bounded to BUSY_S seconds, killed
            after the case): another experiment, or a test suite, on the same cores.

The SR search (`distill.operon.search`, population 500, 10 generations, 2,000 rows of a planted
spring message, 10 Levenberg-Marquardt steps) is timed the same way at 1, 2 and all SR threads
(`DistillConfig.n_threads`): generations/s, one search a round.

Each training round trains for ROUND_S seconds of wall time (not a fixed step count: at 2
threads on a shared 2-core machine a step can take 100x longer) after 20 warm-up steps;
`extra_info` holds the median steps/s and graphs/s of 3 rounds, the thread count and the
1-minute load average.

Run: `.venv/bin/python -m pytest benchmarks/bench_threads.py --benchmark-only -q`
"""
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from distill import operon
from distill.config import DistillConfig
from gnn.config import ModelConfig, TrainConfig
from gnn.build import build_model
from gnn.train import adam, augment, batch_loss
from nbody.laws import accelerations, get_law
from nbody.state import pack

DIM, N = 2, 4
MODELS = {  # name -> (model, batch): the tiny preset's and the paper's networks
    "tiny": (ModelConfig(strategy="bottleneck", dim=DIM, hidden=128, n_hidden_layers=2), 32),
    "paper": (ModelConfig(strategy="l1", dim=DIM), 64),
}
THREADS = sorted({1, 2, os.cpu_count() or 1})
ROUND_S = 3.0
BUSY_S = 120          # upper bound on a busy loop's life, should the benchmark die before killing it


def spring_tensors(n_graphs: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Random spring states x [G, n, 2*dim+2] and their accelerations [G, n, dim] (float32)."""
    rng = np.random.default_rng(0)
    pos, vel = rng.normal(size=(2, n_graphs, N, DIM))
    q, m = rng.normal(size=(n_graphs, N)), np.exp(rng.normal(size=(n_graphs, N)))
    a = accelerations(get_law("spring"), pos, vel, q, m, 0.01)
    return torch.from_numpy(pack(pos, vel, q, m).astype(np.float32)), torch.from_numpy(a.astype(np.float32))


@pytest.fixture(params=["quiet", "busy"])
def load(request):
    """The competing load of a case: nothing, or one busy Python loop for the case's length."""
    if request.param == "quiet":
        yield "quiet"
        return
    loop = f"import time\nend = time.monotonic() + {BUSY_S}\nwhile time.monotonic() < end:\n    pass\n"
    busy = subprocess.Popen([sys.executable, "-c", loop])
    try:
        yield "busy"
    finally:
        busy.kill()
        busy.wait()


@pytest.fixture
def threads(request):
    """torch's CPU thread count for one case, restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.mark.parametrize("threads", THREADS, indirect=True)
@pytest.mark.parametrize("model_name", list(MODELS))
def test_train_steps_per_second(benchmark, model_name, threads, load):
    model_cfg, batch = MODELS[model_name]
    cfg = TrainConfig(batch_size=batch)
    x, a = spring_tensors()
    torch.manual_seed(0)
    model = build_model(model_cfg)
    optimizer = adam(model, cfg, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)

    def step():
        idx = torch.randint(0, len(x), (batch,), generator=gen)
        loss = batch_loss(model(augment(x[idx], DIM, cfg.augment_sigma)), a[idx], model_cfg.strategy, cfg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(20):
        step()
    rates = []

    def one_round():
        start, steps = time.perf_counter(), 0
        while time.perf_counter() - start < ROUND_S:
            step()
            steps += 1
        rates.append(steps / (time.perf_counter() - start))

    benchmark.pedantic(one_round, rounds=3, iterations=1)
    steps_per_s = float(np.median(rates))
    benchmark.extra_info.update(model=model_name, batch=batch, threads=torch.get_num_threads(), load=load,
                                steps_per_second=steps_per_s, graphs_per_second=steps_per_s * batch,
                                loadavg_1min=os.getloadavg()[0])


@pytest.mark.parametrize("sr_threads", THREADS)
def test_sr_generations_per_second(benchmark, sr_threads, load):
    rng = np.random.default_rng(0)
    dx, dy, r = rng.normal(size=2000), rng.normal(size=2000), rng.uniform(0.5, 3, size=2000)
    X = np.column_stack([dx, dy, r])
    y = 0.7 * dx * (r - 1) / r - 0.3 * dy * (r - 1) / r
    cfg = DistillConfig(population_size=500, generations=10, n_threads=sr_threads, seed=0)
    rates = []

    def one_round():
        start = time.perf_counter()
        _, generations = operon.search(X, y, cfg)
        rates.append(generations / (time.perf_counter() - start))

    benchmark.pedantic(one_round, rounds=3, iterations=1)
    benchmark.extra_info.update(sr_threads=sr_threads, load=load, generations_per_second=float(np.median(rates)),
                                loadavg_1min=os.getloadavg()[0])
