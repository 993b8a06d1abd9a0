"""Comparison tables in the layout of the reproduction report, beside the published numbers.

In:  a list of `Run`s (see `analysis.runs`). Read:
       train/metrics.json   test.mae_per_node, test.mae_per_node_std
       distill.json         (`distill.schema.DistillResult`) r2_force_mean, r2_accel_mean,
                            sparsity, edge[].judgement.success, edge_success,
                            node[].judgement.success, node_success, mae.network,
                            mae.network_std, mae.symbolic, mae.symbolic_std,
                            mae.ood[spread, more_particles].network / .symbolic
     and `analysis.published` for the paper's and the reproduction's numbers.
Out: per table, rows "{law}-{dim}" and one column per strategy (standard, bottleneck, l1, kl,
     then any other strategy the runs use), each cell "ours (paper P, repro R)", e.g.
     "0.0180 (paper 0.046, repro 0.0182 ± 0.001)". Runs sharing law/dim/strategy (seeds)
     are aggregated as mean ± std over runs; a single run shows its own spread where it has
     one (MAE: std over test graphs, "± ... over test graphs" in the cell, as the
     reproduction's Table 1 reports a std of one run). Three forms:
     `build_tables` (long rows of dicts, numbers included, for notebooks), Markdown and CSV
     (`write_tables`, atomic writes).
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from distill.schema import DistillResult, judged_equations
from gnn.strategies import find_strategy, get_strategy, strategy_names
from plumbing.io import atomic_write_text

from . import published as pub
from .runs import Run
from .summary import summary_rows, to_summary_csv

# The columns every table has: the message strategies (the paper's four), in registration order
# (`gnn.strategies`); any other strategy the runs use follows them.
STRATEGIES = tuple(name for name in strategy_names() if get_strategy(name).network == "message")
# Column titles: each registered strategy's, and the published FlatHGN column's.
STRATEGY_TITLES = {**{name: get_strategy(name).title for name in strategy_names()}, "flathgn": "FlatHGN"}
LAW_ORDER = ("spring", "r1", "r2", "charge")
MISSING = "–"

# A measure turns the runs of one cell into (numbers for the long form, text for the cell).
Measure = Callable[[list[Run]], "tuple[dict[str, Any], str] | None"]


def _distilled(get: Callable[[DistillResult], Any]) -> Callable[[Run], Any]:
    """A run's distill value `get(result)`, None for a run not distilled yet."""
    return lambda run: None if run.distill is None else get(run.distill)


def _trained(key: str) -> Callable[[Run], Any]:
    """A run's train/metrics.json test[key], None for a run not trained yet."""
    return lambda run: None if run.metrics is None else run.metrics["test"][key]


@dataclass(frozen=True)
class TableSpec:
    """One comparison table.

    Attributes:
        name: file stem and key, e.g. "test_mae".
        title: heading.
        note: what the numbers mean (printed under the heading).
        measure: runs of one cell -> (numbers, text), or None if no run has the quantity.
        published: (sim, strategy) -> [(source, raw value, text)] of published values.
        sim_level: sim -> (raw value, text) of a published number that belongs to the whole
            row (shown in an extra "repro" column), or None.
    """

    name: str
    title: str
    note: str
    measure: Measure
    published: Callable[[str, str], list[tuple[str, Any, str]]]
    sim_level: Callable[[str], "tuple[Any, str] | None"] = lambda sim: None


# --------------------------------------------------------------------------- #
# Number formatting and aggregation                                            #
# --------------------------------------------------------------------------- #

def _ours(x: float) -> str:
    return f"{x:#.3g}".rstrip(".")


def _pub(x: float) -> str:
    return f"{x:g}"


def _fixed(x: float) -> str:
    return f"{x:.3f}"


def _finite(values: list[Any]) -> list[float]:
    out = []
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.append(float(v))
    return out


def _stats(values: list[Any]) -> tuple[float, float | None, int] | None:
    """(mean, sample std over values or None for one value, count) of the finite values."""
    xs = _finite(values)
    if not xs:
        return None
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
    return mean, std, len(xs)


def _mean_spread(runs: list[Run], get: Callable[[Run], Any],
                 get_spread: Callable[[Run], Any] | None = None) -> tuple[float, float | None, int] | None:
    """Mean over runs ± std over runs; one run: ± its own spread (`get_spread`), if any."""
    stats = _stats([get(r) for r in runs])
    if stats is None:
        return None
    mean, std, n = stats
    if n == 1 and get_spread is not None:
        own = _finite([get_spread(r) for r in runs if _finite([get(r)])])
        std = own[0] if own else None
    return mean, std, n


