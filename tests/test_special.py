"""K(m), E(m), D(m) against mpmath (50 digits), identities and derivative rules (against the
mpmath closed forms at 80 digits, and mpmath numerical derivatives for higher orders)."""

import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import invdesign  # noqa: F401
from invdesign.special import ellipd, ellipe, ellipk, ellipked


@pytest.fixture(autouse=True, scope="module")
def _mp_50_digits():
    """50 digits for this module's mpmath references, whatever other modules set."""
    with mp.workdps(50):
        yield


def _grid():
    return np.unique(np.concatenate([
        [0.0, 5e-324, -5e-324, 1e-300, -1e-300, 1e-17, -1e-17, 1e-9, -1e-9, 0.25, -0.25,
         0.2499999999999, 0.5, 1 - 1e-12, -10.0],
        np.logspace(-16, -0.0001, 40), -np.logspace(-16, 1, 40),
        1 - np.logspace(-12, -0.01, 40), np.linspace(-10, 1 - 1e-12, 61),
    ]))


M = _grid()


def _rel(got, ref):
    ref = mp.mpf(ref)
    return float(abs((mp.mpf(float(got)) - ref) / ref))


def _mp_d(m):
    m = mp.mpf(m)
    if abs(m) < mp.mpf("1e-20"):  # (K - E) / m = pi/4 (1 + 3m/8 + ...)
        return mp.pi / 4 * (1 + 3 * m / 8)
    return (mp.ellipk(m) - mp.ellipe(m)) / m


def test_values_against_mpmath():
    k, e, d = (np.asarray(a) for a in ellipked(M))
    worst_k = max(_rel(k[i], mp.ellipk(mp.mpf(m))) for i, m in enumerate(M))
    worst_e = max(_rel(e[i], mp.ellipe(mp.mpf(m))) for i, m in enumerate(M))
    worst_d = max(_rel(d[i], _mp_d(m)) for i, m in enumerate(M))
    assert worst_k <= 2e-15
    assert worst_e <= 2e-15
    assert worst_d <= 4e-15


def _mp_deriv(f, m, n):
    return mp.diff(f, mp.mpf(m), n)


@pytest.mark.parametrize("order", [1, 2])
def test_derivatives_against_mpmath(order):
    fk, fe = ellipk, ellipe
    for _ in range(order):
        fk, fe = jax.grad(fk), jax.grad(fe)
    dk = np.asarray(jax.vmap(fk)(M))
    de = np.asarray(jax.vmap(fe)(M))
    worst = 0.0
    for i, m in enumerate(M):
        worst = max(worst, _rel(dk[i], _mp_deriv(mp.ellipk, m, order)),
                    _rel(de[i], _mp_deriv(mp.ellipe, m, order)))
    assert worst <= 1e-13


def test_limits_at_zero_and_one():
    assert float(jax.grad(ellipk)(0.0)) == pytest.approx(math.pi / 8, rel=1e-15)
    assert float(jax.grad(ellipe)(0.0)) == pytest.approx(-math.pi / 8, rel=1e-15)
    assert float(ellipd(0.0)) == pytest.approx(math.pi / 4, rel=1e-15)
    assert float(jax.grad(ellipd)(0.0)) == pytest.approx(3 * math.pi / 32, rel=1e-15)
    # second derivatives at 0 from the series: K'' = 9 pi / 64, E'' = -3 pi / 64
    assert float(jax.grad(jax.grad(ellipk))(0.0)) == pytest.approx(9 * math.pi / 64, rel=1e-14)
    assert float(jax.grad(jax.grad(ellipe))(0.0)) == pytest.approx(-3 * math.pi / 64, rel=1e-14)
    assert np.isinf(float(ellipk(1.0)))
    assert float(ellipe(1.0)) == 1.0
    assert np.isnan(float(ellipk(1.5))) and np.isnan(float(ellipe(1.5)))
    # logarithmic singularity: K(m) - log(16 / (1 - m)) / 2 -> 0 as m -> 1
    mc = 1e-300
    k = float(ellipked(1 - mc, mc)[0])
    assert k == pytest.approx(0.5 * math.log(16 / mc), rel=1e-15)


def test_complementary_argument_is_used():
    mc = np.array([1e-30, 1e-20, 1e-14])
    k = np.asarray(ellipked(1.0 - mc, mc)[0])
    ref = [mp.ellipk(1 - mp.mpf(float(c))) for c in mc]
    for got, r in zip(k, ref):
        assert _rel(got, r) <= 2e-15


