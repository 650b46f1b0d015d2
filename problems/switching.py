"""Switching-field design on the muMAG standard problem 4 film with the dynamics surrogate.

The film (500 x 125 x 3 nm permalloy, the SP4 s-state at rest) is switched by an in-plane
field applied at t = 0. The design variables are the field's magnitude `field_mT`
(mu0 |H|, mT) and its angle `angle_deg` from -x towards +y: mu0 H = |B| (-cos a, sin a).
SP4's field 1 is 25 mT at 170 deg from +x (a = 10 deg). The box is the surrogate's trained
range (22-41 mT, |a| <= 22 deg, `invdesign_surrogates.dynamics.rollout`).

The forward model is `invdesign_surrogates.dynamics.SwitchingModel`: start codes fitted in
the field, the latent stepper and the decoder, one JAX function of the field (gradients
through the rollout; a population in one `vmap`).

In the training data (solver, 256 x 64 cells) every field of the box reverses <m_x>
within about 1 ns, but how fast depends on the angle more than on the magnitude: fields
tilted towards +y (like SP4 field 1) switch first, fields tilted towards -y (like SP4 field 2)
take a slower path. <m_x> precesses on its way down (SP4 field 1: -0.82 at 0.2 ns, -0.69 at
0.25 ns), so "below -0.9 by t_target" means its lowest value up to t_target. With the
shipped weights only the most tilted fields (+22 deg, the edge of the trained box) get there
by 0.15 ns, the default target: the answer lies on that edge, at a magnitude inside the box.

(a) `threshold_problem`: the smallest field that drives <m_x> below `threshold` (-0.9) by
    `t_target` (default 0.15 ns): minimise `field` (= `field_mT`) subject to
    `mx_excess = mx_min - threshold <= 0`, `mx_min` = the lowest <m_x>(t) for t <= t_target
    (its gradient is that of the lowest state, `SwitchingModel.m_avg_min`). By gradient
    (optax Adam on the augmented Lagrangian, through the rollout, started from the best point
    of a coarse scan of the surrogate over the box, `scan_start`: Adam alone stops in the
    nearest local optimum) or by GA (pymoo).
(b) `pareto_problem`: NSGA-II, field magnitude (min) vs switching time (min): the first time
    <m_x> reaches `threshold` within 1 ns (`switching_time`, interpolated), constraint: it
    is reached.

`verify_designs` re-runs designs with the micromagnetic solver (the SP4 s-state of the
trained grid, the training data's settings: Bogacki-Shampine, tolerance 1e-5) and stores the
surrogate's and the solver's <m>(t) side by side, with both switching times.

`refine_design` (`invdesign run switching --refine N`) goes on where the check ends: a
design found through a surrogate can sit where the surrogate is wrong (the search is drawn to
such places). It models the solver-minus-surrogate discrepancy of `mx_min` at the
fields the solver has run (a Gaussian-process mean: squared-exponential kernel with
correlation lengths of 3 mT and 6 deg, zero away from the runs), adds it to the surrogate on a
grid over the trained box (1 mT x 2 deg), and sends the solver to the smallest field that the
corrected surrogate calls switched, with a margin of 0.02 until the solver has confirmed one
(then below that one without the margin); when none is, to the grid point the corrected
surrogate finds most switched. It stops after N runs or when no untried grid point
below the best confirmed field remains. The answer (`field_mT_refined`, `angle_deg_refined`)
is the smallest field the solver itself switched in time, never a prediction; NaN when no run
switched.

Weights: the shipped ones, or a training run's folder in `$INVDESIGN_DYNAMICS_WEIGHTS` (or
the `weights` argument of the Python functions).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import xarray as xr

import invdesign  # noqa: F401  (x64)
from invdesign.optimize import (Constraint, DesignProblem, DesignSpace, Objective, Parameter, ProblemEntry,
                                genetic_search, gradient_search)

__all__ = ["SWITCHING", "SWITCHING_PARETO", "field_of", "pareto_problem", "plot_design", "refine_design",
           "scan_start", "threshold_problem", "verify_designs"]

T_TARGET = 0.15e-9
"""Default target time (s) of the threshold problem."""
T_END = 1.0e-9
"""Horizon (s) of the Pareto problem's switching time."""
THRESHOLD = -0.9
"""<m_x> that counts as switched."""
REFINE_STEP = (1.0, 2.0)
"""Grid of the refinement (mT, deg)."""
REFINE_LENGTH = (3.0, 6.0)
"""Correlation lengths (mT, deg) of the solver-minus-surrogate discrepancy."""
REFINE_MARGIN = 0.02
"""How far below the threshold the corrected surrogate must put an untried field."""


