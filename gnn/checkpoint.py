"""Checkpoint files of the GNN stage, written atomically and read with a one-line error.

In:  a trained `GNN` plus JSON-able metadata, or a training state to resume from.
Out: two kinds of torch files, each a dict with a "kind" tag and plain tensors/numbers only
     (loadable with `torch.load(weights_only=True)`, i.e. no arbitrary unpickling):

    checkpoint.pt  kind "symdistill.gnn.model":  {"model": state_dict, "meta": {
                       "model_config": dict, "train_config": dict,
                       "dataset": {"path", "meta"}, "step": int, "metrics": dict}}
    last.pt        kind "symdistill.gnn.resume": {"model", "optimizer", "scheduler",
                       "rng": {"cpu", "cuda"}, "step", "history", "train_seconds",
                       "model_config", "train_config"}

A missing, corrupt or wrong-kind file is an `InputError`.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from nbody.errors import InputError
from nbody.io import atomic_write_bytes, config_from_dict

from .config import ModelConfig
from .model import GNN, build_model

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


def trained_preset_keys(path: str | os.PathLike) -> dict[str, str]:
    """What picks a preset's per-strategy and per-law settings (`runconfig.preset`) for the model
    in checkpoint.pt (or a training folder holding one), read without building the model:
    {"strategy": its message strategy, "law": the law of the dataset it was trained on, when it
    was trained on a dataset}. InputError as `load_model`."""
    path = Path(path)
    meta = load_torch(path / "checkpoint.pt" if path.is_dir() else path, MODEL_KIND).get("meta")
    meta = meta if isinstance(meta, dict) else {}
    strategy = meta.get("model_config", {}).get("strategy")
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
    meta = obj.get("meta")
    if not isinstance(meta, dict) or not isinstance(meta.get("model_config"), dict):
        raise InputError(f"{path} carries no model_config")
    weights = obj.get("model")
    if not isinstance(weights, dict):
        raise InputError(f"{path} carries no weights")
    bad = next((name for name, value in weights.items() if torch.is_tensor(value)
                and value.is_floating_point() and not bool(torch.isfinite(value).all())), None)
    if bad is not None:
        raise InputError(f"{path} holds non-finite weights (NaN or inf in {bad}); it cannot be used")
    model = build_model(config_from_dict(ModelConfig, meta["model_config"]))
    try:
        model.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: weights do not match its model_config ({type(exc).__name__})") from None
    return model.to(device).eval(), meta
