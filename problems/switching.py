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
tilted towards +y (like SP4 field 1) reach -0.9 after 0.17-0.4 ns, fields tilted towards
-y (like SP4 field 2) often only after 0.5-0.9 ns or not at all, through a slower path.
Hence the default target of 0.25 ns, which only strongly tilted fields meet.

(a) `threshold_problem`: the smallest field that drives <m_x> below `threshold` (-0.9) by
    `t_target` (default 0.25 ns): minimise `field` (= `field_mT`) subject to
    `mx_excess = <m_x>(t_target) - threshold <= 0`. By gradient (optax Adam on the augmented
    Lagrangian, through the rollout) or by GA (pymoo).
(b) `pareto_problem`: NSGA-II, field magnitude (min) vs switching time (min): the first time
    <m_x> reaches `threshold` within 1 ns (`switching_time`, interpolated), constraint: it
    is reached.

`verify_designs` re-runs designs with the micromagnetic solver (the SP4 s-state of the
trained grid, the training data's settings: Bogacki-Shampine, tolerance 1e-5) and stores the
surrogate's and the solver's <m>(t) side by side, with both switching times.

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

__all__ = ["SWITCHING", "SWITCHING_PARETO", "field_of", "pareto_problem", "plot_design", "threshold_problem", "verify_designs"]

T_TARGET = 0.25e-9
"""Default target time (s) of the threshold problem."""
T_END = 1.0e-9
"""Horizon (s) of the Pareto problem's switching time."""
THRESHOLD = -0.9
"""<m_x> that counts as switched."""


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
    """(a) Smallest field with <m_x>(t_target) <= threshold (see the module notes)."""
    t_target, threshold = _check_times(t_target, threshold)
    model = _model(weights) if model is None else model

    def evaluate(p):
        b = field_of(p["field_mT"], p["angle_deg"])
        m = model.m_avg_at(b, t_target).astype(jnp.float64)
        return {"field": jnp.asarray(p["field_mT"], float), "mx_excess": m[0] - threshold,
                "mx_target": m[0], "my_target": m[1], "mz_target": m[2]}

    options = dict(kind="threshold", t_target=t_target, threshold=threshold)
    return DesignProblem(
        "switching", _space(), evaluate,
        objectives=[Objective("field", "min", "mT", "applied field mu0 |H| (= field_mT)", scale=10.0)],
        constraints=[Constraint("mx_excess", "1", f"<m_x>(t_target) - ({threshold:g})", scale=0.1)],
        description=(f"SP4 film: smallest in-plane field that drives <m_x> below {threshold:g} by "
                     f"{t_target * 1e9:g} ns (dynamics surrogate)"),
        outputs={"mx_target": ("1", "<m_x> at t_target (surrogate)"), "my_target": ("1", "<m_y> at t_target"),
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
    """(indices, field_mT, angle_deg) of the designs to verify: the final iterate, or the
    first `n` of a Pareto set / GA answer along `solution`."""
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
    out.attrs["verified_weights_sha256"] = model.sha256
    return out


def _run(method, seed=0, quick=False, progress=True, verify=1):
    model = _model()
    if method == "genetic":
        problem = threshold_problem(model=model)
        ds = genetic_search(problem, algorithm="ga", pop_size=16 if quick else 32, n_gen=4 if quick else 15,
                            seed=seed, progress=progress)
    else:
        problem = threshold_problem(model=model)
        ds = gradient_search(problem, method="adam", learning_rate=0.05, max_iter=30 if quick else 100,
                             outer_iters=2 if quick else 4, seed=seed, progress=progress)
    return verify_designs(ds, verify, model=model)


def _run_pareto(method="genetic", seed=0, quick=False, progress=True, verify=3):
    model = _model()
    ds = genetic_search(pareto_problem(model=model), algorithm="nsga2", pop_size=16 if quick else 32,
                        n_gen=4 if quick else 15, seed=seed, progress=progress)
    return verify_designs(ds, verify, model=model)


def plot_design(ds: xr.Dataset, path):
    """<m_x>(t), <m_y>(t) of the verified designs: surrogate (solid) and solver (dashed); for
    Pareto runs also the front (field vs switching time) with the solver's times marked."""
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
    if "m_verified" in ds:
        lines = ["", "re-run with the solver (surrogate -> solver):"]
        for k in range(ds.sizes["verified"]):
            tp, tv = float(ds["t_switch_predicted"].values[k]), float(ds["t_switch_verified"].values[k])
            line = f"  design {int(ds['verified_index'].values[k])}: switching time {tp:.3f} -> {tv:.3f} ns"
            if "mx_target_verified" in ds:
                line += (f", <m_x>(t_target) {float(ds['m_predicted'].values[k, -1, 0]):+.3f} -> "
                         f"{float(ds['mx_target_verified'].values[k]):+.3f}")
            lines.append(line)
        text += "\n".join(lines)
    return text


SWITCHING = ProblemEntry(
    name="switching",
    description="SP4 film: smallest in-plane field that switches <m_x> below -0.9 by 0.25 ns (dynamics surrogate)",
    methods=("gradient", "genetic"), run=_run, plot=_plot, summary=_summary, verifies=True)

SWITCHING_PARETO = ProblemEntry(
    name="switching-pareto",
    description="SP4 film: NSGA-II front of switching field vs switching time (dynamics surrogate)",
    methods=("genetic",), run=_run_pareto, plot=_plot, summary=_summary, verifies=True)