def test_third_derivative_and_transforms_compose():
    # third derivative against mpmath at a few points, and hessian/vmap/jit composition
    f3 = jax.jit(jax.vmap(jax.grad(jax.grad(jax.grad(ellipk)))))
    pts = np.array([-3.0, -0.1, 0.0, 0.1, 0.7])
    got = np.asarray(f3(pts))
    for g, m in zip(got, pts):
        assert _rel(g, mp.diff(mp.ellipk, mp.mpf(m), 3)) < 1e-11
    h = jax.hessian(lambda v: ellipk(v[0]) * ellipe(v[1]))(jnp.array([0.3, -2.0]))
    assert np.all(np.isfinite(np.asarray(h)))


@pytest.mark.parametrize("a,b", [(0.3, -2.0), (0.1, 0.95), (-0.2, -0.6)])
def test_hessian_composition_against_mpmath(a, b):
    """jax.hessian of K(a) E(b) (the rules nested inside each other, jit-compiled) against
    the product rule evaluated with mpmath derivatives at 50 digits."""
    h = np.asarray(jax.jit(jax.hessian(lambda v: ellipk(v[0]) * ellipe(v[1])))(jnp.array([a, b])))
    with mp.workdps(50):
        ma, mb = mp.mpf(a), mp.mpf(b)
        k, k1, k2 = (mp.diff(mp.ellipk, ma, n) for n in (0, 1, 2))
        e, e1, e2 = (mp.diff(mp.ellipe, mb, n) for n in (0, 1, 2))
        ref = [[k2 * e, k1 * e1], [k1 * e1, k * e2]]
    for i in range(2):
        for j in range(2):
            # measured <= 3.8e-15 (at (-0.2, -0.6)); the finiteness check above is kept
            assert _rel(h[i, j], ref[i][j]) <= 1e-14, (i, j, h[i, j], float(ref[i][j]))


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=1e-6, max_value=1 - 1e-6))
def test_legendre_relation(m):
    # E K' + E' K - K K' = pi / 2 with K' = K(1 - m), E' = E(1 - m): an identity that the
    # implementation does not use.
    k, e, _ = ellipked(m)
    kp, ep, _ = ellipked(1 - m)
    lhs = float(e * kp + ep * k - k * kp)
    assert lhs == pytest.approx(math.pi / 2, rel=3e-14)


_GRAD_K = jax.jit(jax.grad(ellipk))
_GRAD_E = jax.jit(jax.grad(ellipe))


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=-10.0, max_value=0.99))
@example(m=1.352598987725857e-276)
@example(m=-0.25)
@example(m=0.0)
def test_paper_eq15_rules_hold(m):
    # the paper's derivative rules (eq. 15) evaluated from the values
    k, e, _ = (float(x) for x in ellipked(m))
    gk, ge = float(_GRAD_K(m)), float(_GRAD_E(m))
    if abs(m) > 1e-3:
        assert gk == pytest.approx(e / (2 * m * (1 - m)) - k / (2 * m), rel=1e-9)
        assert ge == pytest.approx((e - k) / (2 * m), rel=1e-9)
    # and the same rules evaluated in mpmath (independent values, no cancellation in float64)
    dk, de, _ = _mp_first_derivatives(m)
    assert _rel(gk, dk) <= DERIV_RTOL
    assert _rel(ge, de) <= DERIV_RTOL



# ----------------------------------------------------------------------------------------
# First derivatives (the custom rules themselves) against mpmath closed forms
# ----------------------------------------------------------------------------------------

# Measured worst relative errors (CPU, float64) on the grid below: K' 2.0e-15, E' 1.8e-15
# (both at m = -0.25, the first point on the rule side of the switch); 3.8e-15 over 17,000
# random m in [-10, 0.99] (in -0.5 < m < -0.25, where D = (K - E) / m, which both rules use,
# cancels); 2.1e-16 in the series region |m| < 1/4; D' 2.3e-14 at m = -0.25, the cancellation
# of the rule D' = (E / (2 (1 - m)) - D) / m and not more: relative to that condition number
# the D' error is <= 0.9e-15. d/dmc of K(1 - mc, mc), E(1 - mc, mc) near m = 1: 1.9e-15.
DERIV_RTOL = 5e-15          # K', E' (and the mc tangent), about 23 ulp
SERIES_RTOL = 5e-16         # K', E', D' for |m| < 1/4 (the series derivatives), about 2 ulp
D_RTOL_PER_CONDITION = 2e-15