def _text(stats: tuple[float, float | None, int], fmt: Callable[[float], str] = _ours) -> str:
    mean, std, _ = stats
    return fmt(mean) if std is None else f"{fmt(mean)} ± {fmt(std)}"


def _with_n(text: str, n: int) -> str:
    return text if n <= 1 else f"{text} [n={n}]"


def _over_graphs(text: str, n: int) -> str:
    """`_with_n`; one run's ± (its own spread) named as the spread over test graphs it is."""
    return f"{text} over test graphs" if n == 1 and "±" in text else _with_n(text, n)


# --------------------------------------------------------------------------- #
# Measures (ours)                                                              #
# --------------------------------------------------------------------------- #

def _test_mae(runs: list[Run]):
    s = _mean_spread(runs, _trained("mae_per_node"), _trained("mae_per_node_std"))
    if s is None:
        return None
    return {"value": s[0], "spread": s[1], "n_runs": s[2]}, _over_graphs(_text(s), s[2])


def _r2(runs: list[Run]):
    # A Hamiltonian run's one "message" is its pair energy: its R² is against the potential U(r').
    force = _mean_spread(runs, _distilled(lambda d: d.r2_force_mean if d.r2_potential is None else d.r2_potential))
    accel = _mean_spread(runs, _distilled(lambda d: d.r2_accel_mean))
    if force is None and accel is None:
        return None
    f_text = _text(force, _fixed) if force else MISSING
    a_text = _text(accel, _fixed) if accel else MISSING
    n = max(s[2] for s in (force, accel) if s)
    data = {"value": force[0] if force else None, "spread": force[1] if force else None,
            "accel": accel[0] if accel else None, "accel_spread": accel[1] if accel else None, "n_runs": n}
    return data, _with_n(f"{f_text} ({a_text})", n)


def _sparsity(runs: list[Run]):
    s = _mean_spread(runs, _distilled(lambda d: d.sparsity))
    if s is None:
        return None
    return {"value": s[0], "spread": s[1], "n_runs": s[2]}, _with_n(_text(s, _fixed), s[2])


def _reconstruction(part: str) -> Measure:
    """Measure for edge or node reconstruction: successes / equations, ✓ if all runs succeed."""
    def measure(runs: list[Run]):
        done = [r.distill for r in runs if r.distill is not None]
        if not done:
            return None
        success = sum(e.judgement.success for d in done for e in judged_equations(d, part))
        total = sum(len(judged_equations(d, part)) for d in done)
        all_ok = all(getattr(d, f"{part}_success") for d in done)
        text = f"{success}/{total} {'✓' if all_ok else '✗'}"
        return {"value": success, "total": total, "success": all_ok, "n_runs": len(done)}, _with_n(text, len(done))
    return measure


def found(d: DistillResult) -> bool:
    """Whether a distilled run succeeded: the force law and Newton's law both found, or for a
    Hamiltonian run the pair potential (the paper's FlatHGN finding, §4.2; its self energy
    is counted apart, as the paper's loss on accelerations alone never sees ∂H/∂p, so only
    a velocity loss can teach the kinetic energy)."""
    return bool(d.edge_success if d.energy else d.edge_success and d.node_success)


# The two verdicts' names, by whether the model is an energy (Hamiltonian) one.
VERDICT_NAMES = {False: ("force", "Newton"), True: ("potential", "kinetic")}


def found_parts(d: DistillResult) -> tuple[tuple[str, bool], tuple[str, bool]]:
    """The two verdicts behind `found`, named: (force law, Newton) or (potential, kinetic)."""
    names = VERDICT_NAMES[bool(d.energy)]
    return (names[0], bool(d.edge_success)), (names[1], bool(d.node_success))


def _network(strategy: str) -> str | None:
    """The network kind of a registered strategy (`Strategy.network`), None for other names."""
    found_strategy = find_strategy(strategy)
    return None if found_strategy is None else found_strategy.network


def _success_rate(runs: list[Run]):
    """Runs (seeds) that succeeded (`found`) out of the distilled runs and those a stage
    refused (`Run.failure`, found nothing), and each of the two verdicts counted apart (force
    and Newton, or potential and kinetic)."""
    done = [r.distill for r in runs if r.distill is not None]
    refused = sum(r.failure is not None for r in runs)
    if not done and not refused:
        return None
    n, ok = len(done) + refused, sum(found(d) for d in done)
    # An energy cell, from its results, or from its strategy when every run was refused.
    energy = any(d.energy for d in done) if done else any(_network(r.strategy) == "energy" for r in runs)
    counts = dict.fromkeys(VERDICT_NAMES[energy], 0)
    for d in done:
        for name, success in found_parts(d):
            counts[name] += success
    key = "found" if energy else "both"
    return ({"value": ok / n, key: ok, **{k.lower(): v for k, v in counts.items()}, "n_runs": n},
            f"{ok}/{n} ({', '.join(f'{k} {v}/{n}' for k, v in counts.items())})")