def _model(weights=None):
    from invdesign_surrogates.dynamics import SwitchingModel

    if weights is None:
        weights = os.environ.get("INVDESIGN_DYNAMICS_WEIGHTS") or None
    try:
        return SwitchingModel(weights)
    except FileNotFoundError as exc:
        if weights is not None:
            raise
        raise FileNotFoundError(f"{exc}; or set INVDESIGN_DYNAMICS_WEIGHTS to a training run's folder") from None


def field_of(field_mT, angle_deg):
    """mu0 H (tesla, (..., 2)) of a magnitude (mT) and an angle from -x towards +y (deg)."""
    a = jnp.deg2rad(jnp.asarray(angle_deg))
    b = 1e-3 * jnp.asarray(field_mT)
    return jnp.stack([-b * jnp.cos(a), b * jnp.sin(a)], axis=-1)


def _space():
    from invdesign_surrogates.dynamics._rollout import TRAINED_FIELD_MT, TRAINED_HALF_ANGLE_DEG

    return DesignSpace([
        Parameter("field_mT", *TRAINED_FIELD_MT, "mT", "applied field mu0 |H|", initial=TRAINED_FIELD_MT[1] - 1.0),
        Parameter("angle_deg", -TRAINED_HALF_ANGLE_DEG, TRAINED_HALF_ANGLE_DEG, "deg",
                  "angle of the field from -x towards +y", initial=0.0),
    ])


def _check_times(t_target, threshold):
    from invdesign_surrogates.dynamics._rollout import DT, FIRST, N_PAST

    t_target = float(t_target)
    n = round(t_target / DT)
    if not (math.isfinite(t_target) and abs(n * DT - t_target) <= 1e-3 * DT and FIRST + N_PAST < n <= 1000):
        raise ValueError(f"t_target must be a multiple of 10 ps in (0.05 ns, 10 ns], got {t_target!r}")
    threshold = float(threshold)
    if not (-1.0 < threshold < 1.0):
        raise ValueError(f"threshold must lie in (-1, 1), got {threshold!r}")
    return n * DT, threshold


def threshold_problem(*, t_target=T_TARGET, threshold=THRESHOLD, weights=None, model=None):
    """(a) Smallest field with <m_x>(t) <= threshold for some t <= t_target (see the module notes)."""
    t_target, threshold = _check_times(t_target, threshold)
    model = _model(weights) if model is None else model

    def evaluate(p):
        b = field_of(p["field_mT"], p["angle_deg"])
        mx_min, m = model.m_avg_min(b, t_target)
        mx_min, m = mx_min.astype(jnp.float64), m.astype(jnp.float64)
        return {"field": jnp.asarray(p["field_mT"], float), "mx_excess": mx_min - threshold, "mx_min": mx_min,
                "mx_target": m[-1, 0], "my_target": m[-1, 1], "mz_target": m[-1, 2]}

    options = dict(kind="threshold", t_target=t_target, threshold=threshold)
    return DesignProblem(
        "switching", _space(), evaluate,
        objectives=[Objective("field", "min", "mT", "applied field mu0 |H| (= field_mT)", scale=10.0)],
        constraints=[Constraint("mx_excess", "1", f"min of <m_x>(t <= t_target) - ({threshold:g})", scale=0.1)],
        description=(f"SP4 film: smallest in-plane field that drives <m_x> below {threshold:g} by "
                     f"{t_target * 1e9:g} ns (dynamics surrogate)"),
        outputs={"mx_min": ("1", "lowest <m_x> up to t_target (surrogate)"),
                 "mx_target": ("1", "<m_x> at t_target (surrogate)"), "my_target": ("1", "<m_y> at t_target"),
                 "mz_target": ("1", "<m_z> at t_target")},
        model=model, options=json.dumps(options, sort_keys=True))


