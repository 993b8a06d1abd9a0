"""Success judgement: accepts the true laws up to a receiver factor (and the reproduction's
published successes), rejects near misses (wrong power of r, missing terms, the reproduction's
appendix 8.1 failures); the node must undo the factor the edges learned."""
import dataclasses

import numpy as np
import pytest

from _distill_helpers import edge_truth, states
from distill.candidate import complexity, parse
from distill.config import DistillConfig
from distill.judge import (FIXED_TARGETS, Target, affine_r2, edge_target, judge_edge, judge_node,
                           receiver_factor)
from distill.messages import edge_input_names, edge_inputs
from gnn.messages import pair_targets, sample_edges
from distill.symbolic import aggregate, node_input_names, node_inputs
from nbody.laws import get_law

JUDGE = DistillConfig().judge


def fresh_edges(law_name, dim, seed=5):
    law = get_law(law_name)
    x, _ = states(law, dim, 4, 600, seed=seed)
    s = sample_edges(x, law, 3000, np.random.default_rng(seed), min_r=0.5)
    force, _ = pair_targets(law, s.x_recv, s.x_send, dim, 0.01)
    return edge_inputs(s.x_recv, s.x_send, dim, 0.01), force


def verdict(law_name, dim, text, fitted_direction=None):
    X, force = fresh_edges(law_name, dim)
    expr = parse(text, edge_input_names(dim))
    fitted = None if fitted_direction is None else force @ np.asarray(fitted_direction)
    return judge_edge(expr, edge_input_names(dim), X, force, complexity(expr), JUDGE, fitted)


@pytest.mark.parametrize("law_name, dim, text, target", [
    ("spring", 2, "(0.7*dx - 0.3*dy)*(r - 1)/r", "force"),
    # the reproduction's published successes (docs/published.md §2.11: Spring-2 L1; r^-1 2D KL;
    # r^-2 3D bottleneck; charge 3D)
    ("spring", 2, "(-0.291 + 0.287/r)*(dx - 0.986*dy) + 0.00118", "force"),
    ("r1", 2, "-0.273*m2*(dx + dy)/r**2", "acceleration"),
    ("r1", 2, "m1*m2*(dx - 2*dy)/r**2", "force"),
    ("r1", 2, "m2*(dx - 2*dy)/(r*rs)", "acceleration"),         # exact, with the softened distance
    ("r2", 3, "6.06*m2*(-0.713*dx + dy + 2.44*dz)/r**3", "acceleration"),
    ("r2", 3, "m2*(dx + dy)/(r**2*(r + 0.0308))", "acceleration"),
    ("charge", 3, "-39.3*q2*(0.273*dx + dy)/(q1*m1*r**3)", "acceleration"),
    ("charge", 2, "q1*q2*dy/r**3", "force"),
    # receiver-factor family: the sender's field (the node multiplies by q1/m1), its /m1 form,
    # and a factor g(q1, m1) read off the equation
    ("charge", 2, "q2*dx/r**3", "field"),
    ("charge", 2, "0.49*q2*(dx - 0.2*dy)/(r*(r + 0.01)**2) + 0.003", "field"),
    ("charge", 3, "q2*(dx + dz)/(m1*r**3)", "field/m1"),
    ("r2", 2, "m2*dx/(r**2*(r + 0.01))", "acceleration"),
    ("r2", 2, "m1*m2*dy/r**3", "force"),
    ("r2", 2, "m1*m2*dy/(r**3*(m1 + 0.5))", "acceleration·g"),   # g = m1/(m1 + 0.5)
    ("spring", 2, "(r - 1)*dy/(r*(m1 + 0.5))", "force·g"),
    ("r2", 2, "m2*dy/(r**3*(m1 + 0.5))", "acceleration·g"),
    ("r2", 2, "(0.3*m2*dx - 0.1*m2*dy)/(m1*r**3 + 0.5*r**3) + 0.01", "acceleration·g"),
    ("spring", 3, "(r - 1)*(dx - 0.4*dz)/(r*(m1 + 0.7))", "force·g"),
    ("charge", 3, "q2*dy/(r**3*(m1 + 1.3))", "field·g"),
    # a bottleneck component with the field along x and the force along y (charge 2D, seed 0)
    ("charge", 2, "0.00075664*q2*(-46.173*dx - 79.746*dy/q1)/rs**3 - 0.0087142", "force+field"),
    # an additive term of the receiver's own q1, m1 is an offset the node model removes
    # (charge 2D seed 2, aligned per receiver charge)
    ("charge", 2, "0.6441*dy*q2*(m1 + 0.51368)/(m1*q1*rs**3) - 0.066886*q1 + 0.17493", "field·g"),
    ("r2", 2, "m2*dx/(r**2*(r + 0.01)) + 0.2/(m1 + 0.3)", "acceleration"),
])
def test_accepts_true_laws(law_name, dim, text, target):
    j = verdict(law_name, dim, text)
    assert j.success, j
    assert j.target == target
    assert j.r2 >= 0.99