def _pair_text(sym, net) -> str:
    return f"sym {_text(sym) if sym else MISSING} / NN {_text(net) if net else MISSING}"


def _symbolic_vs_network(runs: list[Run]):
    sym = _mean_spread(runs, _distilled(lambda d: d.mae.symbolic), _distilled(lambda d: d.mae.symbolic_std))
    net = _mean_spread(runs, _distilled(lambda d: d.mae.network), _distilled(lambda d: d.mae.network_std))
    if sym is None and net is None:
        return None
    n = max(s[2] for s in (sym, net) if s)
    data = {"value": sym[0] if sym else None, "spread": sym[1] if sym else None,
            "network": net[0] if net else None, "network_spread": net[1] if net else None, "n_runs": n}
    return data, _over_graphs(_pair_text(sym, net), n)


OOD_CASES = (("spread", "spread"), ("more_particles", "more particles"))


def _ood(runs: list[Run]):
    data: dict[str, Any] = {}
    parts, n = [], 0
    for case, label in OOD_CASES:
        sym = _mean_spread(runs, _distilled(lambda d, c=case: d.mae.ood[c].symbolic))
        net = _mean_spread(runs, _distilled(lambda d, c=case: d.mae.ood[c].network))
        data[f"{case}_symbolic"] = sym[0] if sym else None
        data[f"{case}_network"] = net[0] if net else None
        if sym or net:
            n = max([n] + [s[2] for s in (sym, net) if s])
            parts.append(f"{label}: {_pair_text(sym, net)}")
    if not parts:
        return None
    data["n_runs"] = n
    return data, _with_n("; ".join(parts), n)


# --------------------------------------------------------------------------- #
# Published values                                                             #
# --------------------------------------------------------------------------- #

def _published_key(strategy: str) -> str:
    """A strategy's key in the published tables (`Strategy.published_key`; the name itself for
    a name that is no registered strategy)."""
    found_strategy = find_strategy(strategy)
    return strategy if found_strategy is None else found_strategy.published_key


def _published(*entries: tuple[str, str, Callable[[Any], str]]) -> Callable[[str, str], list]:
    """Published lookup over (source, table, formatter) entries; missing entries are skipped."""
    def lookup(sim: str, strategy: str) -> list[tuple[str, Any, str]]:
        out = []
        for source, name, fmt in entries:
            raw = pub.value(source, name, sim, _published_key(strategy))
            if raw is not None:
                out.append((source, raw, f"{source} {fmt(raw)}"))
        return out
    return lookup


def _fmt_mean_std(raw: dict) -> str:
    return f"{_pub(raw['mean'])} ± {_pub(raw['std'])}"


def _repro_r2(sim: str, strategy: str) -> list[tuple[str, Any, str]]:
    force = pub.number("repro", "r2_force", sim, strategy)
    accel = pub.number("repro", "r2_accel", sim, strategy)
    if force is None:
        return []
    return [("repro", {"force": force, "accel": accel}, f"repro {_fixed(force)} ({_fixed(accel)})")]


def _r2_published(sim: str, strategy: str) -> list[tuple[str, Any, str]]:
    return _published(("paper", "r2_force", _fixed))(sim, strategy) + _repro_r2(sim, strategy)


def _repro_symbolic_vs_network(sim: str) -> tuple[Any, str] | None:
    raw = pub.value("repro", "symbolic_vs_network", sim, "best")
    if raw is None:
        return None
    return raw, f"sym {_fmt_mean_std(raw['symbolic'])} / best NN {_fmt_mean_std(raw['network'])}"


def _no_published(sim: str, strategy: str) -> list:
    return []


