"""Every named starting point of the pipeline: a run's presets, the halo experiment's, and
the cluster resources a sweep job of each run preset asks for.

In:  a preset name, and for a run the law and strategy whose settings it carries.
Out: `preset(name, law, strategy)` -> `RunConfig` (PRESETS: tiny, cpu, paper; the command
     line's default is "tiny"); `config_from_values(name, values)` the preset with
     {field: value} overrides applied (`pipeline.config.with_values`);
     `halo_preset(name)` -> `halos.config.HaloConfig` (HALO_PRESETS: small, paper);
     PRESET_RESOURCES[name] -> the `Resources` of a sweep job of run preset `name`.
Imports no torch.
"""
from __future__ import annotations

import dataclasses

from distill.config import DistillConfig
from gnn.config import ModelConfig, TrainConfig, model_for_data
from gnn.strategies import get_strategy
from halos.config import HaloConfig
from nbody.config import SimConfig
from plumbing.errors import InputError

from .config import Resources, RunConfig, with_sr_threads, with_values

PRESETS = ("tiny", "cpu", "paper")
HALO_PRESETS = ("small", "paper")


# The cpu preset's training: 25 epochs of the tiny data at batch 32, 70,300 optimiser steps,
# with the relative loss (floor 1: a node at the median |a| weighs 1, one in a close encounter
# ~2·median/|a|), so that the few close encounters of 1/r and 1/r² laws do not decide what the
# network learns. Measured on the bottleneck grid, 3 seeds: both laws in 23 of 24 runs (the
# paper's loss, older distillation: 19 of 24), the network's test MAE lower in 19 of 24 runs
# (results/recipe-grid/third-law/relative/); 24 of 24, every cell in 3 of 3 seeds, with the
# robust constant refit (relative/robust-refit/).
# `--relative-loss-floor none` is the paper's loss.
CPU_TRAIN = TrainConfig(batch_size=32, epochs=25, lr=3e-3, seed=0, relative_loss_floor=1.0)
# The tiny preset's: 14 epochs (39,368 steps; benchmarks/RESULTS.md, "make run time").
TINY_TRAIN = dataclasses.replace(CPU_TRAIN, epochs=14)

# The discovery recipe: what every law gets, the same for all, each value either fixed or a
# rule that reads the data or the trained model (issue 28; benchmarks/RESULTS.md, "One recipe"):
#   prune_tail        the time steps of close encounters are dropped when the accelerations'
#                     tail reaches beyond 300 x their median (`nbody.dataset.derived_percentile`;
#                     none for light-tailed laws);
#   align "auto"      the edge fits read the messages in the node model's basis, one per value
#                     of a receiver property when the node model's Jacobians ask for it
#                     (`distill.align.auto_alignment`);
#   node_units "edge" the node fits read each summed component divided by the receiver factor
#                     its edge equation carries (1 when it carries none);
#   selection         PySR's "best" for the edge fits, "score" for the node fits;
#   simplify_tol      the selected equations lose every term that does nothing (the default).
#   third_law         every message is antisymmetric, e_ij = -e_ji, as every pair force is
#                     (`gnn.model`): a message can then carry no factor of the receiver
#                     (its mass, its charge) that the node model divides out again; without
#                     it charge 3D's networks sent the force times 1/(m1 + c) and SR rebuilt
#                     that mixed with r, in 3 of 3 seeds (benchmarks/RESULTS.md).
RECIPE_SIM = {"prune_tail": 300.0}
RECIPE_MODEL = {"third_law": True}
RECIPE_DISTILL = {"align": "auto", "node_units": "edge", "selection": "best", "node_selection": "score"}
# The cpu preset's SR budget: up to 150 generations, stopped once 20 in a row have not improved
# the Pareto front (the front's stability decides, not the law), searching a 2,000-row
# subsample; the wall-clock limit is only a guard (600 s a fit), so a slow or shared CPU runs
# the same search, not a shorter one (on all 5,000 rows most fits stopped at the old 120 s limit
# after 40-100 generations, so what was found depended on the machine's load).
CPU_SR = {"generations": 150, "stall_generations": 20, "search_rows": 2000, "max_time": 600.0}