def pareto_problem(*, t_end=T_END, threshold=THRESHOLD, weights=None, model=None):
    """(b) NSGA-II: field magnitude vs switching time (see the module notes)."""
    from invdesign_surrogates.dynamics import switching_time

    t_end, threshold = _check_times(t_end, threshold)
    model = _model(weights) if model is None else model
    times = model.times(t_end)

    def evaluate(p):
        b = field_of(p["field_mT"], p["angle_deg"])
        mx = model.m_avg(b, t_end)[:, 0].astype(jnp.float64)
        ts, reached = switching_time(mx, times, threshold)
        return {"field": jnp.asarray(p["field_mT"], float), "t_switch": ts * 1e9,
                "not_reached": jnp.where(reached, -1.0, 1.0), "mx_end": mx[-1]}

    options = dict(kind="pareto", t_end=t_end, threshold=threshold)
    return DesignProblem(
        "switching-pareto", _space(), evaluate,
        objectives=[Objective("field", "min", "mT", "applied field mu0 |H| (= field_mT)", scale=10.0),
                    Objective("t_switch", "min", "ns", f"first time <m_x> <= {threshold:g}", scale=0.1)],
        constraints=[Constraint("not_reached", "1", f"+1 when <m_x> never reaches {threshold:g} by t_end")],
        description=f"SP4 film: switching field vs switching time (<m_x> <= {threshold:g}) within {t_end * 1e9:g} ns",
        outputs={"mx_end": ("1", "<m_x> at t_end (surrogate)")}, model=model, options=json.dumps(options, sort_keys=True))


def _design_rows(ds: xr.Dataset, n: int):
    """(indices, field_mT, angle_deg) of the designs to verify: the final iterate; the first
    `n` of a GA answer along `solution`; or `n` points spread along a Pareto front (the
    feasible designs ordered by field, evenly by rank: the weakest and the strongest field
    and between)."""
    if "solution" in ds.dims and "t_switch" in ds:
        ok = np.flatnonzero(ds["not_reached"].values <= 0) if "not_reached" in ds else np.arange(ds.sizes["solution"])
        if ok.size == 0:
            ok = np.arange(ds.sizes["solution"])
        order = ok[np.argsort(ds["field_mT"].values[ok], kind="stable")]
        idx = order[np.unique(np.round(np.linspace(0, len(order) - 1, min(int(n), len(order)))).astype(int))]
        return idx, ds["field_mT"].values[idx], ds["angle_deg"].values[idx]
    if "solution" in ds.dims:
        idx = np.arange(min(int(n), ds.sizes["solution"]))
        return idx, ds["field_mT"].values[idx], ds["angle_deg"].values[idx]
    return np.array([0]), ds["field_mT"].values[-1:], ds["angle_deg"].values[-1:]


def solver_curve(field, t_end, grid):
    """<m>(t) every 10 ps from 0.01 ns to `t_end` by the micromagnetic solver (SP4 s-state on
    `grid`, the training data's settings)."""
    from invdesign_surrogates.dynamics._rollout import DT, FIRST, solver_run

    n = round(float(t_end) / DT)
    return solver_run(field, grid, n, lambda m: jnp.mean(m, axis=(0, 1, 2)))[FIRST:]


