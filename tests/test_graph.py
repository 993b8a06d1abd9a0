"""nbody.graph / gnn.graph: the edge template and the scatter-sum aggregation against a dense reference."""
import numpy as np
import pytest
import torch

from gnn.graph import edges
from nbody import graph
from nbody.graph import scatter_sum
from plumbing.errors import InputError


@pytest.mark.parametrize("n", [2, 4, 7])
def test_full_graph_has_every_ordered_pair_once_receiver_major(n):
    senders, receivers = edges(n, "full")
    pairs = list(zip(receivers.tolist(), senders.tolist()))
    assert len(pairs) == n * (n - 1)
    assert sorted(pairs) == [(i, j) for i in range(n) for j in range(n) if i != j]
    assert pairs == sorted(pairs)  # receiver-major, senders ascending


def test_chain_graph_links_neighbours_both_ways():
    senders, receivers = edges(5, "chain")
    pairs = set(zip(receivers.tolist(), senders.tolist()))
    assert len(senders) == 8
    assert pairs == {(i, i + 1) for i in range(4)} | {(i + 1, i) for i in range(4)}


def test_bad_graphs_raise_input_error():
    with pytest.raises(InputError):
        edges(1, "full")
    with pytest.raises(InputError):
        edges(4, "ring")


def test_scatter_sum_equals_dense_incidence_matmul():
    gen = torch.Generator().manual_seed(0)
    n_nodes, n_e, channels = 6, 20, 3
    receivers = torch.randint(0, n_nodes - 1, (n_e,), generator=gen)  # node n_nodes-1 receives nothing
    values = torch.randn(2, 5, n_e, channels, generator=gen, dtype=torch.float64)  # extra leading axes
    incidence = torch.zeros(n_nodes, n_e, dtype=torch.float64)
    incidence[receivers, torch.arange(n_e)] = 1.0                                 # [n, E]
    dense = torch.einsum("ne,abec->abnc", incidence, values)
    out = scatter_sum(values, receivers, n_nodes)
    assert out.shape == (2, 5, n_nodes, channels)
    torch.testing.assert_close(out, dense)
    assert torch.all(out[..., n_nodes - 1, :] == 0)  # sized by n_nodes, not by the largest index


def test_scatter_sum_gradient_is_a_gather():
    receivers = torch.tensor([0, 0, 2, 1])
    values = torch.randn(3, 4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: scatter_sum(v, receivers, 4), (values,))


def test_numpy_scatter_sum_matches_the_torch_one():
    rng = np.random.default_rng(0)
    receivers = rng.integers(0, 5, 20)                                 # node 5 receives nothing
    values = rng.normal(size=(2, 20, 3))
    out = scatter_sum(values, receivers, 6)
    assert out.shape == (2, 6, 3) and np.all(out[:, 5] == 0)
    np.testing.assert_allclose(out, scatter_sum(torch.from_numpy(values), torch.from_numpy(receivers), 6).numpy())


@pytest.mark.parametrize("topology", ["full", "chain"])
def test_the_torch_edges_are_the_numpy_template(topology):
    for mine, template in zip(edges(6, topology), graph.edges(6, topology)):
        assert mine.dtype == torch.int64 and mine.tolist() == template.tolist()


@pytest.mark.parametrize("topology", ["full", "chain"])
def test_reverse_edges_swap_sender_and_receiver(topology):
    senders, receivers = graph.edges(5, topology)
    rev = graph.reverse_edges(5, topology)
    assert np.array_equal(senders[rev], receivers) and np.array_equal(receivers[rev], senders)
    assert np.array_equal(rev[rev], np.arange(len(senders)))
