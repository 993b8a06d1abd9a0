"""Message analysis: edge sampling and inputs, significance, sparsity, robust Powell R²."""
import numpy as np
import pytest

from _distill_helpers import edge_truth, states
from distill.candidate import lambdify, parse
from distill.messages import edge_input_names, edge_inputs
from gnn.messages import analyse_messages, robust_affine_r2, sample_edges, significance, sparsity, top_components, variance_shares
from nbody.laws import get_law

SPRING = get_law("spring")


def test_edge_inputs_use_receiver_minus_sender_and_the_softened_distance():
    x_recv = np.array([[1.0, 2.0, 0, 0, -1.0, 3.0]])
    x_send = np.array([[4.0, 6.0, 0, 0, 1.0, 5.0]])
    X = edge_inputs(x_recv, x_send, 2, 0.01)
    assert edge_input_names(2) == ["dx", "dy", "r", "rs", "m1", "m2", "q1", "q2"]
    np.testing.assert_allclose(X[0], [-3.0, -4.0, 5.0, 5.01, 3.0, 5.0, -1.0, 1.0])


def test_softened_distance_makes_the_exact_law_expressible_at_close_range():
    r1 = get_law("r1")
    x, _ = states(r1, 2, 4, 400, seed=1)
    s = sample_edges(x, r1, 4000, np.random.default_rng(1))
    X = edge_inputs(s.x_recv, s.x_send, 2, 0.01)
    names = edge_input_names(2)
    exact = parse("-m1*m2*dx/(r*rs)", names)
    force = edge_truth(r1, s.x_recv, s.x_send, 2)[:, 0]
    np.testing.assert_allclose(lambdify(exact, names)(X), force, rtol=1e-5)


def test_sample_edges_respects_min_r_and_pairs():
    x, _ = states(SPRING, 2, 4, 50, seed=0)
    s = sample_edges(x, SPRING, 500, np.random.default_rng(0), min_r=0.5)
    assert s.x_recv.shape == (500, 6)
    assert np.all(edge_inputs(s.x_recv, s.x_send, 2, 0.01)[:, 2] >= 0.5)
    assert np.all(s.receiver != s.sender)
    np.testing.assert_array_equal(s.x_recv, x[s.graph, s.receiver])


def test_sparsity_and_top_components_on_constructed_messages():
    rng = np.random.default_rng(0)
    msgs = rng.normal(size=(4000, 6)) * np.array([0.01, 3.0, 0.01, 0.01, 4.0, 0.01])
    scores = significance(msgs)
    top = top_components(scores, 2)
    assert list(top) == [4, 1]
    assert sparsity(msgs, top) == pytest.approx(25 / (25 + 4 * 1e-4), rel=0.02)
    assert sparsity(msgs, np.array([0, 2])) < 0.01
    shares = variance_shares(np.std(msgs, axis=0))
    assert shares.sum() == pytest.approx(1.0)
    assert shares[top].sum() == pytest.approx(sparsity(msgs, top), abs=1e-12)
    assert shares[4] == pytest.approx(16 / 25, rel=0.05)  # a variance share, not the std share 4 / 7
    assert not variance_shares(np.zeros(3)).any()


def test_kl_significance_ranks_by_mean_kl_not_std():
    rng = np.random.default_rng(1)
    mu = rng.normal(size=(2000, 3)) * np.array([1.0, 0.1, 0.1])
    logvar = np.zeros((2000, 3))
    logvar[:, 0] = 0.0     # matches the prior: KL comes only from mu
    logvar[:, 2] = -8.0    # tiny posterior variance: large KL despite small mu
    kl = significance(mu, logvar)
    assert list(top_components(kl, 1)) == [2]
    assert list(top_components(significance(mu), 1)) == [0]


def test_r2_is_one_for_an_affine_map_of_the_force_and_zero_for_noise():
    x, _ = states(SPRING, 2, 4, 500, seed=2)
    s = sample_edges(x, SPRING, 3000, np.random.default_rng(2))
    force = edge_truth(SPRING, s.x_recv, s.x_send, 2)
    message = 3.0 * force[:, 0] - 1.2 * force[:, 1] + 0.4
    r2, coef, _ = robust_affine_r2(message, force)
    assert r2 > 0.999
    assert coef[0] / coef[1] == pytest.approx(3.0 / -1.2, rel=1e-3)
    noise = np.random.default_rng(3).normal(size=3000)
    assert abs(robust_affine_r2(noise, force)[0]) < 0.02


def test_analyse_messages_distinguishes_force_from_acceleration():
    x, _ = states(SPRING, 2, 4, 500, seed=4)
    s = sample_edges(x, SPRING, 3000, np.random.default_rng(4))
    force = edge_truth(SPRING, s.x_recv, s.x_send, 2)
    accel = force / s.x_recv[:, -1:]
    msgs = np.hstack([accel @ np.array([[1.0, 2.0], [-0.5, 0.3]]).T, 1e-3 * np.ones((3000, 1))])
    rep = analyse_messages(msgs, None, s, SPRING, 2, 0.01)
    assert set(rep.top) == {0, 1}
    assert min(rep.r2_accel) > 0.999
    assert max(rep.r2_force) < 0.95