@pytest.mark.parametrize("law_name, dim, text", [
    ("spring", 2, "(0.7*dx - 0.3*dy)*(r - 1)"),                 # wrong power of r
    ("r1", 2, "m2*(dx - 2*dy)/r**3"),                           # 1/r^2 force for an 1/r law
    ("r1", 2, "(dx - 2*dy)/r**2"),                              # mass factor missing
    ("r2", 3, "m2*(dx + dy)/r**2"),                             # 1/r for an 1/r^2 law
    ("charge", 3, "q1*q2*dy/r**2"),                             # wrong power of r
    # the reproduction's failed edge reconstructions (docs/published.md §2.11)
    ("spring", 2, "(dx + dy)/(-r + m1*(0.647 - m1))"),
    ("charge", 2, "0.351*dy*q2/(r**2*(r + 0.169*m1))"),
    ("r2", 3, "8.43*m2*(0.26 + (dx - dy + 3.52*dz)/r)/r**2"),
    ("spring", 2, "0.57*dy + 0.32*dx"),                         # the paper's KL failure (docs/published.md §1.4), in 2D
    ("charge", 2, "0.49*q2*dy/r**2"),                           # field with the wrong power of r
    ("charge", 2, "dx/r**3"),                                   # sender charge missing
    ("charge", 2, "q2*dx/(r**3*(r + 0.3*m1))"),                 # factor mixing r and m1
    ("r2", 2, "dx/(r**3*(m1 + 0.5))"),                          # sender mass missing
    ("r2", 2, "m2*dx/(r**2*(m1 + 0.5))"),                       # wrong power under a receiver factor
    ("r2", 2, "m2*dx/(r**3*(m2 + 0.5))"),                       # a sender factor is not undone
    ("spring", 3, "(r - 1)*(dx - 0.4*dz)/(r*(m2 + 0.7))"),      # sender mass, not a receiver factor
    ("charge", 2, "q2*dx/r**2 - 0.07*q1"),                      # wrong power beside a receiver offset
    ("r2", 2, "m2*dx/r**3 + 0.3*m2"),                           # an offset of the sender is not removed
    ("spring", 2, "(r - 1)*dx/r + 0.2*r*m1"),                   # nor one mixing r with the receiver
])
def test_rejects_near_misses(law_name, dim, text):
    j = verdict(law_name, dim, text)
    assert not j.success, j
    assert j.target is None


def test_missing_dy_term_is_rejected_against_the_fitted_component():
    direction = [-0.35, 0.15]      # the message 0.7(r-1)/r dx - 0.3(r-1)/r dy, in force units
    assert verdict("spring", 2, "(0.7*dx - 0.3*dy)*(r - 1)/r", direction).success
    j = verdict("spring", 2, "0.7*dx*(r - 1)/r", direction)
    assert j.r2 > 0.99 and j.cosine < 0.95 and not j.success
    assert not verdict("spring", 2, "(-0.7*dx + 0.3*dy)*(r - 1)/r", direction).success  # sign flipped


