"""Complete elliptic integrals K(m), E(m) and D(m) = (K - E) / m in JAX.

The parameter convention is the one of the paper (and of scipy): ``m = k^2``,

    K(m) = int_0^{pi/2} dt / sqrt(1 - m sin^2 t),
    E(m) = int_0^{pi/2} sqrt(1 - m sin^2 t) dt,

defined for every real ``m < 1`` (negative ``m`` is valid; ``K(1) = inf``, ``E(1) = 1``).

Values use the Cephes minimax approximations ``P(x) - log(x) Q(x)`` in the complementary
parameter ``x = 1 - m`` (``m >= 0``), and the imaginary-modulus transformation
``K(m) = K(m / (m - 1)) / sqrt(1 - m)``, ``E(m) = sqrt(1 - m) E(m / (m - 1))`` for ``m < 0``,
which is again a Cephes evaluation at ``x = 1 / (1 - m)``. Near ``m = 0`` the Taylor series
is used for ``D`` (``K - E`` cancels there).

Derivatives are a `jax.custom_jvp` carrying the paper's rules (eq. 15),

    K'(m) = E / (2 m (1 - m)) - K / (2 m),    E'(m) = (E - K) / (2 m),

rewritten with ``D = (K - E) / m`` so that nothing cancels:

    K'(m) = (K - D) / (2 (1 - m)),  E'(m) = -D / 2,  D'(m) = (E / (2 (1 - m)) - D) / m.

For ``|m| < 1/4`` the rules switch to the derivatives of the Taylor series, which gives the
finite limits ``K'(0) = pi/8``, ``E'(0) = -pi/8``, ``D'(0) = 3 pi / 32`` exactly and keeps
every order of derivative accurate near ``m = 0``. The rule calls the functions themselves,
so derivatives of any order (``grad(grad(...))``, ``hessian``) go through the same rules.

As ``m -> 1`` K diverges like ``log(16 / (1 - m)) / 2``; the complementary parameter can be
passed explicitly (``mc = 1 - m``) where it is known more accurately than ``1 - m`` (the loop
field near its wire does this). ``m > 1`` and NaN give NaN (as in scipy): outside the domain;
``m = -inf`` gives the limits ``K = 0``, ``E = inf``, ``D = 0``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np

from . import _validate

__all__ = ["ellipk", "ellipe", "ellipd", "ellipked"]

# Cephes ellpk / ellpe coefficients (highest power first), argument x = 1 - m.
_PK = np.array([
    1.37982864606273237150e-4, 2.28025724005875567385e-3, 7.97404013220415179367e-3,
    9.85821379021226008714e-3, 6.87489687449949877925e-3, 6.18901033637687613229e-3,
    8.79078273952743772254e-3, 1.49380448916805252718e-2, 3.08851465246711995998e-2,
    9.65735902811690126535e-2, 1.38629436111989062502e0,
])
_QK = np.array([
    2.94078955048598507511e-5, 9.14184723865917226571e-4, 5.94058303753167793257e-3,
    1.54850516649762399335e-2, 2.39089602715924892727e-2, 3.01204715227604046988e-2,
    3.73774314173823228969e-2, 4.88280347570998239232e-2, 7.03124996963957469739e-2,
    1.24999999999870820058e-1, 4.99999999999999999821e-1,
])
_PE = np.array([
    1.53552577301013293365e-4, 2.50888492163602060990e-3, 8.68786816565889628429e-3,
    1.07350949056076193403e-2, 7.77395492516787092951e-3, 7.58395289413514708519e-3,
    1.15688436810574127319e-2, 2.18317996015557253103e-2, 5.68051945617860553470e-2,
    4.43147180560990850618e-1, 1.00000000000000000299e0,
])
_QE = np.array([
    3.27954898576485872656e-5, 1.00962792679356715133e-3, 6.50609489976927491433e-3,
    1.68862163993311317300e-2, 2.61769742454493659583e-2, 3.34833904888224918614e-2,
    4.27180926518931511717e-2, 5.85936634471101055642e-2, 9.37499997197644278445e-2,
    2.49999999999888314361e-1,
])

# Below this |m| the Taylor series is used (for D and for all derivatives).
_SMALL = 0.25
_NSERIES = 44


def _series_coefficients(n_terms: int):
    """Exact Taylor coefficients (lowest power first) of 2K/pi, 2E/pi, 2D/pi about m = 0."""
    a = []  # [(1/2)_n / n!]^2
    c = Fraction(1)
    for n in range(n_terms + 1):
        a.append(c * c)
        c = c * Fraction(2 * n + 1, 2 * (n + 1))
    k = [float(x) for x in a[:n_terms]]
    e = [float(a[n] / (1 - 2 * n)) for n in range(n_terms)]
    d = [float(a[n + 1] - a[n + 1] / (1 - 2 * (n + 1))) for n in range(n_terms)]
    return np.array(k), np.array(e), np.array(d)


_SK, _SE, _SD = _series_coefficients(_NSERIES)
_HALF_PI = 0.5 * math.pi


def _horner(coeffs_high_first, x):
    acc = jnp.full_like(x, coeffs_high_first[0])
    for c in coeffs_high_first[1:]:
        acc = acc * x + c
    return acc


def _series(coeffs_low_first, x):
    return _HALF_PI * _horner(coeffs_low_first[::-1], x)


def _series_prime(coeffs_low_first, x):
    n = np.arange(1, len(coeffs_low_first))
    return _HALF_PI * _horner((n * coeffs_low_first[1:])[::-1], x)


def _ked_values(m, mc):
    """Primal values of K, E, D (no custom derivative rule)."""
    neg = m < 0.0
    # complementary parameter fed to the Cephes approximations
    x = jnp.where(neg, 1.0 / jnp.where(neg, mc, 1.0), mc)
    zero = x == 0.0
    xs = jnp.where(zero, 1.0, x)
    logx = jnp.log(xs)
    kc = _horner(_PK, xs) - logx * _horner(_QK, xs)
    ec = _horner(_PE, xs) - logx * (xs * _horner(_QE, xs))
    kc = jnp.where(zero, jnp.inf, kc)
    ec = jnp.where(zero, 1.0, ec)
    sq = jnp.sqrt(jnp.where(neg, mc, 1.0))
    k = jnp.where(neg, kc / sq, kc)
    e = jnp.where(neg, ec * sq, ec)
    small = jnp.abs(m) < _SMALL
    m_big = jnp.where(small, 1.0, m)
    d = jnp.where(small, _series(_SD, jnp.where(small, m, 0.0)), (k - e) / m_big)
    # the limits m -> -inf (as in scipy): K -> 0, E -> inf, D = (K - E) / m -> 0
    minf = m == -jnp.inf
    k = jnp.where(minf, 0.0, k)
    e = jnp.where(minf, jnp.inf, e)
    d = jnp.where(minf, 0.0, d)
    nan = (m > 1.0) | jnp.isnan(m)
    k = jnp.where(nan, jnp.nan, k)
    e = jnp.where(nan, jnp.nan, e)
    d = jnp.where(nan, jnp.nan, d)
    return k, e, d


@jax.custom_jvp
def _ked(m, mc):
    return _ked_values(m, mc)


@_ked.defjvp
def _ked_jvp(primals, tangents):
    m, mc = primals
    dm, dmc = tangents
    k, e, d = _ked(m, mc)
    small = jnp.abs(m) < _SMALL
    ms = jnp.where(small, m, 0.0)
    m_big = jnp.where(small, 1.0, m)
    mc_safe = jnp.where(mc == 0.0, 1.0, mc)
    dk = jnp.where(small, _series_prime(_SK, ms), (k - d) / (2.0 * mc_safe))
    de = jnp.where(small, _series_prime(_SE, ms), -0.5 * d)
    dd = jnp.where(small, _series_prime(_SD, ms), (e / (2.0 * mc_safe) - d) / m_big)
    # m and mc = 1 - m are the same variable: average their tangents (exact when consistent)
    t = 0.5 * (dm - dmc)
    return (k, e, d), (dk * t, de * t, dd * t)


def ellipked(m, mc=None):
    """K(m), E(m) and D(m) = (K(m) - E(m)) / m together (one shared evaluation).

    **Arguments:**

    - `m`: parameter ``m = k^2 < 1`` (array-like, float64).
    - `mc`: optional complementary parameter ``1 - m``; pass it when it is known more
      accurately than ``1 - m`` can be computed (``m`` very close to 1). It must agree with
      `m` (``m + mc = 1`` to within ``1e-9 max(1, |m|)``): ValueError naming `mc` otherwise
      (checked on concrete values; under `jit` `mc` is trusted).

    **Returns:** a tuple ``(K, E, D)`` of arrays of the broadcast shape.

    ```python
    >>> K, E, D = ellipked(0.5)
    >>> float(K), float(E)
    (1.8540746773013719, 1.3506438810476755)
    ```
    """
    m = _validate.as_float("m", m)
    if mc is None:
        mc = 1.0 - m
    else:
        mc = _validate.as_float("mc", mc)
        _check_complement(m, mc)
    m, mc = jnp.broadcast_arrays(m, mc)
    return _ked(m, mc)


_MC_RTOL = 1e-9
"""Relative tolerance on ``m + mc = 1`` (rounding only: mc is 1 - m known more accurately)."""


def _check_complement(m, mc):
    """ValueError naming `mc` if a concrete `mc` is not ``1 - m`` (beyond rounding)."""
    if not _validate.is_concrete(m, mc):
        return
    a, b = np.asarray(m, dtype=float), np.asarray(mc, dtype=float)
    try:
        a, b = np.broadcast_arrays(a, b)
    except ValueError:
        raise ValueError(f"mc must broadcast with m: shapes {a.shape} and {b.shape}") from None
    with np.errstate(invalid="ignore", over="ignore"):
        bad = np.isfinite(a) & np.isfinite(b) & (np.abs(a + b - 1.0) > _MC_RTOL * np.maximum(1.0, np.abs(a)))
        bad |= np.isnan(b) & ~np.isnan(a)
    if np.any(bad):
        i = np.flatnonzero(bad)[0]
        raise ValueError(
            f"mc must be the complementary parameter 1 - m (m + mc = 1 up to rounding), got m = {float(a.flat[i])!r} and "
            f"mc = {float(b.flat[i])!r} (m + mc = {float(a.flat[i] + b.flat[i])!r})"
        )


def ellipk(m):
    """Complete elliptic integral of the first kind K(m), ``m = k^2 < 1``.

    Differentiable to any order (custom JVP, paper eq. 15). ``K(1) = inf``; NaN for m > 1.

    ```python
    >>> float(ellipk(0.0)) == math.pi / 2
    True
    ```
    """
    return ellipked(m)[0]


def ellipe(m):
    """Complete elliptic integral of the second kind E(m), ``m = k^2 <= 1``.

    Differentiable to any order (custom JVP, paper eq. 15). ``E(1) = 1``; NaN for m > 1.

    ```python
    >>> float(ellipe(1.0))
    1.0
    ```
    """
    return ellipked(m)[1]


def ellipd(m):
    """``D(m) = (K(m) - E(m)) / m``, accurate also where ``K - E`` cancels (small ``|m|``).

    ``D(0) = pi / 4``. This is the combination in which the vector potential of a current
    loop is free of cancellation.
    """
    return ellipked(m)[2]