def verify_designs(ds: xr.Dataset, n: int = 1, *, weights=None, model=None) -> xr.Dataset:
    """Re-run up to `n` designs with the solver; store surrogate and solver <m>(t) side by side.

    Adds dims `verified`, `time` with `verified_index`, `m_predicted`, `m_verified`
    (verified, time, component), and `t_switch_predicted`, `t_switch_verified` (ns, the
    first time <m_x> <= threshold; NaN when not reached) and `mx_target_verified` for
    threshold runs.
    """
    from invdesign_surrogates.dynamics import switching_time

    if int(n) < 0:
        raise ValueError(f"n must be >= 0 (designs to re-run with the solver), got {n}")
    if int(n) == 0:
        return ds
    opts = json.loads(ds.attrs.get("problem_options", "{}") or "{}")
    threshold = float(opts.get("threshold", THRESHOLD))
    t_end = float(opts.get("t_target", opts.get("t_end", T_END)))
    model = _model(weights) if model is None else model
    times = model.times(t_end)
    idx, mag, ang = _design_rows(ds, n)
    pred, ver = [], []
    for f, a in zip(mag, ang):
        b = np.asarray(field_of(f, a))
        pred.append(np.asarray(model.m_avg(jnp.asarray(b), t_end), dtype=float))
        ver.append(solver_curve(b, t_end, model.grid))
    pred, ver = np.stack(pred), np.stack(ver)
    out = ds.copy()
    out = out.assign_coords(time=("time", times, {"units": "s"}), component=["x", "y", "z"])
    out["verified_index"] = ("verified", idx, {"long_name": "index of a design re-run with the solver"})
    out["m_predicted"] = (("verified", "time", "component"), pred, {"units": "1", "long_name": "<m>(t), surrogate"})
    out["m_verified"] = (("verified", "time", "component"), ver, {"units": "1", "long_name": "<m>(t), solver"})
    for name, curve in (("predicted", pred), ("verified", ver)):
        ts, ok = switching_time(curve[..., 0], times, threshold)
        out[f"t_switch_{name}"] = ("verified", np.where(np.asarray(ok), np.asarray(ts) * 1e9, np.nan),
                                   {"units": "ns", "long_name": f"first time <m_x> <= {threshold:g} ({name})"})
    if opts.get("kind") == "threshold":
        out["mx_target_verified"] = ("verified", ver[:, -1, 0], {"units": "1", "long_name": "<m_x>(t_target), solver"})
        out["mx_min_verified"] = ("verified", ver[:, :, 0].min(-1),
                                  {"units": "1", "long_name": "lowest <m_x>(t <= t_target), solver"})
    out.attrs["verified_weights_sha256"] = model.sha256
    return out


def _box_grid(step):
    """Fields (mT) and angles (deg) of a grid over the trained box, about `step` (mT, deg) apart."""
    from invdesign_surrogates.dynamics._rollout import TRAINED_FIELD_MT, TRAINED_HALF_ANGLE_DEG

    lo, hi = TRAINED_FIELD_MT
    a = TRAINED_HALF_ANGLE_DEG
    return (np.linspace(lo, hi, round((hi - lo) / step[0]) + 1), np.linspace(-a, a, round(2 * a / step[1]) + 1))


def _grid_mx(model, t_target, b, chunk=128):
    """The surrogate's lowest <m_x>(t <= t_target) for fields `b` (n, 2), in fixed-size vmapped chunks."""
    import jax

    f = jax.jit(jax.vmap(lambda x: jnp.min(model.m_avg(x, t_target)[:, 0])))  # no gradient needed
    n = len(b)
    pad = np.concatenate([b, np.repeat(b[-1:], (-n) % chunk, axis=0)])
    return np.concatenate([np.asarray(f(jnp.asarray(pad[i:i + chunk])), float) for i in range(0, len(pad), chunk)])[:n]


def _discrepancy(points, resid, query, length):
    """Gaussian-process mean (squared-exponential kernel, lengths `length`, prior 0) at `query`
    of the residuals `resid` observed at `points` (both (n, 2) in mT, deg)."""
    u, q = np.asarray(points, float) / length, np.asarray(query, float) / length
    kern = lambda a, c: np.exp(-0.5 * ((a[:, None, :] - c[None, :, :]) ** 2).sum(-1))
    alpha = np.linalg.solve(kern(u, u) + 1e-8 * np.eye(len(u)), np.asarray(resid, float))
    return kern(q, u) @ alpha


