"""Design problems on the coaxial stub cavity levitating a spherical magnet (tilted cavity).

Set-up (paper `n-loop-cavity-levitation.md`, sections III.2 and III.5, Table 1): the
paper's superconducting coaxial stub cavity lying on its side with its axis raised `tilt`
above the horizontal, the N-grade sphere with an azimuthal moment, the Meissner model on a
coarse mesh (1 mm elements near the stub). The figures of merit of one design (global
minimum, well depth, mechanical frequencies; all differentiable) come from
`invdesign.cavity.TiltedCavityDesign`; this module only declares the searches.

The target `(y, z) = (-(r_stub + dy), h_stub + dz)` lies beside the stub rim on the lower
side. The default offsets (0.5 mm, 3.5 mm) are about as close to the stub as ideal (response
1) screening lets the N52 sphere come in a tilted cavity, reachable inside the default box
(near R = 6.5 mm, tilt = 20 deg). With a weaker response (0.1-0.3, the calibration of
`studies/cavity_heights.py`) the magnet sits lower and further out: pass smaller offsets.

Problems:

(a) `gradient_problem`: cavity radius R (4-7 mm) and tilt (2-30 deg), optionally the stub
    radius and height; minimise the distance of the global minimum from the target subject
    to a well depth of at least `min_depth` (20 nJ, the paper's contour spacing) and every
    mechanical frequency inside `[f_lo, f_hi]` (the paper's Fig. 8c reports 4.3, 11 and
    28 Hz). The command line uses Adam on the augmented Lagrangian (one value-and-gradient
    per step, where an L-BFGS line search would spend several).
(b) `pareto_problem`: NSGA-II over R, tilt, r_stub, h_stub and the magnet grade (a
    continuous `grade` in [-0.5, 3.5] rounded to the nearest of N35, N42, N50, N52: only
    these four magnets exist, paper Table 1); objectives: distance from the target (min),
    well depth (max), lowest mechanical frequency (max). The population is evaluated in one
    jitted `vmap`, the BEM matrices inverted one design at a time (`solver="inverse"`:
    batched LU factorisations deadlocked jaxlib 0.10.2's CPU runtime); the Dask path
    (`JittedPoint`, one design per task) stays for clusters
    (`genetic_search(..., backend="dask", client=...)`).

`CAVITY` and `CAVITY_PARETO` are the command-line entries (`invdesign run cavity`). Pareto
runs also draw the front with the chosen designs (closest, deepest, highest frequency, knee:
`invdesign.plot.pareto_picks`) marked and listed, `cavity-pareto-front.png`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax.numpy as jnp
import numpy as np

import invdesign  # noqa: F401  (x64)
from invdesign.cavity import GRADES, PAPER_SPHERE, TiltedCavityDesign, box_corners, landscape
from invdesign.optimize import (Constraint, DesignProblem, DesignSpace, JittedPoint, Objective, Parameter,
                                 ProblemEntry, genetic_search, gradient_search, hybrid_search, summary_table)

__all__ = ["CAVITY", "CAVITY_PARETO", "GRADE_NAMES", "gradient_problem", "pareto_problem", "plot_landscape"]

MM = 1e-3
NJ = 1e-9

GRADE_NAMES = ("N35", "N42", "N50", "N52")
"""Magnet grades of the paper (Table 1), in the order of the `grade` parameter (0..3)."""

_STUB_BOX = {"stub_radius": (1.5e-3, 2.5e-3), "stub_height": (3e-3, 7e-3)}


def _positive(name, value):
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0 (allowed range (0, inf)), got {value}")
    return value


def gradient_problem(free_stub=False, *, target_offset=(0.5e-3, 3.5e-3), min_depth=20 * NJ, f_lo=4.0, f_hi=40.0,
                     response=1.0, remanence=GRADES["N52"], spacing=1.0e-3, grid=(21, 25), escape_height=9e-3,
                     initial=None, radius_bounds=(4e-3, 7e-3), tilt_bounds=(math.radians(2.0), math.radians(30.0))):
    """(a) Gradient design: put the global minimum at the target beside the stub rim.

    **Arguments:**

    - `free_stub`: also design the stub radius (1.5-2.5 mm) and height (3-7 mm); `True`,
      `False`, or a pair `(stub_radius, stub_height)` of booleans.
    - `target_offset`: `(dy, dz)` (m) of the target from the stub rim on the lower side.
    - `min_depth`: least well depth (J), default 20 nJ.
    - `f_lo`, `f_hi`: band (Hz) for every mechanical eigenfrequency, default [4, 40] Hz.
    - `response`: response factor of the superconductor (1 = ideal Meissner).
    - `remanence`: Br of the sphere (T), default N52 (1.47 T).
    - `spacing`: element size near the stub (m); `grid`: `(n_y, n_z)` of the coarse grid;
      `escape_height`: top of the grid above the stub top (m).
    - `initial`: starting design `{name: value}` (default R = 5 mm, tilt = 10 deg, the
      paper's Fig. 8b, and the paper's stub); it also fixes the mesh layout.
    - `radius_bounds`, `tilt_bounds`: bounds of R (m) and tilt (rad).

    **Returns:** a `DesignProblem` named `cavity` (its `model` the `TiltedCavityDesign`):
    objective `distance` (m, min); constraints `depth_margin = 1 - depth / min_depth`,
    `freq_low = 1 - f_min / f_lo`, `freq_high = f_max / f_hi - 1` (all `<= 0`).
    """
    free_rs, free_hs = (free_stub, free_stub) if isinstance(free_stub, bool) else tuple(bool(b) for b in free_stub)
    min_depth = _positive("min_depth", min_depth)
    f_lo, f_hi = _positive("f_lo", f_lo), _positive("f_hi", f_hi)
    if not f_lo < f_hi:
        raise ValueError(f"f_lo must be < f_hi, got f_lo = {f_lo}, f_hi = {f_hi}")
    r_lo, r_hi = (float(b) for b in radius_bounds)
    t_lo, t_hi = (float(b) for b in tilt_bounds)
    if not (0 < t_lo < t_hi <= math.pi / 2):
        raise ValueError(f"tilt_bounds must satisfy 0 < lower < upper <= pi/2 (rad), got {tilt_bounds}")
    if r_lo <= 2.5e-3 + 2 * PAPER_SPHERE["radius"]:
        raise ValueError(f"radius_bounds lower bound must exceed 3.5 mm (stub + magnet), got {r_lo}")
    init = dict(radius=5e-3, tilt=math.radians(10.0), stub_radius=2e-3, stub_height=5e-3)
    init.update({k: float(v) for k, v in dict(initial or {}).items()})
    params = [Parameter("radius", r_lo, r_hi, "m", "cavity radius R", initial=init["radius"]),
              Parameter("tilt", t_lo, t_hi, "rad", "elevation of the cavity axis above horizontal",
                        initial=init["tilt"])]
    box = {"radius": (r_lo, r_hi)}
    for key, free, label in (("stub_radius", free_rs, "stub radius"), ("stub_height", free_hs, "stub height")):
        if free:
            params.append(Parameter(key, *_STUB_BOX[key], "m", label, initial=init[key]))
            box[key] = _STUB_BOX[key]
    fixed = {k: init[k] for k in _STUB_BOX if k not in box}
    design = TiltedCavityDesign({k: init[k] for k in ("radius", "stub_radius", "stub_height")},
                                tuple({**fixed, **c} for c in box_corners(box)), fixed, spacing=spacing,
                                response=response, target_offset=tuple(target_offset), escape_height=escape_height,
                                grid=tuple(grid), remanence=remanence)

    def evaluate(p):
        out = design(p)
        res = {"distance": out.pop("distance"), "depth_margin": 1.0 - out["depth"] / min_depth,
               "freq_low": 1.0 - out["f_min"] / f_lo, "freq_high": out["f_max"] / f_hi - 1.0}
        return {**res, **out}

    dy, dz = (float(t) for t in target_offset)
    options = dict(kind="gradient", free_stub=[free_rs, free_hs], target_offset=[dy, dz], min_depth=min_depth,
                   f_lo=f_lo, f_hi=f_hi, response=float(response), remanence=float(remanence),
                   spacing=float(spacing), grid=list(grid), escape_height=float(escape_height), initial=init)
    return DesignProblem(
        "cavity", DesignSpace(params), evaluate,
        objectives=[Objective("distance", "min", "m", "distance of the global minimum from the target", scale=MM)],
        constraints=[Constraint("depth_margin", "", f"1 - depth / {min_depth / NJ:g} nJ"),
                     Constraint("freq_low", "", f"1 - f_min / {f_lo:g} Hz"),
                     Constraint("freq_high", "", f"f_max / {f_hi:g} Hz - 1")],
        description=(f"tilted stub cavity, N-grade sphere Br={remanence:g} T, azimuthal moment, Meissner model "
                     f"(response {response:g}, {design.n_elements} elements): global minimum at "
                     f"(-(r_stub + {dy / MM:g} mm), h_stub + {dz / MM:g} mm), depth >= {min_depth / NJ:g} nJ, "
                     f"{f_lo:g} Hz <= f <= {f_hi:g} Hz"),
        outputs=TiltedCavityDesign.OUTPUTS, model=design, options=json.dumps(options, sort_keys=True))


def pareto_problem(*, target_offset=(0.5e-3, 3.5e-3), response=1.0, spacing=1.0e-3, grid=(21, 25),
                   escape_height=9e-3, solver="inverse"):
    """(b) NSGA-II: distance from the target (min) vs well depth (max) vs lowest frequency (max).

    Design: R (4-7 mm), tilt (2-30 deg), stub radius (1.5-2.5 mm), stub height (3-7 mm) and
    `grade` in [-0.5, 3.5], rounded to the nearest grade index (0: N35 1.22 T, 1: N42
    1.35 T, 2: N50 1.44 T, 3: N52 1.47 T). Constraint: the minimum is stable
    (`unstable = -f_min <= 0`). Other arguments as in `gradient_problem`. The mesh layout is
    that of the widest gap in the box (R = 7 mm, r_stub = 1.5 mm, h_stub = 7 mm), so no
    element is larger than `spacing`. `solver` is the BEM solve (`TiltedCavityDesign`):
    `"inverse"` (default) so that populations can be evaluated under `vmap`, `"lu"` as the
    gradient problems.
    """
    box = {"radius": (4e-3, 7e-3), **_STUB_BOX}
    params = [
        Parameter("radius", 4e-3, 7e-3, "m", "cavity radius R"),
        Parameter("tilt", math.radians(2.0), math.radians(30.0), "rad", "elevation of the cavity axis above horizontal"),
        Parameter("stub_radius", *_STUB_BOX["stub_radius"], "m", "stub radius"),
        Parameter("stub_height", *_STUB_BOX["stub_height"], "m", "stub height"),
        Parameter("grade", -0.5, 3.5, "", "magnet grade index (rounded: 0 N35, 1 N42, 2 N50, 3 N52)"),
    ]
    design = TiltedCavityDesign(dict(radius=7e-3, stub_radius=1.5e-3, stub_height=7e-3), box_corners(box), {},
                                spacing=spacing, response=response, target_offset=tuple(target_offset),
                                escape_height=escape_height, grid=tuple(grid), solver=solver)
    br = jnp.asarray([GRADES[g] for g in GRADE_NAMES])

    def evaluate(p):
        idx = jnp.clip(jnp.round(p["grade"]), 0, len(GRADE_NAMES) - 1).astype(int)
        out = design({**p, "remanence": br[idx]})
        out["unstable"] = -out["f_min"]
        return out

    dy, dz = (float(t) for t in target_offset)
    options = dict(kind="pareto", target_offset=[dy, dz], response=float(response), spacing=float(spacing),
                   grid=list(grid), escape_height=float(escape_height), solver=str(solver))
    return DesignProblem(
        "cavity-pareto", DesignSpace(params), evaluate, elementwise=JittedPoint(evaluate),
        objectives=[Objective("distance", "min", "m", "distance of the global minimum from the target", scale=MM),
                    Objective("depth", "max", "J", "well depth (escape level minus minimum energy)", scale=10 * NJ),
                    Objective("f_min", "max", "Hz", "lowest mechanical eigenfrequency", scale=10.0)],
        constraints=[Constraint("unstable", "Hz", "minus the lowest mechanical frequency (stable: > 0)", scale=1.0)],
        description=(f"tilted stub cavity, sphere with azimuthal moment, Meissner model (response {response:g}, "
                     f"{design.n_elements} elements): Pareto front of distance from (-(r_stub + {dy / MM:g} mm), "
                     f"h_stub + {dz / MM:g} mm), well depth and lowest mechanical frequency"),
        outputs=TiltedCavityDesign.OUTPUTS, model=design, options=json.dumps(options, sort_keys=True))


# ---------------------------------------------------------------------------------------
# command-line entries

QUICK = dict(spacing=1.5e-3, grid=(15, 19))
"""Coarser mesh and grid of `--quick` runs (about 330 elements instead of 660)."""


_ONE_WORKER = dict(backend="dask", cluster_kwargs=dict(n_workers=1, threads_per_worker=1, processes=False,
                                                     dashboard_address=None))
"""Genetic stages evaluate one individual at a time in one in-process Dask worker (the jitted
single-point evaluation uses every core and compiles once)."""


def _run_cavity(method, seed=0, quick=False, progress=True):
    if method == "genetic":
        return _run_pareto(method, seed=seed, quick=quick, progress=progress)
    if method == "hybrid":
        # a short GA over (radius, tilt) for the basin, then the same Adam polish as the
        # gradient run, from the GA's best design
        return hybrid_search(gradient_problem(**(QUICK if quick else {})), algorithm="ga",
                             pop_size=8 if quick else 16, n_gen=2 if quick else 6, method="adam", seed=seed,
                             progress=progress, genetic_kwargs=_ONE_WORKER,
                             gradient_kwargs=dict(learning_rate=0.1 if quick else 0.05, max_iter=64,
                                                  outer_iters=1 if quick else 2))
    # Adam, 2 outer iterations of 64 steps (a measured 6-outer run converged by step 128)
    return gradient_search(gradient_problem(**(QUICK if quick else {})), method="adam",
                           learning_rate=0.1 if quick else 0.05, max_iter=64, outer_iters=1 if quick else 2,
                           seed=seed, progress=progress)


def _run_pareto(method="genetic", seed=0, quick=False, progress=True):
    # the whole population in one jitted vmap (`VectorizedEvaluator`), compiled once
    return genetic_search(pareto_problem(**(QUICK if quick else {})), algorithm="nsga2",
                          pop_size=16 if quick else 40, n_gen=3 if quick else 30, seed=seed, progress=progress,
                          backend="vectorized")


def _summary(ds) -> str:
    lines = [summary_table(ds)]
    row = ds.isel(iteration=-1) if "iteration" in ds.dims else ds.isel(solution=0)
    if "remanence" in row:
        br = float(row["remanence"])
        name = min(GRADES, key=lambda g: abs(GRADES[g] - br))
        lines.append(f"  magnet: {name} sphere (Br = {br:g} T), moment azimuthal (+x)")
    return "\n".join(lines)


def _problem_from_options(options: str):
    opts = json.loads(options)
    if opts.pop("kind") == "pareto":
        keys = ("target_offset", "response", "spacing", "grid", "escape_height", "solver")
        return pareto_problem(**{k: opts[k] for k in keys if k in opts})
    opts["free_stub"] = tuple(opts["free_stub"])
    return gradient_problem(**opts)


def plot_landscape(ds, path, problem=None):
    """Energy landscape (nJ above the minimum, 20 nJ contours) of the final design with its
    minimum (white dot) and the target (red cross)."""
    import matplotlib.pyplot as plt

    from invdesign.plot import savefig

    problem = problem or _problem_from_options(ds.attrs["problem_options"])
    design = problem.model
    row = ds.isel(iteration=-1) if "iteration" in ds.dims else ds.isel(solution=0)
    params = {n: float(row[n]) for n in problem.space.names if n != "grade"}
    if "grade" in problem.space.names:
        params["remanence"] = float(row["remanence"])
    cav, model, magnet = design.model(params)
    R, rs, hs = float(cav.radius), float(cav.stub_radius), float(cav.stub_height)
    a = float(magnet.radius)
    y = np.linspace(-R + a + 1e-5, R - a - 1e-5, 61)
    z = np.linspace(a + 1e-5, hs + design.escape_height, 71)
    land = landscape(model, magnet, y, z, design.direction, tilt=params["tilt"], response=design.response)
    e = land["energy"].values / NJ
    e = e - np.nanmin(e)
    top = min(float(np.nanmax(e)), 400.0)
    fig, ax = plt.subplots(figsize=(5.5, 6))
    cs = ax.contourf(y / MM, z / MM, np.minimum(e, top), levels=40, cmap="viridis")
    ax.contour(y / MM, z / MM, e, levels=np.arange(0.0, top + 20.0, 20.0), colors="k", linewidths=0.4)
    fig.colorbar(cs, ax=ax, label="energy above the minimum [nJ]")
    ax.fill_between([-rs / MM, rs / MM], 0, hs / MM, color="0.6")
    ax.axvline(-R / MM, color="0.3", lw=2)
    ax.axvline(R / MM, color="0.3", lw=2)
    ax.plot(float(row["y_min"]) / MM, float(row["z_min"]) / MM, "wo", ms=7, label="global minimum")
    ax.plot(float(row["target_y"]) / MM, float(row["target_z"]) / MM, "rx", ms=9, mew=2, label="target")
    ax.set_xlabel("y (mm; lower side < 0)")
    ax.set_ylabel("z (mm)")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"R = {R / MM:.2f} mm, tilt = {math.degrees(params['tilt']):.1f} deg, "
                 f"Br = {float(magnet.remanence):g} T", fontsize=9)
    return savefig(fig, path)


def _plot_cavity(ds, out_dir):
    from invdesign.plot import plot_history

    if "iteration" not in ds.dims:
        return _plot_pareto(ds, out_dir)
    out_dir, name = Path(out_dir), ds.attrs["problem"]
    return [plot_history(ds, out_dir / f"{name}-history.png"), plot_landscape(ds, out_dir / f"{name}-landscape.png")]


_PICK_WORDS = {"distance": "closest to target", "depth": "deepest", "f_min": "highest frequency"}
"""Names of the chosen designs of the Pareto run (`invdesign.plot.pareto_picks`)."""


def _plot_pareto(ds, out_dir):
    from invdesign.plot import pareto_picks, plot_pareto, plot_pareto_front

    out_dir, name = Path(out_dir), ds.attrs["problem"]
    picks = pareto_picks(ds, labels=_PICK_WORDS)
    columns = [c for c in ("distance", "depth", "f_min", "remanence") if c in ds]
    return [plot_pareto(ds, out_dir / f"{name}-distance-depth.png", "distance", "depth", color="f_min"),
            plot_pareto(ds, out_dir / f"{name}-distance-frequency.png", "distance", "f_min", color="depth"),
            plot_pareto_front(ds, out_dir / f"{name}-front.png", "distance", ["depth", "f_min"], picks=picks,
                              color=["f_min", "depth"], columns=columns),
            plot_landscape(ds, out_dir / f"{name}-landscape.png")]


CAVITY = ProblemEntry(
    name="cavity",
    description=("tilted stub cavity: cavity radius and tilt putting the N52 sphere's global minimum "
                 "beside the stub rim, depth >= 20 nJ, 4-40 Hz"),
    methods=("gradient", "genetic", "hybrid"), run=_run_cavity, plot=_plot_cavity, summary=_summary)

CAVITY_PARETO = ProblemEntry(
    name="cavity-pareto",
    description="NSGA-II: distance from the stub rim vs well depth vs lowest frequency (R, tilt, stub, grade)",
    methods=("genetic",), run=_run_pareto, plot=_plot_pareto, summary=_summary)
