"""Training throughput of the GNN: our pipeline against a torch_geometric one.

Measures graphs/s of full training steps (batch draw, augmentation, forward, loss with the
L1 message penalty, backward, Adam + OneCycleLR step) for the paper's network (n = 4, 2D,
hidden 300, 3 hidden layers, 100-dim L1 messages) at batch 64 (the demo's) and 4096:

    ours  `gnn.train.train` itself: the training split is one device tensor, batches are
          slices of a shuffled permutation, one shared edge template; graphs/s is read from
          metrics.json ("graphs_per_second" counts optimiser-step time only).
    pyg   the pipeline users would otherwise run (the official code's): a `MessagePassing`
          layer with the same two MLPs, fed by `torch_geometric.loader.DataLoader` over a list
          of per-graph `Data` objects; timed over the same number of steps.

Both sides are timed after a warm-up round, and CUDA is synchronised before a clock is read.
Results go to `benchmark.extra_info["graphs_per_second"]`. PyG cases skip when torch_geometric
is not installed; CUDA cases skip without a GPU.

Run: `pytest benchmarks/bench_gnn.py --benchmark-columns=min,mean,rounds`
(never under NUMBA_ENABLE_CUDASIM, which the test conftest sets; this folder has no conftest).
"""
import functools
import itertools
import time

import numpy as np
import pytest
import torch

from gnn.config import ModelConfig, TrainConfig
from gnn.model import mlp
from gnn.train import train
from nbody.laws import accelerations, get_law
from nbody.state import pack

N, DIM = 4, 2
MODEL = ModelConfig(strategy="l1", dim=DIM)  # the paper's sizes
CASES = {64: 200, 4096: 4}                    # batch size -> timed steps per round
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]


@functools.lru_cache(maxsize=None)
def spring_arrays(n_graphs: int) -> tuple[np.ndarray, np.ndarray]:
    """Random spring states x [G, n, 2*dim+2] and their accelerations [G, n, dim] (float32)."""
    rng = np.random.default_rng(0)
    pos, vel = rng.normal(size=(2, n_graphs, N, DIM))
    q, m = rng.normal(size=(n_graphs, N)), np.exp(rng.normal(size=(n_graphs, N)))
    a = accelerations(get_law("spring"), pos, vel, q, m, 0.01)
    x = pack(pos, vel, q, m)
    return x.astype(np.float32), a.astype(np.float32)


def n_graphs_for(batch: int) -> int:
    return max(4 * batch, 8192)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch", list(CASES))
def test_ours(benchmark, tmp_path, batch, device):
    steps = CASES[batch]
    x, a = spring_arrays(n_graphs_for(batch))
    data = {"train": (x, a), "test": (x[:64], a[:64])}
    cfg = TrainConfig(batch_size=batch, epochs=1, steps_per_epoch=steps, device=device,
                      checkpoint_every=10 * steps, log_every=10 * steps)
    benchmark.extra_info.update(graphs_per_second=train_rounds(benchmark, data, MODEL, cfg, tmp_path),
                                batch=batch, steps=steps, pipeline="ours", device=device)