def test_the_networks_direction_is_the_typical_pairs_not_the_strongest_pairs():
    """r2 3D, relative loss, seed 2: the component is the y force on every pair but the
    strongest 2 %, where the network saturates and mixes in the other axis; a plain
    least-squares direction of it is the strongest pairs' (cosine 0.52 with y here), and the
    law dy·m1·m2/r³ was refused for it."""
    X, force = fresh_edges("r2", 2)
    size = np.linalg.norm(force, axis=1)
    strong = size > np.quantile(size, 0.98)
    fitted = force[:, 1].copy()
    fitted[strong] = 0.3 * force[strong, 1] + 0.6 * force[strong, 0]
    names = edge_input_names(2)
    expr = parse("-m1*m2*dy/(r**2*rs)", names)
    plain = affine_r2(fitted, force)[1][:2]
    assert abs(plain[1]) / np.linalg.norm(plain) < 0.95                 # the strongest pairs' direction
    j = judge_edge(expr, names, X, force, complexity(expr), JUDGE, fitted)
    assert j.cosine > 0.999 and j.success, j
    mixed = force @ np.array([0.3, 1.0])                                # mixed on every pair: refused
    assert not judge_edge(expr, names, X, force, complexity(expr), JUDGE, mixed).success


def test_force_plus_field_is_offered_only_for_charges_of_plus_minus_one():
    assert "force+field" in verdict("charge", 2, "q2*dx/r**3").r2_targets
    assert "force+field" not in verdict("r2", 2, "m1*m2*dx/r**3").r2_targets


def test_receiver_factor_is_read_off_the_equation():
    j = verdict("r2", 2, "2*m2*dy/(r**3*(m1 + 0.5))")
    assert j.target == "acceleration·g", j
    assert j.receiver_factor == str(receiver_factor(parse("1/(m1 + 0.5)", ["m1"])))
    assert edge_target(j) == Target("acceleration·g", mass=True, factor=j.receiver_factor)
    assert verdict("r2", 2, "m1*m2*dy/r**3").receiver_factor is None
    names = edge_input_names(2)
    assert receiver_factor(parse("q2*dx/(r**2*(r + 0.169*m1))", names)) is None     # mixes r and m1
    assert receiver_factor(parse("0.5*dx*q1", names)) == parse("q1", names)


def test_complexity_limit_applies():
    X, force = fresh_edges("spring", 2)
    expr = parse("(0.7*dx - 0.3*dy)*(r - 1)/r", edge_input_names(2))
    cfg = dataclasses.replace(JUDGE, max_complexity=40)
    assert not judge_edge(expr, edge_input_names(2), X, force, complexity=99, cfg=cfg).success


@pytest.fixture(scope="module")
def node_data():
    law = get_law("charge")
    x, _ = states(law, 3, 4, 800, seed=6)
    mix = np.array([[0.6, 0.1, 0.1], [0.1, 0.6, 0.1], [0.1, 0.1, 0.6]])
    agg = aggregate(lambda xr, xs: edge_truth(law, xr, xs, 3) @ mix.T, x, law).reshape(-1, 3)
    flat = x.reshape(-1, 8).astype(np.float64)
    return node_inputs(flat, agg, 3), agg


def node_verdict(node_data, text, targets=FIXED_TARGETS[:2]):
    X, agg = node_data
    names = node_input_names(3, 3)
    expr = parse(text, names)
    return judge_node(expr, names, X, agg, complexity(expr), JUDGE, targets=targets)


