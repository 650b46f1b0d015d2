"""Benchmark: K(m) and E(m) at 1e6 points, invdesign.special (JAX, jit, CPU) vs scipy.special.

Prints best-of-N wall times of ``ellipk + ellipe`` for both and the ratio scipy / invdesign
(> 1 means invdesign is faster), with the maximum relative difference between the two.

    python studies/benchmarks/bench_special.py [--n 1000000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy
import scipy.special as sps

import invdesign  # noqa: F401  (x64)
from _timing import best_time
from invdesign.special import ellipe, ellipk


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    m = rng.uniform(-10.0, 1.0 - 1e-12, size=args.n)
    mj = jnp.asarray(m)

    ke = jax.jit(lambda x: (ellipk(x), ellipe(x)))
    k_ours, e_ours = (np.asarray(a) for a in jax.block_until_ready(ke(mj)))
    t_ours = best_time(lambda: jax.block_until_ready(ke(mj)), args.repeat)
    t_scipy = best_time(lambda: (sps.ellipk(m), sps.ellipe(m)), args.repeat)
    dk = np.max(np.abs(k_ours / sps.ellipk(m) - 1))
    de = np.max(np.abs(e_ours / sps.ellipe(m) - 1))
    print(f"jax {jax.__version__} ({jax.devices()[0].platform}), scipy {scipy.__version__}, n = {args.n}")
    print(f"invdesign K+E {t_ours * 1e3:8.2f} ms   scipy K+E {t_scipy * 1e3:8.2f} ms   "
          f"ratio scipy/invdesign = {t_scipy / t_ours:.2f} (goal >= 1)   "
          f"max rel diff K {dk:.1e}, E {de:.1e}")


if __name__ == "__main__":
    main()
