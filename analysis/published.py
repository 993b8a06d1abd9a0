"""Published numbers of the paper and of the Cambridge reproduction, with typed accessors.

In:  `analysis/data/published.json` (package data), the tables of docs/published.md (§1 the
     paper, §2 the reproduction, with their sources; tests/test_analysis.py checks every cell
     against them), laid out as
     data[source][table]["{law}-{dim}"][strategy] -> value, plus data["sources"][source]
     with the citation, the loss normalisation and, per table, where it was transcribed
     from, its value format and units.
     Sources: "paper" (Cranmer et al. 2020: Table 3 test loss, Table 1 R², Table 5 PySR
     success) and "repro" (V. Jain 2024: Tables 1–9: per-node MAE ± std, R² against force
     and acceleration, sparsity, edge/node reconstructions, symbolic vs network MAE,
     label std). Laws: spring, r1, r2, charge (+ damped, discontinuous in the paper's
     Table 3); strategies: standard, bottleneck, l1, kl (+ flathgn). Tables with one value
     per simulation use the strategy key "best" (symbolic_vs_network) or "all" (accel_std).
Out: plain values (`value`) or typed ones (`number`, `mean_std`, `count`, `flag`,
     `symbolic_network`); None wherever a source has no entry.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, NamedTuple

from plumbing.errors import InputError

# Beside this module rather than via importlib.resources, which fails when an editable
# install registered `analysis` as a namespace package.
DATA_FILE = Path(__file__).with_name("data") / "published.json"


class MeanStd(NamedTuple):
    """A published mean and its spread (standard deviation as the source reports it)."""

    mean: float
    std: float


class Count(NamedTuple):
    """Components successfully reconstructed out of the number tried."""

    success: int
    total: int


class SymbolicNetwork(NamedTuple):
    """Test MAE of the composed symbolic model and of the network it was distilled from."""

    symbolic: MeanStd
    network: MeanStd


@functools.cache
def load() -> dict:
    """The whole published.json as a dict (read once, then cached; do not mutate).

    Returns:
        {"about": str, "sources": {...}, "paper": {...}, "repro": {...}}.
    """
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


def sim_key(law: str, dim: int) -> str:
    """Row key of a simulation, e.g. sim_key("spring", 2) -> "spring-2"."""
    return f"{law}-{int(dim)}"


def sources() -> list[str]:
    """Names of the published sources ("paper", "repro")."""
    return list(load()["sources"])


def citation(source: str) -> str:
    """Full citation of `source`; InputError if the source is unknown."""
    return _source_meta(source)["citation"]


def normalisation(source: str) -> str:
    """How `source` normalised its loss / MAE (paper: unspecified; repro: per node)."""
    return _source_meta(source)["normalisation"]


def table_names(source: str) -> list[str]:
    """Tables transcribed from `source`, e.g. ["test_loss", "r2_force", "edge_success"]."""
    return list(_source_meta(source)["tables"])


def table_info(source: str, table: str) -> dict:
    """{"from": where in the source, "format": value format, "units": meaning and units}."""
    tables = _source_meta(source)["tables"]
    if table not in tables:
        raise InputError(f"no published table {table!r} for {source!r}; have {', '.join(tables)}")
    return tables[table]


def table(source: str, name: str) -> dict[str, dict[str, Any]]:
    """One table as {"{law}-{dim}": {strategy: value}}.

    Args:
        source: "paper" or "repro".
        name: a table of that source (see `table_names`).
    Returns:
        The raw nested dict (JSON values).
    """
    table_info(source, name)
    return load()[source][name]


def value(source: str, name: str, sim: str, strategy: str) -> Any:
    """Raw JSON value of one cell, or None if the source has no entry for it.

    Args:
        source: "paper" or "repro".
        name: table name.
        sim: "{law}-{dim}" row key.
        strategy: "standard" | "bottleneck" | "l1" | "kl" | "flathgn", or "best"/"all" for
            tables that hold one value per simulation.
    Returns:
        The JSON value, or None.
    """
    return table(source, name).get(sim, {}).get(strategy)


def number(source: str, name: str, sim: str, strategy: str) -> float | None:
    """A scalar cell (test loss, R², sparsity, label std) as float, or None."""
    v = value(source, name, sim, strategy)
    return None if v is None else float(v)


def mean_std(source: str, name: str, sim: str, strategy: str) -> MeanStd | None:
    """A "mean ± std" cell (repro test_mae), or None."""
    v = value(source, name, sim, strategy)
    return None if v is None else MeanStd(float(v["mean"]), float(v["std"]))


def count(source: str, name: str, sim: str, strategy: str) -> Count | None:
    """A "k/d" reconstruction cell (repro edge_success / node_success), or None."""
    v = value(source, name, sim, strategy)
    return None if v is None else Count(int(v["success"]), int(v["total"]))


def flag(source: str, name: str, sim: str, strategy: str) -> bool | None:
    """A ✓/✗ cell (paper edge_success), or None."""
    v = value(source, name, sim, strategy)
    return None if v is None else bool(v)


def symbolic_network(source: str, name: str, sim: str, strategy: str) -> SymbolicNetwork | None:
    """A symbolic-vs-network cell (repro symbolic_vs_network, strategy "best"), or None."""
    v = value(source, name, sim, strategy)
    if v is None:
        return None
    return SymbolicNetwork(MeanStd(**v["symbolic"]), MeanStd(**v["network"]))


def _source_meta(source: str) -> dict:
    meta = load()["sources"]
    if source not in meta:
        raise InputError(f"unknown published source {source!r}; have {', '.join(meta)}")
    return meta[source]