def refine_design(ds: xr.Dataset, n: int = 6, *, weights=None, model=None, solver=None,
                  step=REFINE_STEP, length=REFINE_LENGTH, margin=REFINE_MARGIN, progress=False) -> xr.Dataset:
    """Solver-checked refinement of a threshold design (see the module notes): up to `n` more
    solver runs.

    Starts from the design's solver check when `verify_designs` made one (else its first run
    is the design). Adds dim `refine` (the runs in order) with `refine_field_mT`,
    `refine_angle_deg`, `refine_mx_predicted` (surrogate) and `refine_mx_verified` (solver)
    (lowest <m_x> up to t_target) and `refine_m_verified` (refine, time, component); the grid
    (`grid_field_mT`, `grid_angle_deg`) with `mx_grid_predicted` and `mx_grid_corrected`
    (after the last run); and `field_mT_refined`, `angle_deg_refined`, `mx_min_refined`:
    the smallest field the solver switched by t_target (NaN when none did).

    `solver(field, t_end, grid) -> <m>(t) (n_times, 3)` defaults to `solver_curve`.
    """
    opts = json.loads(ds.attrs.get("problem_options", "{}") or "{}")
    if opts.get("kind") != "threshold":
        raise ValueError("ds: refine_design needs a result of the threshold problem (invdesign run switching), "
                         f"got problem options {opts!r}")
    if isinstance(n, bool) or int(n) != n or int(n) < 0:
        raise ValueError(f"n must be an integer >= 0 (extra solver runs), got {n!r}")
    n = int(n)
    if n == 0:
        return ds
    step, length = np.asarray(step, float), np.asarray(length, float)
    if step.shape != (2,) or not np.all(step > 0) or length.shape != (2,) or not np.all(length > 0):
        raise ValueError(f"step and length must be two positive numbers (mT, deg), got {step!r}, {length!r}")
    threshold, t_target = float(opts["threshold"]), float(opts["t_target"])
    model = _model(weights) if model is None else model
    solver = solver_curve if solver is None else solver
    times = model.times(t_target)
    fields, angles = _box_grid(step)
    gf, ga = np.meshgrid(fields, angles, indexing="ij")
    grid_pts = np.stack([gf.ravel(), ga.ravel()], -1)
    grid_pred = _grid_mx(model, t_target, np.asarray(field_of(grid_pts[:, 0], grid_pts[:, 1])))

    _, mags, angs = _design_rows(ds, 1)
    design = np.array([float(mags[0]), float(angs[0])])
    pts, pred, curves = [design], [], []
    reused = "m_verified" in ds and int(ds["verified_index"].values[0]) == 0  # verify_designs' check of it
    if reused:
        pred.append(float(ds["m_predicted"].values[0, :, 0].min()))
        curves.append(np.asarray(ds["m_verified"].values[0], float))
        budget = n
    else:
        budget = n - 1
        pred.append(float(jnp.min(model.m_avg(jnp.asarray(field_of(*design)), t_target)[:, 0])))
        curves.append(np.asarray(solver(np.asarray(field_of(*design)), t_target, model.grid), float))
    stop = "budget"
    for k in range(budget):
        mx = np.array([c[:, 0].min() for c in curves])
        p = np.asarray(pts)
        corrected = grid_pred + _discrepancy(p, mx - np.asarray(pred), grid_pts, length)
        best = min((f for (f, _), m in zip(pts, mx) if m <= threshold), default=np.inf)
        tried = (np.abs((grid_pts[:, None, :] - p[None]) / step).max(-1) < 0.5).any(-1)
        # the margin guards the first switched field; below a confirmed one, the threshold itself
        candidates = ((corrected <= threshold - (0.0 if np.isfinite(best) else margin))
                      & (grid_pts[:, 0] < best - 1e-9) & ~tried)
        if candidates.any():
            idx = np.flatnonzero(candidates)
            idx = idx[grid_pts[idx, 0] == grid_pts[idx, 0].min()]
            pick = idx[np.argmin(corrected[idx])]
        elif np.isfinite(best):
            stop = "converged"
            break
        elif (~tried).any():
            idx = np.flatnonzero(~tried)
            pick = idx[np.argmin(corrected[idx])]
        else:
            stop = "grid exhausted"
            break
        x = grid_pts[pick]
        if progress:
            print(f"refine {k + 1}/{budget}: solver at {x[0]:.2f} mT, {x[1]:+.1f} deg "
                  f"(corrected surrogate <m_x> {corrected[pick]:+.3f})", flush=True)
        pts.append(x)
        pred.append(float(grid_pred[pick]))
        curves.append(np.asarray(solver(np.asarray(field_of(*x)), t_target, model.grid), float))
    p, curves = np.asarray(pts), np.stack(curves)
    mx = curves[:, :, 0].min(-1)
    corrected = grid_pred + _discrepancy(p, mx - np.asarray(pred), grid_pts, length)
    ok = mx <= threshold
    win = np.flatnonzero(ok)[np.argmin(p[ok, 0])] if ok.any() else None

    out = ds.copy()
    if "time" not in out.coords:
        out = out.assign_coords(time=("time", times, {"units": "s"}), component=["x", "y", "z"])
    out = out.assign_coords(grid_field_mT=("grid_field_mT", fields, {"units": "mT"}),
                            grid_angle_deg=("grid_angle_deg", angles, {"units": "deg"}))
    out["refine_field_mT"] = ("refine", p[:, 0], {"units": "mT", "long_name": "field of a solver run"})
    out["refine_angle_deg"] = ("refine", p[:, 1], {"units": "deg", "long_name": "angle of a solver run"})
    out["refine_mx_predicted"] = ("refine", np.asarray(pred), {"units": "1", "long_name": "lowest <m_x>(t <= t_target), surrogate"})
    out["refine_mx_verified"] = ("refine", mx, {"units": "1", "long_name": "lowest <m_x>(t <= t_target), solver"})
    out["refine_m_verified"] = (("refine", "time", "component"), curves, {"units": "1", "long_name": "<m>(t), solver"})
    shape = (len(fields), len(angles))
    out["mx_grid_predicted"] = (("grid_field_mT", "grid_angle_deg"), grid_pred.reshape(shape),
                                {"units": "1", "long_name": "lowest <m_x>(t <= t_target), surrogate"})
    out["mx_grid_corrected"] = (("grid_field_mT", "grid_angle_deg"), corrected.reshape(shape),
                                {"units": "1", "long_name": "lowest <m_x>(t <= t_target), surrogate + solver discrepancy"})
    pick = (lambda a: float(a[win]) if win is not None else np.nan)
    out["field_mT_refined"] = ((), pick(p[:, 0]), {"units": "mT", "long_name": "smallest field the solver switched"})
    out["angle_deg_refined"] = ((), pick(p[:, 1]), {"units": "deg", "long_name": "its angle"})
    out["mx_min_refined"] = ((), pick(mx), {"units": "1", "long_name": "lowest <m_x>(t <= t_target) there, solver"})
    out.attrs.update(refine_runs=len(p) - int(reused), refine_stop=stop,
                     refine_settings=json.dumps(dict(step=step.tolist(), length=length.tolist(), margin=margin)))
    return out


