"""Benchmark: muMAG standard problem 4 (field 1, 1 ns, 128 x 32 x 1, tolerance 1e-5, CPU)
against peer solvers from PyPI in the same run, and one demagnetization curve on the
default hysteresis grid.

    python studies/benchmarks/bench_micromag.py [--repeat 2] [--skip-peers] [--json out.json]

Peers (see studies/benchmarks/PEERS.md; each is skipped with a note if not installed):
NeuralMag 1.0 (JAX backend, diffrax Dopri5 + PID controller) and magnum.np (torch CPU,
RKF45). Each runs in its own subprocess; its dynamics time excludes its JIT compilation,
as ours does. Timings are only meaningful on an otherwise idle machine: the load average
is printed with the results.

Printed: wall time of the 1 ns field-1 run, integrator steps, zero crossing of <mx>, and
the ratio peer time / our time (> 1 means we are faster).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402

import invdesign  # noqa: E402,F401
from invdesign.micromag import (  # noqa: E402
    average_magnetization,
    demagnetization_curve,
    first_zero_crossing,
    grain_system,
    sp4_dynamics,
    sp4_initial_state,
    sp4_system,
    voronoi_grains,
)


def ours(repeat: int) -> dict:
    t0 = time.perf_counter()
    system = sp4_system((128, 32, 1))
    wall_setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = sp4_initial_state(system)
    wall_relax = time.perf_counter() - t0
    t0 = time.perf_counter()
    sol = sp4_dynamics(system, res.m, 1, t_end=1e-9, dt_out=1e-11, rtol=1e-5, atol=1e-5)
    jax.block_until_ready(sol.values)
    wall_first = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sol = sp4_dynamics(system, res.m, 1, t_end=1e-9, dt_out=1e-11, rtol=1e-5, atol=1e-5)
        jax.block_until_ready(sol.values)
        times.append(time.perf_counter() - t0)
    m = np.asarray(sol.values)
    return {
        "solver": "invdesign.micromag (Dormand-Prince 5(4), FFT Newell demag)",
        "wall_setup": wall_setup,
        "wall_relax": wall_relax,
        "wall_compile": wall_first - min(times),
        "wall_dynamics": min(times),
        "n_steps": int(sol.n_steps),
        "n_rejected": int(sol.n_rejected),
        "m_relaxed": np.asarray(average_magnetization(system, res.m)).tolist(),
        "zero_crossing_ns": first_zero_crossing(np.asarray(sol.t), m[:, 0]) * 1e9,
    }


def peer(name: str, repeat: int) -> dict:
    import _micromag_peers as peers

    fn = {"neuralmag": peers.run_neuralmag_sp4, "magnumnp": peers.run_magnumnp_sp4}[name]
    try:
        r = fn(field="1", n=(128, 32, 1), t_end=1e-9, dt_out=1e-11, rtol=1e-5, repeat=repeat)
    except RuntimeError as err:
        return {"skipped": str(err).splitlines()[0]}
    return {
        "solver": f"{name} {r.get('version', '')}: {r.get('integrator', '')}",
        "wall_relax": r["wall_relax"],
        "wall_compile": r["wall_compile"],
        "wall_dynamics": r["wall_dynamics"],
        "n_steps": int(r["n_steps"]),
        "n_rejected": int(r.get("n_rejected", -1)),
        "m_relaxed": np.asarray(r["m_relaxed"]).tolist(),
        "zero_crossing_ns": first_zero_crossing(np.asarray(r["t"]), np.asarray(r["m"])[:, 0]) * 1e9,
    }


def hysteresis_curve() -> dict:
    """One demagnetization curve of the default hysteresis dataset grid (64 x 64 x 2 nm)."""
    from invdesign_surrogates.data.hysteresis import DEFAULTS

    grains = voronoi_grains(tuple(DEFAULTS["grid"]), (DEFAULTS["cell"],) * 2, 64, np.pi / 2, seed=0)
    system = grain_system(grains, (DEFAULTS["cell"], DEFAULTS["cell"], DEFAULTS["thickness"]))
    out = {}
    for label, stop in (("to_minus_half", DEFAULTS["stop_below"]), ("full_branch", None)):
        t0 = time.perf_counter()
        curve = demagnetization_curve(system, step=DEFAULTS["step"], tol=DEFAULTS["tol"], stop_below=stop)
        out[label] = {
            "wall": time.perf_counter() - t0,
            "field_steps": int(curve.sizes["field"]),
            "iterations": int(curve["iterations"].sum()),
            "Mr": curve.attrs["Mr"],
            "Hc_over_HA": curve.attrs["Hc"] / curve.attrs["H_A"],
        }
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--skip-peers", action="store_true")
    p.add_argument("--skip-hysteresis", action="store_true")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    results = {"load_before": os.getloadavg(), "cpu_count": os.cpu_count()}
    results["invdesign"] = ours(a.repeat)
    if not a.skip_peers:
        for name in ("neuralmag", "magnumnp"):
            results[name] = peer(name, a.repeat if name == "neuralmag" else 1)
    if not a.skip_hysteresis:
        results["hysteresis_curve_64x64"] = hysteresis_curve()
    results["load_after"] = os.getloadavg()

    base = results["invdesign"]["wall_dynamics"]
    print(f"SP4 field 1, 1 ns, 128x32x1, rtol = atol = 1e-5, CPU ({os.cpu_count()} cores), load {results['load_before'][0]:.2f}")
    print(f"{'solver':<12} {'dynamics [s]':>13} {'steps':>7} {'compile [s]':>12} {'relax [s]':>10} {'t0(mx=0) [ns]':>14} {'peer/ours':>10}")
    for name in ("invdesign", "neuralmag", "magnumnp"):
        r = results.get(name)
        if r is None:
            continue
        if "skipped" in r:
            print(f"{name:<12} skipped: {r['skipped']}")
            continue
        ratio = r["wall_dynamics"] / base
        print(f"{name:<12} {r['wall_dynamics']:>13.2f} {r['n_steps']:>7d} {r['wall_compile']:>12.2f} {r['wall_relax']:>10.2f} {r['zero_crossing_ns']:>14.5f} {ratio:>10.2f}")
    if "hysteresis_curve_64x64" in results:
        for label, h in results["hysteresis_curve_64x64"].items():
            print(f"demagnetization curve 64x64 cells (2 nm), {label}: {h['wall']:.1f} s, {h['field_steps']} field steps, "
                  f"{h['iterations']} descent iterations, Mr = {h['Mr']:.4f} Ms, |Hc| = {abs(h['Hc_over_HA']):.4f} H_A")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