def preset(name: str, law: str | None = None, strategy: str | None = None) -> RunConfig:
    """The named starting point; `law` and `strategy` set those fields (and the cpu preset's
    per-strategy settings). No setting depends on the law's name: every law gets the
    recipe (RECIPE_SIM, RECIPE_MODEL, RECIPE_DISTILL), whose rules read the data and the
    trained model.

    tiny:  spring, 2D, 4 bodies, bottleneck model (128-wide, 2 hidden layers, OneCycle peak
           lr 3e-3, 14 epochs of batch 32, the relative loss of CPU_TRAIN), 1,000
           simulations x 500 steps keeping every 5th, the recipe; SR stopped early after
           10 stalled generations, searching a 2,000-row subsample; about 1.5 minutes on
           2 CPU cores, and it rediscovers the force law and Newton's second law.
    cpu:   tiny trained 25 epochs, with the SR budget CPU_SR (up to 150 generations, stopped
           by the front's stability, on 2,000 rows, not by the clock), then the strategy's `recipe` (gnn.strategies):
           hamiltonian: the SR operators add log, because the model's pair energy is the
           potential itself and r1's is m1 m2 log r' (its force m1 m2/r' has a short form in
           + - * /, its energy none); and the Pareto rule is "best" on held-out rows in groups
           of shared particle constants ("best_heldout", `distill.select`), because an energy
           is defined only up to terms in those constants, which the fit rows' MAE charges to
           a short true form and a long one fits term by term (benchmarks/RESULTS.md,
           "Hamiltonian model").
           l1, kl, standard: the aligned basis combines all 100 message components ("all"),
           not the top two or three: after the preset's 70,000 steps the L1 messages are not
           sparse yet (the top components carry 22-69 % of the variance), while the node model
           reads exactly dim combinations of them, and those are the force (benchmarks/RESULTS.md,
           "L1: the node model's reading of all components"). The same holds for any message
           that is not sparse, so the standard and KL models get it too (the paper's reading,
           the top components by variance or KL, is `--align-components top`).
           run.py applies flags after the preset, so an explicit flag beats the recipe.
    paper: the facts sheet's full-size settings (10,000 simulations x 1,000 steps, the
           demo's 100 kept snapshots per simulation, 300-wide 3-hidden-layer MLPs,
           batch 64: 100 epochs of the 900,000 training graphs, ~1.4M optimiser steps; the
           larger SR budget, every generation run on all fit rows) and the paper's
           distillation (raw components, "score"); the recipe is `--preset cpu`'s.
    """
    if name == "cpu":
        tiny = preset("tiny")
        base = dataclasses.replace(tiny, preset=name, train=CPU_TRAIN)
        return with_values(base, {**({"law": law} if law else {}), **CPU_SR,
                                  **get_strategy(strategy or base.model.strategy).recipe})
    if name == "tiny":
        sim = SimConfig(law=law or "spring", dim=2, n=4, n_sims=1000, nt=500, keep_every=5, seed=0, **RECIPE_SIM)
        return RunConfig(
            preset=name, sim=sim,
            model=model_for_data(ModelConfig(strategy="bottleneck", hidden=128, n_hidden_layers=2, **RECIPE_MODEL), sim),
            train=TINY_TRAIN,
            distill=DistillConfig(stall_generations=10, search_rows=2000, **RECIPE_DISTILL),
        )
    if name == "paper":
        sim = SimConfig(law=law or "spring", dim=2, n=4, n_sims=10_000, nt=1000, keep_every=10, seed=0)
        return RunConfig(
            preset=name, sim=sim,
            model=model_for_data(ModelConfig(strategy="l1"), sim),
            train=TrainConfig(batch_size=64, epochs=100, seed=0),
            distill=DistillConfig(population_size=1000, generations=200),
        )
    raise InputError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")


def config_from_values(preset_name: str, values: dict) -> RunConfig:
    """Preset `preset_name` (with its settings for values["law"] and values["strategy"]) and
    then `values` applied: {field: value} for every stage, {"stage:field": value} for one stage.
    values["threads"] (`--threads`) is also the SR search's thread count (`with_sr_threads`)."""
    values = with_sr_threads(values, "n_threads", "distill:n_threads")
    return with_values(preset(preset_name, values.get("law"), values.get("strategy")), values)


def halo_preset(name: str) -> HaloConfig:
    """"paper": the paper's settings (the L1 GN with 500 hidden units; 100 epochs x 1500 steps
    of 32 receiver halos; benchmarks/RESULTS.md has what one epoch costs on 2 CPU cores);
    "small": the default `run.py halos` job, minutes on a laptop CPU: a 128-wide network with 2
    hidden layers, peak lr 3e-3, 3 epochs of 7000 steps (6000 steps did not recover the
    planted law's form, benchmarks/RESULTS.md), the SR budget of the paper preset."""
    if name == "paper":
        return HaloConfig()
    if name == "small":
        return dataclasses.replace(HaloConfig(), hidden=128, n_hidden_layers=2, lr=3e-3, epochs=3,
                                   steps_per_epoch=7000, eval_halos=3000)
    raise InputError(f"unknown halo preset {name!r}; choose one of {', '.join(HALO_PRESETS)}")


# Per-preset defaults. tiny and cpu: one run took 4-15 minutes on 2 CPU cores (benchmarks/
# RESULTS.md; results/cpu/summary.csv wall_s), so an hour is ample. paper: one GPU; a run is
# estimated at ~5 h on 2 CPU cores and has not been timed on a GPU (README, "The paper's
# sweep on Slurm"), hence 12 h; its dataset is 0.16 GB (2D) to 0.22 GB (3D), and 16 GB of
# memory leaves room for torch and the SR engine.
PRESET_RESOURCES: dict[str, Resources] = {
    "tiny": Resources(),
    "cpu": Resources(),
    "paper": Resources(gpus_per_job=1, cpus_per_task=8, mem_gb=16.0, timeout_min=12 * 60),
}
