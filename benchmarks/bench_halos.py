"""halos: building the periodic radius graph, streamed in chunks against one query for all.

Unit: seconds per build of the graph of a synthetic catalogue at Quijote's number density
(`halos.synthetic`, 50 Mpc/h cutoff), stored with the edge count in `extra_info`. The
obvious alternative is one `cKDTree.query_ball_point` over every halo at once (chunk_size =
N), which holds the Python lists of all neighbours in memory; peak memory is compared in
benchmarks/RESULTS.md with /usr/bin/time (`python -m benchmarks.bench_halos N CHUNK`).
"""
from __future__ import annotations

import sys

import pytest

from halos.graph import build_graph
from halos.synthetic import SyntheticConfig, make_catalogue

N_HALOS = 50_000


@pytest.fixture(scope="module")
def catalogue():
    return make_catalogue(SyntheticConfig(n_halos=N_HALOS))


@pytest.mark.parametrize("chunk", [10_000, N_HALOS], ids=["chunked-10k", "one-query"])
def test_graph_build(benchmark, catalogue, chunk):
    graph = benchmark.pedantic(build_graph, args=(catalogue.pos, catalogue.box, 50.0, chunk), rounds=3, iterations=1)
    benchmark.extra_info.update(n_halos=N_HALOS, n_edges=graph.n_edges, chunk=chunk)


if __name__ == "__main__":
    # Peak-memory probe: build one graph and exit (run under /usr/bin/time -v).
    n, chunk = int(sys.argv[1]), int(sys.argv[2])
    cat = make_catalogue(SyntheticConfig(n_halos=n))
    g = build_graph(cat.pos, cat.box, 50.0, chunk)
    print(f"{n} halos, chunk {chunk}: {g.n_edges} edges")
