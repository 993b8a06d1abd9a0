"""What recording the message history costs in training throughput.

The same training run of the `tiny` preset's model (bottleneck, 2D, n = 4, 128 wide, 2 hidden
layers, batch 32, on CPU) is timed with recording off (`message_history_every = 0`) and on
at the default interval, alternating off/on within each round so that a change in the
machine's load hits both alike. Each run takes STEPS optimiser steps on random spring states
(`bench_gnn.spring_arrays`, with the law so that recording can compare messages with forces).

Reported in `benchmark.extra_info`:
    wall_overhead      median wall time of a run with recording / without, minus 1; it
                       includes the records before the first and after the last step, which
                       a long run spreads over many more steps
    steady_overhead    median seconds of one record / (interval x seconds per step without
                       recording): the cost in a run long enough that those two records vanish
    record_seconds     median seconds of one record (model call on the fixed edges + analysis)
    step_ms            milliseconds per optimiser step without recording
Target: both overheads under 3 %.

Run: `pytest benchmarks/bench_history.py --benchmark-columns=min,mean,rounds` on a quiet machine.
"""
import dataclasses
import itertools
import time

import numpy as np

from bench_gnn import spring_arrays
from gnn.config import TrainConfig
from gnn.history import load_history
from gnn.train import train
from nbody.laws import get_law
from pipeline.presets import preset

STEPS = 3000
ROUNDS = 3
TINY = preset("tiny")
EVERY = TrainConfig.message_history_every


def test_message_history_overhead(benchmark, tmp_path):
    x, a = spring_arrays(8192)
    data = {"train": (x, a), "test": (x[:256], a[:256]), "law": get_law("spring")}
    runs = itertools.count()
    wall: dict[int, list[float]] = {0: [], EVERY: []}
    step_seconds, record_seconds = [], []

    def run_once(every: int) -> None:
        cfg = dataclasses.replace(TINY.train, epochs=1, steps_per_epoch=STEPS, device="cpu",
                                  message_history_every=every)
        out = tmp_path / f"run{next(runs)}"
        start = time.perf_counter()
        metrics = train(data, TINY.model, cfg, out, progress=False).metrics
        wall[every].append(time.perf_counter() - start)
        if every == 0:
            step_seconds.append(metrics["train_seconds"] / metrics["steps"])
        else:
            record_seconds.extend(load_history(out).seconds.tolist())

    def one_round() -> None:
        for every in (0, EVERY):
            run_once(every)

    benchmark.pedantic(one_round, rounds=ROUNDS, warmup_rounds=0, iterations=1)
    record = float(np.median(record_seconds))
    step = float(np.median(step_seconds))
    benchmark.extra_info.update(
        wall_overhead=float(np.median(wall[EVERY]) / np.median(wall[0]) - 1), steady_overhead=record / (EVERY * step),
        record_seconds=record, step_ms=1000 * step, steps=STEPS, every=EVERY, rounds=ROUNDS)
