"""Newell and Aharoni demagnetization references in high precision (mpmath).

- `mp_pair_tensor`: Newell's (1993) cell-pair demagnetization tensor, the f/g functions and
  their 27-point stencil evaluated with `dps` digits (independent of the float64 branches
  in `invdesign.micromag._newell`, whose cancellation it measures).
- `aharoni_dz`: demagnetizing factor of a uniformly magnetized rectangular prism,
  A. Aharoni, J. Appl. Phys. 83, 3432 (1998).

Independent of the code it checks: nothing from `invdesign`'s physics is imported here.
Needs mpmath (the ``test`` extra: ``pip install -e ".[test]"``).
"""

from __future__ import annotations

import numpy as np

from ._mpmath import require_mpmath

mp = require_mpmath(__name__)


def _mp_asinh(num, den2):
    return mp.mpf(0) if den2 == 0 else mp.asinh(num / mp.sqrt(den2))


def _mp_atan(num, den):
    return mp.mpf(0) if (num == 0 or den == 0) else mp.atan(num / den)


def mp_f(x, y, z):
    x2, y2, z2 = x * x, y * y, z * z
    r = mp.sqrt(x2 + y2 + z2)
    return (y / 2 * (z2 - x2) * _mp_asinh(y, x2 + z2) + z / 2 * (y2 - x2) * _mp_asinh(z, x2 + y2)
            - x * y * z * _mp_atan(y * z, x * r) + (2 * x2 - y2 - z2) * r / 6)


def mp_g(x, y, z):
    x2, y2, z2 = x * x, y * y, z * z
    r = mp.sqrt(x2 + y2 + z2)
    return (x * y * z * _mp_asinh(z, x2 + y2) + y / 6 * (3 * z2 - y2) * _mp_asinh(x, y2 + z2)
            + x / 6 * (3 * z2 - x2) * _mp_asinh(y, x2 + z2) - z**3 / 6 * _mp_atan(x * y, z * r)
            - z * y2 / 2 * _mp_atan(x * z, y * r) - z * x2 / 2 * _mp_atan(y * z, x * r) - x * y * r / 3)


def _mp_stencil(fun, x, y, z, dx, dy, dz):
    c = {-1: 1, 0: -2, 1: 1}
    total = mp.mpf(0)
    for i in (-1, 0, 1):
        for j in (-1, 0, 1):
            for k in (-1, 0, 1):
                total += c[i] * c[j] * c[k] * fun(x + i * dx, y + j * dy, z + k * dz)
    return -total / (4 * mp.pi * dx * dy * dz)


def mp_pair_tensor(disp, cell, dps=50):
    """(xx, yy, zz, xy, xz, yz) at 50 digits, as floats."""
    with mp.workdps(dps):
        x, y, z = (mp.mpf(float(v)) for v in disp)
        dx, dy, dz = (mp.mpf(float(v)) for v in cell)
        comps = [
            _mp_stencil(mp_f, x, y, z, dx, dy, dz),
            _mp_stencil(mp_f, y, x, z, dy, dx, dz),
            _mp_stencil(mp_f, z, y, x, dz, dy, dx),
            _mp_stencil(mp_g, x, y, z, dx, dy, dz),
            _mp_stencil(mp_g, x, z, y, dx, dz, dy),
            _mp_stencil(mp_g, y, z, x, dy, dz, dx),
        ]
        return np.array([float(c) for c in comps])


def aharoni_dz(lx, ly, lz, dps=40):
    """D_z of a rectangular prism with edges lx, ly, lz (A. Aharoni, J. Appl. Phys. 83, 3432)."""
    with mp.workdps(dps):
        a, b, c = (mp.mpf(float(v)) / 2 for v in (lx, ly, lz))
        abc = mp.sqrt(a * a + b * b + c * c)
        ab, bc, ac = mp.sqrt(a * a + b * b), mp.sqrt(b * b + c * c), mp.sqrt(a * a + c * c)
        s = ((b * b - c * c) / (2 * b * c) * mp.log((abc - a) / (abc + a))
             + (a * a - c * c) / (2 * a * c) * mp.log((abc - b) / (abc + b))
             + b / (2 * c) * mp.log((ab + a) / (ab - a))
             + a / (2 * c) * mp.log((ab + b) / (ab - b))
             + c / (2 * a) * mp.log((bc - b) / (bc + b))
             + c / (2 * b) * mp.log((ac - a) / (ac + a))
             + 2 * mp.atan(a * b / (c * abc))
             + (a**3 + b**3 - 2 * c**3) / (3 * a * b * c)
             + (a * a + b * b - 2 * c * c) / (3 * a * b * c) * abc
             + c / (a * b) * (ac + bc)
             - (ab**3 + bc**3 + ac**3) / (3 * a * b * c))
        return float(s / mp.pi)
