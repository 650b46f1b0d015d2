"""Benchmark: 1 ns of SP4-like switching by the dynamics surrogate vs the micromagnetic solver, same run.

Both sides answer "<m>(t) every 10 ps up to 1 ns after this field is switched on" on the
trained 256 x 64 grid:

- `solver`: `integrate_llg` from the SP4 s-state with the training data's settings
  (Bogacki-Shampine, tolerance 1e-5), <m> observed every 10 ps; one field after a warm-up
  field (compilation not counted).
- `surrogate, from states`: `rollout(field, m0)` with the solver's four states at
  0.01-0.04 ns given (their cost not counted: the rollout + decode alone, as in the paper).
- `surrogate, field only`: `SwitchingModel.m_avg(field)` jitted (fitted start codes, rollout,
  decode of every state), one field per call and `--batch` fields in one `vmap`.

Prints seconds per field and the ratios solver / surrogate (goal >= 1000), and the
surrogate's max |d<m>| against the solver for the timed field as a sanity check.

    python studies/benchmarks/bench_surrogate_dynamics.py [--weights DIR] [--batch 32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_time  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None, help="a training run's folder instead of the shipped weights")
    p.add_argument("--batch", type=int, default=32, help="fields per batched surrogate call")
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args(argv)
    if a.batch < 1 or a.repeats < 1:
        p.error("--batch and --repeats must be >= 1")

    import jax

    import invdesign  # noqa: F401  (x64 for the solver)
    from invdesign_problems.switching import solver_curve
    from invdesign_surrogates.dynamics import SwitchingModel, rollout
    from invdesign_surrogates.dynamics._rollout import solver_start

    model = SwitchingModel(a.weights)
    grid = model.grid
    field = np.array([-0.0246, 0.0043])  # SP4 field 1 (mu0 H, T)
    warm = np.array([-0.030, -0.002])

    solver_curve(warm, 2e-11, grid)  # compile (a short run of the same function)
    t0 = time.perf_counter()
    ref = solver_curve(field, 1e-9, grid)
    t_solver = time.perf_counter() - t0

    m0 = solver_start(field, grid)
    rollout(warm, m0=m0, t_end=1e-9, weights=a.weights)
    t_roll = best_time(lambda: rollout(field, m0=m0, t_end=1e-9, weights=a.weights), a.repeats)
    got = rollout(field, m0=m0, t_end=1e-9, weights=a.weights)["m_avg"].values

    one = jax.jit(lambda b: model.m_avg(b, 1e-9))
    jax.block_until_ready(one(warm))
    t_one = best_time(lambda: jax.block_until_ready(one(field)), a.repeats)
    rng = np.random.default_rng(0)
    mag = 1e-3 * rng.uniform(22, 41, a.batch)
    ang = np.radians(rng.uniform(-22, 22, a.batch))
    fields = np.stack([-mag * np.cos(ang), mag * np.sin(ang)], -1)
    many = jax.jit(jax.vmap(lambda b: model.m_avg(b, 1e-9)))
    jax.block_until_ready(many(fields))
    t_many = best_time(lambda: jax.block_until_ready(many(fields)), a.repeats) / a.batch
    fit = np.asarray(one(field))

    err_roll = float(np.max(np.linalg.norm(got - ref, axis=-1)))
    err_fit = float(np.max(np.linalg.norm(fit - ref, axis=-1)))
    res = dict(solver_s=t_solver, rollout_s=t_roll, field_only_s=t_one, batched_s_per_field=t_many,
               ratio_rollout=t_solver / t_roll, ratio_field_only=t_solver / t_one,
               ratio_batched=t_solver / t_many, max_err_rollout=err_roll, max_err_field_only=err_fit)
    print(f"solver, 1 ns on {grid[0]} x {grid[1]}:      {t_solver:9.3f} s")
    print(f"surrogate, from 4 states (rollout):  {t_roll:9.4f} s   ratio {t_solver / t_roll:8.0f}x   "
          f"max |d<m>| {err_roll:.3f}")
    print(f"surrogate, field only (jitted):      {t_one:9.4f} s   ratio {t_solver / t_one:8.0f}x   "
          f"max |d<m>| {err_fit:.3f}")
    print(f"surrogate, {a.batch} fields in one vmap:   {t_many:9.5f} s per field   ratio {t_solver / t_many:8.0f}x")
    print("goal: ratio >= 1000 (rollout + decode vs solver, same field)")
    return res


if __name__ == "__main__":
    main()
