"""distill.pipeline.shared_forms: an aligned edge fit that found part of the law is offered the
whole form another axis found, on its own Pareto front under the same selection rule."""
import numpy as np

from distill import DistillConfig
from distill.candidate import Candidate, complexity, mae, parse
from distill.fitting import FitResult
from distill.messages import edge_input_names, edge_inputs
from distill.pipeline import shared_forms
from distill.select import pareto_front, scores
from nbody.laws import get_law, pair_force

NAMES = edge_input_names(2)
CFG = DistillConfig(selection="best")


def _rows(n=2000, seed=0):
    """Edge inputs of random 2D pairs and the charge law's force on the receiver [n, 2]."""
    rng = np.random.default_rng(seed)
    x_recv, x_send = rng.normal(size=(n, 6)), rng.normal(size=(n, 6))
    x_recv[:, 4:] = x_send[:, 4:] = 1.0                   # q = m = 1
    x_recv[:, 4] = rng.choice([-1.0, 1.0], n)
    X = edge_inputs(x_recv, x_send, 2, 0.01)
    d = x_recv[:, :2] - x_send[:, :2]
    return X, pair_force(get_law("charge"), d, x_recv[:, 4], x_send[:, 4], x_recv[:, 5], x_send[:, 5], 0.01)


def _fit(texts, X, y):
    front = pareto_front([Candidate(e, complexity(e), mae(e, X, y, NAMES)) for e in (parse(t, NAMES) for t in texts)], y)
    index = len(front) - 1
    return FitResult(front, scores(front), index, front[index], False, 1.0)


def test_an_axis_that_found_part_of_the_law_takes_the_whole_form_of_another():
    X, force = _rows()
    whole = _fit(["1.01*dx*q1*q2/(r*rs**2)", "0.3*dx"], X, force[:, 0])
    part = _fit(["0.4*dy*q1", "0.3*dy"], X, force[:, 1])        # no 1/r³: what SR left on axis y
    fits, taken = shared_forms([whole, part], X, force, NAMES, CFG, None)
    assert taken == ("edge 2: the form of edge 1",)
    assert fits[0] is whole
    assert str(fits[1].final.expr) == str(parse("dy*q1*q2/(r*rs**2)", NAMES))
    assert fits[1].final.loss < 1e-6 < part.final.loss


def test_axes_that_agree_are_left_as_they_are():
    X, force = _rows(seed=1)
    fits = [_fit(["dx*q1*q2/(r*rs**2)"], X, force[:, 0]), _fit(["dy*q1*q2/(r*rs**2)"], X, force[:, 1])]
    out, taken = shared_forms(fits, X, force, NAMES, CFG, None)
    assert taken == () and out[0] is fits[0] and out[1] is fits[1]