def scan_start(model, *, t_target=T_TARGET, threshold=THRESHOLD, step=(2.0, 4.0), quick=False):
    """Starting point of the gradient search: on a coarse grid over the trained box (`step`,
    mT and deg), the smallest field whose `mx_min` the surrogate puts at or below
    `threshold`; the lowest `mx_min` when none is. Adam alone walks to the nearest local
    optimum, and the film's response has several (the sign of the angle decides the
    reversal path)."""
    if quick:
        step = (2 * step[0], 2 * step[1])
    gf, ga = np.meshgrid(*_box_grid(step), indexing="ij")
    gf, ga = gf.ravel(), ga.ravel()
    mx = _grid_mx(model, t_target, np.asarray(field_of(gf, ga)))
    ok = mx <= threshold
    k = np.flatnonzero(ok)[np.lexsort((mx[ok], gf[ok]))[0]] if ok.any() else int(np.argmin(mx))
    return {"field_mT": float(gf[k]), "angle_deg": float(ga[k])}


def _run(method, seed=0, quick=False, progress=True, verify=1, refine=0):
    model = _model()
    if method == "genetic":
        problem = threshold_problem(model=model)
        ds = genetic_search(problem, algorithm="ga", pop_size=16 if quick else 32, n_gen=4 if quick else 15,
                            seed=seed, progress=progress)
    else:
        problem = threshold_problem(model=model)
        x0 = scan_start(model, quick=quick)
        ds = gradient_search(problem, method="adam", x0=x0, learning_rate=0.05, max_iter=30 if quick else 50,
                             outer_iters=2 if quick else 3, penalty=100.0, seed=seed, progress=progress)
    ds = verify_designs(ds, verify, model=model)
    return refine_design(ds, refine, model=model, progress=progress) if refine else ds


