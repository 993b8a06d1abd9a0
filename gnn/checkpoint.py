"""Checkpoint files of the GNN stage, written atomically and read with a one-line error.

In:  a trained `GNN` plus JSON-able metadata, or a training state to resume from.
Out: two kinds of torch files, each a dict with a "kind" tag and plain tensors/numbers only
     (loadable with `torch.load(weights_only=True)`, i.e. no arbitrary unpickling):

    checkpoint.pt  kind "symdistill.gnn.model":  {"model": state_dict, "meta": {
                       "model_config": dict, "train_config": dict,
                       "dataset": {"path", "meta"}, "step": int, "metrics": dict}}
    last.pt        kind "symdistill.gnn.resume": {"model", "optimizer", "scheduler",
                       "rng": {"cpu", "cuda"}, "step", "history", "train_seconds", "epoch_loss",
                       "model_config", "train_config", "dataset"} (`gnn.loop`)

A missing, corrupt or wrong-kind file is an `InputError`, and so is one whose meta is not
laid out as above (`check_meta`: a list or a string where a mapping goes, a recorded dataset
meta without its law; a resume point's fields: `gnn.loop.TrainingLoop.resume`) or whose model would not fit in memory
(`check_model_size`, priced from the config before anything is allocated).
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from plumbing.errors import InputError
from plumbing.io import atomic_write_bytes, config_from_dict
from plumbing.resources import available_memory

from .config import ModelConfig
from .build import build_model
from .model import GNN
from .strategies import get_strategy

MODEL_KIND = "symdistill.gnn.model"
RESUME_KIND = "symdistill.gnn.resume"
FORMAT_VERSION = 1


def save_torch(path: str | os.PathLike, kind: str, payload: dict) -> None:
    """Atomically write `payload` (plus its kind and format version) with torch.save."""
    buf = io.BytesIO()
    torch.save({"kind": kind, "version": FORMAT_VERSION, **payload}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_torch(path: str | os.PathLike, kind: str, map_location: str | torch.device = "cpu") -> dict:
    """Read a file written by `save_torch` and check its kind.

    Args:
        path: the file.
        kind: MODEL_KIND or RESUME_KIND.
        map_location: device the tensors are loaded onto.
    Returns:
        The payload dict (with "kind" and "version").
    Raises:
        InputError: missing, unreadable or of another kind.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"missing checkpoint: {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch.load raises many types on a damaged file
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise InputError(f"corrupt checkpoint {path}: {type(exc).__name__} {first_line}".rstrip()) from None
    if not isinstance(obj, dict) or obj.get("kind") != kind:
        found = obj.get("kind") if isinstance(obj, dict) else type(obj).__name__
        raise InputError(f"{path} is not a {kind} file (found {found!r})")
    if obj.get("version") != FORMAT_VERSION:
        raise InputError(f"{path} has format version {obj.get('version')!r}; this code reads {FORMAT_VERSION}")
    return obj