SPECS = (
    TableSpec("test_mae", "Test MAE per node (mean ± spread)",
              "Ours: train/metrics.json test.mae_per_node; spread = std over test graphs for one run, "
              "std over runs (seeds) when several share a cell. Paper: Table 3, normalisation unspecified. "
              "Repro: Table 1, per node, mean ± std.",
              _test_mae, _published(("paper", "test_loss", _fixed), ("repro", "test_mae", _fmt_mean_std))),
    TableSpec("r2", "R² of messages vs a linear combination of true force (acceleration)",
              "Ours: distill.json r2_force_mean (r2_accel_mean); Hamiltonian: r2_potential, its pair energy "
              "against a·U(r') + f(q1, q2, m1, m2). Paper: Table 1 (force only). "
              "Repro: Table 3, force (acceleration).",
              _r2, _r2_published),
    TableSpec("sparsity", "Sparsity: share of message variation in the top d components",
              "Ours: distill.json sparsity. Repro: Table 5.",
              _sparsity, _published(("repro", "sparsity", _fixed))),
    TableSpec("edge_reconstruction", "Edge model: components reconstructed as force or acceleration",
              "Ours: successes/components over distill.json edge[] (Hamiltonian: the pair energy as the "
              "potential), ✓ if edge_success. "
              "Paper: Table 5 (✓/✗). Repro: Table 6.",
              _reconstruction("edge"),
              _published(("paper", "edge_success", lambda v: "✓" if v else "✗"),
                         ("repro", "edge_success", lambda v: f"{v['success']}/{v['total']}"))),
    TableSpec("success_rate", "Success over seeds: force law and Newton's second law both recovered",
              "Ours: runs whose distill.json has edge_success and node_success, out of the distilled "
              "runs of the cell (seeds) and those a stage refused (failed.json); force and Newton "
              "counted separately in brackets. Hamiltonian: "
              "runs whose pair energy is the potential (edge_success), the kinetic energy (node_success) "
              "in brackets. Paper: Table 5 (✓/✗, one run; none for FlatHGN).",
              _success_rate, _published(("paper", "edge_success", lambda v: "✓" if v else "✗"))),
    TableSpec("node_reconstruction", "Node model: outputs reconstructed as Newton's second law",
              "Ours: successes/outputs over distill.json node[] (Hamiltonian: the self energy as p²/(2m)), "
              "✓ if node_success. Repro: Table 7.",
              _reconstruction("node"),
              _published(("repro", "node_success", lambda v: f"{v['success']}/{v['total']}"))),
    TableSpec("symbolic_vs_network", "Test MAE: symbolic model vs network",
              "Ours: distill.json mae.symbolic ± symbolic_std / mae.network ± network_std. "
              "Repro: Table 8, one row per simulation (best network; constants not refit).",
              _symbolic_vs_network, _no_published, _repro_symbolic_vs_network),
    TableSpec("ood", "Out-of-distribution test MAE: symbolic vs network",
              "Ours: distill.json mae.ood.spread and mae.ood.more_particles (symbolic / network). "
              "No published counterpart.",
              _ood, _no_published),
)
SPEC_BY_NAME = {s.name: s for s in SPECS}


# --------------------------------------------------------------------------- #
# Building and rendering                                                       #
# --------------------------------------------------------------------------- #

def _sim_order(sim: str) -> tuple:
    law, _, dim = sim.rpartition("-")
    rank = LAW_ORDER.index(law) if law in LAW_ORDER else len(LAW_ORDER)
    return rank, law, int(dim) if dim.isdigit() else 0


def _groups(runs: list[Run]) -> tuple[list[str], list[str], dict[tuple[str, str], list[Run]]]:
    """Sims (row order), strategies (column order) and runs per (sim, strategy)."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.sim, run.strategy), []).append(run)
    sims = sorted({sim for sim, _ in groups}, key=_sim_order)
    extra = sorted({s for _, s in groups} - set(STRATEGIES))
    return sims, [*STRATEGIES, *extra], groups


def build_tables(runs: list[Run]) -> dict[str, list[dict]]:
    """All comparison tables in long form, one dict per (sim, strategy) cell.

    Args:
        runs: runs to tabulate.
    Returns:
        {table name: [row]}, rows in table order (sim, then strategy), each row
        {"table", "sim", "law", "dim", "strategy", "n_runs", "runs" (names), "value",
        "spread", ... (table-specific numbers, None where missing), "paper", "repro"
        (raw published values or None), "repro_sim" (a published value for the whole row,
        e.g. Table 8, or None), "cell" (the printed text)}.
    """
    sims, strategies, groups = _groups(runs)
    tables: dict[str, list[dict]] = {}
    for spec in SPECS:
        rows = []
        for sim in sims:
            law, _, dim = sim.rpartition("-")
            sim_level = spec.sim_level(sim)
            for strategy in strategies:
                cell_runs = groups.get((sim, strategy), [])
                measured = spec.measure(cell_runs) if cell_runs else None
                data, ours = measured if measured else ({"n_runs": 0}, MISSING)
                pubs = spec.published(sim, strategy)
                raw = {source: value for source, value, _ in pubs}
                cell = f"{ours} ({', '.join(text for _, _, text in pubs)})" if pubs else ours
                rows.append({"table": spec.name, "sim": sim, "law": law, "dim": int(dim), "strategy": strategy,
                             "runs": [r.name for r in cell_runs], "value": None, "spread": None, **data,
                             "paper": raw.get("paper"), "repro": raw.get("repro"),
                             "repro_sim": sim_level[0] if sim_level else None, "cell": cell})
        tables[spec.name] = rows
    return tables


def wide(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Pivot one table's long rows into the report layout.

    Args:
        rows: one entry of `build_tables`.
    Returns:
        (header, body): header ["sim", strategy..., ("repro")], body one list of cell texts
        per sim; the "repro" column appears when the table has row-level published values.
    """
    strategies = list(dict.fromkeys(r["strategy"] for r in rows)) or list(STRATEGIES)
    sims = list(dict.fromkeys(r["sim"] for r in rows))
    cells = {(r["sim"], r["strategy"]): r["cell"] for r in rows}
    sim_level = SPEC_BY_NAME[rows[0]["table"]].sim_level if rows else (lambda sim: None)
    sim_text = {sim: (sim_level(sim) or (None, ""))[1] for sim in sims}
    has_sim_level = any(sim_text.values())
    header = ["sim", *strategies] + (["repro"] if has_sim_level else [])
    body = []
    for sim in sims:
        line = [sim, *(cells.get((sim, s), "") for s in strategies)]
        if has_sim_level:
            line.append(sim_text[sim])
        body.append(line)
    return header, body


