"""Benchmark: energy landscapes of the paper's 7 mm cavity, models 3 and 4, vs the paper's Python loop.

The cavity issue's performance targets, in one run (CPU, float64):

- model 3 (`NLoopModel`, the paper's N-loop model) on a uniform mesh of >= 5000 elements
  (``cavity_mesh(cav, 0.71e-3, graded=False, rim=False)``, 5197 elements): a 201 x 201
  landscape in the y-z plane in <= 20 s;
- model 4 (`MeissnerModel`, Galerkin surface-charge BEM) on ``cavity_mesh(cav, 0.4e-3)``
  (about 5200 elements): the same landscape in <= 60 s *including* mesh building,
  assembly and LU factorisation;
- the paper's own algorithm (appendix A, Fig. 10: a Python loop over the elements for every
  position, `invdesign.reference.paper_loop`) on an 11 x 11 sub-grid of the same landscape
  and the same model-3 mesh: its time, the per-position speed-up of model 3 over it, and the largest
  relative difference of the two energies on the common positions.

The grid: ``y`` in ``[-R + a, R - a]``, ``z`` in ``[a, 12 mm]`` (``a = 0.5 mm`` the sphere's
radius, so the extreme rows and columns touch the floor and the outer wall), an N52 sphere
(paper Table 1) with its moment azimuthal about the axis, ``moment_direction(pi / 2, 0)``.
Positions where the sphere overlaps the stub are skipped (NaN), as in `landscape`.

Timings: *cold* is the first `landscape` call, which includes JAX tracing and XLA
compilation (what a user sees once per session); *warm* is ``model.magnetic_energies``
jitted and compiled ahead of time (the compile time is printed on its own), run on the first
`--warm-positions` valid positions (default 4096; 0: all) and scaled linearly to all of
them (best of `--repeat`, `jax.block_until_ready`). Targets are judged on the cold numbers
(model 4: mesh + assembly + LU + cold landscape); the warm ones are shown beside them.
Timings are only meaningful on an otherwise idle machine: the load average is printed with
the results.

    python studies/benchmarks/bench_cavity.py [--quick] [--repeat 1] [--warm-positions 4096] [--json PATH]

`--quick` (41 x 41 grid, 5 x 5 loop sub-grid, coarse meshes) is a smoke test: targets are
reported as n/a and nothing is written unless `--json` is given. The full run writes its
numbers to ``studies/figures/bench_cavity.json`` (atomically).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import invdesign  # noqa: E402
from invdesign import atomic_write  # noqa: E402
from _timing import best_time  # noqa: E402
from invdesign.cavity import (  # noqa: E402
    GRADES,
    PAPER_SPHERE,
    CoaxialCavity,
    MeissnerModel,
    NLoopModel,
    SphereMagnet,
    cavity_mesh,
    landscape,
    moment_direction,
)
from invdesign.reference import paper_loop as _paper_loop  # noqa: E402

FIGURES = Path(__file__).resolve().parents[1] / "figures"

TARGET_NLOOP_S = 20.0
"""Model 3: seconds for the 201 x 201 landscape (cold, compilation included)."""

TARGET_MEISSNER_S = 60.0
"""Model 4: seconds for mesh + assembly + LU + the 201 x 201 landscape (cold)."""

MIN_ELEMENTS = 5000
"""Targets apply to meshes of at least this many elements and the full 201 x 201 grid."""

FULL = dict(n=201, n_loop=11, spacing3=0.71e-3, spacing4=0.4e-3)
QUICK = dict(n=41, n_loop=5, spacing3=1.5e-3, spacing4=1.0e-3)


def grid(cavity: CoaxialCavity, magnet: SphereMagnet, n: int, z_top: float):
    """The landscape grid ``(y, z)`` (m) and its points ``(n * n, 3)`` in `landscape` order."""
    a = float(magnet.radius)
    r = float(cavity.radius)
    y = np.linspace(-r + a, r - a, n)
    z = np.linspace(a, z_top, n)
    zz, yy = np.meshgrid(z, y, indexing="ij")
    pts = np.stack([np.zeros(yy.size), yy.ravel(), zz.ravel()], axis=-1)
    return y, z, pts


def run_model(name: str, build, y, z, pts, magnet, direction, repeat: int, warm_positions: int) -> dict:
    """Mesh, model, cold landscape and warm jitted energies of one response model.

    The warm timing runs an ahead-of-time compiled ``magnetic_energies`` (its compile time
    measured on its own) on the first `warm_positions` valid positions (0: all) and scales
    the time linearly to all valid positions (the batched evaluation is linear in them).
    """
    t0 = time.perf_counter()
    mesh = build["mesh"]()
    jax.block_until_ready(mesh)
    t_mesh = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = build["model"](mesh)
    jax.block_until_ready(model)
    t_model = time.perf_counter() - t0

    t0 = time.perf_counter()
    ds = landscape(model, magnet, y, z, direction)
    t_cold = time.perf_counter() - t0

    valid = np.asarray(ds["valid"]).ravel() == 1
    n_valid = int(valid.sum())
    n_warm = n_valid if warm_positions <= 0 else min(n_valid, warm_positions)
    pos = jnp.asarray(pts[valid][:n_warm])
    energies = jax.jit(lambda mo, p: mo.magnetic_energies(magnet, p, direction))
    t0 = time.perf_counter()
    compiled = energies.lower(model, pos).compile()
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    u_warm = np.asarray(jax.block_until_ready(compiled(model, pos)))
    t_run = time.perf_counter() - t0
    if repeat > 1:
        t_run = min(t_run, best_time(lambda: jax.block_until_ready(compiled(model, pos)), repeat - 1))
    t_warm = t_run * (n_valid / n_warm)
    u_land = np.asarray(ds["magnetic_energy"]).ravel()[valid][:n_warm]
    return {
        "model": name,
        "elements": int(mesh.size),
        "positions": n_valid,
        "grid": [int(z.size), int(y.size)],
        "mesh_s": t_mesh,
        "model_s": t_model,
        "landscape_cold_s": t_cold,
        "landscape_warm_s": t_warm,
        "warm_timed_positions": n_warm,
        "jit_compile_s": t_compile,
        "cold_total_s": t_mesh + t_model + t_cold,
        "warm_vs_landscape_max_rel": float(np.max(np.abs(u_warm - u_land) / np.abs(u_land))),
        "_ds": ds,
        "_mesh": mesh,
    }


def run_paper_loop(mesh, ds, pts, n: int, n_loop: int, magnet, direction) -> dict:
    """The paper's Python loop on the ``n_loop x n_loop`` sub-grid of the landscape."""
    step = (n - 1) // (n_loop - 1)
    sub = np.zeros((n, n), dtype=bool)
    sub[::step, ::step] = True
    pick = sub.ravel() & (np.asarray(ds["valid"]).ravel() == 1)
    centre, normal, radius = (np.asarray(a) for a in (mesh.centre, mesh.normal, mesh.radius))
    moment = float(magnet.moment) * np.asarray(direction, dtype=float)
    t0 = time.perf_counter()
    u_loop = _paper_loop.paper_loop_energies(centre, normal, radius, pts[pick], moment, mass=float(magnet.mass))
    t_loop = time.perf_counter() - t0
    u_ours = np.asarray(ds["energy"]).ravel()[pick]
    u_mag_loop = u_loop - float(magnet.mass) * _paper_loop.G0 * pts[pick, 2]
    u_mag_ours = np.asarray(ds["magnetic_energy"]).ravel()[pick]
    return {
        "grid": [n_loop, n_loop],
        "positions": int(pick.sum()),
        "elements": int(centre.shape[0]),
        "time_s": t_loop,
        "per_position_s": t_loop / int(pick.sum()),
        "max_rel_diff_total": float(np.max(np.abs(u_loop - u_ours) / np.abs(u_loop))),
        "max_rel_diff_magnetic": float(np.max(np.abs(u_mag_loop - u_mag_ours) / np.abs(u_mag_loop))),
    }


