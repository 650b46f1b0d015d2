"""Benchmark and hang study: one `cavity-pareto` generation batched (one jitted vmap) vs the
former one-individual-per-Dask-task path, same run, and the batched evaluation repeated under
a timeout.

The vmapped evaluation of the cavity problem with LU-factored BEM matrices hung the XLA CPU
runtime with jax 0.10.2: every variant below (default, `XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`,
`jax_cpu_enable_async_dispatch=False`) timed out before its first repeat, with both intra-op
threads waiting in `TriMatrixEquationSolverKernel` -> `ParallelBatchMap` (the batched
triangular solve fanning out to the pool it runs on). `--solver lu` reproduces that (give it
a short `--timeout`). The default `--solver inverse` is what `cavity-pareto` now uses: each
design's matrix inverted on its own (`bem_inverse`, `sequential_vmap`), solves by batched
matrix products. The Dask reference path always uses the LU solver (the former path).
Every variant runs in a fresh process (flags are read at start-up), which

1. builds the problem (`--quick`: the coarse mesh of `invdesign run cavity-pareto --quick`),
2. evaluates one population of `--pop` individuals drawn with `--seed` both ways, after an
   untimed warm-up that compiles each path (a real run compiles once per search):
   `dask` = the former `_DaskEvaluator` with one in-process worker, `batched` =
   `VectorizedEvaluator` (one jitted vmap, padded to the population size),
3. repeats the batched evaluation `--repeats` times, printing a line after each, so that the
   parent sees how far it got when it has to kill a hung child (`--timeout` per variant).

Printed per variant: seconds per generation for both paths and their ratio, the largest
relative difference between their outputs, and how many repeats finished (a hang shows as
fewer than `--repeats` and "TIMEOUT").

    python studies/benchmarks/bench_cavity_pareto_batch.py [--quick] [--pop 40] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

VARIANTS = {
    "default": {},
    "no-eigen-threads": {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"},
    "no-async-dispatch": {"JAX_CPU_ENABLE_ASYNC_DISPATCH": "false"},
}


def child(args) -> None:
    import jax
    import numpy as np

    if os.environ.get("JAX_CPU_ENABLE_ASYNC_DISPATCH") == "false":
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    import invdesign  # noqa: F401
    from invdesign.optimize._genetic import VectorizedEvaluator, _DaskEvaluator
    from invdesign_problems.cavity import QUICK, pareto_problem

    settings = QUICK if args.quick else {}
    problem = pareto_problem(**settings, solver=args.solver)
    reference = pareto_problem(**settings, solver="lu")
    Z = np.random.default_rng(args.seed).random((args.pop, len(problem.space)))
    out = {}

    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cl, Client(cl) as c:
        dask_eval = _DaskEvaluator(reference, c)
        t = time.perf_counter()
        dask_eval(Z[:1])
        out["dask_compile_s"] = time.perf_counter() - t
        print(f"stage dask-compiled {out['dask_compile_s']:.0f} s", flush=True)
        t = time.perf_counter()
        _, ref = dask_eval(Z)
        out["dask_s"] = time.perf_counter() - t
        print(f"stage dask-generation {out['dask_s']:.1f} s", flush=True)
    batched = VectorizedEvaluator(problem, args.pop)
    t = time.perf_counter()
    print("stage batched-compiling", flush=True)
    batched(Z)
    out["batched_compile_s"] = time.perf_counter() - t
    print(f"stage batched-compiled {out['batched_compile_s']:.0f} s", flush=True)
    times = []
    for k in range(args.repeats):
        t = time.perf_counter()
        _, got = batched(Z)
        times.append(time.perf_counter() - t)
        print(f"repeat {k + 1} {times[-1]:.3f}", flush=True)
    out["batched_s"] = float(np.median(times))
    out["repeats_done"] = len(times)
    # residual_force (|grad U| at the refined minimum, ~1e-21 N) is rounding noise: compared
    # in absolute terms; every other output relative to the LU path
    rel = [float(np.max(np.abs(got[n] - ref[n]) / np.maximum(np.abs(ref[n]), 1e-300))) for n in ref
           if n != "residual_force" and np.all(np.isfinite(ref[n]))]
    out["max_rel_diff"] = max(rel) if rel else float("nan")
    out["residual_force_max_abs"] = float(np.max(np.abs(got["residual_force"]) + np.abs(ref["residual_force"])))
    print("RESULT " + json.dumps(out), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--pop", type=int, default=40)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=1800.0)
    p.add_argument("--solver", choices=("inverse", "lu"), default="inverse",
                   help="BEM solve of the batched path (lu: the form that hung)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    for name in args.variants:
        env = {**os.environ, **VARIANTS[name]}
        cmd = [sys.executable, __file__, "--child", "--pop", str(args.pop), "--repeats", str(args.repeats),
               "--seed", str(args.seed), "--solver", args.solver] + (["--quick"] if args.quick else [])
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
            text, status = proc.stdout, ("ok" if proc.returncode == 0 else f"exit {proc.returncode}")
        except subprocess.TimeoutExpired as exc:
            raw = exc.stdout or ""
            text, status = (raw.decode() if isinstance(raw, bytes) else raw), "TIMEOUT"
        done = sum(1 for line in text.splitlines() if line.startswith("repeat "))
        stages = [line[6:] for line in text.splitlines() if line.startswith("stage ")]
        res = next((json.loads(line[7:]) for line in text.splitlines() if line.startswith("RESULT ")), None)
        line = (f"{name:18s} {status:8s} repeats {done}/{args.repeats}  wall {time.perf_counter() - t0:6.0f} s"
                f"  last stage: {stages[-1] if stages else 'none'}")
        if res:
            line += (f"  dask {res['dask_s']:.2f} s/gen, batched {res['batched_s']:.2f} s/gen, "
                     f"ratio {res['dask_s'] / res['batched_s']:.1f}x, max rel diff {res['max_rel_diff']:.1e} "
                     f"(residual force below {res.get('residual_force_max_abs', float('nan')):.0e} N both ways), "
                     f"compile dask {res['dask_compile_s']:.0f} s / batched {res['batched_compile_s']:.0f} s")
        print(line, flush=True)


if __name__ == "__main__":
    main()
