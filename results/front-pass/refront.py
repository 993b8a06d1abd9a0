"""The composed model and the law of finished runs, refitted by the current `distill.compose`
without and with the front pass (`distill.frontpass`), from the runs' own selected equations
and Pareto fronts; no SR is run.

    python results/front-pass/refront.py RUN [RUN ...] > refront.csv

In:  run folders (`run.py all` outputs: distill/distill.json, distill_config.json,
     each equation's Pareto front and the dataset distill.json names).
Out: CSV on stdout, one row per run: the network's test MAE as the run measured it; the
     composed model's test and worse-OOD MAE and the physical law (text, exact or not) without
     the pass and with it, on evaluation sets drawn again from the same distributions; the
     changes the pass kept; its seconds.
"""
import csv
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from distill import schema
from distill.candidate import parse_untrusted
from distill.compose import eval_sets, refit_composed
from distill.config import DistillConfig
from distill.data import distill_data
from distill.messages import edge_input_names
from distill.physical import physical_law
from distill.symbolic import node_input_names
from nbody.dataset import load_dataset
from plumbing.io import config_from_dict

FIELDS = ["run", "law", "dim", "seed", "network_test", "edge_success", "node_success",
          "composed_test_without", "composed_ood_without", "law_without", "exact_without",
          "composed_test_with", "composed_ood_with", "law_with", "exact_with", "front_choices", "seconds_with"]


def row(run: Path) -> dict:
    j = schema.load_result(run / "distill")
    cfg = config_from_dict(DistillConfig, json.loads((run / "distill/distill_config.json").read_text()))
    data = distill_data(load_dataset(j.dataset))
    names_e, names_n = edge_input_names(data.dim), node_input_names(data.dim, len(j.edge))
    equations = [(e, names_e) for e in j.edge] + [(n, names_n) for n in j.node]
    selected = [parse_untrusted(e.equation, names) for e, names in equations]
    fronts = [[parse_untrusted(r.equation, names) for r in schema.read_front(run / "distill" / e.front_file)]
              for e, names in equations]
    edge, node = selected[:len(j.edge)], selected[len(j.edge):]
    out = {"run": run.name, "law": j.law, "dim": j.dim, "seed": cfg.seed, "network_test": j.mae.network,
           "edge_success": j.edge_success, "node_success": j.node_success}
    for label, c, f in (("without", dataclasses.replace(cfg, front_pass=False), None), ("with", cfg, fronts)):
        sets = eval_sets(data, c, np.random.default_rng(c.seed))
        start = time.perf_counter()
        record, e_out, n_out = refit_composed(edge, node, data, sets, c, f)
        out[f"seconds_{label}"] = round(time.perf_counter() - start, 1)
        law = physical_law(e_out, n_out, data, sets, c)
        out.update({f"composed_test_{label}": record.test, f"composed_ood_{label}": max(record.ood.values()),
                    f"law_{label}": law.text, f"exact_{label}": law.matches_truth})
        if f is not None:
            out["front_choices"] = " | ".join(record.front_choices)
    return {k: out[k] for k in FIELDS}


if __name__ == "__main__":
    out = csv.DictWriter(sys.stdout, FIELDS)
    out.writeheader()
    for path in sys.argv[1:]:
        out.writerow(row(Path(path)))
        sys.stdout.flush()
