"""Benchmark: build time of the Newell demagnetization tensor, against the plain stencil.

`demag_tensor` evaluates every displacement of a grid's octant with the accurate pair
tensor (`pair_tensor(..., method="auto")`: the float64 Newell stencil near the self cell,
tent-Gauss quadrature and the long-axis hybrid further out), then mirrors it into the
zero-padded FFT layout. The baseline, timed in the same run on the same displacements, is
the plain float64 Newell 27-point stencil alone (``method="analytic"``: no far-field
branches, no mirroring; inaccurate far away, see ``studies/accuracy_newell.py``). The ratio
``build / baseline`` is what the accurate branches and the layout cost (< 1: they save time,
as the far-field quadrature is cheaper than the 27 transcendental stencil terms); to first
order it does not depend on the machine's speed. The absolute times are also printed against
the budgets that ``tests/micromag/test_newell.py`` used to assert (moved here: a test does
not time itself). Measured on a loaded 2-core machine: 160 x 160 thick cells 0.40 s (plain
1.71 s, ratio 0.23), 256 x 256 film cells 1.17 s (plain 4.08 s, ratio 0.29).

    python studies/benchmarks/bench_newell.py [--repeat 3] [--all]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import invdesign  # noqa: F401  (x64)
from _timing import best_time
from invdesign.micromag import _newell
from invdesign.micromag._newell import demag_tensor, pair_tensor

FILM = (3.90625, 3.90625, 3.0)
THICK = (2.0, 2.0, 36000.0)
CUBE = (1.0, 1.0, 1.0)

# (shape, cell, budget in s for the build on an idle CPU: the former test's numbers)
CASES = [((160, 160, 1), THICK, 3.0), ((256, 256, 1), FILM, 6.0)]
MORE = [((512, 512, 1), FILM, None), ((64, 64, 64), CUBE, None)]


def build(shape, cell):
    _newell._demag_tensor_cached.cache_clear()
    return demag_tensor(shape, cell)


def baseline(shape, cell):
    axes = [np.arange(n, dtype=float) * d for n, d in zip(shape, cell)]
    gx, gy, gz = np.meshgrid(*axes, indexing="ij")
    return pair_tensor(gx, gy, gz, *cell, method="analytic")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--all", action="store_true", help="also the 512 x 512 film and a 64^3 cube")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"demag_tensor build vs the plain float64 Newell stencil (best of {args.repeat}; load {load:.2f})")
    print(f"  {'shape':>14s} {'cell':>24s} {'build (s)':>10s} {'plain (s)':>10s} {'ratio':>7s}  budget")
    for shape, cell, budget in CASES + (MORE if args.all else []):
        t_build = best_time(lambda: build(shape, cell), args.repeat)
        t_plain = best_time(lambda: baseline(shape, cell), args.repeat)
        verdict = "" if budget is None else f"{budget:.0f} s ({'ok' if t_build < budget else 'OVER'})"
        print(f"  {str(shape):>14s} {str(cell):>24s} {t_build:10.3f} {t_plain:10.3f} {t_build / t_plain:7.2f}  {verdict}")
    _newell._demag_tensor_cached.cache_clear()


if __name__ == "__main__":
    main()
