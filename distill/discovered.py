"""The distilled law as physics, end to end, and its library entry points.

In:  `discover`: the network, the selected edge and node equations, the run's
     `pipeline.DistillData`, `DistillConfig`, `compose.EvalSets`, the output folder and the
     run's info (its "dataset" path gives the training trajectories' length and dt).
     `load_law` / `symbolic_model`: a run folder (holding distill/) or a distill folder.
Out: `discover` -> the `DistillResult` fields "composed" (`compose.refit_composed`),
     "physical_law" (`physical.physical_law`) and "rollout" (`rollout.rollout`; its curves
     written to out/rollout.npz).
     `load_law(run)` -> the discovered radial law as a registered `nbody.laws.Law`
     ("discovered_<law>"), which `run.py simulate --law-from RUN` simulates.
     `symbolic_model(run)` -> a callable x [G, n, 2*dim+2] -> accelerations [G, n, dim] of
     the composed, refitted symbolic model: the network's signature, for comparing both.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import sympy as sp

from nbody.laws import Law, get_law, law_from_dict
from plumbing.errors import InputError
from plumbing.io import load_json

from . import schema
from .candidate import parse_untrusted
from .compose import EvalSets, refit_composed
from .config import DistillConfig
from .data import DistillData
from .messages import edge_input_names
from .physical import discovered_law, physical_law
from .rollout import rollout
from .symbolic import Network, forward, node_input_names, symbolic_network

TRAIN_STEPS = 500   # training trajectory length (sampled steps) assumed when the dataset is unknown (tiny preset)


def discover(net: Network, edge_exprs: Sequence[sp.Expr], node_exprs: Sequence[sp.Expr], data: DistillData,
             cfg: DistillConfig, sets: EvalSets, out: Path, info: dict | None,
             fronts: Sequence[Sequence[sp.Expr]] | None = None) -> dict:
    """The composed model refitted on the truth, the law in physical form, and the rollouts.

    Args:
        fronts: each equation's Pareto front (edge equations first), for `compose.refit_composed`.
    Returns:
        {"composed", "physical_law", "rollout"}: `DistillResult` fields.
    """
    composed, edge_out, node_out = refit_composed(edge_exprs, node_exprs, data, sets, cfg, fronts)
    law = physical_law(edge_out, node_out, data, sets, cfg)
    found = None
    if law.radial:
        try:
            found = discovered_law(law, data.law)
        except InputError:          # e.g. a force that breaks Newton's third law: nothing to simulate
            found = None
    horizon, dt = training_horizon(data.law, info)
    record, curves = rollout(data.law, found, lambda x: forward(net, x, data.law), data.dim, data.test_x.shape[1],
                             data.softening, horizon, dt, np.random.default_rng([cfg.seed, 4]))
    schema.save_rollout(out, curves)
    return {"composed": composed, "physical_law": law, "rollout": record}


def training_horizon(law: Law, info: dict | None) -> tuple[float, float]:
    """(length in time, sampling interval) of the training trajectories: from the dataset's
    meta.json when `info` names a readable one, else TRAIN_STEPS steps of the law's dt."""
    path = (info or {}).get("dataset")
    if path:
        try:
            meta = load_json(Path(path) / "meta.json")
            return (int(meta["config"]["nt"]) - 1) * float(meta["dt"]), float(meta["dt"])
        except (InputError, KeyError, TypeError, ValueError):
            pass
    return (TRAIN_STEPS - 1) * law.dt, law.dt


def _result(run: str | Path) -> schema.DistillResult:
    """The `DistillResult` of a run folder (its distill/) or of a distill folder."""
    path = Path(run)
    folder = path / "distill" if (path / "distill" / schema.RESULT_FILE).is_file() else path
    if not (folder / schema.RESULT_FILE).is_file():
        raise InputError(f"no distillation at {run} (expected {path / schema.RESULT_FILE} or "
                         f"{path / 'distill' / schema.RESULT_FILE})")
    return schema.load_result(folder)


def _law_of(result: schema.DistillResult) -> Law:
    """The law a distillation was made on: registered, or stored in its dataset's meta.json."""
    try:
        return get_law(result.law)
    except InputError:
        if not result.dataset:
            raise
        return law_from_dict(load_json(Path(result.dataset) / "meta.json").get("law"))


def load_law(run: str | Path) -> Law:
    """The discovered radial law of a run, registered as "discovered_<law>".

    Args:
        run: a run folder or a distill folder.
    Raises:
        InputError: no distillation there, one without a physical law (Hamiltonian, or made
        before layout version 6), or one that found no radial law.
    """
    result = _result(run)
    if result.physical_law is None:
        raise InputError(f"the distillation at {run} has no physical law (a Hamiltonian model, or made "
                         "before distill.json version 6: distill again)")
    return discovered_law(result.physical_law, _law_of(result))


def symbolic_model(run: str | Path) -> Callable[[np.ndarray], np.ndarray]:
    """The composed symbolic model of a run (refitted on the truth) with the network's signature.

    Args:
        run: a run folder or a distill folder.
    Returns:
        predict(x [G, n, 2*dim+2]) -> accelerations [G, n, dim] float64.
    Raises:
        InputError: no distillation, or one without a composed model (as `load_law`); from
        predict: states of another shape.
    """
    result = _result(run)
    composed = result.composed
    if composed is None:
        raise InputError(f"the distillation at {run} has no composed model (a Hamiltonian model, or made "
                         "before distill.json version 6: distill again)")
    dim, k = result.dim, len(composed.edge)
    sym = symbolic_network([parse_untrusted(e, edge_input_names(dim)) for e in composed.edge],
                           [parse_untrusted(e, node_input_names(dim, k)) for e in composed.node], dim, composed.softening)
    law = _law_of(result)

    def predict(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[2] != 2 * dim + 2 or x.shape[1] < 2 or x.dtype.kind not in "iuf":
            raise InputError(f"states must be real numbers [G, n >= 2, {2 * dim + 2}], got {x.dtype} {x.shape}")
        return forward(sym, x.astype(np.float64), law)
    return predict
