"""Benchmark: B of circular current loops, invdesign (JAX, jit, CPU) vs magpylib in one run.

Cases (as in the foundation issue): 1 loop at 1e6 points, and 100 loops at 1e4 points
(summed field). Prints the best-of-N wall time of each and the ratio magpylib / invdesign
(> 1 means invdesign is faster), plus the maximum relative difference of the two results.

    python studies/benchmarks/bench_loop_field.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import magpylib
import numpy as np

import invdesign  # noqa: F401  (x64)
from _timing import best_time
from invdesign.fields import loop_field


def case(name, n_points, n_loops, repeat, rng):
    pts = rng.uniform(-3e-3, 3e-3, size=(n_points, 3))
    radius = rng.uniform(0.5e-3, 2e-3, size=n_loops)
    current = rng.uniform(-2.0, 2.0, size=n_loops)
    center = rng.uniform(-1e-3, 1e-3, size=(n_loops, 3))
    normal = np.tile([0.0, 0.0, 1.0], (n_loops, 1))

    f = jax.jit(lambda p: loop_field(p, radius, current, center, normal))
    pj = jnp.asarray(pts)
    t0 = time.perf_counter()
    b_ours = np.asarray(f(pj).block_until_ready())
    t_compile = time.perf_counter() - t0
    t_ours = best_time(lambda: f(pj).block_until_ready(), repeat)

    sources = magpylib.Collection(*[
        magpylib.current.Circle(current=float(i), diameter=2 * float(a), position=c)
        for a, i, c in zip(radius, current, center)
    ])
    src = sources if n_loops > 1 else sources.children[0]
    b_mag = np.asarray(magpylib.getB(src, pts))
    if b_mag.ndim == 3:  # (n_sources, n_points, 3) if not summed
        b_mag = b_mag.sum(axis=0)
    b_mag = b_mag * (invdesign.constants.MU0 / magpylib.mu_0)  # same mu0 in both
    t_mag = best_time(lambda: magpylib.getB(src, pts), repeat)

    norm = np.linalg.norm(b_mag, axis=-1)
    ok = norm > 0
    diff = np.max(np.linalg.norm(b_ours - b_mag, axis=-1)[ok] / norm[ok])
    print(f"{name:<28s} invdesign {t_ours * 1e3:9.2f} ms (compile {t_compile:5.2f} s)   "
          f"magpylib {t_mag * 1e3:9.2f} ms   ratio magpylib/invdesign = {t_mag / t_ours:6.2f}   "
          f"max rel diff {diff:.1e}")
    return t_mag / t_ours


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, magpylib {magpylib.__version__}")
    r1 = case("1 loop x 1e6 points", 1_000_000, 1, args.repeat, rng)
    r2 = case("100 loops x 1e4 points", 10_000, 100, args.repeat, rng)
    print(f"ratios (goal >= 1): {r1:.2f}, {r2:.2f}")


if __name__ == "__main__":
    main()