def to_markdown(name: str, rows: list[dict]) -> str:
    """One table as Markdown: heading, note, then a pipe table (strategy titles as headers).

    Args:
        name: table name (a key of `build_tables`).
        rows: its long rows.
    Returns:
        Markdown text ending in a newline.
    """
    spec = SPEC_BY_NAME[name]
    header, body = wide(rows)
    titles = ["Sim", *(STRATEGY_TITLES.get(h, h) for h in header[1:])]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [f"## {spec.title}", "", spec.note, "", line(titles), line(["---"] * len(titles))]
    out += [line(cells) for cells in body] if body else ["", "(no runs)"]
    return "\n".join(out) + "\n"


def to_csv(rows: list[dict]) -> str:
    """One table as CSV in the report layout (header sim, strategies, optional repro)."""
    header, body = wide(rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(body)
    return buf.getvalue()


LONG_FIELDS = ("table", "sim", "law", "dim", "strategy", "n_runs", "runs", "value", "spread", "paper", "repro",
               "repro_sim", "cell")


def to_long_csv(tables: dict[str, list[dict]]) -> str:
    """Every table's long rows as one CSV; table-specific numbers go in a JSON "extra" column."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*LONG_FIELDS, "extra"])
    for rows in tables.values():
        for row in rows:
            extra = {k: v for k, v in row.items() if k not in LONG_FIELDS}
            writer.writerow([_csv_value(row.get(k)) for k in LONG_FIELDS] + [json.dumps(extra, ensure_ascii=False)])
    return buf.getvalue()


def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def _sources_footer() -> str:
    lines = ["## Sources", ""]
    for source in pub.sources():
        lines.append(f"- **{source}**: {pub.citation(source)} Normalisation: {pub.normalisation(source)}")
    return "\n".join(lines) + "\n"


def write_tables(runs: list[Run], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write every table as Markdown and CSV, plus a combined Markdown and a long CSV.

    Args:
        runs: runs to tabulate (e.g. `find_runs(sweep)`).
        out_dir: created if needed; files are written atomically.
    Returns:
        {file name: path}: "{table}.md" and "{table}.csv" per table, "tables.md" (all
        tables and the sources' citations), "tables_long.csv" (every cell with numbers)
        and "summary.csv" (one row per run, `analysis.summary`).
    """
    out_dir = Path(out_dir)
    tables = build_tables(runs)
    written: dict[str, Path] = {}

    def put(file_name: str, text: str) -> None:
        atomic_write_text(out_dir / file_name, text)
        written[file_name] = out_dir / file_name

    markdown = []
    for name, rows in tables.items():
        md = to_markdown(name, rows)
        markdown.append(md)
        put(f"{name}.md", md)
        put(f"{name}.csv", to_csv(rows))
    put("tables.md", "# Results vs published numbers\n\n" + "\n".join(markdown) + "\n" + _sources_footer())
    put("tables_long.csv", to_long_csv(tables))
    put("summary.csv", to_summary_csv(summary_rows(runs)))
    return written