def verdict(seconds: float, target: float, applies: bool) -> str:
    if not applies:
        return "n/a"
    return "PASS" if seconds <= target else "FAIL"


def write_json(path: Path, results: dict) -> None:
    """Write `results` to `path` atomically (temporary file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(results, indent=1) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small grids and coarse meshes (smoke test)")
    p.add_argument("--repeat", type=int, default=1, help="warm timings: best of this many calls")
    p.add_argument("--n", type=int, default=None, help="landscape points per axis (default 201; quick 41)")
    p.add_argument("--n-loop", type=int, default=None, help="Python-loop sub-grid per axis (default 11; quick 5)")
    p.add_argument("--spacing3", type=float, default=None, help="model-3 mesh spacing (m), default 0.71e-3")
    p.add_argument("--spacing4", type=float, default=None, help="model-4 mesh spacing (m), default 0.4e-3")
    p.add_argument("--z-top", type=float, default=12e-3, help="top of the landscape (m)")
    p.add_argument("--warm-positions", type=int, default=4096,
                   help="warm timings on this many valid positions, scaled to all (0: all; default 4096)")
    p.add_argument("--skip-meissner", action="store_true")
    p.add_argument("--json", default=None, help="output JSON (default studies/figures/bench_cavity.json; none for --quick)")
    a = p.parse_args(argv)
    cfg = dict(QUICK if a.quick else FULL)
    for key in ("n", "n_loop", "spacing3", "spacing4"):
        if getattr(a, key) is not None:
            cfg[key] = getattr(a, key)
    n, n_loop = cfg["n"], cfg["n_loop"]
    if n_loop < 2 or n < n_loop or (n - 1) % (n_loop - 1):
        p.error(f"--n-loop must be >= 2 and (n - 1) divisible by (n_loop - 1) for a common sub-grid; got n = {n}, n_loop = {n_loop}")
    json_path = Path(a.json) if a.json else (None if a.quick else FIGURES / "bench_cavity.json")

    cav = CoaxialCavity(radius=7e-3)
    magnet = SphereMagnet(**PAPER_SPHERE, remanence=GRADES["N52"])
    direction = jnp.asarray(moment_direction(math.pi / 2, 0.0))
    y, z, pts = grid(cav, magnet, n, a.z_top)

    load_before = os.getloadavg()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, invdesign {getattr(invdesign, '__version__', '?')}, "
          f"{os.cpu_count()} cores, load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    print(f"7 mm cavity, N52 sphere, azimuthal moment; landscape {n} x {n}: y in [{y[0] * 1e3:.1f}, {y[-1] * 1e3:.1f}] mm, "
          f"z in [{z[0] * 1e3:.1f}, {z[-1] * 1e3:.1f}] mm")

    sp3, sp4 = cfg["spacing3"], cfg["spacing4"]
    m3 = run_model(
        "model 3 NLoopModel",
        {"mesh": lambda: cavity_mesh(cav, sp3, graded=False, rim=False), "model": lambda mesh: NLoopModel(mesh, cav)},
        y, z, pts, magnet, direction, a.repeat, a.warm_positions,
    )
    loop = run_paper_loop(m3.pop("_mesh"), m3["_ds"], pts, n, n_loop, magnet, direction)
    m3.pop("_ds")
    m4 = None
    if not a.skip_meissner:
        m4 = run_model(
            "model 4 MeissnerModel",
            {"mesh": lambda: cavity_mesh(cav, sp4), "model": lambda mesh: MeissnerModel(mesh, cav)},
            y, z, pts, magnet, direction, a.repeat, a.warm_positions,
        )
        m4.pop("_ds")
        m4.pop("_mesh")
    load_after = os.getloadavg()

    full_grid = n >= FULL["n"]
    rows = [r for r in (m3, m4) if r is not None]
    print()
    print(f"{'model':<22} {'N':>6} {'positions':>9} {'mesh [s]':>9} {'build [s]':>10} {'cold [s]':>9} "
          f"{'compile [s]':>12} {'warm [s]':>9} {'cold total [s]':>15}")
    for r in rows:
        print(f"{r['model']:<22} {r['elements']:>6d} {r['positions']:>9d} {r['mesh_s']:>9.2f} {r['model_s']:>10.2f} "
              f"{r['landscape_cold_s']:>9.2f} {r['jit_compile_s']:>12.2f} {r['landscape_warm_s']:>9.2f} {r['cold_total_s']:>15.2f}")
    print("  build: NLoopModel construction / MeissnerModel assembly + LU factorisation (first call, compilation included)")
    print("  cold: first landscape() call (compilation included); compile: ahead-of-time compilation of the jitted")
    print(f"  magnetic_energies; warm: its run without compilation (timed on up to {a.warm_positions or 'all'} positions, scaled)")

    per3_warm = m3["landscape_warm_s"] / m3["positions"]
    per3_cold = m3["landscape_cold_s"] / m3["positions"]
    speedup_warm = loop["per_position_s"] / per3_warm
    speedup_cold = loop["per_position_s"] / per3_cold
    print()
    print(f"paper's Python loop (appendix A), {n_loop} x {n_loop} sub-grid, {loop['positions']} positions, "
          f"N = {loop['elements']}: {loop['time_s']:.2f} s ({loop['per_position_s'] * 1e3:.1f} ms per position)")
    print(f"model 3 per position: warm {per3_warm * 1e6:.1f} us, cold {per3_cold * 1e6:.1f} us")
    print(f"speed-up of model 3 over the Python loop per position: {speedup_warm:.0f}x warm, {speedup_cold:.0f}x cold")
    print(f"agreement on the common positions: max rel diff {loop['max_rel_diff_total']:.1e} (total energy), "
          f"{loop['max_rel_diff_magnetic']:.1e} (magnetic energy)")

    v3_applies = full_grid and m3["elements"] >= MIN_ELEMENTS
    targets = {
        "model3_landscape_cold": {
            "seconds": m3["landscape_cold_s"], "target_s": TARGET_NLOOP_S,
            "verdict": verdict(m3["landscape_cold_s"], TARGET_NLOOP_S, v3_applies),
            "warm_verdict": verdict(m3["landscape_warm_s"], TARGET_NLOOP_S, v3_applies),
        },
    }
    if m4 is not None:
        v4_applies = full_grid and m4["elements"] >= MIN_ELEMENTS
        warm_total4 = m4["mesh_s"] + m4["model_s"] + m4["landscape_warm_s"]
        targets["model4_total_cold"] = {
            "seconds": m4["cold_total_s"], "target_s": TARGET_MEISSNER_S,
            "verdict": verdict(m4["cold_total_s"], TARGET_MEISSNER_S, v4_applies),
            "warm_seconds": warm_total4,
            "warm_verdict": verdict(warm_total4, TARGET_MEISSNER_S, v4_applies),
        }

    print()
    print("summary")
    print(f"  model 3 N-loop, N = {m3['elements']}, {n} x {n} landscape: cold {m3['landscape_cold_s']:.2f} s, "
          f"warm {m3['landscape_warm_s']:.2f} s (+ mesh {m3['mesh_s']:.2f} s); target <= {TARGET_NLOOP_S:.0f} s: "
          f"{targets['model3_landscape_cold']['verdict']} (warm: {targets['model3_landscape_cold']['warm_verdict']})")
    if m4 is not None:
        t4 = targets["model4_total_cold"]
        print(f"  model 4 Meissner BEM, N = {m4['elements']}, {n} x {n} landscape: mesh {m4['mesh_s']:.2f} s + assembly/LU "
              f"{m4['model_s']:.2f} s + landscape {m4['landscape_cold_s']:.2f} s = {m4['cold_total_s']:.2f} s "
              f"(with a warm landscape: {t4['warm_seconds']:.2f} s); target <= {TARGET_MEISSNER_S:.0f} s: "
              f"{t4['verdict']} (warm: {t4['warm_verdict']})")
    print(f"  paper's Python loop: {loop['per_position_s'] * 1e3:.1f} ms per position at N = {loop['elements']}; "
          f"model 3 is {speedup_warm:.0f}x faster warm, {speedup_cold:.0f}x cold; max rel diff {loop['max_rel_diff_total']:.1e}")
    if not full_grid:
        print("  (quick run: targets not judged)")
    print(f"  load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} cores)")

    results = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "jax": jax.__version__,
        "platform": jax.devices()[0].platform,
        "cpu_count": os.cpu_count(),
        "load_before": list(load_before),
        "load_after": list(load_after),
        "config": {**cfg, "z_top": a.z_top, "repeat": a.repeat, "quick": bool(a.quick)},
        "model3": m3,
        "model4": m4,
        "paper_loop": loop,
        "speedup_per_position_warm": speedup_warm,
        "speedup_per_position_cold": speedup_cold,
        "targets": targets,
    }
    if json_path is not None:
        write_json(json_path, results)
        print(f"wrote {json_path}")
    return results


if __name__ == "__main__":
    main()
