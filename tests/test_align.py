"""The node-aligned message basis (`distill.align`, `DistillConfig.align = "node"`): it undoes
a planted mixing of the force from the node model alone, says when one matrix cannot, and a
planted 3D model distilled in it gives single-axis edge equations that pass the judge."""
import numpy as np
import pytest

from _distill_helpers import edge_truth, states
from distill import DistillConfig, DistillData, distill_network
from distill.align import node_alignment
from distill.candidate import parse
from distill.messages import edge_input_names, sample_edges
from distill.planted import planted_network
from distill.symbolic import aggregate
from nbody import state
from nbody.errors import InputError
from nbody.laws import get_law

R2 = get_law("r2")
MIX_3D = np.array([[0.6, -0.5, 0.3], [0.2, 0.7, -0.4], [-0.3, 0.1, 0.8]])


def _nodes(net, law, dim, graphs=200, seed=3):
    x, _ = states(law, dim, 4, graphs, seed)
    agg = aggregate(net.edge, x.astype(np.float64), law)
    return x.reshape(-1, x.shape[-1]).astype(np.float64), agg.reshape(-1, agg.shape[-1])


def _normalised_rows(matrix):
    rows = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return rows * np.sign(np.diag(rows))[:, None]


def test_alignment_undoes_a_planted_mixing_from_the_node_model_alone():
    net = planted_network(R2, 3, MIX_3D, np.zeros(3))
    x, agg = _nodes(net, R2, 3)
    al = node_alignment(net.node, x, agg, np.arange(3))
    assert al.rank1_share == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(al.matrix, _normalised_rows(np.linalg.inv(MIX_3D)), atol=1e-6)
    xt, _ = states(R2, 3, 4, 50, seed=4)
    edges = sample_edges(xt, R2, 500, np.random.default_rng(0), min_r=0.5)
    aligned = net.edge(edges.x_recv, edges.x_send) @ al.matrix.T
    force = edge_truth(R2, edges.x_recv, edges.x_send, 3)
    for j in range(3):                     # each aligned component is one axis of the force
        assert abs(np.corrcoef(aligned[:, j], force[:, j])[0, 1]) > 1 - 1e-9


def test_a_receiver_factor_keeps_one_matrix_but_receiver_dependent_mixing_does_not():
    charge = get_law("charge")
    mixes = {1.0: np.array([[0.7, -0.3], [0.2, 0.5]]), -1.0: np.array([[0.1, 0.9], [-0.8, 0.3]])}

    def edge_scaled(xr, xs):               # messages g(m1)·mix·F, node undoes g and mix
        return edge_truth(charge, xr, xs, 2) @ mixes[1.0].T / (state.mass(xr, 2)[:, None] + 0.5)

    def node_scaled(x, agg):
        return agg @ np.linalg.inv(mixes[1.0]).T * ((state.mass(x, 2) + 0.5) / state.mass(x, 2))[:, None]

    def mix_of(x):
        return np.stack([mixes[float(q)] for q in state.charge(x, 2)])

    def edge_mixed(xr, xs):                # the mixing itself depends on the receiver's charge
        return np.einsum("nij,nj->ni", mix_of(xr), edge_truth(charge, xr, xs, 2))

    def node_mixed(x, agg):
        return np.einsum("nij,nj->ni", np.linalg.inv(mix_of(x)), agg) / state.mass(x, 2)[:, None]

    x, _ = states(charge, 2, 4, 200, seed=5)
    x = x.reshape(-1, x.shape[-1]).astype(np.float64)
    agg = np.random.default_rng(0).normal(size=(len(x), 2))
    scaled = node_alignment(node_scaled, x, agg, np.arange(2))
    assert scaled.rank1_share == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(scaled.matrix, _normalised_rows(np.linalg.inv(mixes[1.0])), atol=1e-6)
    assert node_alignment(node_mixed, x, agg, np.arange(2)).rank1_share < 0.9


def test_a_node_model_blind_to_the_messages_is_refused():
    x = np.ones((10, 6))
    with pytest.raises(InputError, match="does not depend"):
        node_alignment(lambda x, agg: np.zeros((len(x), 2)), x, np.ones((10, 2)), np.arange(2))


def test_planted_3d_model_distilled_in_the_aligned_basis(tmp_path):
    train_x, train_a = states(R2, 3, 4, 600, seed=10)
    test_x, test_a = states(R2, 3, 4, 300, seed=11)
    data = DistillData(R2, 3, 0.01, train_x, train_a, test_x, test_a)
    cfg = DistillConfig(population_size=300, generations=30, n_threads=2, n_edges=1500, n_nodes=1000,
                        n_eval_graphs=200, n_ood_graphs=100, selection="best", node_selection="score",
                        align="node")
    result = distill_network(planted_network(R2, 3, MIX_3D, np.zeros(3)), data, cfg, tmp_path / "d")
    top = list(result.top_components)      # M acts on the components in significance order
    np.testing.assert_allclose(np.array(result.alignment), _normalised_rows(np.linalg.inv(MIX_3D)[:, top]), atol=1e-6)
    assert [e.component for e in result.edge] == [0, 1, 2]
    assert result.edge_success and result.node_success, result.edge + result.node
    names = edge_input_names(3)
    for e in result.edge:                  # single-axis forms: each names only its own axis
        axes = {s.name for s in parse(e.equation, names).free_symbols} & {"dx", "dy", "dz"}
        assert axes == {f"d{'xyz'[e.component]}"}, e.equation
    assert "aligned component x" in (tmp_path / "d" / "equations.md").read_text()
