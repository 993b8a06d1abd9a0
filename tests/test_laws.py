"""The pair laws of nbody.laws: forces are -grad(energy), obey Newton's third law,
are translation invariant and rotate with the system; custom laws work end to end."""
import numpy as np
import pytest

from nbody.config import SimConfig
from nbody.initial import initial_conditions
from nbody.integrate import integrate
from nbody.laws import Law, accelerations, energy, get_law, law_names, pair_force, pair_list, register_law
from plumbing.errors import InputError

EPS = 0.01
BUILT_IN = ["spring", "r1", "r2", "charge", "superposition", "damped", "discontinuous", "string"]


def _states(law, n, dim, seed=0, n_sims=6):
    pos, vel, q, m = initial_conditions(law, n, dim, n_sims, np.random.default_rng(seed))
    return pos, vel, q, m


def _random_rotation(dim, rng):
    qmat, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return qmat * np.sign(np.diag(r))


def test_pair_list_takes_each_pair_of_the_edge_template_once():
    assert pair_list(get_law("spring"), 4).tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    assert pair_list(get_law("string"), 4).tolist() == [[0, 1], [1, 2], [2, 3]]
    with pytest.raises(InputError):
        pair_list(get_law("spring"), 1)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("name", BUILT_IN)
@pytest.mark.parametrize("quirks", [False, True])
def test_force_is_minus_energy_gradient(name, dim, quirks):
    law = get_law(name)
    n = 5
    pos, _, q, m = _states(law, n, dim)
    vel = np.zeros_like(pos)            # damping is velocity dependent and has no potential
    force = m[..., None] * accelerations(law, pos, vel, q, m, EPS, quirks)
    grad = np.zeros_like(pos)
    h = 1e-6
    for i in range(n):
        for d in range(dim):
            step = np.zeros_like(pos)
            step[:, i, d] = h
            grad[:, i, d] = (energy(law, pos + step, vel, q, m, EPS, quirks)
                             - energy(law, pos - step, vel, q, m, EPS, quirks)) / (2 * h)
    np.testing.assert_allclose(force, -grad, rtol=1e-5, atol=1e-5)
    assert np.abs(force).max() > 1e-3          # a vanishing force would pass trivially


@pytest.mark.parametrize("name", BUILT_IN)
def test_newtons_third_law_per_pair(name):
    law = get_law(name)
    rng = np.random.default_rng(1)
    d = rng.standard_normal((50, 3))
    q1, q2 = np.sign(rng.standard_normal((2, 50)))
    m1, m2 = np.exp(rng.standard_normal((2, 50)))
    on_1 = pair_force(law, d, q1, q2, m1, m2, EPS)
    on_2 = pair_force(law, -d, q2, q1, m2, m1, EPS)
    np.testing.assert_allclose(on_1, -on_2, rtol=1e-12, atol=1e-12)
    # Central: the force is parallel to the separation.
    np.testing.assert_allclose(np.cross(on_1, d), 0.0, atol=1e-9 * np.abs(on_1).max())


@pytest.mark.parametrize("name", ["spring", "r1", "r2", "charge", "superposition", "discontinuous"])
@pytest.mark.parametrize("dim", [2, 3])
def test_pair_forces_carry_no_net_momentum(name, dim):
    law = get_law(name)
    pos, vel, q, m = _states(law, 6, dim)
    force = m[..., None] * accelerations(law, pos, vel, q, m, EPS)
    np.testing.assert_allclose(force.sum(axis=1), 0.0, atol=1e-10 * np.abs(force).max())


@pytest.mark.parametrize("name", BUILT_IN)
@pytest.mark.parametrize("dim", [2, 3])
def test_translation_invariance_and_rotation_covariance(name, dim):
    law = get_law(name)
    rng = np.random.default_rng(2)
    pos, vel, q, m = _states(law, 5, dim)
    acc = accelerations(law, pos, vel, q, m, EPS)
    shifted = accelerations(law, pos + rng.standard_normal(dim) * 10, vel, q, m, EPS)
    np.testing.assert_allclose(shifted, acc, rtol=1e-9, atol=1e-9)
    if law.gravity:
        return                          # uniform gravity picks a direction: no rotation symmetry
    rot = _random_rotation(dim, rng)
    rotated = accelerations(law, pos @ rot.T, vel @ rot.T, q, m, EPS)
    np.testing.assert_allclose(rotated, acc @ rot.T, rtol=1e-9, atol=1e-9)


def test_custom_law_registers_and_integrates():
    law = register_law(Law("test_quartic_custom", force="-(r - 1)**3 * m1 * m2", dt=0.01))
    assert "test_quartic_custom" in law_names() and get_law("test_quartic_custom") is law
    assert law.conservative        # sympy integrated the force into a potential
    pos, vel, q, m = _states(law, 3, 2, n_sims=8)
    result = integrate(SimConfig(law=law.name, n=3, dim=2, nt=300, softening=EPS, integrator="cpu"), pos, vel, q, m)
    assert not result.failed.any()
    e = energy(law, result.pos, result.vel, q[:, None], m[:, None], EPS)
    np.testing.assert_allclose(e[:, -1], e[:, 0], rtol=1e-6, atol=1e-6)
    assert not np.allclose(result.pos[:, -1], pos)


@pytest.mark.parametrize("kwargs", [
    dict(name="bad law!", potential="r"),
    dict(name="nothing"),
    dict(name="unparsable", potential="r +* 2"),
    dict(name="unknown_symbol", potential="r * z"),
    dict(name="asymmetric", force="q1 / r"),
    dict(name="negative_dt", potential="r", dt=-1.0),
    dict(name="bad_topology", potential="r", topology="ring"),
])
def test_bad_law_input_raises_input_error(kwargs):
    with pytest.raises(InputError):
        Law(**kwargs)


def test_registry_errors():
    with pytest.raises(InputError):
        get_law("no_such_law")
    with pytest.raises(InputError):
        register_law(Law("spring", potential="(r - 2)**2"))
