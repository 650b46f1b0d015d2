"""Accuracy report: the demagnetization tensor against mpmath, and build times.

For each cell shape, displacements from the self cell out to 1000+ cells along axes,
diagonals and oblique directions; the reference is Newell's f/g stencil evaluated in mpmath
at 50 digits. Errors are relative to the largest entry of the exact 3x3 tensor at that
displacement. Printed per distance band: the worst error of the production tensor (`auto`:
what `demag_tensor` stores), of the float64 Newell formulas alone (`analytic`), and which
branches were used (N = Newell, Q = tent-Gauss quadrature, H = long-axis hybrid). Then the
build times of `demag_tensor` for typical grids.

    python studies/accuracy_newell.py            # all cases (~2 min)
    python studies/accuracy_newell.py cube thick # some of them
"""

from __future__ import annotations

import sys
import time

import numpy as np

import invdesign  # noqa: F401
from invdesign.micromag import _newell
from invdesign.micromag._newell import demag_tensor, pair_tensor
from invdesign.reference.newell import mp_pair_tensor

CASES = {
    # name: (cell, largest distance in cells, in-plane only)
    "cube": ((1.0, 1.0, 1.0), 1500, False),
    "film": ((3.90625, 3.90625, 3.0), 1500, False),
    "thick": ((2.0, 2.0, 36000.0), 1000, True),
    "thick-3d": ((2.0, 2.0, 36000.0), 300, False),
    "1x2x5": ((1.0, 2.0, 5.0), 1000, False),
    "1x1x10": ((1.0, 1.0, 10.0), 1000, False),
    "10x10x1": ((10.0, 10.0, 1.0), 1000, False),
    "1x1x1000": ((1.0, 1.0, 1000.0), 1000, False),
}
BANDS = [0, 1, 3, 10, 30, 100, 300, 1000, np.inf]
BRANCH = {0: "N", 1: "Q", 2: "H", 3: "H", 4: "H"}


def displacements(kmax, in_plane, seed=0):
    ks = np.unique(np.round(np.concatenate([np.arange(0, 40), np.geomspace(40, kmax, 30)])).astype(int))
    out = set()
    for k in ks:
        out |= {(k, 0, 0), (0, k, 0), (k, k, 0), (k, (3 * k) // 7, 0)}
        if not in_plane:
            out |= {(0, 0, k), (k, k, k), (k, (3 * k) // 7, (6 * k) // 11), ((2 * k) // 9, 0, k), (1, 2, k)}
    rng = np.random.default_rng(seed)
    for v in rng.integers(0, min(kmax, 30), (60, 3)):
        if in_plane:
            v[2] = 0
        out.add(tuple(int(t) for t in v))
    return np.array(sorted(out), dtype=float)


def report(name):
    cell, kmax, in_plane = CASES[name]
    k = displacements(kmax, in_plane)
    x = k * np.asarray(cell)
    auto = pair_tensor(x[:, 0], x[:, 1], x[:, 2], *cell)
    plain = pair_tensor(x[:, 0], x[:, 1], x[:, 2], *cell, method="analytic")
    branch, _ = _newell._plan(*np.abs(x.T), tuple(float(c) for c in cell))
    err_a, err_p = np.zeros(len(k)), np.zeros(len(k))
    for i, xi in enumerate(x):
        ref = mp_pair_tensor(xi, cell)
        scale = np.max(np.abs(ref))
        err_a[i] = np.max(np.abs(auto[:, i] - ref)) / scale
        err_p[i] = np.max(np.abs(plain[:, i] - ref)) / scale
    dist = np.max(k, axis=1)
    where = "in-plane" if in_plane else "3D"
    print(f"\n{name}: cell {cell}, {len(k)} displacements ({where}), worst auto error {err_a.max():.1e}"
          f" at {tuple(int(t) for t in k[np.argmax(err_a)])} cells")
    print(f"  {'max |k| (cells)':>16s}  {'n':>4s}  {'auto':>8s}  {'analytic':>8s}  branches")
    for lo, hi in zip(BANDS[:-1], BANDS[1:]):
        sel = (dist >= lo) & (dist < hi)
        if sel.any():
            used = "".join(sorted({BRANCH[int(b)] for b in branch[sel]}))
            band = f"[{lo:g}, {hi:g})"
            print(f"  {band:>16s}  {sel.sum():4d}  {err_a[sel].max():8.1e}  {err_p[sel].max():8.1e}  {used}")
    return err_a.max()


def timings():
    print("\nbuild times of demag_tensor (cache cleared):")
    for shape, cell in [((256, 256, 1), (3.90625, 3.90625, 3.0)), ((512, 512, 1), (3.90625, 3.90625, 3.0)),
                        ((160, 160, 1), (2.0, 2.0, 36000.0)), ((64, 64, 64), (1.0, 1.0, 1.0))]:
        _newell._demag_tensor_cached.cache_clear()
        t = time.perf_counter()
        demag_tensor(shape, cell)
        print(f"  {str(shape):>15s} cell {str(cell):>24s}: {time.perf_counter() - t:6.2f} s")
    _newell._demag_tensor_cached.cache_clear()


if __name__ == "__main__":
    names = sys.argv[1:] or list(CASES)
    worst = {name: report(name) for name in names}
    print("\nworst relative error per case:", ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    timings()
