"""Train the halo GN on batches of receiver halos with all their neighbours, resumably.

In:  a `Catalogue`, its `HaloGraph`, a `HaloConfig`, an output folder.
Out: in out_dir: halo_config.json, standardiser.json, splits.npz (train / test / ood halo
     indices), checkpoint.pt (kind "symdistill.halos.model": state_dict + meta), last.pt
     (resume point, `gnn.loop`, with the catalogue's fingerprint and the config as "identity"), metrics.json (mean |δ - δ̂| of the network per set, the constant
     baseline, steps, train_seconds, history).

Splits (`split_halos`): halos within `cutoff` of a box face are left out of every set
(`face_mask`); of the others, those with δ > ood_threshold are the out-of-distribution
set (paper: δ > 1 held out), the rest are shuffled into test (`test_fraction`) and train.
Only train halos are receivers of a training batch; every halo is a sender.

Loss per batch of B receivers (docs/facts.md §7; the L1 term as gnn.train scales it, per
node the sum over its incoming edges):
    (1/B) Σ_i |δ_i - δ̂_i|  +  l1_weight · (1/B) Σ_edges ||m||_1
Adam(lr, weight_decay), OneCycleLR(max_lr=lr, final_div_factor) stepped every batch; batch
k of pass p is a slice of a permutation seeded by (seed, p), so a resumed run sees the same
batches. The loop is the GNN's (`gnn.loop`: resume point, a stop on a non-finite loss,
progress, per-epoch history), reading the loss after every step.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gnn.checkpoint import load_torch, save_torch
from gnn.loop import Batches, Plan, TrainingLoop, one_cycle
from gnn.train import resolve_device
from plumbing.errors import InputError
from plumbing.io import config_from_dict, load_json, load_npz, save_json, save_npz, to_jsonable
from plumbing.progress import progress_bar

from .catalogue import Catalogue, fingerprint
from .config import HaloConfig
from .features import Standardiser
from .formulas import mean_abs_error
from .graph import HaloGraph, interior
from .model import HaloGN, make_batch, run_halos

MODEL_KIND = "symdistill.halos.model"
RESUME_KIND = "symdistill.halos.resume"
SETS = ("train", "test", "ood")


@dataclass
class Trained:
    """What `train_halos` and `load_trained` return."""

    model: HaloGN
    std: Standardiser
    splits: dict[str, np.ndarray]
    metrics: dict


def split_halos(cat: Catalogue, cfg: HaloConfig) -> dict[str, np.ndarray]:
    """{"train", "test", "ood"}: sorted int64 halo indices (module docstring)."""
    usable = interior(cat.pos, cat.box, cfg.cutoff) if cfg.face_mask else np.ones(len(cat), bool)
    ood = np.flatnonzero(usable & (cat.delta > cfg.ood_threshold))
    rest = np.random.default_rng([cfg.seed, 7]).permutation(np.flatnonzero(usable & (cat.delta <= cfg.ood_threshold)))
    n_test = int(round(cfg.test_fraction * len(rest)))
    splits = {"train": np.sort(rest[n_test:]), "test": np.sort(rest[:n_test]), "ood": ood}
    if len(splits["train"]) < cfg.batch_size or len(splits["test"]) == 0:
        raise InputError(f"too few usable halos: {len(splits['train'])} to train on and {len(splits['test'])} to test "
                         f"(of {len(cat)}, {int(usable.sum())} away from the faces); give a larger catalogue")
    return splits


def eval_subset(indices: np.ndarray, cfg: HaloConfig) -> np.ndarray:
    """At most cfg.eval_halos of `indices`, a fixed random choice (sorted)."""
    if cfg.eval_halos is None or len(indices) <= cfg.eval_halos:
        return indices
    return np.sort(np.random.default_rng([cfg.seed, 11]).choice(indices, cfg.eval_halos, replace=False))


def train_halos(cat: Catalogue, graph: HaloGraph, cfg: HaloConfig, out_dir: str | Path, *,
                progress: bool = True, stop_at_step: int | None = None) -> Trained | None:
    """Train (resuming from out_dir/last.pt) and evaluate; None when stopped at `stop_at_step`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    std = Standardiser.of(cat)
    splits = split_halos(cat, cfg)
    nodes = std.node_features(cat)
    train_idx = splits["train"]
    batch = cfg.batch_size
    total = cfg.epochs * cfg.steps_per_epoch
    model = HaloGN(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = one_cycle(opt, cfg.lr, total, cfg.final_div_factor)
    identity = {"catalogue": fingerprint(cat), "config": to_jsonable(cfg)}
    resume = out / "last.pt"
    # log_every 1: the loss is read, and checked to be finite, after every step.
    loop = TrainingLoop(model, opt, sched, Plan(total, cfg.steps_per_epoch, cfg.checkpoint_every, 1, resume,
                                                RESUME_KIND, {"identity": identity}, "train halos"), device)
    loop.resume({"identity": dict}, lambda state: _check_same_run(state, identity, resume))
    save_json(out / "halo_config.json", cfg)
    save_json(out / "standardiser.json", std)
    save_npz(out / "splits.npz", splits)
    delta = torch.from_numpy(cat.delta.astype(np.float32)).to(device)
    batches = Batches(len(train_idx), batch,
                      lambda pass_index: np.random.default_rng([cfg.seed, pass_index]).permutation(train_idx))

    def step_loss(step: int) -> torch.Tensor:
        receivers = batches(step)
        b = make_batch(cat, std, nodes, graph, receivers, device)
        pred, messages = model(b.node_x, b.edge_x, b.local)
        return ((pred - delta[receivers]).abs().sum() + cfg.l1_weight * messages.abs().sum()) / len(receivers)

    done = loop.run(step_loss, progress=progress, stop_at_step=stop_at_step)
    if not done.finished:
        return None
    step, seconds, history = done.step, done.train_seconds, done.history
    metrics = {"mae": {}, "n_halos": {name: int(len(idx)) for name, idx in splits.items()},
               "baseline_constant_mae": {}, "steps": step, "train_seconds": seconds,
               "halos_per_second": step * batch / seconds if seconds > 0 else None,
               "device": str(device), "history": history, "synthetic": cat.synthetic}
    median = float(np.median(cat.delta[train_idx]))
    for name in SETS:
        idx = eval_subset(splits[name], cfg)
        if len(idx):
            metrics["mae"][name] = mean_abs_error(run_halos(model, cat, std, graph, idx)[0], cat.delta[idx])
            metrics["baseline_constant_mae"][name] = mean_abs_error(np.full(len(idx), median), cat.delta[idx])
    save_torch(out / "checkpoint.pt", MODEL_KIND, {"model": model.state_dict(),
                                                    "meta": {"identity": identity, "metrics": metrics}})
    save_json(out / "metrics.json", metrics)
    return Trained(model.eval(), std, splits, metrics)


def _check_same_run(state: dict, identity: dict, path: Path) -> None:
    """InputError unless the resume point `state` was written for this catalogue and config."""
    if state["identity"] != identity:
        raise InputError(f"{path} was written for another catalogue or config; use another --out")


def load_trained(out_dir: str | Path, cat: Catalogue) -> Trained:
    """A finished training folder (checkpoint.pt, configs, splits) for catalogue `cat`."""
    out = Path(out_dir)
    state = load_torch(out / "checkpoint.pt", MODEL_KIND)
    cfg = config_from_dict(HaloConfig, load_json(out / "halo_config.json"))
    if state["meta"]["identity"]["catalogue"] != fingerprint(cat):
        raise InputError(f"{out} holds a model trained on another catalogue; use another --out")
    model = HaloGN(cfg)
    model.load_state_dict(state["model"])
    std = config_from_dict(Standardiser, load_json(out / "standardiser.json"))
    return Trained(model.eval(), std, load_npz(out / "splits.npz"), load_json(out / "metrics.json"))