def _mp_first_derivatives(m):
    """(K', E', D') at m from the closed forms, computed in mpmath with 40 digits to spare.

    dK/dm = (E - (1 - m) K) / (2 m (1 - m)), dE/dm = (E - K) / (2 m),
    dD/dm = (K' - E') / m - (K - E) / m^2; the closed forms cancel like m and m^2 near 0, so
    the working precision grows with 2 |log10 m| (40 digits survive); the series limits
    pi/8, -pi/8, 3 pi/32 at m = 0.
    """
    m = float(m)
    extra = 0 if m == 0 else max(0, int(-2 * math.log10(abs(m))) + 1)
    with mp.workdps(40 + extra):
        m = mp.mpf(m)
        if m == 0:
            return mp.pi / 8, -mp.pi / 8, 3 * mp.pi / 32
        k, e = mp.ellipk(m), mp.ellipe(m)
        dk = (e - (1 - m) * k) / (2 * m * (1 - m))
        de = (e - k) / (2 * m)
        dd = (dk - de) / m - (k - e) / m**2
        return +dk, +de, +dd


def _derivative_grid():
    return np.unique(np.concatenate([
        np.linspace(-5.0, 0.999, 241),
        [0.25, -0.25, np.nextafter(0.25, 0.0), np.nextafter(-0.25, 0.0), 0.2500000001, -0.2500000001, 0.0],
        np.logspace(-30, np.log10(0.999), 60), -np.logspace(-30, np.log10(5.0), 60),
        1 - np.logspace(-12, -3, 30),
    ]))


def test_first_derivative_rules_against_mpmath_closed_forms():
    m = _derivative_grid()
    got = [np.asarray(jax.jit(jax.vmap(jax.grad(f)))(m)) for f in (ellipk, ellipe, ellipd)]
    rule_side = np.abs(m) >= 0.25
    assert rule_side.sum() > 200 and (~rule_side).sum() > 100 and np.max(m) > 1 - 1e-11
    worst = {"K": 0.0, "E": 0.0, "D": 0.0, "series": 0.0}
    for i, mi in enumerate(m):
        dk, de, dd = _mp_first_derivatives(mi)
        ek, ee, ed = _rel(got[0][i], dk), _rel(got[1][i], de), _rel(got[2][i], dd)
        worst["K"], worst["E"] = max(worst["K"], ek), max(worst["E"], ee)
        if rule_side[i]:
            # condition number of D' = (E / (2 (1 - m)) - D) / m, the rule's own cancellation
            with mp.workdps(40):
                mm = mp.mpf(float(mi))
                k, e = mp.ellipk(mm), mp.ellipe(mm)
                cond = max(1.0, float((abs(e / (2 * (1 - mm))) + abs((k - e) / mm)) / abs(mm * dd)))
            worst["D"] = max(worst["D"], ed / cond)
        else:
            worst["series"] = max(worst["series"], ek, ee, ed)
    assert worst["K"] <= DERIV_RTOL, worst
    assert worst["E"] <= DERIV_RTOL, worst
    assert worst["series"] <= SERIES_RTOL, worst
    assert worst["D"] <= D_RTOL_PER_CONDITION, worst


def test_complementary_parameter_tangent_against_mpmath():
    """Near m = 1 the rules are reached through mc: d/dmc K(1 - mc, mc) = -K'(m)."""
    mc = np.logspace(-14, -1, 30)
    gk = np.asarray(jax.vmap(jax.grad(lambda c: ellipked(1.0 - c, c)[0]))(mc))
    ge = np.asarray(jax.vmap(jax.grad(lambda c: ellipked(1.0 - c, c)[1]))(mc))
    with mp.workdps(60):
        for i, c in enumerate(mc):
            c = mp.mpf(float(c))
            k, e = mp.ellipk(1 - c), mp.ellipe(1 - c)
            dk = (e - c * k) / (2 * (1 - c) * c)
            de = (e - k) / (2 * (1 - c))
            assert _rel(-gk[i], dk) <= DERIV_RTOL, (float(c), float(-gk[i]), float(dk))
            assert _rel(-ge[i], de) <= DERIV_RTOL, (float(c), float(-ge[i]), float(de))
