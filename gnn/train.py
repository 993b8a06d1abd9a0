"""Train a `GNN` to predict accelerations, resumably, and evaluate it.

In:  data = a dataset folder path, a loaded `nbody.dataset.Dataset`, or a dict of NumPy
     arrays {"train": (x, a), "test": (x, a), "val": (x, a) optional} with x [G, n, F]
     float32 node features and a [G, n, dim] float32 true accelerations; a `ModelConfig`,
     a `TrainConfig` and an output folder. The dict may also hold "law" (a `Law` or a
     registered name) and "softening" (default `SimConfig.softening`), which the message
     history needs: without a law no history is recorded.
Out: in `out_dir`:
     checkpoint.pt      final model + meta (gnn.checkpoint; written atomically)
     last.pt            resume point (model, optimizer, scheduler, RNG states, step)
     metrics.json       see `train` (atomic)
     model_config.json, train_config.json
     message_history.npz  the messages on fixed held-out edges every
                        `message_history_every` steps (`gnn.history`; with a known law)

Loss per batch of B graphs with n particles (paper App. A; docs/facts.md §2.2):

    loss = (1/B) [ sum_{nodes, dims} |a_true - a_pred| + reg ]
reg is the strategy's penalty (`gnn.strategies`, `Strategy.penalise`):
    l1:  reg = l1_weight * sum_{edges of the batch} ||m||_1 / n
    kl:  reg = kl_weight * sum_{edges of the batch} sum_k KL_k / n     (strategies.kl_divergence)
    hamiltonian: reg = energy_weight * strategies.energy_penalty (paper App. A.4)
                 + velocity_weight * sum_{nodes, dims} |dH/dp - v|  (0 in the paper)
    standard, bottleneck: reg = 0

With TrainConfig.relative_loss_floor = f, each node's sum over dims is weighted by
(1 + f)·s / (|a_true| + f·s), s the median |a_true| of the training nodes (the config's
docstring says why).

Per graph this is the demo's Sum|da| + 1e-2 * Sum_{edges of one graph} ||m||_1 / n. The demo
evaluates the regulariser on graph 0 of each batch and multiplies by B; we evaluate it on
every graph of the batch, which has the same expectation with less noise (docs/facts.md §4 #14).
The translation augmentation draws an independent N(0, sigma^2) shift per graph (the official
code draws one shift for the whole batch).

Optimisation: Adam(lr, weight_decay) with OneCycleLR(max_lr=lr, total_steps,
final_div_factor) stepped every batch; Adam's fused kernel on CPU and CUDA (`adam`: on the
tiny preset's CPU step 1.21x the per-parameter loop, benchmarks/RESULTS.md). The training
split lives on the device as one tensor; batch k of pass p is a slice of a permutation seeded
by (seed, p), so batches are drawn by indexing, never by a per-graph DataLoader, and a
resumed run sees the same batches.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nbody.config import SPLIT_NAMES, SimConfig
from nbody.laws import Law, get_law, law_from_dict
from plumbing.errors import InputError
from plumbing.io import config_from_dict, save_json, to_jsonable
from plumbing.progress import progress_bar
from plumbing.rundir import meta_fingerprint

from .checkpoint import RESUME_KIND, check_model_size, save_model
from .config import ModelConfig, TrainConfig
from .history import HISTORY_FILE, HistoryRecorder, load_history, save_history
from .loop import Batches, Plan, TrainingLoop, one_cycle, sync_device
from .metrics import mae_per_node
from .build import build_model
from .model import GNN, ModelOutput
from .strategies import get_strategy


@dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        model: the trained model (eval mode, on the training device).
        metrics: the contents of metrics.json (empty when stopped early).
        out_dir: the output folder.
        finished: False when `stop_at_step` stopped the run before its last step.
    """

    model: GNN
    metrics: dict
    out_dir: Path
    finished: bool


