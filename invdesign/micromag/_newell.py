"""Demagnetization tensor of rectangular cells (Newell 1993) with an accurate far field.

Convention: a source cell of size ``dx x dy x dz`` magnetized uniformly with ``M`` produces,
averaged over a target cell of the same size displaced by ``X = (x, y, z)``, the field
``H = -N(X) M``. The self term has ``trace N(0) = 1`` (``N_xx(0) = 1/3`` for a cube), every
other displacement has ``trace N(X) = 0``. With the tent (B-spline) weight
``w(u) = prod_i (d_i - |u_i|)`` on ``[-d, d]^3`` (the distribution of the difference of two
points drawn from the two cells),

    N(X) = -(1 / (4 pi V)) int w(u) grad grad (1 / |X + u|) du,      V = dx dy dz.

Three ways of evaluating it are combined, chosen per displacement and per axis:

1. **Newell (analytic).** Integrating twice along every axis gives Newell's ``f`` (diagonal)
   and ``g`` (off-diagonal) functions and the 27-point second-difference stencil
   ``N = -(1/(4 pi V)) sum c_i c_j c_k F(X + (i dx, j dy, k dz))``, ``c = (1, -2, 1)``.
   Exact, but in float64 the stencil cancels: along an axis where the function varies on a
   scale ``l`` (the distance) the second difference with step ``d_i`` loses ``(l / d_i)^2``,
   so a cube loses ``~(r/d)^6`` (1e-3 relative error at 100 cells, garbage beyond 300).
   For long cells ``f`` and ``g`` also carry huge terms (``z^3 / 6`` with ``z = 36000 nm``)
   that the stencil annihilates exactly but that round at ``eps |z|^3``; they are removed
   analytically (terms that do not depend on one coordinate, or are affine in it, are
   dropped before the stencil; see `_newell_f`). Used only close by.
2. **Tent-weighted Gauss quadrature.** A Gauss rule for the weight ``1 - |t|`` on ``[-1, 1]``
   (so the kink of the tent costs nothing) applied per axis to the point-dipole kernel
   ``grad grad (1/r)``. Along axis ``i`` the integrand is analytic inside the Bernstein
   ellipse through its nearest singularity ``(X_i +/- i rho_i) / d_i`` (``rho_i`` the
   distance of ``-X`` from the box ``[-d, d]^3`` across the other two axes), so ``m_i`` nodes
   give an error ``~ rho_B^(-2 m_i)``; ``m_i`` is chosen per axis from ``rho_B`` for 1e-14
   with a margin (a cube: 7 nodes per axis at 10 cells, 4 at a few hundred). Far away this is the dipole term plus the
   Donahue-style corrections in ``(d / r)^2`` up to order ``4 m - 2``, i.e. an asymptotic
   expansion whose order adapts to the distance and to each axis's cell size.
3. **Hybrid for long cells.** Along an axis ``a`` whose cell edge is long compared with the
   distance (thick 2D-grain cells ``2 x 2 x 36000 nm^3``, where quadrature along ``a``
   cannot converge and no expansion in ``d_a / r`` exists), the tent along ``a`` is
   integrated in closed form (second antiderivative ``phi = z ln(z + r) - r`` of ``1/r``,
   stencil ``(1, -2, 1)`` along ``a``, no cancellation since ``|X_a| <~ d_a``), and the two
   short axes use the tent-Gauss rule of 2.

Switching, per displacement: Newell where its cancellation estimate
``4 eps prod_i max(1, (|X| + d_i) / d_i)^2`` is below 1e-11 (a cube: ``|X| <~ 3.7 d``;
the thick cell: in-plane ``|X| <~ 9 d``); otherwise quadrature where all three axes need at
most 16 nodes (a cube: from ~4 cells on); otherwise the hybrid along the one axis that does
not converge (the thick cell in-plane, from ~10 cells on), provided the other two converge;
otherwise Newell.

Accuracy (``studies/accuracy_newell.py``; mpmath at 50 digits, relative to the largest entry
of the exact 3x3 tensor at each displacement, 0 to 1500 cells): cubes 3e-13, the thin-film
cell 3.90625 x 3.90625 x 3 nm 8e-13, the thick cell 2 x 2 x 36000 nm 3e-11 in-plane (3e-10
stacked along its axis), aspect ratios 1:2:5, 1:1:10, 10:10:1, 1:1:1000 below 3e-11; beyond
~30 cells every case is at 1e-15. Known limit: plate-like cells (two long edges, aspect
``a`` above ~1e4) lose ``~4e-15 a^2`` at in-plane neighbours (Newell without a better
option: 1.6e-7 at ``a = 1e4``).

The other components follow from the two functions by permuting axes:
``N_yy(x, y, z; dx, dy, dz) = N_xx(y, x, z; dy, dx, dz)``,
``N_zz = N_xx(z, y, x; dz, dy, dx)``, ``N_xz = N_xy(x, z, y; dx, dz, dy)``,
``N_yz = N_xy(y, z, x; dy, dz, dx)``.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .._validate import check_cell, check_shape

__all__ = ["newell_nxx", "newell_nxy", "pair_tensor", "demag_tensor"]

# Components in the order of the tensor's leading axis.
_COMPONENTS = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))
_COMPONENT_INDEX = {pair: k for k, pair in enumerate(_COMPONENTS)}
_COMPONENT_INDEX.update({(j, i): k for (i, j), k in list(_COMPONENT_INDEX.items())})

_EPS = np.finfo(float).eps
# Newell is used where eps * prod_i max(1, (|X| + d_i) / d_i)^2 * _NEWELL_SAFETY stays below this.
_NEWELL_TOL = 1e-11
_NEWELL_SAFETY = 4.0
# Quadrature: nodes per axis for an error ~ rho_B^(-2m) below this (with a margin).
_QUAD_TOL = 1e-14
_MAX_NODES = 16
_FOUR_PI = 4.0 * math.pi


# ----------------------------------------------------------------------------------------
# Newell's f and g (float64, vectorised)
# ----------------------------------------------------------------------------------------

def _safe_asinh(num, den2):
    """asinh(num / sqrt(den2)), 0 where den2 == 0 (the prefactor vanishes there)."""
    ok = den2 > 0
    return np.where(ok, np.arcsinh(num / np.sqrt(np.where(ok, den2, 1.0))), 0.0)


def _safe_atan(num, den):
    ok = den != 0
    return np.where(ok, np.arctan(num / np.where(ok, den, 1.0)), 0.0)


def _r_minus_abs(x2, y2, z2, r, b):
    """r - |s_b| without cancellation (s_b the coordinate along slot b, 0/1/2 per element)."""
    other = np.where(b == 0, y2 + z2, np.where(b == 1, x2 + z2, x2 + y2))
    big = np.where(b == 0, x2, np.where(b == 1, y2, z2))
    return other / np.where(r > 0, r + np.sqrt(big), 1.0)


# Taylor coefficients of asinh(t) - t = sum_k c_k t^(2k+1), k >= 1.
_ASINH_SERIES = [(-1) ** k * math.prod(range(1, 2 * k, 2)) / (math.prod(range(2, 2 * k + 1, 2)) * (2 * k + 1))
                 for k in range(1, 12)]


def _asinh_minus_id(num, den2):
    """asinh(t) - t with t = num / sqrt(den2) (0 where den2 == 0), accurate for small t."""
    ok = den2 > 0
    t = num / np.sqrt(np.where(ok, den2, 1.0))
    small = t * t < 1.0 / 64.0
    ts = np.where(small, t, 0.0)
    ts2 = ts * ts
    series = np.zeros_like(ts)
    for c in reversed(_ASINH_SERIES):
        series = series * ts2 + c
    series *= ts * ts2
    return np.where(ok, np.where(small, series, np.arcsinh(t) - t), 0.0)


def _s_asinh(s, rho2, r, far):
    """s asinh(s / rho), or where `far` |s| log1p(rho^2 / (2 |s| (r + |s|))).

    The two differ by |s| (ln(2|s|) - ln rho): times the prefactors Newell puts in front,
    that is a function of fewer coordinates plus |s| times a function of the others, which
    the stencil annihilates when all three stencil values of s have one sign (`far`).
    """
    a = np.abs(s)
    plain = s * _safe_asinh(s, rho2)
    ok = far & (a > 0)
    a1 = np.where(ok, a, 1.0)
    alt = a1 * np.log1p(rho2 / (2.0 * a1 * (r + a1)))
    return np.where(ok, alt, np.where(far, 0.0, plain))


def _xyz_atan(x, y, z, r, far_z):
    """x y z atan(y z / (x r)); where `far_z` minus the stencil-annihilated |x y z| atan(|y|/|x|)."""
    ax, ay, az = np.abs(x), np.abs(y), np.abs(z)
    plain = ax * ay * az * _safe_atan(ay * az, ax * r)
    # atan(y|z|/(x r)) - atan(y/x) = -atan(x y rho^2 / ((r + |z|)(x^2 r + y^2 |z|))) (x, y >= 0).
    den = (r + az) * (ax * ax * r + ay * ay * az)
    alt = -ax * ay * az * _safe_atan(ax * ay * (ax * ax + ay * ay), den)
    return np.where(far_z, alt, plain)


def _newell_f(x, y, z, b, far):
    """Newell's f, with stencil-invariant rewrites selected per displacement.

    `b` is the slot (0/1/2) of the coordinate that is largest over the stencil, `far[i]`
    says whether all stencil values in slot i have one sign. Rewrites (each adds a function
    the 27-point stencil annihilates, chosen identically at all 27 points):

    - ``r -> r - |s_b|`` in the polynomial-times-r term (removes ``-z^3/6`` and the like,
      which otherwise round at ``eps |z|^3`` for long cells);
    - for the long slot ``b``, when its stencil values have one sign, the asinh and atan
      terms lose their large ``|s_b| ln |s_b|``, ``|s_b| ln rho`` and ``|s_b| atan`` parts.
    """
    x2, y2, z2 = x * x, y * y, z * z
    r = np.sqrt(x2 + y2 + z2)
    out = 0.5 * (z2 - x2) * _s_asinh(y, x2 + z2, r, far[1] & (b == 1))
    out += 0.5 * (y2 - x2) * _s_asinh(z, x2 + y2, r, far[2] & (b == 2))
    fz = far[2] & (b == 2)
    fy = far[1] & (b == 1)
    out -= np.where(fy, _xyz_atan(x, z, y, r, fy), _xyz_atan(x, y, z, r, fz))
    out += (2.0 * x2 - y2 - z2) * _r_minus_abs(x2, y2, z2, r, b) / 6.0
    return out


def _newell_g(x, y, z, b, far):
    """Newell's g (odd in x and y), with the rewrites of `_newell_f`.

    The prefactors of the x- and y-asinh terms do not contain the asinh's numerator, so
    ``prefactor * t`` (linear in x, resp. y) may be subtracted; done unless that slot is the
    long one, it removes the ``x y^2 / 6`` term that dominates when y is long.
    """
    x2, y2, z2 = x * x, y * y, z * z
    r = np.sqrt(x2 + y2 + z2)
    sxy = np.sign(x) * np.sign(y)
    out = sxy * np.abs(x * y) * _s_asinh(z, x2 + y2, r, far[2] & (b == 2))
    out += y / 6.0 * (3.0 * z2 - y2) * np.where(b == 0, _safe_asinh(x, y2 + z2), _asinh_minus_id(x, y2 + z2))
    out += x / 6.0 * (3.0 * z2 - x2) * np.where(b == 1, _safe_asinh(y, x2 + z2), _asinh_minus_id(y, x2 + z2))
    out -= z * z2 / 6.0 * _safe_atan(x * y, z * r)
    out -= 0.5 * z * y2 * _safe_atan(x * z, y * r)
    out -= 0.5 * z * x2 * _safe_atan(y * z, x * r)
    out -= x * y * _r_minus_abs(x2, y2, z2, r, b) / 3.0
    return out


_STENCIL = np.array([1.0, -2.0, 1.0])
_SHIFTS = np.array([-1.0, 0.0, 1.0])


def _stencil(fun, x, y, z, dx, dy, dz):
    """-(1/(4 pi V)) sum_ijk c_i c_j c_k fun(x + i dx, y + j dy, z + k dz); x, y, z >= 0."""
    out = np.zeros(np.shape(x))
    ex, ey, ez = x + dx, y + dy, z + dz
    b = np.where((ex >= ey) & (ex >= ez), 0, np.where(ey >= ez, 1, 2))
    far = (x >= dx, y >= dy, z >= dz)
    for i in range(3):
        xi = x + _SHIFTS[i] * dx
        for j in range(3):
            yj = y + _SHIFTS[j] * dy
            cij = _STENCIL[i] * _STENCIL[j]
            for k in range(3):
                out += cij * _STENCIL[k] * fun(xi, yj, z + _SHIFTS[k] * dz, b, far)
    return out * (-1.0 / (_FOUR_PI * dx * dy * dz))


def _apply_signs(out, x, y, z):
    """Off-diagonal components are odd in each of their two coordinates (exact +0 at 0)."""
    sx, sy, sz = np.sign(x), np.sign(y), np.sign(z)
    out[3] = out[3] * (sx * sy) + 0.0
    out[4] = out[4] * (sx * sz) + 0.0
    out[5] = out[5] * (sy * sz) + 0.0


def _newell6(x, y, z, d):
    """All six components by the float64 Newell formulas; x, y, z flat arrays of any sign."""
    dx, dy, dz = d
    ax, ay, az = np.abs(x), np.abs(y), np.abs(z)
    out = np.stack([
        _stencil(_newell_f, ax, ay, az, dx, dy, dz),
        _stencil(_newell_f, ay, ax, az, dy, dx, dz),
        _stencil(_newell_f, az, ay, ax, dz, dy, dx),
        _stencil(_newell_g, ax, ay, az, dx, dy, dz),
        _stencil(_newell_g, ax, az, ay, dx, dz, dy),
        _stencil(_newell_g, ay, az, ax, dy, dz, dx),
    ])
    _apply_signs(out, x, y, z)
    return out


# ----------------------------------------------------------------------------------------
# Gauss rule for the tent weight 1 - |t| on [-1, 1]
# ----------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _legendre_200():
    return np.polynomial.legendre.leggauss(200)


@functools.lru_cache(maxsize=None)
def _tent_rule(m: int):
    """Nodes and weights (summing to 1) of the m-point Gauss rule for weight 1 - |t|."""
    if m == 1:
        return np.zeros(1), np.ones(1)
    # Discretised Stieltjes procedure on a fine Gauss-Legendre grid of each half (exact for
    # polynomials of degree < 2 * 200 times the tent), then Golub-Welsch.
    t, w = _legendre_200()
    t = 0.5 * (t + 1.0)
    w = 0.5 * w * (1.0 - t)
    t = np.concatenate([-t[::-1], t])
    w = np.concatenate([w[::-1], w])
    beta = np.zeros(m)
    p_prev = np.zeros_like(t)
    p = np.ones_like(t)
    norm_prev = 1.0
    norm = float(np.sum(w))
    for k in range(m):
        if k > 0:
            beta[k] = norm / norm_prev
        p_next = t * p - (beta[k] * p_prev if k > 0 else 0.0)
        p_prev, p = p, p_next
        norm_prev, norm = norm, float(np.sum(w * p * p))
    jac = np.diag(np.sqrt(beta[1:]), 1)
    jac = jac + jac.T
    nodes, vecs = np.linalg.eigh(jac)
    weights = vecs[0] ** 2
    nodes = 0.5 * (nodes - nodes[::-1])  # exact symmetry
    weights = 0.5 * (weights + weights[::-1])
    return nodes, weights / weights.sum()


def _bernstein(xa, rho, d):
    """Bernstein-ellipse parameter of the nearest singularity (xa + i rho) / d, xa >= 0."""
    zc = (xa + 1j * rho) / d
    w = zc + np.sqrt(zc - 1.0) * np.sqrt(zc + 1.0)
    a = np.abs(w)
    return np.maximum(a, 1.0 / np.maximum(a, 1e-300))


def _nodes_needed(xa, rho, d):
    """Tent-Gauss nodes along one axis for an error below _QUAD_TOL (capped at 99)."""
    rb = _bernstein(xa, rho, d)
    lr = np.log(np.maximum(rb, 1.0 + 1e-12))
    # Bound ~ rho_B^(-2m) / (rho_B - 1) times the kernel's growth on the ellipse; the extra
    # node and the (rho_B - 1) factor are the margin, checked against mpmath.
    m = np.ceil((math.log(1.0 / _QUAD_TOL) - np.log(np.minimum(rb - 1.0, 1.0) + 1e-300)) / (2.0 * lr)) + 1
    return np.clip(m, 1, 99).astype(int)


# ----------------------------------------------------------------------------------------
# Pure quadrature and the long-axis hybrid
# ----------------------------------------------------------------------------------------

def _quad6(x, y, z, d, mx, my, mz):
    """Tent-Gauss product rule (mx, my, mz nodes) of the point-dipole kernel."""
    dx, dy, dz = d
    tx, wx = _tent_rule(mx)
    ty, wy = _tent_rule(my)
    tz, wz = _tent_rule(mz)
    out = np.zeros((6,) + np.shape(x))
    for a in range(mx):
        xa = x + dx * tx[a]
        xa2 = xa * xa
        for b in range(my):
            yb = y + dy * ty[b]
            yb2 = yb * yb
            wab = wx[a] * wy[b]
            for c in range(mz):
                zc = z + dz * tz[c]
                zc2 = zc * zc
                r2 = xa2 + yb2 + zc2
                s = (wab * wz[c]) / (r2 * r2 * np.sqrt(r2))
                s3 = 3.0 * s
                out[0] += (2.0 * xa2 - yb2 - zc2) * s
                out[1] += (2.0 * yb2 - xa2 - zc2) * s
                out[2] += (2.0 * zc2 - xa2 - yb2) * s
                out[3] += xa * yb * s3
                out[4] += xa * zc * s3
                out[5] += yb * zc * s3
    out *= -(dx * dy * dz) / _FOUR_PI
    return out


def _phi_z(x, y, z):
    """grad grad of phi = z ln(z + r) - r (d^2 phi / dz^2 = 1 / r), six components."""
    x2, y2, z2 = x * x, y * y, z * z
    rho2 = x2 + y2
    r = np.sqrt(rho2 + z2)
    pos = z >= 0
    # p = r + z, without cancellation for z < 0.
    p = np.where(pos, r + z, rho2 / np.where(pos, 1.0, r - z))
    rp = r * p
    rp2 = rp * p
    return (
        -(y2 + z * p) / rp2,
        -(x2 + z * p) / rp2,
        1.0 / r,
        x * y / rp2,
        x / rp,
        y / rp,
    )


def _hybrid6(x, y, z, d, mx, my):
    """Tent integrated analytically along z, tent-Gauss (mx, my nodes) along x and y."""
    dx, dy, dz = d
    tx, wx = _tent_rule(mx)
    ty, wy = _tent_rule(my)
    out = np.zeros((6,) + np.shape(x))
    zs = [z + s * dz for s in _SHIFTS]
    for a in range(mx):
        xa = x + dx * tx[a]
        for b in range(my):
            yb = y + dy * ty[b]
            wab = wx[a] * wy[b]
            for k in range(3):
                phi = _phi_z(xa, yb, zs[k])
                ck = wab * _STENCIL[k]
                for c in range(6):
                    out[c] += ck * phi[c]
    out *= -(dx * dy) / (_FOUR_PI * dz)
    return out


def _permuted(fun6, perm, x, y, z, d, *args):
    """Run fun6 with the axes reordered so that original axis perm[i] becomes axis i."""
    xyz = (x, y, z)
    vals = fun6(xyz[perm[0]], xyz[perm[1]], xyz[perm[2]], tuple(d[p] for p in perm), *args)
    out = np.empty_like(vals)
    for k, (i, j) in enumerate(_COMPONENTS):
        out[_COMPONENT_INDEX[(perm[i], perm[j])]] = vals[k]
    return out


# ----------------------------------------------------------------------------------------
# The accurate evaluator
# ----------------------------------------------------------------------------------------

def _plan(ax, ay, az, d):
    """Method per displacement (0 Newell, 1 quadrature, 2 + a hybrid along a) and node counts."""
    a = (ax, ay, az)
    gap = [np.maximum(a[i] - d[i], 0.0) for i in range(3)]
    m = []
    for i in range(3):
        j, k = [q for q in range(3) if q != i]
        m.append(_nodes_needed(a[i], np.hypot(gap[j], gap[k]), d[i]))
    dist = np.sqrt(ax * ax + ay * ay + az * az)
    loss = np.ones_like(dist)
    for i in range(3):
        loss *= np.maximum(1.0, (dist + d[i]) / d[i]) ** 2
    newell_ok = _EPS * _NEWELL_SAFETY * loss <= _NEWELL_TOL
    quad_ok = (m[0] <= _MAX_NODES) & (m[1] <= _MAX_NODES) & (m[2] <= _MAX_NODES)
    method = np.where(newell_ok, 0, np.where(quad_ok, 1, 0))
    todo = ~newell_ok & ~quad_ok
    for i in range(3):
        j, k = [q for q in range(3) if q != i]
        # The hybrid along i: the two other axes converge; analytic along i costs
        # (l / d_i)^2 of cancellation, which must stay small.
        hyb = todo & (m[j] <= _MAX_NODES) & (m[k] <= _MAX_NODES) & (m[i] > _MAX_NODES)
        hyb &= _EPS * _NEWELL_SAFETY * np.maximum(1.0, (dist + d[i]) / d[i]) ** 2 <= _NEWELL_TOL
        method = np.where(hyb, 2 + i, method)
        todo &= ~hyb
    return method, np.stack(m)


def _accurate6(x, y, z, d):
    """Six components at displacements (flat float arrays of any sign)."""
    x, y, z = (np.asarray(v, dtype=float).ravel() for v in (x, y, z))
    ax, ay, az = np.abs(x), np.abs(y), np.abs(z)
    out = np.zeros((6, ax.size))
    if ax.size == 0:
        return out
    method, m = _plan(ax, ay, az, d)
    sel = method == 0
    if sel.any():
        out[:, sel] = _newell6(ax[sel], ay[sel], az[sel], d)
    sel = method == 1
    if sel.any():
        idx = np.flatnonzero(sel)
        keys = m[:, idx]
        uniq, inv = np.unique(keys, axis=1, return_inverse=True)
        for g in range(uniq.shape[1]):
            gi = idx[inv.ravel() == g]
            out[:, gi] = _quad6(ax[gi], ay[gi], az[gi], d, *uniq[:, g])
    for i in range(3):
        sel = method == 2 + i
        if not sel.any():
            continue
        j, k = [q for q in range(3) if q != i]
        perm = (j, k, i)
        idx = np.flatnonzero(sel)
        keys = m[[j, k]][:, idx]
        uniq, inv = np.unique(keys, axis=1, return_inverse=True)
        for g in range(uniq.shape[1]):
            gi = idx[inv.ravel() == g]
            out[:, gi] = _permuted(_hybrid6, perm, ax[gi], ay[gi], az[gi], d, *uniq[:, g])
    # Signs of the off-diagonal components (odd in each of their two coordinates) and exact
    # zeros where a coordinate vanishes.
    _apply_signs(out, x, y, z)
    return out


# ----------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------

def _check_cell(dx, dy, dz):
    d = []
    for name, v in (("dx", dx), ("dy", dy), ("dz", dz)):
        try:
            fv = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a finite number > 0, got {v!r}") from None
        if not (math.isfinite(fv) and fv > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        d.append(fv)
    return tuple(d)


def _displacements(x, y, z):
    try:
        x, y, z = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, y, z)))
    except ValueError:
        raise ValueError(
            f"x, y, z must broadcast together, got shapes {np.shape(x)}, {np.shape(y)}, {np.shape(z)}"
        ) from None
    for name, v in (("x", x), ("y", y), ("z", z)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} must be finite")
    return x, y, z


def pair_tensor(x, y, z, dx, dy, dz, *, method: str = "auto"):
    """All six components of the cell-pair demagnetization tensor.

    Two ``dx x dy x dz`` cells, the target displaced by ``(x, y, z)`` from the source:
    ``H_target = -N M_source`` (cell-averaged field of the uniformly magnetized source).

    **Arguments:**

    - `x`, `y`, `z`: displacements (any broadcastable arrays, same length unit as the cell).
    - `dx`, `dy`, `dz`: cell edges (> 0).
    - `method`: ``"auto"`` (accurate to ~1e-10 relative or better at any distance: Newell
      near by, tent-weighted quadrature or the long-axis hybrid further out; what
      `demag_tensor` stores) or ``"analytic"`` (the float64 Newell formulas everywhere;
      they lose digits with distance, ~1e-3 at 100 cells for cubes and garbage beyond
      300, and are here for comparison).

    **Returns:** array of shape ``(6, *broadcast shape)`` with the components
    ``(xx, yy, zz, xy, xz, yz)``.

    ```python
    >>> n = pair_tensor(0.0, 0.0, 0.0, 1.0, 1.0, 1.0)
    >>> print(" ".join(f"{v:.6f}" for v in n))
    0.333333 0.333333 0.333333 0.000000 0.000000 0.000000
    ```
    """
    d = _check_cell(dx, dy, dz)
    x, y, z = _displacements(x, y, z)
    if method == "auto":
        out = _accurate6(x, y, z, d)
    elif method == "analytic":
        out = _newell6(x.ravel(), y.ravel(), z.ravel(), d)
    else:
        raise ValueError(f"method must be 'auto' or 'analytic', got {method!r}")
    return out.reshape((6,) + x.shape)


def newell_nxx(x, y, z, dx, dy, dz, *, method: str = "auto"):
    """Diagonal component ``N_xx`` of the cell-pair demagnetization tensor.

    The other diagonal components by permuting axes:
    ``N_yy = newell_nxx(y, x, z, dy, dx, dz)``, ``N_zz = newell_nxx(z, y, x, dz, dy, dx)``.
    Even in each coordinate; ``N_xx + N_yy + N_zz`` is 1 for the self term and 0 otherwise.

    **Arguments:**

    - `x`, `y`, `z`: displacement of the target cell from the source cell (broadcastable).
    - `dx`, `dy`, `dz`: cell edges (> 0).
    - `method`: ``"auto"`` (accurate at every distance) or ``"analytic"`` (plain float64
      Newell, loses digits with distance), see `pair_tensor`.

    **Returns:** ``N_xx`` with the broadcast shape of the displacements.

    ```python
    >>> print(f"{newell_nxx(0.0, 0.0, 0.0, 1.0, 1.0, 1.0):.6f}")
    0.333333
    >>> print(f"{newell_nxx(0.0, 0.0, 0.0, 3.90625, 3.90625, 3.0):.6f}")
    0.303072
    ```
    """
    out = pair_tensor(x, y, z, dx, dy, dz, method=method)[0]
    return float(out) if out.ndim == 0 else out


def newell_nxy(x, y, z, dx, dy, dz, *, method: str = "auto"):
    """Off-diagonal component ``N_xy`` of the cell-pair demagnetization tensor.

    The other off-diagonal components by permuting axes:
    ``N_xz = newell_nxy(x, z, y, dx, dz, dy)``, ``N_yz = newell_nxy(y, z, x, dy, dz, dx)``.
    Odd in ``x`` and in ``y``, even in ``z``; zero when ``x = 0`` or ``y = 0``.

    **Arguments:**

    - `x`, `y`, `z`: displacement of the target cell from the source cell (broadcastable).
    - `dx`, `dy`, `dz`: cell edges (> 0).
    - `method`: ``"auto"`` or ``"analytic"``, see `pair_tensor`.

    **Returns:** ``N_xy`` with the broadcast shape of the displacements.

    ```python
    >>> r = 40.0  # far away: the point-dipole value -(V / 4 pi) * 3 x y / r^5
    >>> x = y = r / 2**0.5
    >>> print(f"{newell_nxy(x, y, 0.0, 1.0, 1.0, 1.0) * r**3:.6f}")
    -0.119366
    ```
    """
    out = pair_tensor(x, y, z, dx, dy, dz, method=method)[3]
    return float(out) if out.ndim == 0 else out


def _check_shape(shape):
    return check_shape(shape, 3)


def _check_cell_tuple(cell):
    return check_cell(cell, 3)


def demag_tensor(shape, cell) -> np.ndarray:
    """Demagnetization tensor of a grid of cells, zero-padded and in FFT wrap-around order.

    For a grid of ``shape = (nx, ny, nz)`` cells of size ``cell = (dx, dy, dz)`` the tensor
    lives on ``L_i = 2 n_i`` points per axis (``1`` where ``n_i = 1``): index ``i < n`` holds
    displacement ``i d``, index ``i > L - n`` holds ``(i - L) d``, index ``n`` (when
    ``L = 2 n``) is zero. With ``M`` zero-padded to the same size,

        H = -irfftn(rfftn(N) * rfftn(M_padded))[:nx, :ny, :nz]

    (summed over the source component). Results are cached per ``(shape, cell)`` and
    returned read-only.

    **Arguments:**

    - `shape`: grid size ``(nx, ny, nz)``, positive ints.
    - `cell`: cell edges ``(dx, dy, dz)``, finite and > 0.

    **Returns:** float64 array of shape ``(6, Lx, Ly, Lz)``, components
    ``(xx, yy, zz, xy, xz, yz)``.

    ```python
    >>> n = demag_tensor((4, 4, 4), (1.0, 1.0, 1.0))
    >>> n.shape
    (6, 8, 8, 8)
    >>> print(f"{n[0, 0, 0, 0]:.6f} {n[0].sum() + n[1].sum() + n[2].sum():.6f}")
    0.333333 1.000000
    >>> print(f"{n[0, :4, :4, :4].sum():.6f}")  # a 4^3 cube sees N_xx = 1/3 on average
    0.333333
    ```
    """
    return _demag_tensor_cached(_check_shape(shape), _check_cell_tuple(cell))


@functools.lru_cache(maxsize=8)
def _demag_tensor_cached(shape, cell):
    axes = [np.arange(n, dtype=float) * d for n, d in zip(shape, cell)]
    gx, gy, gz = np.meshgrid(*axes, indexing="ij")
    octant = _accurate6(gx, gy, gz, cell).reshape((6,) + shape)
    out = octant
    for axis, n in enumerate(shape):
        if n == 1:
            continue
        # Components odd along this axis: those with exactly one index equal to it.
        sign = np.array([-1.0 if (i == axis) != (j == axis) else 1.0 for i, j in _COMPONENTS])
        sign = sign.reshape((6,) + (1,) * 3)
        ax = axis + 1
        mirrored = np.flip(np.take(out, np.arange(1, n), axis=ax), axis=ax) * sign
        zshape = list(out.shape)
        zshape[ax] = 1
        out = np.concatenate([out, np.zeros(zshape), mirrored], axis=ax)
    out = np.ascontiguousarray(out)
    out.flags.writeable = False
    return out
