"""Training throughput of the Hamiltonian model (strategy "hamiltonian") against the bottleneck GNN.

Both sides are `gnn.train.train` itself on the same spring graphs (n = 4, 2D), the same
batch, steps and MLP sizes; graphs/s is read from metrics.json (optimiser-step time only).
A Hamiltonian step differentiates the energy once for the accelerations (create_graph) and
the loss again for the weights: a double backward through both MLPs, where the bottleneck
step has one forward and one backward. Two sizes: the paper's MLPs (300 wide, 3 hidden
layers, batch 64) and the tiny/cpu presets' (128 wide, 2 hidden layers, batch 32).

Run: `pytest benchmarks/bench_hamiltonian.py --benchmark-columns=min,mean,rounds`; the ratio
is graphs_per_second (bottleneck) / graphs_per_second (hamiltonian) of the same size.
"""
import pytest

from gnn.config import ModelConfig, TrainConfig

from bench_gnn import DIM, spring_arrays, train_rounds

SIZES = {"paper": (300, 3, 64), "cpu-preset": (128, 2, 32)}   # hidden, hidden layers, batch
STEPS = 100


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("strategy", ["bottleneck", "hamiltonian"])
def test_training_step(benchmark, tmp_path, strategy, size):
    hidden, layers, batch = SIZES[size]
    x, a = spring_arrays(8192)
    data = {"train": (x, a), "test": (x[:64], a[:64])}
    model = ModelConfig(strategy=strategy, dim=DIM, hidden=hidden, n_hidden_layers=layers)
    cfg = TrainConfig(batch_size=batch, epochs=1, steps_per_epoch=STEPS, device="cpu",
                      checkpoint_every=10 * STEPS, log_every=10 * STEPS, message_history_every=0)
    benchmark.extra_info.update(graphs_per_second=train_rounds(benchmark, data, model, cfg, tmp_path), batch=batch,
                                steps=STEPS, strategy=strategy, size=size)
