"""Accuracy report: elliptic integrals and the loop field against mpmath.

Prints the worst relative errors measured on dense grids:

- K(m), E(m) values and their first and second derivatives against mpmath (50 digits)
  over m in [-10, 1 - 1e-12], including m = 0, tiny |m| and m -> 1;
- B of a loop against the textbook elliptic-integral field at 60 digits, relative to |B|,
  on the axis, 1e-10 radii off it, near the wire (>= 1e-3 radii) and out to 1e4 radii;
- gradient and Hessian of |B|^2 on the axis and 1e-9 radii off it against mpmath
  finite differences at 50 digits.

    python studies/accuracy_special_fields.py
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np

import invdesign  # noqa: F401
from invdesign.fields import loop_field
from invdesign.special import ellipe, ellipk

MU0 = mp.mpf("1.25663706212e-6")


def special_report():
    mp.mp.dps = 50
    m = np.unique(np.concatenate([
        [0.0, 1e-300, -1e-300, 1e-17, -1e-17, 1 - 1e-12, -10.0],
        np.logspace(-16, -1e-4, 120), -np.logspace(-16, 1, 120),
        1 - np.logspace(-12, -0.01, 120), np.linspace(-10, 1 - 1e-12, 301),
    ]))
    funcs = {"K": (ellipk, mp.ellipk), "E": (ellipe, mp.ellipe)}
    print(f"elliptic integrals on {m.size} points in [-10, 1 - 1e-12] (relative error vs mpmath)")
    for name, (ours, ref) in funcs.items():
        f = ours
        for order in range(3):
            got = np.asarray(jax.vmap(f)(m))
            errs = [abs((mp.mpf(float(g)) - r) / r) for g, r in
                    zip(got, (mp.diff(ref, mp.mpf(x), order) if order else ref(mp.mpf(x)) for x in m))]
            k = int(np.argmax(errs))
            label = name + "'" * order
            print(f"  {label:<4s} max {float(errs[k]):.2e} at m = {m[k]:.6g}")
            f = jax.grad(f)


def _mp_field(r, z):
    r, z = (t if isinstance(t, mp.mpf) else mp.mpf(float(t)) for t in (r, z))
    al2, be2 = (1 - r) ** 2 + z**2, (1 + r) ** 2 + z**2
    k2 = 1 - al2 / be2
    kk, ee = mp.ellipk(k2), mp.ellipe(k2)
    bz = MU0 / (2 * mp.pi * al2 * mp.sqrt(be2)) * ((1 - r * r - z * z) * ee + al2 * kk)
    br = 0 if r == 0 else MU0 * z / (2 * mp.pi * al2 * mp.sqrt(be2) * r) * ((1 + r * r + z * z) * ee - al2 * kk)
    return br, bz


def field_report():
    mp.mp.dps = 60
    pts = []
    for r in [0.0, 1e-10, 1e-6, 0.2, 0.7, 0.99, 1.01, 1.3, 3.0, 30.0, 1e3, 1e4]:
        for z in [0.0, 1e-10, 1e-4, 0.3, 1.0, -2.0, 10.0, 1e3, 1e4]:
            if math.hypot(r - 1, z) >= 1e-3:
                pts.append((r, z))
    for d in [1e-3, 3e-3, 1e-2, 0.1]:
        for ang in np.linspace(0, 2 * np.pi, 24, endpoint=False):
            pts.append((1 + d * math.cos(ang), d * math.sin(ang)))
    b = np.asarray(loop_field(jnp.array([[r, 0.0, z] for r, z in pts]), 1.0, 1.0))
    worst, where = 0.0, None
    for (r, z), bi in zip(pts, b):
        br, bz = _mp_field(r, z)
        err = float(mp.sqrt((bi[0] - br) ** 2 + bi[1] ** 2 + (bi[2] - bz) ** 2) / mp.sqrt(br**2 + bz**2))
        if err > worst:
            worst, where = err, (r, z)
    print(f"loop field on {len(pts)} points (axis, 1e-10 off axis, >= 1e-3 from the wire, up to 1e4 radii):")
    print(f"  max |B - B_ref| / |B_ref| = {worst:.2e} at (r, z) = {where} radii")


def hessian_report():
    mp.mp.dps = 50

    def b2_mp(*c):
        r = mp.sqrt(c[0] ** 2 + c[1] ** 2)
        br, bz = _mp_field(r, c[2])
        return br**2 + bz**2

    b2 = lambda q: jnp.sum(loop_field(q, 1.0, 1.0) ** 2)  # noqa: E731
    print("gradient / Hessian of |B|^2 against 50-digit mpmath finite differences:")
    for p in [(0.0, 0.0, 0.3), (1e-9, 0.0, 0.3), (0.0, 1e-9, -0.7), (0.0, 0.0, 0.0)]:
        q = tuple(mp.mpf(c) for c in p)
        g = np.asarray(jax.grad(b2)(jnp.array(p)))
        h = np.asarray(jax.hessian(b2)(jnp.array(p)))
        g_ref = np.array([float(mp.diff(b2_mp, q, tuple(int(i == k) for k in range(3)))) for i in range(3)])
        h_ref = np.array([[float(mp.diff(b2_mp, q, tuple(int(i == k) + int(j == k) for k in range(3))))
                           for j in range(3)] for i in range(3)])
        eh = np.max(np.abs(h - h_ref)) / np.max(np.abs(h_ref))
        eg = np.max(np.abs(g - g_ref)) / max(np.max(np.abs(g_ref)), 1e-300) if np.any(g_ref) else np.max(np.abs(g))
        print(f"  point {p} radii: Hessian rel err {eh:.2e}, gradient rel err {eg:.2e}")


if __name__ == "__main__":
    special_report()
    field_report()
    hessian_report()
