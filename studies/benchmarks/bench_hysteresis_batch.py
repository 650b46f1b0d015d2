"""Benchmark: labeled demagnetization curves per hour, batched path vs today's, same run.

Every variant computes the same structures of the default hysteresis dataset (64 x 64
cells, step 0.01 H_A, tol 1e-5, stop at M < -0.5 past Hc) in `--workers` fresh worker
processes at once, as the data pipeline does with its Dask workers. Each process first
computes one extra structure that is not timed, so that compilation is not counted: in a
real run a worker compiles once and then computes hundreds of curves. The rate is curves
per hour of wall time with all workers busy. The variants are:

- `today`: `demagnetization_curve`, one structure at a time, from the code at
  `--baseline-rev` (default: the commit before the batched solver), checked out in a
  temporary git worktree. This is the path that made the shipped 128 curves.
- `sequential`: the same one-at-a-time path with today's code (3-vector products written out).
- `batched`: `demagnetization_curves` (one jitted loop per task; lanes take the next
  structure when done; planar demag) with the XLA CPU flag of `invdesign._xla`; this is
  the data pipeline's path on a CPU.
- `batched-noflag`: the same without the flag (what the flag buys).
- `batched-lanes4`: four structures advancing together (what vmapping buys on a CPU).

The anchors of every variant are compared with `today`'s (max difference in Ms and H_A).

    python studies/benchmarks/bench_hysteresis_batch.py [--structures 8] [--workers 2]

Measured on this project's 2-core machine: see the closing note of the issue that added it
(the ratio, not the absolute rate, is what carries over to another machine).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_BASELINE = "dfe0103"


def _worker(variant: str, indices: list[int], warmup: int) -> dict:
    import numpy as np

    import invdesign  # noqa: F401  (x64)
    from invdesign.micromag import demagnetization_curve, grain_system
    from invdesign_surrogates.data.hysteresis import DEFAULTS, _structures

    settings = dict(DEFAULTS)
    names = ("M1", "Mr", "Hk90", "Hk80", "Hk70", "Hc")

    def systems(idx):
        cell = (settings["cell"], settings["cell"], settings["thickness"])
        return [grain_system(g, cell) for *_, g in _structures(settings, 1, idx)]

    kw = dict(step=settings["step"], tol=settings["tol"], stop_below=settings["stop_below"])

    def run(idx):
        if variant in ("today", "sequential"):
            out = []
            for s in systems(idx):
                c = demagnetization_curve(s, **kw)
                out.append([c.attrs[a] for a in names] + [c.attrs["H_A"]])
            return out
        from invdesign.micromag import demagnetization_curves

        lanes = 4 if variant == "batched-lanes4" else 1
        ds = demagnetization_curves(systems(idx), lanes=lanes, **kw)
        return [list(map(float, a)) + [ds.attrs["H_A"]] for a in ds["anchors"].values]

    run([warmup])
    t = time.perf_counter()
    anchors = run(indices)
    return {"wall": time.perf_counter() - t, "anchors": np.asarray(anchors).tolist()}


def _launch(variant, indices, workers, warmup, pythonpath, flags):
    chunks = [indices[k::workers] for k in range(workers)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(pythonpath)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["XLA_FLAGS"] = flags
    t = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", variant, "--indices", *map(str, chunk), "--warmup", str(warmup)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO),
        )
        for chunk in chunks if chunk
    ]
    results = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"variant {variant} failed:\n{err[-3000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    total = time.perf_counter() - t
    order = [i for chunk in chunks for i in chunk]
    anchors = [a for r in results for a in r["anchors"]]
    by_index = dict(zip(order, anchors))
    return max(r["wall"] for r in results), total, [by_index[i] for i in indices]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structures", type=int, default=8, help="timed structures (labeled indices 0..n-1)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-rev", default=DEFAULT_BASELINE, help="git revision of today's path")
    parser.add_argument("--variants", nargs="+", default=["today", "sequential", "batched", "batched-noflag", "batched-lanes4"])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--indices", type=int, nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=10_000, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, args.indices, args.warmup)))
        return
    import numpy as np

    sys.path.insert(0, str(REPO))
    from invdesign._xla import cpu_flags

    base_flags = os.environ.get("XLA_FLAGS", "")
    flag = cpu_flags()
    indices = list(range(args.structures))
    warmup = 10_000  # an index outside the timed ones, same settings
    rows = {}
    tmp = None
    try:
        for variant in args.variants:
            path = REPO
            if variant == "today":
                tmp = tempfile.mkdtemp(prefix="bench-today-")
                subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", tmp, args.baseline_rev],
                               check=True, capture_output=True)
                path = Path(tmp)
            flags = (base_flags + " " + flag).strip() if variant in ("batched", "batched-lanes4") else base_flags
            load = os.getloadavg()[0]
            wall, total, anchors = _launch(variant, indices, args.workers, warmup, path, flags)
            rows[variant] = (wall, total, np.asarray(anchors), load)
            print(f"  {variant:16s} {len(indices) / wall * 3600:8.0f} curves/h  (timed {wall:6.1f} s, with start-up {total:6.1f} s, load before {load:.2f})", flush=True)
    finally:
        if tmp is not None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", tmp], capture_output=True)
    ref = rows.get("today") or next(iter(rows.values()))
    print(f"\n{len(indices)} curves on {args.workers} workers; ratio = rate / rate of {'today' if 'today' in rows else 'first'}")
    for variant, (wall, total, anchors, load) in rows.items():
        HA = anchors[:, 6:7]
        scaled = np.concatenate([anchors[:, :2], anchors[:, 2:6] / HA], axis=1)
        ref_scaled = np.concatenate([ref[2][:, :2], ref[2][:, 2:6] / ref[2][:, 6:7]], axis=1)
        diff = np.nanmax(np.abs(scaled - ref_scaled))
        print(f"  {variant:16s} ratio {ref[0] / wall:5.2f}   max anchor difference {diff:.1e} (Ms, H_A)")


if __name__ == "__main__":
    main()
