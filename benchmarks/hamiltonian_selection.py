"""Which Pareto-front entry each selection rule picks for a Hamiltonian run's energies, and
how every entry fares.

Run: `python benchmarks/hamiltonian_selection.py RUN/distill [--judge-seed 5]` (from the
repository root), on the distill folder of a Hamiltonian run: its distill.json names the
checkpoint and the dataset, distill_config.json the config, pareto_{pair,self}_energy.csv
the fronts. Prints, per energy, one markdown row per front entry: complexity, the loss on
the fit rows (from the CSV), the loss on the held-out rows of `distill.energy.heldout_rows`
(grouped by particle constants, one offset per group ignored: what "_heldout" reads) and
on the same rows as a plain MAE, and the judge's verdict on fresh grouped test rows
(`judge.judge_energy`, the entry as it stands on the front, before any refit); then the
entry each rule picks: "score", "best" (fit losses), "score_heldout", "best_heldout"
(grouped held-out losses) and the last two on the plain held-out MAE.
The judgement reads the truth (the law's potential, the kinetic energy) to report only;
no rule sees it.
"""
import argparse
from pathlib import Path

import numpy as np

from distill import schema
from distill.candidate import Candidate, parse
from distill.config import DistillConfig
from distill.data import distill_data
from distill.energy import (_pair_rows, _self_rows, energy_callables, heldout_rows, kinetic, potential,
                            self_input_names)
from distill.judge import judge_energy
from distill.messages import edge_input_names
from distill.select import heldout_loss, select
from gnn.checkpoint import load_model
from nbody.dataset import load_dataset
from plumbing.io import config_from_dict, load_json

RULES = ("score", "best", "score_heldout", "best_heldout")


def picks(front: list[Candidate], grouped: list[float], plain: list[float], factor: float) -> dict[str, int]:
    """The front index each rule picks (the "_heldout" rules once on each held-out loss)."""
    out = {rule: select(front, rule, factor, grouped) for rule in RULES}
    out.update({f"{rule} (plain MAE)": select(front, rule, factor, plain) for rule in RULES[2:]})
    return out


def main(distill_dir: str, judge_seed: int) -> None:
    folder = Path(distill_dir)
    result = schema.load_result(folder)
    cfg = config_from_dict(DistillConfig, load_json(folder / "distill_config.json"))
    model, _ = load_model(result.checkpoint, device="cpu")
    data = distill_data(load_dataset(result.dataset))
    pair, self_energy = energy_callables(model, data.dim)
    held = heldout_rows(data, pair, self_energy, cfg)
    rng = np.random.default_rng(judge_seed)
    X_pair, pair_groups, _, _ = _pair_rows(data.test_x, data.law, data.dim, data.softening, cfg.n_edges,
                                           cfg.min_r, rng)
    X_self, self_groups, _ = _self_rows(data.test_x, data.dim, cfg.n_nodes, rng)
    parts = (("pair", edge_input_names(data.dim), X_pair, potential(data.law, X_pair, data.dim), pair_groups,
              "potential"),
             ("self", self_input_names(data.dim), X_self, kinetic(X_self, data.dim), self_groups, "kinetic"))
    print(f"{folder}: {result.law} {result.dim}D, selection {cfg.selection}, operators {' '.join(cfg.operators)}; "
          f"judged on fresh test rows, seed {judge_seed}")
    for part, names, X, truth, groups, target in parts:
        rows = schema.read_front(folder / f"pareto_{part}_energy.csv")
        front = [Candidate(parse(r.equation, names), r.complexity, r.loss) for r in rows]
        h = held[part]
        grouped = [heldout_loss(c.expr, h.X, h.y, names, h.groups) for c in front]
        plain = [heldout_loss(c.expr, h.X, h.y, names) for c in front]
        chosen = picks(front, grouped, plain, cfg.best_loss_factor)
        print(f"\nH_{part}\n\n| complexity | fit loss | held-out (grouped) | held-out (plain) | judge R², a | "
              f"passes | picked by | equation |\n|---|---|---|---|---|---|---|---|")
        for i, (c, g, p) in enumerate(zip(front, grouped, plain)):
            v = judge_energy(c.expr, names, X, truth, groups, c.complexity, cfg.judge, target)
            by = ", ".join(rule for rule, j in chosen.items() if j == i)
            print(f"| {c.complexity} | {c.loss:.4g} | {g:.4g} | {p:.4g} | {v.r2:.4f}, {v.affine[0]:.3g} | "
                  f"{'✓' if v.success else '✗'} | {by} | `{c.expr}` |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("distill_dir")
    parser.add_argument("--judge-seed", type=int, default=5)
    args = parser.parse_args()
    main(args.distill_dir, args.judge_seed)