def save_model(path: str | os.PathLike, model: GNN, meta: dict[str, Any]) -> None:
    """Write the final checkpoint: CPU weights plus `meta` (see the module docstring)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_torch(path, MODEL_KIND, {"model": state, "meta": meta})


def check_meta(meta: Any, path: Path, *, complete: bool = True) -> dict:
    """`meta` of a model checkpoint, checked to be laid out as the module docstring says
    (InputError naming the first field that is not); returns it. Every field that holds a
    mapping must hold one; with `complete`, a recorded dataset meta must also carry the
    law, dim and config that distillation compares (reading only the preset keys, it may not)."""
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise InputError(f"{path}: malformed checkpoint meta ({what})")

    need(isinstance(meta, dict), "not a mapping")
    need(isinstance(meta.get("model_config"), dict), "model_config is not a mapping")
    need(isinstance(meta.get("train_config", {}), dict), "train_config is not a mapping")
    need(isinstance(meta.get("metrics", {}), dict), "metrics is not a mapping")
    dataset = meta.get("dataset", {"path": None, "meta": {}})
    need(isinstance(dataset, dict), "dataset is not a mapping")
    need(dataset.get("path") is None or isinstance(dataset["path"], str), "dataset.path is not a string")
    trained_on = dataset.get("meta") or {}
    need(isinstance(trained_on, dict), "dataset.meta is not a mapping")
    need(isinstance(trained_on.get("config", {}), dict), "dataset.meta.config is not a mapping")
    if trained_on and complete:          # empty for a model trained on in-memory arrays
        law = trained_on.get("law")
        need(isinstance(law, dict) and all(isinstance(law.get(k), str) for k in ("name", "topology")),
             "dataset.meta.law is not a law")
        need(isinstance(trained_on.get("dim"), int), "dataset.meta.dim is not an integer")
        need(isinstance(trained_on.get("config"), dict), "dataset.meta.config is not a mapping")
    return meta


def parameter_count(cfg: ModelConfig) -> int:
    """Weights and biases of the `GNN` that `cfg` describes (its edge and node `mlp`),
    counted from the widths without allocating anything; an upper bound for the Hamiltonian
    model, whose two MLPs have one output each."""
    msg_dim = cfg.resolved_msg_dim
    edge_out = get_strategy(cfg.strategy).edge_outputs(msg_dim)
    total = 0
    for in_dim, out_dim in ((2 * cfg.n_features, edge_out), (cfg.n_features + msg_dim, cfg.dim)):
        widths = [in_dim, *[cfg.hidden] * cfg.n_hidden_layers, out_dim]
        total += sum((a + 1) * b for a, b in zip(widths, widths[1:]))
    return total


def check_model_size(cfg: ModelConfig, batch_size: int = 1) -> None:
    """InputError when the model `cfg`, with its gradients and Adam's two moments (4 float32
    copies of every weight) and one batch of hidden activations, would not fit in the memory
    available now (`plumbing.resources.available_memory`)."""
    params = parameter_count(cfg)
    n_edges = 8 * 7                       # activations: priced for a small graph; weights dominate
    need = 16 * params + 4 * batch_size * n_edges * cfg.hidden * max(cfg.n_hidden_layers, 1) * 3
    memory = available_memory()
    if memory is not None and need > memory:
        raise InputError(f"a model with hidden={cfg.hidden} and {cfg.n_hidden_layers} hidden layers has "
                         f"{params:.3g} parameters and needs about {need / 2 ** 30:.3g} GiB of memory but only "
                         f"{memory / 2 ** 30:.3g} GiB is available; lower --hidden or --n-hidden-layers")


def trained_preset_keys(path: str | os.PathLike) -> dict[str, str]:
    """What picks a preset's per-strategy and per-law settings (`pipeline.presets.preset`) for the model
    in checkpoint.pt (or a training folder holding one), read without building the model:
    {"strategy": its message strategy, "law": the law of the dataset it was trained on, when it
    was trained on a dataset}. InputError as `load_model`."""
    path = Path(path)
    meta = check_meta(load_torch(path / "checkpoint.pt" if path.is_dir() else path, MODEL_KIND).get("meta"), path,
                      complete=False)
    strategy = meta["model_config"].get("strategy")
    if not isinstance(strategy, str):
        raise InputError(f"{path} carries no model_config")
    keys = {"strategy": strategy}
    law = ((meta.get("dataset") or {}).get("meta") or {}).get("config", {}).get("law")
    if isinstance(law, str):
        keys["law"] = law
    return keys


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[GNN, dict]:
    """Rebuild a trained model from checkpoint.pt (or a training output folder holding one).

    Args:
        path: checkpoint.pt, or the `out_dir` given to `gnn.train.train`.
        device: where the model is placed.
    Returns:
        (model in eval mode, meta dict with "model_config", "train_config", "dataset",
        "step", "metrics").
    Raises:
        InputError: missing, corrupt or wrong-kind file, weights that do not fit the config,
            or weights that are not finite.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    obj = load_torch(path, MODEL_KIND)
    meta = check_meta(obj.get("meta"), path)
    weights = obj.get("model")
    if not isinstance(weights, dict):
        raise InputError(f"{path} carries no weights")
    bad = next((name for name, value in weights.items() if torch.is_tensor(value)
                and value.is_floating_point() and not bool(torch.isfinite(value).all())), None)
    if bad is not None:
        raise InputError(f"{path} holds non-finite weights (NaN or inf in {bad}); it cannot be used")
    cfg = config_from_dict(ModelConfig, meta["model_config"])
    check_model_size(cfg)
    model = build_model(cfg)
    try:
        model.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: weights do not match its model_config ({type(exc).__name__})") from None
    return model.to(device).eval(), meta