def resolve_device(name: str) -> torch.device:
    """"auto" -> CUDA when available, else CPU; a CUDA request without a GPU is an InputError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)


def load_splits(data: Any, model_cfg: ModelConfig) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict]:
    """Read the train/val/test graphs of `data` and check them against `model_cfg`.

    Args:
        data: dataset folder (str or Path), a loaded `nbody.dataset.Dataset`, or a dict
            {"train": (x, a), "test": (x, a), "val": (x, a) (optional)} of arrays.
        model_cfg: the model the graphs are for.
    Returns:
        ({split: (x [G, n, F] float32, a [G, n, dim] float32)}, dataset info
        {"path": str | None, "meta": dict}); "val" is absent when it has no graphs.
    Raises:
        InputError: missing dataset, missing split, or shapes that do not fit `model_cfg`.
    """
    info: dict[str, Any] = {"path": None, "meta": {}}
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.exists():
            raise InputError(f"dataset not found: {path}")
        from nbody.dataset import load_dataset  # deferred: the simulator is not needed for arrays
        data = load_dataset(path)
        info["path"] = str(path)
    if isinstance(data, dict):
        raw = {name: data[name] for name in SPLIT_NAMES if name in data}
    elif hasattr(data, "split"):
        if data.config.dim != model_cfg.dim:
            raise InputError(f"dataset has dim={data.config.dim} but the model has dim={model_cfg.dim}")
        if data.law.topology != model_cfg.topology:
            raise InputError(f"dataset law {data.law.name!r} uses topology {data.law.topology!r} "
                             f"but the model uses {model_cfg.topology!r}")
        info["meta"] = dict(data.meta)
        raw = {name: data.split(name).graphs() for name in SPLIT_NAMES}
    else:
        raise InputError(f"cannot train on a {type(data).__name__}: give a dataset path or a dict of arrays")
    for name in ("train", "test"):
        if name not in raw or len(raw[name][0]) == 0:
            raise InputError(f"the data has no {name!r} graphs")
    splits = {}
    n = None
    for name, (x, a) in raw.items():
        # Copies read-only memory maps: torch tensors made from NumPy arrays must be writable.
        x = np.require(x, dtype=np.float32, requirements=("C", "W"))
        a = np.require(a, dtype=np.float32, requirements=("C", "W"))
        if x.ndim != 3 or a.ndim != 3 or x.shape[:2] != a.shape[:2]:
            raise InputError(f"{name}: expected x [G, n, F] and a [G, n, dim], got {list(x.shape)} and {list(a.shape)}")
        if x.shape[2] != model_cfg.n_features or a.shape[2] != model_cfg.dim:
            raise InputError(f"{name}: data has {x.shape[2]} features and dim {a.shape[2]}, but the model "
                             f"expects {model_cfg.n_features} features and dim {model_cfg.dim}")
        if n is not None and x.shape[1] != n:
            raise InputError(f"{name}: graphs have {x.shape[1]} nodes but train has {n}")
        n = x.shape[1] if n is None else n
        if len(x):
            splits[name] = (x, a)
    return splits, info


def augment(x: Tensor, dim: int, sigma: float) -> Tensor:
    """Translate each graph by its own random N(0, sigma^2) shift of the positions.

    Args:
        x: [B, n, F] node features, positions in columns [0, dim).
        dim: spatial dimension.
        sigma: shift std (0 returns x unchanged).
    Returns:
        [B, n, F] shifted copy (uses the global torch RNG).
    """
    if sigma == 0:
        return x
    shift = torch.randn(x.shape[0], 1, dim, device=x.device, dtype=x.dtype) * sigma  # [B, 1, dim]
    return torch.cat([x[..., :dim] + shift, x[..., dim:]], dim=-1)


def batch_loss(out: ModelOutput, a: Tensor, strategy: str, cfg: TrainConfig, a_scale: float = 1.0) -> Tensor:
    """The training loss of one batch (module docstring).

    Args:
        out: the model's output on the batch.
        a: [B, n, dim] true accelerations.
        strategy: ModelConfig.strategy (its `Strategy.penalise` adds the regulariser).
        cfg: supplies l1_weight, kl_weight and relative_loss_floor.
        a_scale: s of the relative loss, the median |a| of the training nodes
            (`acceleration_scale`); unused when cfg.relative_loss_floor is None.
    Returns:
        Scalar float32 loss, per graph.
    """
    n_graphs, n = a.shape[:2]
    error = (a - out.acc.float()).abs().sum(-1)                      # [B, n]
    if cfg.relative_loss_floor is not None:
        floor = cfg.relative_loss_floor * a_scale
        error = error * ((a_scale + floor) / (a.norm(dim=-1) + floor))
    loss = get_strategy(strategy).penalise(error.sum(), out, cfg, n)
    return loss / n_graphs


@torch.no_grad()
def evaluate(model: GNN, x, a, *, batch_size: int = 1024, device: str | torch.device | None = None) -> dict:
    """Prediction error of `model` on graphs (x, a), in eval mode and float32.

    Args:
        model: a GNN; moved to `device` if one is given.
        x: [G, n, F] node features; a: [G, n, dim] true accelerations (NumPy or torch).
        batch_size: graphs per forward pass.
        device: where to run; None uses the model's device.
    Returns:
        {"mae_per_node": mean over graphs and nodes of sum over dims |da|,
         "mae_per_node_std": std of the per-graph value across graphs,
         "mae_per_node_sem": std / sqrt(G),
         "loss_per_graph": mean over graphs of sum over nodes and dims |da| (the demo's unit),
         "loss_per_graph_std", "n_graphs"}.
    """
    if device is not None:
        model.to(device)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    per_graph = []
    for start in range(0, len(x), batch_size):
        xb = torch.as_tensor(x[start:start + batch_size], dtype=torch.float32, device=device)  # [b, n, F]
        ab = torch.as_tensor(a[start:start + batch_size], dtype=torch.float32, device=device)  # [b, n, dim]
        per_graph.append((model(xb).acc.float() - ab).abs().sum(dim=(1, 2)).double().cpu())  # [b]
    model.train(was_training)
    if not per_graph:
        raise InputError("cannot evaluate on zero graphs")
    loss = torch.cat(per_graph).numpy()  # [G] sum |da| per graph
    return _summary(loss, n_nodes=x.shape[1])


def _summary(loss_per_graph: np.ndarray, n_nodes: int) -> dict:
    per_node = loss_per_graph / n_nodes
    g = len(loss_per_graph)
    mean, std = mae_per_node(per_node)
    return {
        "mae_per_node": mean,
        "mae_per_node_std": std,
        "mae_per_node_sem": std / math.sqrt(g),
        "loss_per_graph": float(loss_per_graph.mean()),
        "loss_per_graph_std": float(loss_per_graph.std(ddof=1)) if g > 1 else 0.0,
        "n_graphs": g,
    }


def acceleration_scale(a: np.ndarray) -> float:
    """The median |a| over the nodes of a [G, n, dim] array (s of the relative loss), > 0."""
    scale = float(np.median(np.linalg.norm(a, axis=-1)))
    if not scale > 0:
        raise InputError("the training accelerations are all zero: the relative loss has no scale")
    return scale


def baseline_mae_per_node(a_train: np.ndarray, a_test: np.ndarray) -> float:
    """MAE per node (sum over dims) of always predicting the mean training acceleration [dim]."""
    mean = a_train.reshape(-1, a_train.shape[-1]).astype(np.float64).mean(axis=0)  # [dim]
    return float(np.abs(a_test - mean).sum(axis=-1).mean())


def physics(data: Any, dataset_info: dict) -> tuple[Law, float] | None:
    """(law, softening) of the training data, None when arrays came without a law.

    Args:
        data: what `train` was given; dataset_info: `load_splits`'s second value.
    """
    meta = dataset_info["meta"]
    if meta:
        return law_from_dict(meta["law"]), float(meta["config"]["softening"])
    law = data.get("law") if isinstance(data, dict) else None
    if law is None:
        return None
    return (get_law(law) if isinstance(law, str) else law), float(data.get("softening", SimConfig.softening))


def history_recorder(data: Any, splits: dict, dataset_info: dict, cfg: TrainConfig) -> HistoryRecorder | None:
    """The message-history recorder of a run (edges from the val split, else test), None when
    `cfg.message_history_every` is 0 or the law is unknown."""
    known = physics(data, dataset_info)
    if cfg.message_history_every == 0 or known is None:
        return None
    x = splits["val"][0] if "val" in splits else splits["test"][0]
    return HistoryRecorder(x, *known, n_edges=cfg.message_history_edges, seed=cfg.seed)


def adam(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Adam:
    """Adam(lr, weight_decay) over the model's parameters, its fused kernel where torch has
    one (CPU, CUDA): one call per step instead of a loop of small ops per parameter."""
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            fused=device.type in ("cpu", "cuda"))


def train(data: Any, model_cfg: ModelConfig, train_cfg: TrainConfig, out_dir: str | os.PathLike, *,
          progress: bool = True, stop_at_step: int | None = None) -> TrainResult:
    """Train a GNN on `data`, resuming from out_dir/last.pt if it exists, and evaluate it.

    Args:
        data: see `load_splits`.
        model_cfg, train_cfg: the configs (saved to out_dir; a last.pt written under other
            configs is an InputError).
        out_dir: output folder (created).
        progress: show a progress bar (plain lines when not on a terminal) with the running loss.
        stop_at_step: stop after this global step as if interrupted, leaving last.pt (for
            time-limited jobs and tests); None trains to the end.
    Returns:
        TrainResult. metrics.json holds {"test": evaluate(...), "val": evaluate(...) or None,
        "baseline_mae_per_node", "steps", "epochs", "train_seconds" (optimiser steps only,
        summed over resumes), "graphs_per_second", "device", "threads" (torch's CPU threads,
        `run.py --threads`), "amp", "compiled", "history" (per epoch:
        epoch, step, train_loss, val_mae_per_node), "message_history_seconds" (recording the
        messages, not part of train_seconds; None when not recorded), "dataset"}.
    Raises:
        InputError: bad data, configs that do not match the data, a model too large for the
            memory (`gnn.checkpoint.check_model_size`), or a foreign or malformed last.pt.
    """
    cfg = train_cfg
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    out_dir = Path(out_dir)
    splits, dataset_info = load_splits(data, model_cfg)
    x_np, a_np = splits["train"]
    if cfg.max_train_graphs is not None and cfg.max_train_graphs < len(x_np):
        # A seeded random subset: a dataset's leading graphs may all come from a few simulations.
        keep = np.sort(np.random.default_rng(cfg.seed).choice(len(x_np), cfg.max_train_graphs, replace=False))
        x_np, a_np = x_np[keep], a_np[keep]
    n_train = len(x_np)
    batch = min(cfg.batch_size, n_train)
    batches_per_pass = n_train // batch
    steps_per_epoch = cfg.steps_per_epoch or batches_per_pass
    total_steps = cfg.epochs * steps_per_epoch
    a_scale = acceleration_scale(a_np) if cfg.relative_loss_floor is not None else 1.0
    x_train = torch.from_numpy(x_np).to(device)  # [G, n, F], resident on the device
    a_train = torch.from_numpy(a_np).to(device)  # [G, n, dim]

    check_model_size(model_cfg, batch)
    model = build_model(model_cfg).to(device)
    optimizer = adam(model, cfg, device)
    scheduler = one_cycle(optimizer, cfg.lr, total_steps, cfg.final_div_factor)
    on_cuda = device.type == "cuda"
    use_amp = (cfg.amp if on_cuda else cfg.cpu_amp) and model.amp_safe  # bf16 needs no GradScaler (fp32 exponent range)
    compiled = (cfg.compile if on_cuda else cfg.cpu_compile) and model.compilable
    fwd = torch.compile(model) if compiled else model
    recorder = history_recorder(data, splits, dataset_info, cfg) if model.records_messages else None

    @torch.no_grad()
    def edge_stats(x_recv: np.ndarray, x_send: np.ndarray):
        """The model's messages (and KL log-variances) on the recorder's edges, as NumPy."""
        mu, logvar = model.edge_stats(torch.from_numpy(x_recv).to(device), torch.from_numpy(x_send).to(device))
        return mu.float().cpu().numpy(), None if logvar is None else logvar.float().cpu().numpy()

    identity = {"model_config": to_jsonable(model_cfg), "train_config": to_jsonable(cfg),
                "dataset": meta_fingerprint(dataset_info["meta"])}
    loop = TrainingLoop(model, optimizer, scheduler, Plan(
        total_steps, steps_per_epoch, cfg.checkpoint_every, cfg.log_every, out_dir / "last.pt", RESUME_KIND,
        identity, f"train {model_cfg.strategy}"), device)
    held = loop.resume({"model_config": dict, "train_config": dict},
                       lambda state: _check_same_run(state, cfg, identity, out_dir / "last.pt"))
    if held is not None and recorder is not None and (out_dir / HISTORY_FILE).exists():
        recorder.resume(load_history(out_dir), loop.step)
    save_json(out_dir / "model_config.json", model_cfg)
    save_json(out_dir / "train_config.json", cfg)

    batches = Batches(n_train, batch, lambda pass_index: _permutation(n_train, cfg.seed, pass_index).to(device))

    def step_loss(step: int) -> Tensor:
        idx = batches(step)                                             # [B]
        x = augment(x_train[idx], model_cfg.dim, cfg.augment_sigma)     # [B, n, F]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            out = fwd(x)
        return batch_loss(out, a_train[idx], model_cfg.strategy, cfg, a_scale)

    def record(step: int) -> float:
        if step != 0 and step % cfg.message_history_every != 0 and step != total_steps:
            return 0.0
        sync_device(device)
        return recorder.record(step, edge_stats)

    def save_history_rows() -> None:
        if recorder.rows:
            save_history(out_dir, recorder.history())   # before last.pt: it never lacks rows up to its step

    val = splits.get("val")
    done = loop.run(
        step_loss, progress=progress, stop_at_step=stop_at_step,
        epoch_metrics=lambda: {"val_mae_per_node": evaluate(model, *val, batch_size=cfg.eval_batch_size)[
            "mae_per_node"] if val else None},
        after_step=None if recorder is None else record, before_save=None if recorder is None else save_history_rows)
    if not done.finished:
        return TrainResult(model, {}, out_dir, finished=False)
    step, history, train_seconds = done.step, done.history, done.train_seconds

    metrics = {
        "test": evaluate(model, *splits["test"], batch_size=cfg.eval_batch_size),
        "val": evaluate(model, *val, batch_size=cfg.eval_batch_size) if val else None,
        "baseline_mae_per_node": baseline_mae_per_node(a_np, splits["test"][1]),
        "steps": step,
        "epochs": cfg.epochs,
        "train_seconds": train_seconds,
        "graphs_per_second": step * batch / train_seconds if train_seconds > 0 else None,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "amp": use_amp,
        "compiled": compiled,
        "history": history,
        "message_history_seconds": float(sum(r["seconds"] for r in recorder.rows)) if recorder else None,
        "dataset": dataset_info,
    }
    save_model(out_dir / "checkpoint.pt", model, {
        "model_config": to_jsonable(model_cfg), "train_config": to_jsonable(cfg), "dataset": dataset_info,
        "step": step, "metrics": {k: metrics[k] for k in ("test", "val", "baseline_mae_per_node")}})
    save_json(out_dir / "metrics.json", metrics)
    return TrainResult(model, metrics, out_dir, finished=True)


def _check_same_run(state: dict, cfg: TrainConfig, identity: dict, path: Path) -> None:
    """InputError unless the resume point `state` was written for these configs and this dataset."""
    held_cfg = config_from_dict(TrainConfig, state["train_config"])   # fields added since: their defaults
    if state["model_config"] != identity["model_config"] or held_cfg != cfg:
        raise InputError(f"{path} was written with different configs; delete it or use another out_dir")
    if state.get("dataset") != identity["dataset"]:
        raise InputError(f"{path} was written for another dataset; give the same --data or another out_dir")


def _permutation(n: int, seed: int, pass_index: int) -> Tensor:
    """The shuffled order of pass `pass_index`, a pure function of (seed, pass_index)."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + pass_index)
    return torch.randperm(n, generator=gen)