def train_rounds(benchmark, data, model: ModelConfig, cfg: TrainConfig, tmp_path) -> float:
    """Time `gnn.train.train` (a fresh run folder per round) over 3 rounds after a warm-up;
    returns the median of the timed rounds' graphs/s (metrics.json: optimiser steps only)."""
    rates = []
    run_ids = itertools.count()

    def one_round():
        metrics = train(data, model, cfg, tmp_path / f"run{next(run_ids)}", progress=False).metrics
        rates.append(metrics["graphs_per_second"])

    benchmark.pedantic(one_round, rounds=3, warmup_rounds=1, iterations=1)
    return float(np.median(rates[1:]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch", list(CASES))
def test_pyg(benchmark, batch, device):
    pyg_nn = pytest.importorskip("torch_geometric.nn")
    from torch_geometric.data import Data
    from torch_geometric.loader import DataLoader

    class PygGN(pyg_nn.MessagePassing):
        """The official GN layer shape: sum of phi_e(cat[x_i, x_j]) into phi_v(cat[x_i, sum])."""

        def __init__(self, cfg: ModelConfig):
            super().__init__(aggr="add")
            self.edge_mlp = mlp(2 * cfg.n_features, cfg.resolved_msg_dim, cfg.hidden, cfg.n_hidden_layers)
            self.node_mlp = mlp(cfg.n_features + cfg.resolved_msg_dim, cfg.dim, cfg.hidden, cfg.n_hidden_layers)
            self.messages = None  # kept by message() for the L1 penalty, as our model returns them

        def forward(self, x, edge_index):
            return self.propagate(edge_index, x=x)

        def message(self, x_i, x_j):
            self.messages = self.edge_mlp(torch.cat([x_i, x_j], dim=-1))  # [E_total, msg_dim]
            return self.messages

        def update(self, aggr_out, x):
            return self.node_mlp(torch.cat([x, aggr_out], dim=-1))

    steps = CASES[batch]
    x, a = spring_arrays(n_graphs_for(batch))
    ii, jj = np.where(~np.eye(N, dtype=bool))
    edge_index = torch.tensor(np.stack([jj, ii]))  # row 0 source, row 1 target (PyG's flow)
    graphs = [Data(x=torch.from_numpy(xg), y=torch.from_numpy(ag), edge_index=edge_index) for xg, ag in zip(x, a)]
    loader = DataLoader(graphs, batch_size=batch, shuffle=True, drop_last=True)
    cfg = TrainConfig()
    torch.manual_seed(cfg.seed)
    model = PygGN(MODEL).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=100 * steps,
                                                    final_div_factor=cfg.final_div_factor)

    def batches():
        while True:
            yield from loader

    stream = batches()
    rates = []

    def one_round():
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            g = next(stream).to(device)
            shift = torch.randn(g.num_graphs, DIM, device=device) * cfg.augment_sigma  # per graph, as ours
            xb = torch.cat([g.x[:, :DIM] + shift[g.batch], g.x[:, DIM:]], dim=-1)
            pred = model(xb, g.edge_index)
            loss = ((g.y - pred).abs().sum() + cfg.l1_weight * model.messages.abs().sum() / N) / g.num_graphs
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        _sync(device)
        rates.append(steps * batch / (time.perf_counter() - start))

    benchmark.pedantic(one_round, rounds=3, warmup_rounds=1, iterations=1)
    benchmark.extra_info.update(graphs_per_second=float(np.median(rates[1:])), batch=batch,
                                steps=steps, pipeline="pyg", device=device)



# The reproduction's data size (n = 4, 2D): one epoch over 3.75 M graphs on a GPU, at a large batch.
EPOCH_GRAPHS = 3_750_000
# name -> (batch, amp, compile)
EPOCH_VARIANTS = {"fp32_4096": (4096, False, False), "amp_4096": (4096, True, False),
                  "amp_16384": (16384, True, False), "amp_compile_16384": (16384, True, True)}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("variant", list(EPOCH_VARIANTS))
def test_cuda_epoch(benchmark, tmp_path, variant):
    """One epoch of `gnn.train.train` over 3.75 M spring graphs (the paper's L1 network) on
    CUDA: extra_info has the epoch's optimiser-step seconds (metrics.json "train_seconds"), the
    wall time of the whole call (data to the device, compilation and evaluation included)
    and the test MAE after the epoch, to compare bf16 AMP and torch.compile with float32."""
    batch, amp, compiled = EPOCH_VARIANTS[variant]
    x, a = spring_arrays(EPOCH_GRAPHS)
    data = {"train": (x, a), "test": (x[:8192], a[:8192])}
    cfg = TrainConfig(batch_size=batch, epochs=1, device="cuda", amp=amp, compile=compiled,
                      checkpoint_every=10 ** 9, log_every=10 ** 9)
    start = time.perf_counter()
    result = benchmark.pedantic(train, args=(data, MODEL, cfg, tmp_path / "run"), kwargs={"progress": False},
                                rounds=1, iterations=1)
    metrics = result.metrics
    benchmark.extra_info.update(variant=variant, batch=batch, amp=amp, compiled=compiled, graphs=EPOCH_GRAPHS,
                                epoch_seconds=metrics["train_seconds"], wall_seconds=time.perf_counter() - start,
                                graphs_per_second=metrics["graphs_per_second"], test=metrics["test"])


# --------------------------------------------------------------------------- #
# CPU training step: eager float32 against bf16 autocast and torch.compile     #
# --------------------------------------------------------------------------- #

CPU_MODELS = {  # name -> (model, batch): the tiny preset's and the paper's networks
    "tiny": (ModelConfig(strategy="bottleneck", dim=DIM, hidden=128, n_hidden_layers=2), 32),
    "paper": (MODEL, 64),
}
# name -> (TrainConfig.cpu_amp, TrainConfig.cpu_compile, fused Adam as `gnn.train.adam` builds it)
CPU_VARIANTS = {"eager_fp32": (False, False, False), "fused_adam": (False, False, True),
                "bf16": (True, False, True), "compile": (False, True, True), "compile_bf16": (True, True, True)}


@pytest.mark.parametrize("model_name", list(CPU_MODELS))
def test_cpu_step_variants(benchmark, model_name):
    """graphs/s of the training step of `gnn.train` on CPU under each (cpu_amp, cpu_compile,
    fused Adam), interleaved in one run; extra_info has each variant's median and its ratio to
    eager float32 with torch's per-parameter Adam loop. Compilation happens in the warm-up
    steps, which are not timed."""
    from gnn.model import GNN
    from gnn.train import adam, augment, batch_loss

    model_cfg, batch = CPU_MODELS[model_name]
    steps = 300 if model_name == "tiny" else 60
    x, a = (torch.from_numpy(t) for t in spring_arrays(8192))
    cfg = TrainConfig(batch_size=batch)
    gen = torch.Generator().manual_seed(0)
    runners = {}
    for name, (amp, compiled, fused) in CPU_VARIANTS.items():
        torch.manual_seed(cfg.seed)
        model = GNN(model_cfg)
        optimizer = (adam(model, cfg, torch.device("cpu")) if fused else
                     torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay))
        fwd = torch.compile(model) if compiled else model

        def run(k, model=model, optimizer=optimizer, fwd=fwd, amp=amp):
            for _ in range(k):
                idx = torch.randint(0, len(x), (batch,), generator=gen)
                xb = augment(x[idx], DIM, cfg.augment_sigma)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                    out = fwd(xb)
                loss = batch_loss(out, a[idx], model_cfg.strategy, cfg)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

        run(20)   # warm-up, compiles
        runners[name] = run
    rates = {name: [] for name in runners}

    def one_round():
        for name, run in runners.items():
            start = time.perf_counter()
            run(steps)
            rates[name].append(steps * batch / (time.perf_counter() - start))

    benchmark.pedantic(one_round, rounds=3, iterations=1)
    medians = {name: float(np.median(r)) for name, r in rates.items()}
    benchmark.extra_info.update(model=model_name, batch=batch, steps=steps, threads=torch.get_num_threads(),
                                graphs_per_second=medians,
                                ratio_to_eager_fp32={k: v / medians["eager_fp32"] for k, v in medians.items()})