def _run_pareto(method="genetic", seed=0, quick=False, progress=True, verify=3):
    model = _model()
    ds = genetic_search(pareto_problem(model=model), algorithm="nsga2", pop_size=16 if quick else 32,
                        n_gen=4 if quick else 15, seed=seed, progress=progress)
    return verify_designs(ds, verify, model=model)


def plot_design(ds: xr.Dataset, path):
    """<m_x>(t), <m_y>(t) of the verified designs: surrogate (solid) and solver (dashed); for
    Pareto runs also the front (field vs switching time) with the solver's times marked; after
    `refine_design` the map of the corrected surrogate with the solver's runs, and the
    refined design's solver curve (black)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from invdesign.plot import savefig

    front = "t_switch" in ds and "solution" in ds.dims
    if front:
        fig, (ax_f, ax) = plt.subplots(1, 2, figsize=(12, 4.4), gridspec_kw={"width_ratios": [1, 1.4]})
        ok = ds["not_reached"].values <= 0
        ax_f.plot(ds["field_mT"].values[ok], ds["t_switch"].values[ok], "o", color="tab:blue", label="front (surrogate)")
        if "t_switch_verified" in ds:
            idx = ds["verified_index"].values
            ax_f.plot(ds["field_mT"].values[idx], ds["t_switch_verified"].values, "s", mfc="none", color="tab:red",
                      ms=9, label="re-run by the solver")
        ax_f.set_xlabel("mu0 |H| (mT)")
        ax_f.set_ylabel("switching time (ns)")
        ax_f.legend(fontsize=8)
        ax_f.set_title("NSGA-II front", fontsize=10)
    elif "refine" in ds.dims:
        fig, (ax_f, ax) = plt.subplots(1, 2, figsize=(12, 4.4), gridspec_kw={"width_ratios": [1, 1.4]})
        thr = float(json.loads(ds.attrs.get("problem_options", "{}") or "{}").get("threshold", THRESHOLD))
        fa, ga = ds["grid_angle_deg"].values, ds["grid_field_mT"].values
        im = ax_f.pcolormesh(fa, ga, ds["mx_grid_corrected"].values, cmap="RdBu_r", vmin=-1, vmax=1, shading="auto")
        fig.colorbar(im, ax=ax_f, label="lowest <m_x>(t <= t_target), corrected surrogate")
        ax_f.contour(fa, ga, ds["mx_grid_predicted"].values, [thr], colors="k", linestyles="--", linewidths=1)
        ax_f.contour(fa, ga, ds["mx_grid_corrected"].values, [thr], colors="k", linewidths=1.2)
        ok = ds["refine_mx_verified"].values <= thr
        ax_f.plot(ds["refine_angle_deg"].values[ok], ds["refine_field_mT"].values[ok], "o", color="lime", mec="k",
                  label="solver: switched")
        ax_f.plot(ds["refine_angle_deg"].values[~ok], ds["refine_field_mT"].values[~ok], "x", color="k", ms=8,
                  label="solver: not switched")
        ax_f.set_xlabel("angle from -x towards +y (deg)")
        ax_f.set_ylabel("mu0 |H| (mT)")
        ax_f.legend(fontsize=8, loc="lower left")
        ax_f.set_title(f"threshold {thr:g}: surrogate (dashed), corrected (solid)", fontsize=10)
    else:
        fig, ax = plt.subplots(figsize=(7, 4.2))
    if "m_verified" not in ds:
        ax.text(0.5, 0.5, "no design was re-run with the solver (--verify 0)", ha="center", transform=ax.transAxes)
    else:
        t = ds["time"].values * 1e9
        opts = json.loads(ds.attrs.get("problem_options", "{}") or "{}")
        _, mags, angs = _design_rows(ds, ds.sizes["verified"])  # the designs verify_designs re-ran
        for k, (f, a) in enumerate(zip(mags, angs)):
            for j, (comp, colour) in enumerate((("x", "tab:blue"), ("y", "tab:orange"))):
                label = f"{f:.2f} mT, {a:+.1f} deg" if j == 0 else None
                ax.plot(t, ds["m_predicted"].values[k, :, j], "-", color=colour, alpha=0.9 - 0.15 * k, label=label)
                ax.plot(t, ds["m_verified"].values[k, :, j], "--", color=colour, alpha=0.9 - 0.15 * k)
        if "refine" in ds.dims and np.isfinite(float(ds["field_mT_refined"])):
            k = int(np.flatnonzero((ds["refine_field_mT"].values == float(ds["field_mT_refined"]))
                                   & (ds["refine_angle_deg"].values == float(ds["angle_deg_refined"])))[0])
            for j in (0, 1):
                ax.plot(t, ds["refine_m_verified"].values[k, :, j], "-", color="k", lw=1.6,
                        label=(f"refined: {float(ds['field_mT_refined']):.2f} mT, "
                               f"{float(ds['angle_deg_refined']):+.1f} deg (solver)") if j == 0 else None)
        ax.axhline(float(opts.get("threshold", THRESHOLD)), color="0.5", lw=0.8, ls=":")
        if "t_target" in opts:
            ax.axvline(float(opts["t_target"]) * 1e9, color="0.5", lw=0.8, ls=":")
        ax.legend(fontsize=8, title="<m_x> blue, <m_y> orange; solid surrogate, dashed solver", title_fontsize=8)
    ax.set_xlabel("t (ns)")
    ax.set_ylabel("<m>")
    ax.set_title(f"{ds.attrs.get('problem', 'switching')}: predicted vs verified switching", fontsize=10)
    fig.tight_layout()
    return savefig(fig, path)


def _plot(ds, out_dir):
    return [plot_design(ds, Path(out_dir) / f"{ds.attrs.get('problem', 'switching')}-design.png")]


def _summary(ds) -> str:
    from invdesign.optimize import summary_table

    text = summary_table(ds)
    thr = float(json.loads(ds.attrs.get("problem_options", "{}") or "{}").get("threshold", THRESHOLD))
    if "m_verified" in ds:
        lines = ["", "re-run with the solver (surrogate -> solver):"]
        for k in range(ds.sizes["verified"]):
            tp, tv = float(ds["t_switch_predicted"].values[k]), float(ds["t_switch_verified"].values[k])
            line = f"  design {int(ds['verified_index'].values[k])}: switching time {tp:.3f} -> {tv:.3f} ns"
            if "mx_min_verified" in ds:
                line += (f", lowest <m_x>(t <= t_target) {float(ds['m_predicted'].values[k, :, 0].min()):+.3f} -> "
                         f"{float(ds['mx_min_verified'].values[k]):+.3f}")
            lines.append(line)
        text += "\n".join(lines)
    if "refine" in ds.dims:
        lines = ["", f"solver-checked refinement ({int(ds.attrs.get('refine_runs', 0))} more solver runs, "
                     f"stopped: {ds.attrs.get('refine_stop', '?')}), lowest <m_x>(t <= t_target) surrogate -> solver:"]
        for k in range(ds.sizes["refine"]):
            lines.append(f"  {float(ds['refine_field_mT'][k]):6.2f} mT {float(ds['refine_angle_deg'][k]):+6.1f} deg: "
                         f"{float(ds['refine_mx_predicted'][k]):+.3f} -> {float(ds['refine_mx_verified'][k]):+.3f}")
        f = float(ds["field_mT_refined"])
        lines.append(f"  smallest field the solver switched: {f:.2f} mT at {float(ds['angle_deg_refined']):+.1f} deg "
                     f"(lowest <m_x> = {float(ds['mx_min_refined']):+.3f})" if np.isfinite(f) else
                     f"  no field the solver ran reached <m_x> <= {thr:g} in time")
        text += "\n".join(lines)
    elif "mx_min_verified" in ds and float(ds["mx_min_verified"].values[0]) > thr:
        text += ("\n  the solver does not confirm the design: --refine N corrects the surrogate with up to N more "
                 "solver runs")
    return text


SWITCHING = ProblemEntry(
    name="switching",
    description="SP4 film: smallest in-plane field that switches <m_x> below -0.9 by 0.15 ns (dynamics surrogate)",
    methods=("gradient", "genetic"), run=_run, plot=_plot, summary=_summary, verifies=True,
    refines=True)

SWITCHING_PARETO = ProblemEntry(
    name="switching-pareto",
    description="SP4 film: NSGA-II front of switching field vs switching time (dynamics surrogate)",
    methods=("genetic",), run=_run_pareto, plot=_plot, summary=_summary, verifies=True)
