"""Energy minimiser against Stoner-Wohlfarth equilibria and the analytic 1D domain wall."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from invdesign.constants import MU0
from invdesign.micromag import Grid, Material, System, energies, minimize


def _macrospin(K1=1e5, Ms=8e5):
    g = Grid((1, 1, 1), (2e-9, 2e-9, 2e-9))
    return System(g, Material.uniform(g, Ms=Ms, A=0.0, K1=K1, easy_axis=(1, 0, 0)), demag=False)


@pytest.mark.parametrize("psi,h", [(0.3, 0.4), (1.0, -0.2), (2.0, 0.3), (0.7, 0.05), (2.0, 0.7)])
def test_macrospin_equilibrium_matches_stoner_wohlfarth(psi, h):
    # easy axis along x, field in the xy plane at angle psi from the axis, |H| = h H_A
    K1, Ms = 1e5, 8e5
    sys = _macrospin(K1, Ms)
    HA = 2 * K1 / (MU0 * Ms)
    H = h * HA * np.array([np.cos(psi), np.sin(psi), 0.0])
    m0 = jnp.array([1.0, 0.0, 0.0]).reshape(1, 1, 1, 3)
    res = minimize(sys, m0, jnp.asarray(H), tol=1e-11)
    phi = np.arctan2(float(res.m[0, 0, 0, 1]), float(res.m[0, 0, 0, 0]))

    # reduced energy e = -cos^2(phi) / 2 ... in units of 2 K1: -cos^2(phi)/2 - h cos(phi - psi)
    def e(p):
        return -0.5 * np.cos(p) ** 2 - h * np.cos(p - psi)

    # the minimum reached from phi = 0 by descent: the basin of phi = 0 while it exists
    # (|h| below the astroid h_sw(psi)); past the astroid only the other minimum is left
    h_sw = (abs(np.cos(psi)) ** (2 / 3) + abs(np.sin(psi)) ** (2 / 3)) ** -1.5
    switched = h * np.cos(psi) < 0 and abs(h) > h_sw
    lo, hi = (np.pi / 2, 3 * np.pi / 2) if switched else (-np.pi / 2, np.pi / 2)
    ref = minimize_scalar(e, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12}).x
    ref = np.angle(np.exp(1j * ref))
    assert res.converged
    assert phi == pytest.approx(ref, abs=1e-7)
    assert abs(float(jnp.linalg.norm(res.m)) - 1) < 1e-14


def test_one_dimensional_domain_wall_profile_and_energy():
    # uniaxial chain (easy axis z) without demag: m_z = -tanh(x/delta), sigma = 4 sqrt(A K)
    n, d = 240, 0.5e-9
    A, K1, Ms = 1.3e-11, 5e5, 8e5
    g = Grid((n, 1, 1), (d, d, d))
    sys = System(g, Material.uniform(g, Ms=Ms, A=A, K1=K1, easy_axis=(0, 0, 1)), demag=False)
    x = (np.arange(n) + 0.5) * d - n * d / 2
    theta = np.where(x < 0, 0.1, np.pi - 0.1)  # a sharp wall, rotating in the yz plane
    m0 = np.stack([0 * x, np.sin(theta), np.cos(theta)], -1)[:, None, None, :]
    res = minimize(sys, jnp.asarray(m0), jnp.zeros(3), tol=1e-9, max_iter=50_000)
    assert res.converged
    mz = np.asarray(res.m[:, 0, 0, 2])
    i = np.nonzero(np.diff(np.sign(mz)))[0][0]
    x0 = x[i] - mz[i] * (x[i + 1] - x[i]) / (mz[i + 1] - mz[i])
    delta = np.sqrt(A / K1)
    ref = -np.tanh((x - x0) / delta)
    inner = np.abs(x - x0) < 4 * delta
    assert np.max(np.abs(mz[inner] - ref[inner])) < 2e-3  # O((d/delta)^2) = 1e-2 of the slope
    e = energies(sys, res.m, jnp.zeros(3))
    area = d * d
    E_uniform = -K1 * n * d**3
    sigma = (float(e["total"]) - E_uniform) / area
    assert sigma == pytest.approx(4 * np.sqrt(A * K1), rel=2e-3)


def test_falls_back_to_damped_relaxation_when_the_descent_stalls():
    sys = _macrospin()
    HA = 2 * 1e5 / (MU0 * 8e5)
    m0 = jnp.array([1.0, 0.0, 0.0]).reshape(1, 1, 1, 3)
    H = 0.6 * HA * jnp.array([np.cos(1.2), np.sin(1.2), 0.0])
    res = minimize(sys, m0, H, tol=1e-5, max_iter=1, relax_time=2e-9, max_fallback=3)
    ref = minimize(sys, m0, H, tol=1e-12)
    assert res.n_fallback >= 1
    assert res.converged
    assert np.allclose(np.asarray(res.m), np.asarray(ref.m), atol=1e-5)


def test_result_is_unit_length_with_empty_cells():
    g = Grid((6, 6, 1), (3e-9, 3e-9, 3e-9))
    mask = np.ones(g.shape, bool)
    mask[2:4, 2:4, 0] = False
    sys = System(g, Material.uniform(g, Ms=8e5, A=1.3e-11, mask=mask))
    m0 = jax.random.normal(jax.random.PRNGKey(1), g.shape + (3,))
    res = minimize(sys, m0, jnp.array([1e4, 0.0, 0.0]), tol=1e-6)
    norms = np.linalg.norm(np.asarray(res.m), axis=-1)
    assert res.converged
    assert np.allclose(norms[mask], 1.0, atol=1e-14) and np.all(norms[~mask] == 0)


def test_bad_input_is_rejected():
    sys = _macrospin()
    m0 = jnp.array([1.0, 0.0, 0.0]).reshape(1, 1, 1, 3)
    with pytest.raises(ValueError, match="m0"):
        minimize(sys, jnp.zeros((1, 1, 1, 3)))
    with pytest.raises(ValueError, match="m0"):
        minimize(sys, m0 * np.nan)
    with pytest.raises(ValueError, match="h_ext"):
        minimize(sys, m0, jnp.array([np.nan, 0.0, 0.0]))
    with pytest.raises(ValueError, match="tol"):
        minimize(sys, m0, tol=0.0)
