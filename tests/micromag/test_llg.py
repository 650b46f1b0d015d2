"""LLG integration against analytic macrospin solutions, scipy and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from invdesign.constants import MU0
from invdesign.micromag import Grid, Material, System, integrate_llg, llg_rhs
from invdesign.micromag import _llg

# small grids and short runs: compile-bound, so XLA's cheaper optimisation level (tests/conftest.py)
FULL_XLA_OPTIMIZATION = False


def _macrospin(alpha=0.1, K1=0.0, axis=(0, 0, 1)):
    g = Grid((1, 1, 1), (2e-9, 2e-9, 2e-9))
    return System(g, Material.uniform(g, Ms=8e5, A=0.0, K1=K1, easy_axis=axis, alpha=alpha), demag=False)


def test_dormand_prince_tableau_is_consistent():
    # row sums of A equal C; 5th-order weights sum to 1; dense output at s = 1 reproduces B
    for i in range(1, 6):
        assert sum(_llg._A[i]) == pytest.approx(_llg._C[i], abs=1e-15)
    assert sum(_llg._B) == pytest.approx(1.0, abs=1e-15)
    assert sum(_llg._E) == pytest.approx(0.0, abs=1e-15)
    b_dense = [sum(row) for row in _llg._P]
    assert np.allclose(b_dense[:6], _llg._B, atol=1e-15) and abs(b_dense[6]) < 1e-15
    # order conditions sum b c^k = 1/(k+1) for k <= 4
    for k in range(5):
        assert sum(b * c**k for b, c in zip(_llg._B, _llg._C)) == pytest.approx(1 / (k + 1), abs=1e-14)


def test_bogacki_shampine_tableau_and_accuracy():
    tab = _llg._BS3
    for i in range(1, 3):
        assert sum(tab["A"][i]) == pytest.approx(tab["C"][i], abs=1e-15)
    for k in range(3):  # third-order conditions on the weights
        assert sum(b * c**k for b, c in zip(tab["B"], tab["C"])) == pytest.approx(1 / (k + 1), abs=1e-15)
    assert sum(tab["E"]) == pytest.approx(0.0, abs=1e-15)
    alpha, H = 0.1, 2e5
    sys = _macrospin(alpha)
    m0 = jnp.array([1.0, 0.0, 0.0]).reshape(1, 1, 1, 3)
    t = np.linspace(0, 1e-10, 17)  # outputs between steps exercise the Hermite interpolant
    sol = integrate_llg(sys, m0, jnp.array([0.0, 0.0, H]), t, rtol=1e-8, atol=1e-8, method="bs3")
    w = sys.gamma * H / (1 + alpha**2)
    theta = 2 * np.arctan(np.exp(-alpha * w * t))
    ref = np.stack([np.sin(theta) * np.cos(w * t), np.sin(theta) * np.sin(w * t), np.cos(theta)], -1)
    assert np.max(np.abs(np.asarray(sol.values) - ref)) < 2e-6
    with pytest.raises(ValueError, match="method"):
        integrate_llg(sys, m0, jnp.zeros(3), t, method="euler")


def test_damped_precession_matches_analytic_macrospin():
    alpha, H = 0.1, 2e5
    sys = _macrospin(alpha)
    theta0 = 1.2
    m0 = jnp.array([np.sin(theta0), 0.0, np.cos(theta0)]).reshape(1, 1, 1, 3)
    t = np.linspace(0, 2e-10, 41)
    sol = integrate_llg(sys, m0, jnp.array([0.0, 0.0, H]), t, rtol=1e-10, atol=1e-10)
    w = sys.gamma * H / (1 + alpha**2)
    theta = 2 * np.arctan(np.tan(theta0 / 2) * np.exp(-alpha * w * t))
    phi = w * t  # m x H with H along +z turns m clockwise seen from +z: phi decreases? check sign below
    m_ref = np.stack([np.sin(theta) * np.cos(phi), -np.sin(theta) * np.sin(phi), np.cos(theta)], -1)
    # dm/dt = -gamma' m x H: for m = x, m x z = -y, so dm/dt = +gamma' H y -> phi increases
    m_ref_ccw = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], -1)
    err = np.max(np.abs(np.asarray(sol.values) - m_ref_ccw))
    assert err < 1e-8
    assert np.max(np.abs(np.asarray(sol.values) - m_ref)) > 0.1  # the sense of precession matters


def test_time_dependent_field_and_anisotropy_match_scipy():
    alpha, K1 = 0.05, 3e5
    axis = np.array([0.3, 0.0, 1.0]) / np.hypot(0.3, 1.0)
    sys = _macrospin(alpha, K1, axis)
    Ms, gamma = 8e5, sys.gamma

    def h_ext(t):
        return jnp.array([1e5 * jnp.sin(2 * jnp.pi * 5e9 * t), -4e4, 2e4 + 1e14 * t])

    def rhs(t, m):
        H = np.array([1e5 * np.sin(2 * np.pi * 5e9 * t), -4e4, 2e4 + 1e14 * t])
        H = H + 2 * K1 / (MU0 * Ms) * (m @ axis) * axis
        mxh = np.cross(m, H)
        return -gamma / (1 + alpha**2) * (mxh + alpha * np.cross(m, mxh))

    m0 = np.array([1.0, 0.5, -0.2])
    m0 /= np.linalg.norm(m0)
    t = np.linspace(0, 3e-10, 31)
    ref = solve_ivp(rhs, (0, t[-1]), m0, method="DOP853", t_eval=t, rtol=1e-12, atol=1e-12).y.T
    sol = integrate_llg(sys, jnp.asarray(m0).reshape(1, 1, 1, 3), h_ext, t, rtol=1e-9, atol=1e-9)
    assert np.max(np.abs(np.asarray(sol.values) - ref)) < 1e-6
    # the right-hand side itself agrees with the independent formula
    d = llg_rhs(sys, jnp.asarray(m0).reshape(1, 1, 1, 3), h_ext, 1e-11)
    assert np.allclose(np.asarray(d).ravel(), rhs(1e-11, m0), rtol=1e-12, atol=0)


def test_error_control_converges_at_fifth_order():
    # error against the analytic solution falls with the tolerance; steps grow ~ tol^(-1/5)
    alpha, H = 0.02, 3e5
    sys = _macrospin(alpha)
    m0 = jnp.array([1.0, 0.0, 0.0]).reshape(1, 1, 1, 3)
    t = np.array([0.0, 1e-10])
    w = sys.gamma * H / (1 + alpha**2)
    theta = 2 * np.arctan(np.exp(-alpha * w * t[-1]))
    ref = np.array([np.sin(theta) * np.cos(w * t[-1]), np.sin(theta) * np.sin(w * t[-1]), np.cos(theta)])
    errs, steps = [], []
    for tol in (1e-6, 1e-8, 1e-10):
        sol = integrate_llg(sys, m0, jnp.array([0.0, 0.0, H]), t, rtol=tol, atol=tol)
        errs.append(np.max(np.abs(np.asarray(sol.values[-1]) - ref)))
        steps.append(int(sol.n_steps))
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-8
    assert 1.5 < steps[1] / steps[0] < 4.0 and 1.5 < steps[2] / steps[1] < 4.0  # 100^(1/5) = 2.5


def test_unit_length_is_preserved_on_a_grid():
    g = Grid((8, 4, 1), (5e-9, 5e-9, 3e-9))
    sys = System(g, Material.uniform(g, Ms=8e5, A=1.3e-11, alpha=0.02))
    m0 = jax.random.normal(jax.random.PRNGKey(0), g.shape + (3,))
    t = np.linspace(0, 2e-11, 5)
    sol = integrate_llg(sys, m0, jnp.array([-2e4, 3e3, 0.0]), t, observe=lambda m: m)
    norms = np.linalg.norm(np.asarray(sol.values), axis=-1)
    assert np.max(np.abs(norms - 1)) < 1e-12
    assert bool(sol.success)


def test_derivative_with_respect_to_applied_field_matches_central_differences():
    g = Grid((16, 4, 1), (500e-9 / 16, 125e-9 / 16, 3e-9))
    sys = System(g, Material.uniform(g, Ms=8e5, A=1.3e-11, alpha=0.02), gamma=2.211e5)
    m0 = jnp.broadcast_to(jnp.array([0.97, 0.24, 0.0]) / np.hypot(0.97, 0.24), g.shape + (3,))
    t = np.array([0.0, 2e-11, 5e-11])
    h0 = jnp.array([-24.6e-3, 4.3e-3, 0.0]) / MU0

    def mx_final(h):
        sol = integrate_llg(sys, m0, h, t, rtol=1e-10, atol=1e-10)
        return sol.values[-1, 0]

    jac = np.asarray(jax.jacfwd(mx_final)(h0))
    eps = 50.0  # A/m
    fd = []
    for k in range(3):
        e = jnp.zeros(3).at[k].set(eps)
        fd.append((float(mx_final(h0 + e)) - float(mx_final(h0 - e))) / (2 * eps))
    fd = np.asarray(fd)
    assert np.max(np.abs(fd)) > 1e-7  # the response is not trivially zero
    assert np.allclose(jac, fd, rtol=1e-4, atol=1e-6 * np.max(np.abs(fd)))


def test_bad_input_is_rejected():
    sys = _macrospin()
    m0 = jnp.array([1.0, 0, 0]).reshape(1, 1, 1, 3)
    with pytest.raises(ValueError, match="t_out"):
        integrate_llg(sys, m0, jnp.zeros(3), [1e-12, 0.0])
    with pytest.raises(ValueError, match="h_ext"):
        integrate_llg(sys, m0, jnp.array([np.nan, 0, 0]), [0.0, 1e-12])
    with pytest.raises(ValueError, match="m0"):
        integrate_llg(sys, jnp.ones((2, 1, 1, 3)), jnp.zeros(3), [0.0, 1e-12])
    with pytest.raises(ValueError, match="rtol"):
        integrate_llg(sys, m0, jnp.zeros(3), [0.0, 1e-12], rtol=0.0)
