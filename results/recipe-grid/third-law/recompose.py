"""The composed model of finished runs refitted again by the current `distill.compose`
(the distance pass included) on their own selected equations; no SR is run.

    python results/recipe-grid/third-law/recompose.py RUN [RUN ...] > recomposed.csv

In:  run folders (`run.py all` outputs: distill/distill.json, distill_config.json, and the
     dataset distill.json names). Out: CSV on stdout, one row per run: the network's test and
     worse-OOD MAE as the run measured them, the composed model's as the run measured it and
     as refitted now (on evaluation sets drawn again from the same distributions), the
     distance swaps kept and the fit's seconds.
"""
import csv
import json
import sys
from pathlib import Path

import numpy as np

from distill.candidate import parse_untrusted
from distill.compose import eval_sets, refit_composed
from distill.config import DistillConfig
from distill.data import distill_data
from distill.messages import edge_input_names
from distill.symbolic import node_input_names
from nbody.dataset import load_dataset
from plumbing.io import config_from_dict

FIELDS = ["run", "law", "dim", "seed", "network_test", "network_ood", "composed_test_then", "composed_ood_then",
          "composed_test_now", "composed_ood_now", "ratio_test_now", "ratio_ood_now", "distance_swaps", "seconds"]


def row(run: Path) -> dict:
    j = json.loads((run / "distill/distill.json").read_text())
    cfg = config_from_dict(DistillConfig, json.loads((run / "distill/distill_config.json").read_text()))
    data = distill_data(load_dataset(j["dataset"]))
    k = len(j["edge"])
    edge = [parse_untrusted(e["equation"], edge_input_names(data.dim)) for e in j["edge"]]
    node = [parse_untrusted(n["equation"], node_input_names(data.dim, k)) for n in j["node"]]
    record, _, _ = refit_composed(edge, node, data, eval_sets(data, cfg, np.random.default_rng(cfg.seed)), cfg)
    then = j.get("composed") or {}
    net_ood = max(v["network"] for v in j["mae"]["ood"].values())
    ood_now = max(record.ood.values())
    return {"run": run.name, "law": j["law"], "dim": j["dim"], "seed": cfg.seed,
            "network_test": j["mae"]["network"], "network_ood": net_ood,
            "composed_test_then": then.get("test"), "composed_ood_then": max((then.get("ood") or {None: None}).values()),
            "composed_test_now": record.test, "composed_ood_now": ood_now,
            "ratio_test_now": j["mae"]["network"] / record.test, "ratio_ood_now": net_ood / ood_now,
            "distance_swaps": "; ".join(record.distance_swaps), "seconds": round(record.seconds, 1)}


if __name__ == "__main__":
    out = csv.DictWriter(sys.stdout, FIELDS)
    out.writeheader()
    for path in sys.argv[1:]:
        out.writerow(row(Path(path)))
        sys.stdout.flush()