@pytest.mark.parametrize("text, target", [
    ("(0.2*e1 - 0.5*e2 + 0.03)/m1", "force"),
    ("(0.199*e1 - 0.509*e2 + 0.0316)/m1", "force"),   # reproduction Spring-2 L1 (docs/published.md §2.11)
    ("7.76*e1 - e2", "acceleration"),                 # reproduction r^-2 2D bottleneck (edge learned accelerations)
    ("0.147*(e1 + e2)/m1", "force"),                  # reproduction charge 3D KL
])
def test_node_accepts_newtons_second_law(node_data, text, target):
    j = node_verdict(node_data, text)
    assert j.success and j.target == target, j


FIELD, FIELD_M, MIXED = FIXED_TARGETS[2], FIXED_TARGETS[3], FIXED_TARGETS[4]
SCALED = Target("force·g", factor="1/(m1 + 0.5)")


@pytest.mark.parametrize("text, targets, target", [
    ("(0.5*e1 - 0.2*e2)*q1/m1", [FIELD], "field"),               # field times q1/m1
    ("0.3*q1*(e1 + e3)", [FIELD_M], "field/m1"),
    ("(e1 - 0.1)*(m1 + 0.5)/m1", [SCALED], "force·g"),           # undoes g = 1/(m1 + 0.5)
    ("(e1 - 0.1)*(1 + 0.5/m1)", [FIXED_TARGETS[0], SCALED], "force·g"),
    ("(0.3*e1 + 0.4*e2*q1 - 0.1*e3)/m1", [MIXED], "force+field"),
    ("(e1 - 0.1)*(m1 + 0.5)/m1 + 0.3*q1/(m1 + 0.2)", [SCALED], "force·g"),   # plus a receiver offset
])
def test_node_undoes_the_receiver_factor(node_data, text, targets, target):
    j = node_verdict(node_data, text, targets)
    assert j.success and j.target == target, j


@pytest.mark.parametrize("text, targets", [
    ("(0.5*e1 - 0.2*e2)*q1/m1", FIXED_TARGETS[:2]),               # multiplies by q1, edges learned force
    ("(0.5*e1 - 0.2*e2)/m1", [FIELD]),                            # edges learned the field, q1 missing
    ("(e1 - 0.1)*(m1 + 2.0)/m1", [SCALED]),                       # undoes the wrong offset
    ("(e1 - 0.1)/m1", [SCALED]),                                  # does not undo 1/(m1 + 0.5)
    ("(0.3*e1 + 0.4*e2*q1)/m1**2", [MIXED]),                      # wrong power of the mass
    ("(e1 - 0.1)/m1 + 0.3*q1/(m1 + 0.2)", [SCALED]),              # a receiver offset does not undo g
    ("(e1 - 0.1)*(m1 + 0.5)/m1 + 0.3*vx1", [SCALED]),             # a velocity term is no offset
])
def test_node_rejects_a_factor_the_edges_did_not_learn(node_data, text, targets):
    assert not node_verdict(node_data, text, targets).success


@pytest.mark.parametrize("text", [
    "e1*e2**2",                                       # reproduction failures (docs/published.md §2.11): charge 3D KL
    "(0.153 + 0.171/m1)*(e2 + e1 + 1.11)",            # reproduction failure: charge 3D bottleneck, "almost correct"
    "3.62e-5*e1**2",                                  # reproduction failure: r^-2 2D standard
    "0.5*e1/m1**2",                                   # wrong power of the mass
    "(85.0*e1 + 57.2*e2)*(0.001*e2**2 + 0.898)",      # r2 2D, "best" selection: a hidden e2**3
])
def test_node_rejects_near_misses(node_data, text):
    j = node_verdict(node_data, text)
    assert not j.success and j.target is None, j


def test_affine_r2_handles_constant_and_nonfinite_outputs():
    basis = np.random.default_rng(0).normal(size=(100, 2))
    assert affine_r2(np.ones(100), basis)[0] == 0.0
    y = basis[:, 0].copy()
    y[3] = np.inf
    assert affine_r2(y, basis)[0] == 0.0
