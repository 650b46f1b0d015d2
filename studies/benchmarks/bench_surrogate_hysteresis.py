"""Benchmark: the hysteresis surrogate's prediction vs one simulated demagnetization curve, same run.

Both sides answer the same question, "the six anchor points (M1, Mr, Hk90, Hk80, Hk70, Hc)
of this grain structure", for structures of the fixed test split of the shipped labeled set:

- `surrogate`: `invdesign_surrogates.hysteresis.predict(kx)` on the shipped weights (or
  `--weights`, a training run's folder): image statistics on the host, VAE encoder and
  anchor ensemble jitted. Timed per structure in a batch of `--batch` structures, and as
  one call for one structure (latency), after a warm-up call (compilation not counted).
- `solver`: `simulate_anchors(kx)` on test structures with |theta| < pi/2 (where kx alone
  fixes the structure), the batched micromagnetic solver with the training data's settings (64 x 64 cells, step 0.01 H_A, tol 1e-5), one structure, after a
  warm-up structure (compilation not counted).

Prints the seconds of each, the ratios solver / surrogate (goal >= 1e4), and the
surrogate's error on the simulated structure as a sanity check.

    python studies/benchmarks/bench_surrogate_hysteresis.py [--batch 64] [--curves 3] [--weights DIR]
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
    p.add_argument("--batch", type=int, default=64, help="structures per surrogate call")
    p.add_argument("--curves", type=int, default=3, help="structures simulated (timed one by one)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--weights", default=None, help="a training run's folder instead of the shipped weights")
    a = p.parse_args(argv)
    if a.batch < 1 or a.curves < 1 or a.repeats < 1:
        p.error("--batch, --curves and --repeats must be >= 1")

    import xarray as xr

    import invdesign  # noqa: F401  (x64 for the solver)
    from invdesign_surrogates.data.hysteresis import is_test
    from invdesign_surrogates.hysteresis import ANCHORS, predict, simulate_anchors
    from invdesign_surrogates.hysteresis._design import _labeled_path

    with xr.open_dataset(_labeled_path(), engine="h5netcdf") as ds:
        test = np.flatnonzero(is_test(ds["sample"].values))
        # simulated: evenly spread over the test split (curve times depend on the structure);
        # for |theta| < pi/2 the ky >= 0 reading of kx is the stored structure itself, so
        # there the solver must reproduce the stored labels
        sim = test[np.linspace(0, test.size - 1, a.curves + 1).astype(int)]
        idx = np.concatenate([sim, test[: a.batch]])
        kx = ds["kx"].values[idx].astype(np.float64)
        aligned = np.abs(ds["theta"].values[idx]) < np.pi / 2
        h_a = float(ds.attrs["H_A"])
        y = ds["anchors"].values[idx].copy()
    y[:, 2:] /= h_a
    batch = kx[a.curves + 1 :]

    predict(batch, weights=a.weights)  # warm-up: compile
    predict(batch[0], weights=a.weights)
    t_batch = best_time(lambda: predict(batch, weights=a.weights), a.repeats) / a.batch
    t_one = best_time(lambda: predict(batch[0], weights=a.weights), a.repeats)

    simulate_anchors(kx[a.curves : a.curves + 1])  # warm-up: compile (a structure that is not timed)
    t_sim, sims = [], []
    for i in range(a.curves):
        t0 = time.perf_counter()
        sims.append(simulate_anchors(kx[i : i + 1])[0])
        t_sim.append(time.perf_counter() - t0)
    t_curve = float(np.mean(t_sim))
    pred = predict(kx[: a.curves], weights=a.weights)
    err = np.abs(np.asarray(pred) - np.asarray(sims))
    ok = aligned[: a.curves]
    label_err = np.abs(np.asarray(sims)[ok] - y[: a.curves][ok]).max() if ok.any() else float("nan")

    out = {"surrogate_s_per_structure_batched": t_batch, "surrogate_s_one_call": t_one, "solver_s_per_curve": t_curve,
           "ratio_batched": t_curve / t_batch, "ratio_one_call": t_curve / t_one}
    print(f"surrogate: {t_batch * 1e3:.3f} ms per structure in batches of {a.batch}; {t_one * 1e3:.2f} ms for one call")
    print(f"solver:    {t_curve:.1f} s per curve ({a.curves} curve(s), compilation not counted)")
    print(f"ratio solver / surrogate: {out['ratio_batched']:.3g} (batched), {out['ratio_one_call']:.3g} (one call); goal >= 1e4")
    print("surrogate error on the simulated structure(s) (Ms, H_A): "
          + ", ".join(f"{n} {e:.4f}" for n, e in zip(ANCHORS, err.mean(0))))
    print(f"simulated vs the stored labels ({int(ok.sum())} structure(s) with |theta| < pi/2): max difference {label_err:.2e}")
    print("solver seconds per simulated curve: " + ", ".join(f"{t:.1f}" for t in t_sim))
    return out


if __name__ == "__main__":
    main()
