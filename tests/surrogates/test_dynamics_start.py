"""Start-code fit and switching time against exact synthetic references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from invdesign_surrogates.dynamics import StartFit, fit_start, switching_time


def test_fit_start_recovers_a_quadratic_exactly():
    rng = np.random.default_rng(0)
    b = np.stack([-0.03 + 0.01 * rng.random(40), 0.01 * rng.standard_normal(40)], -1)
    # codes that are an exact quadratic of the field (per past state and latent unit)
    a0, a1, a2, a3 = (rng.standard_normal((4, 3)) for _ in range(4))
    u = b * 100.0
    codes = (a0 + u[:, 0, None, None] * a1 + u[:, 1, None, None] * a2
             + (u[:, 0] * u[:, 1])[:, None, None] * a3)
    fit = fit_start(codes, b)
    assert isinstance(fit, StartFit) and fit.hyperparameters == {"n_past": 4, "latent": 3}
    test = np.array([[-0.025, 0.004], [-0.035, -0.006]])
    ut = test * 100.0
    want = a0 + ut[:, 0, None, None] * a1 + ut[:, 1, None, None] * a2 + (ut[:, 0] * ut[:, 1])[:, None, None] * a3
    np.testing.assert_allclose(fit(test), want, rtol=1e-4, atol=1e-4)
    # differentiable: d codes / d b_y is a1-free, a2 + u_x a3 (times 100)
    jac = jax.jacfwd(lambda x: fit(x))(jnp.asarray(test[0], jnp.float32))
    np.testing.assert_allclose(jac[..., 1], 100.0 * (a2 + ut[0, 0] * a3), rtol=1e-3, atol=1e-3)


def test_fit_start_checks_its_input():
    with pytest.raises(ValueError, match="codes must have shape"):
        fit_start(np.zeros((10, 4)), np.zeros((10, 2)))
    with pytest.raises(ValueError, match="fields must have shape"):
        fit_start(np.zeros((10, 4, 3)), np.zeros((9, 2)))
    with pytest.raises(ValueError, match="at least 6 fields"):
        fit_start(np.zeros((5, 4, 3)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="finite"):
        fit_start(np.full((10, 4, 3), np.nan), np.zeros((10, 2)))


def test_switching_time_interpolates_the_first_crossing():
    t = np.arange(1, 101) * 1e-11
    mx = 1.0 - 2.0 * (t / 5e-10)  # crosses -0.9 at t = 0.95 * 5e-10
    ts, ok = switching_time(mx, t)
    assert bool(ok) and float(ts) == pytest.approx(4.75e-10, rel=1e-9)
    # the first crossing counts (a later return above the threshold does not matter)
    mx2 = np.where(t > 7e-10, 0.5, mx)
    assert float(switching_time(mx2, t)[0]) == pytest.approx(4.75e-10, rel=1e-9)
    never = 0.5 * np.ones_like(t)
    ts, ok = switching_time(never, t)
    assert not bool(ok) and float(ts) == pytest.approx(t[-1])
    # batched, and differentiable in the curve (a lower curve switches earlier)
    ts_b, ok_b = switching_time(np.stack([mx, never]), t)
    assert list(np.asarray(ok_b)) == [True, False]
    g = jax.grad(lambda s: switching_time(jnp.asarray(mx) - s, t)[0])(0.0)
    assert float(g) < 0
