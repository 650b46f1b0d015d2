"""Latent-space design of nanocrystalline microstructures with the hysteresis surrogate.

The design variables are the latent code z of the variational autoencoder of the hysteresis
surrogate (`invdesign_surrogates.hysteresis`, the paper's section 4.2 idea of latent
arithmetic, turned into a search). For a code z the surrogate gives:

- the structure it stands for, the grain structure of the decoded easy-axis map
  (`surrogate.structure(z)`: `grains_from_map(calibration(decode(z)))`, see
  `invdesign_surrogates.hysteresis._design`);
- the six anchor points of that structure's demagnetization curve, predicted by the
  surrogate exactly as `predict(kx)` predicts them, with their spread across the ensemble
  members.

The search maximises the coercive field |Hc|, the remanence Mr and the knee field |Hk90|
(in units of H_A and Ms). Two constraints keep the decoder and the regressor in the region
where they were trained:

- `prior_excess`: the prior negative log-density 0.5 |z|^2, minus its `prior_quantile`
  quantile over the codes of the training structures, must be <= 0.
- `spread_excess`: the ensemble spread of every anchor, relative to the median spread over
  the training codes, must stay below `spread_factor`. An ensemble that disagrees is
  extrapolating.
- `stats_excess`: the Mahalanobis distance of the structure's image statistics
  (`stats_distance`) from those of the structures the decoder gives for the training
  codes, over its `prior_quantile` quantile on those codes, minus 1, must be <= 0: designs
  stay among the structures the decoder makes for in-distribution codes (see
  `invdesign_surrogates.hysteresis._design` for why the reference is the decoder's output).

(a) `pareto_problem`: NSGA-II over z for the three objectives.
(b) `weighted_problem`: one weighted target `w . (|Hc|, Mr, |Hk90|)` with the same
    constraints, for `smoothed_gradient_search`: optax Adam ascent on the
    Gaussian-smoothed penalised target, whose gradient is estimated from antithetic
    sampled differences. The prediction of a design is piecewise constant in z (the grain
    projection rounds angles; the image statistics count grains), so its autodiff gradient
    is zero or meaningless; the smoothed target has a gradient, and sampling estimates it.

`verify_designs` re-simulates the decoded structures of the best few designs with the
micromagnetic solver (`invdesign_surrogates.hysteresis.simulate_anchors`: easy axes
`(kx, +sqrt(1 - kx^2), 0)`, the training data's material and field steps). It stores the
predicted and the computed anchors side by side. `MICROSTRUCTURE` is the command-line entry
(`invdesign run microstructure [--method gradient|genetic] [--verify N]`).
"""

from __future__ import annotations

import json
from pathlib import Path

import jax.numpy as jnp
import optax
import numpy as np
import xarray as xr

import invdesign  # noqa: F401  (x64)
from invdesign.optimize import (
    Constraint,
    DesignProblem,
    DesignSpace,
    Objective,
    Parameter,
    ProblemEntry,
    genetic_search,
)
from invdesign.optimize._results import build_dataset

__all__ = ["LATENT_BOUND", "MICROSTRUCTURE", "anchor_curve", "decoded_structures", "pareto_problem", "plot_designs",
           "smoothed_gradient_search", "verify_designs", "weighted_problem"]

ANCHORS = ("M1", "Mr", "Hk90", "Hk80", "Hk70", "Hc")
UNITS = {"M1": "Ms", "Mr": "Ms", "Hk90": "H_A", "Hk80": "H_A", "Hk70": "H_A", "Hc": "H_A"}

LATENT_BOUND = 2.0
"""Box bound on every latent coordinate (the prior is a standard normal: 2 sigma). With 64
coordinates, uniform draws in a wider box (NSGA-II's first population) lie far outside the
prior's typical set (0.5 |z|^2 about 170 at 4 sigma, against about 26 for training codes)."""


def _surrogate(surrogate):
    if surrogate is None:
        from invdesign_surrogates.hysteresis import load_surrogate

        return load_surrogate()
    return surrogate


def _names(latent: int) -> list[str]:
    return [f"z{i:02d}" for i in range(latent)]


def _bounds(surrogate, prior_quantile: float, spread_factor: float):
    if not (0 < prior_quantile <= 1):
        raise ValueError(f"prior_quantile must be in (0, 1], got {prior_quantile}")
    if not (spread_factor > 0):
        raise ValueError(f"spread_factor must be > 0, got {spread_factor}")
    codes = np.asarray(surrogate.train_codes, dtype=np.float64)
    max_nll = float(np.quantile(0.5 * np.sum(codes**2, axis=1), prior_quantile))
    _, spread = surrogate.predict_latent_batch(getattr(surrogate, "reference_codes", codes))
    spread_ref = np.maximum(np.median(np.asarray(spread, dtype=np.float64), axis=0), 1e-6)
    max_dist = float(np.quantile(np.asarray(surrogate.train_stats_distance, dtype=np.float64), prior_quantile))
    return max_nll, spread_ref, max_dist


def _outputs(surrogate, z, bounds, spread_factor):
    max_nll, spread_ref, max_dist = bounds
    mean, spread, dist = surrogate.predict_latent_full(z)
    mean = mean.astype(jnp.float64)
    spread = spread.astype(jnp.float64)
    out = {a: mean[k] for k, a in enumerate(ANCHORS)}
    out.update({f"spread_{a}": spread[k] for k, a in enumerate(ANCHORS)})
    out["coercivity"] = -mean[5]
    out["knee"] = -mean[2]
    out["prior_excess"] = 0.5 * jnp.sum(z**2) - max_nll
    out["spread_excess"] = jnp.max(spread / spread_ref) / spread_factor - 1.0
    out["stats_distance"] = dist.astype(jnp.float64)
    out["stats_excess"] = dist.astype(jnp.float64) / max_dist - 1.0
    return out


_OUTPUTS = {
    **{a: ("1", f"predicted {a} (units of {UNITS[a]}; fields signed)") for a in ANCHORS},
    **{f"spread_{a}": ("1", f"ensemble spread of {a} (units of {UNITS[a]})") for a in ANCHORS},
    "stats_distance": ("1", "Mahalanobis distance of the structure's image statistics from those of the decoded training codes' structures"),
}

_CONSTRAINTS = [
    Constraint("prior_excess", "1", "0.5 |z|^2 minus its quantile over the training codes (stay in distribution)"),
    Constraint("spread_excess", "1", "max over anchors of spread / (spread_factor x median training spread) - 1"),
    Constraint("stats_excess", "1", "image-statistics distance over its training quantile - 1 (stay in distribution)"),
]


def _space(latent):
    return DesignSpace([Parameter(n, -LATENT_BOUND, LATENT_BOUND, units="1", long_name=f"latent coordinate {n[1:]}")
                        for n in _names(latent)])


def _z(p, latent):
    return jnp.stack([jnp.asarray(p[n], jnp.float64) for n in _names(latent)])


def pareto_problem(surrogate=None, *, prior_quantile: float = 0.99, spread_factor: float = 2.0) -> DesignProblem:
    """(a) NSGA-II: maximise |Hc|, Mr and |Hk90| over the latent code, in distribution.

    **Arguments:**

    - `surrogate`: a loaded hysteresis surrogate (default: the shipped weights).
    - `prior_quantile`: quantile of the training codes' 0.5 |z|^2 that bounds the prior
      negative log-density of a design.
    - `spread_factor`: allowed ensemble spread, relative to the median over the training codes.
    """
    s = _surrogate(surrogate)
    bounds = _bounds(s, prior_quantile, spread_factor)
    max_nll = bounds[0]
    latent = s.latent

    def evaluate(p):
        return _outputs(s, _z(p, latent), bounds, spread_factor)

    return DesignProblem(
        "microstructure-pareto",
        _space(latent),
        evaluate,
        objectives=[
            Objective("coercivity", "max", "1", "-Hc / H_A, predicted", scale=0.3),
            Objective("Mr", "max", "1", "remanence Mr / Ms, predicted", scale=0.8),
            Objective("knee", "max", "1", "-Hk90 / H_A, predicted", scale=0.3),
        ],
        constraints=_CONSTRAINTS,
        description=(f"latent microstructure ({latent} latent coordinates): max coercivity, remanence and knee field, "
                     f"codes within the {prior_quantile:g} prior quantile of the training codes, spread <= "
                     f"{spread_factor:g} x median"),
        outputs=_OUTPUTS,
        options=json.dumps({"prior_quantile": prior_quantile, "spread_factor": spread_factor, "max_nll": max_nll}),
    )


def weighted_problem(surrogate=None, *, weights=(1.0, 1.0, 1.0), prior_quantile: float = 0.99,
                     spread_factor: float = 2.0) -> DesignProblem:
    """(b) The target `w . (-Hc/H_A, Mr/Ms, -Hk90/H_A)` to maximise, with the constraints of
    (a), for `smoothed_gradient_search`."""
    s = _surrogate(surrogate)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (3,) or not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise ValueError(f"weights must be three finite non-negative numbers, not all zero, got {weights!r}")
    bounds = _bounds(s, prior_quantile, spread_factor)
    max_nll = bounds[0]
    latent = s.latent

    def evaluate(p):
        out = _outputs(s, _z(p, latent), bounds, spread_factor)
        out["target"] = w[0] * out["coercivity"] + w[1] * out["Mr"] + w[2] * out["knee"]
        return out

    return DesignProblem(
        "microstructure",
        _space(latent),
        evaluate,
        objectives=[Objective("target", "max", "1", "weighted -Hc/H_A, Mr/Ms, -Hk90/H_A", scale=0.5)],
        constraints=_CONSTRAINTS,
        description=(f"latent microstructure ({latent} latent coordinates): max {w[0]:g} |Hc| + {w[1]:g} Mr + "
                     f"{w[2]:g} |Hk90| in distribution"),
        outputs={**_OUTPUTS, "coercivity": ("1", "-Hc / H_A"), "knee": ("1", "-Hk90 / H_A")},
        options=json.dumps({"weights": w.tolist(), "prior_quantile": prior_quantile, "spread_factor": spread_factor,
                            "max_nll": max_nll}),
    )


def smoothed_gradient_search(problem: DesignProblem, *, iterations: int = 40, samples: int = 8, sigma: float = 0.3,
                             learning_rate: float = 0.1, penalty: float = 10.0, x0=None, seed: int = 0,
                             progress: bool = True) -> xr.Dataset:
    """Optax Adam ascent of a one-objective `DesignProblem` on its Gaussian-smoothed penalised target.

    The maximised function is `F(z) = E_eps[J(z + sigma eps)]`, eps standard normal, with
    `J = -sign * objective / scale - penalty * sum_j max(0, g_j / scale_j)^2` (the objective
    to maximise, constraints `g_j <= 0`; `sign` is -1 for a maximised objective). Its gradient is estimated each iteration from
    `samples` antithetic pairs of fresh draws,
    `grad ~ sum_i (J(z + sigma eps_i) - J(z - sigma eps_i)) eps_i / (2 sigma samples)`,
    and handed to `optax.adam` (step `learning_rate`, decaying exponentially to a tenth of it
    over the run); iterates stay inside the box bounds. This
    needs no autodiff gradient of `evaluate`, which suits targets that are piecewise
    constant in the parameters (see the module notes). Works in the problem's own
    parameter units (here latent coordinates of unit prior scale).

    **Arguments:** `problem` (one objective), `iterations` (>= 1), `samples` (antithetic
    pairs, >= 1), `sigma` (> 0, smoothing scale), `learning_rate` (> 0), `penalty` (>= 0),
    `x0` (dict of starting parameters; default the centre of the box), `seed`, `progress`.

    **Returns:** a dataset on dim `iteration` (the iterate `z` before each step, its outputs,
    `smoothed_target` (the mean of `J` over the iteration's samples), `grad_norm`,
    `max_violation`), like `gradient_search`'s; attrs `algorithm`, `settings`, `seed`.
    """
    from tqdm.auto import tqdm

    if len(problem.objectives) != 1:
        raise ValueError(f"problem must have one objective for smoothed_gradient_search, got {problem.objective_names}")
    for arg, val in (("iterations", iterations), ("samples", samples)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
            raise ValueError(f"{arg} must be an integer >= 1, got {val!r}")
    for arg, val in (("sigma", sigma), ("learning_rate", learning_rate)):
        if not (np.isfinite(val) and val > 0):
            raise ValueError(f"{arg} must be finite and > 0, got {val!r}")
    if not (np.isfinite(penalty) and penalty >= 0):
        raise ValueError(f"penalty must be finite and >= 0, got {penalty!r}")
    space = problem.space
    names = list(space.names)
    lo = np.array([p.lower for p in space.parameters], dtype=float)
    hi = np.array([p.upper for p in space.parameters], dtype=float)
    z = 0.5 * (lo + hi) if x0 is None else np.array([float(x0[n]) for n in names])
    if z.shape != lo.shape or not np.all(np.isfinite(z)):
        raise ValueError(f"x0 must give a finite value for every parameter {names}")
    obj = problem.objectives[0]
    cons = list(problem.constraints)

    def target(out):
        j = -obj.sign * np.asarray(out[obj.name], float) / obj.scale  # sign * f is minimised
        for c in cons:
            j = j - penalty * np.maximum(0.0, np.asarray(out[c.name], float) / c.scale) ** 2
        return j

    rng = np.random.default_rng(seed)
    # the step decays to a tenth over the run so that the iterate settles (the estimate stays noisy)
    opt = optax.adam(optax.exponential_decay(float(learning_rate), int(iterations), 0.1))
    state = opt.init(z)
    rows, extra = [], {"smoothed_target": [], "grad_norm": []}
    for _ in tqdm(range(int(iterations)), desc=f"smoothed-adam {problem.name}", disable=not progress, delay=2.0,
                  leave=False):
        eps = rng.standard_normal((int(samples), z.size))
        pts = np.concatenate([z[None], np.clip(z + sigma * eps, lo, hi), np.clip(z - sigma * eps, lo, hi)])
        out = {k: np.asarray(v, float) for k, v in problem.evaluate_batch(pts).items()}
        j = target(out)
        grad = ((j[1 : 1 + samples] - j[1 + samples :])[:, None] * eps).sum(0) / (2.0 * sigma * samples)
        rows.append({k: v[0] for k, v in out.items()} | dict(zip(names, z)))
        extra["smoothed_target"].append(float(j[1:].mean()))
        extra["grad_norm"].append(float(np.linalg.norm(grad)))
        updates, state = opt.update(-grad, state, z)  # ascent
        z = np.clip(np.asarray(optax.apply_updates(z, updates)), lo, hi)
    out_names = problem.order_outputs([k for k in rows[0] if k not in names])
    variables = {n: (("iteration",), np.array([r[n] for r in rows])) for n in names + out_names}
    cmat = np.asarray(problem.constraint_matrix({n: variables[n][1] for n in out_names}))
    variables["max_violation"] = (("iteration",), np.maximum(0.0, cmat.max(axis=-1)) if cmat.shape[-1]
                                  else np.zeros(len(rows)))
    for k, v in extra.items():
        variables[k] = (("iteration",), np.array(v))
    attrs = {"max_violation": {"units": "", "long_name": "max(0, max_j g_j / scale_j)", "role": "diagnostic"},
             "smoothed_target": {"units": "", "long_name": "mean penalised target over the iteration's samples",
                                 "role": "diagnostic"},
             "grad_norm": {"units": "", "long_name": "norm of the sampled gradient estimate", "role": "diagnostic"}}
    settings = {"iterations": int(iterations), "samples": int(samples), "sigma": float(sigma),
                "learning_rate": float(learning_rate), "penalty": float(penalty)}
    return build_dataset(problem, variables, coords={"iteration": np.arange(len(rows))},
                         algorithm="smoothed-gradient-adam", settings=settings, seed=int(seed), converged=False,
                         message=f"ran {len(rows)} iterations (a fixed budget: the sampled gradient never vanishes)",
                         outputs=out_names, attrs=attrs)


def _codes(ds, dim):
    names = sorted(n for n in ds.data_vars if n.startswith("z") and n[1:].isdigit() and ds[n].dims == (dim,))
    return np.stack([ds[n].values for n in names], axis=-1)


def decoded_structures(ds: xr.Dataset, surrogate=None, dim: str | None = None) -> xr.Dataset:
    """Add `kx` (dim, x, y), the grain structure of every design along `dim` (what is predicted and
    simulated), and `kx_decoded`, the decoder's smooth map before the grain projection.

    `dim` defaults to `solution` (genetic results) or `iteration` (gradient results; the last
    iteration only, as dim `design`).
    """
    s = _surrogate(surrogate)
    if dim is None:
        dim = "solution" if "solution" in ds.dims else "iteration"
    codes = _codes(ds, dim)
    if dim == "iteration":
        codes = codes[-1:]
        dim_out = "design"
    else:
        dim_out = dim
    smooth = np.asarray(s.decode(codes.astype(np.float32)), dtype=np.float32)
    kx = np.asarray(s.structure(codes.astype(np.float32)), dtype=np.float32)
    ds = ds.copy()
    ds["kx"] = ((dim_out, "x", "y"), kx, {"units": "1", "long_name": "x-component of the easy axis of the design's grain "
                                                                      "structure (field along y; the structure that is "
                                                                      "predicted and simulated)"})
    ds["kx_decoded"] = ((dim_out, "x", "y"), smooth, {"units": "1", "long_name": "decoder output (smooth map) before the "
                                                                                  "grain projection"})
    return ds


def verify_designs(ds: xr.Dataset, n: int, surrogate=None, *, lanes: int | None = 1) -> xr.Dataset:
    """Re-simulate the `n` best designs' decoded structures with the micromagnetic solver.

    Designs are ranked by the predicted coercivity (Pareto sets) or taken from the final
    iterate (gradient runs). Adds dim `verified` with `verified_index`, `predicted` and
    `computed` (verified, anchor) in the paper's units, and `error` = computed - predicted.
    """
    from invdesign_surrogates.hysteresis import simulate_anchors

    if int(n) < 0:
        raise ValueError(f"n must be >= 0 (designs to re-simulate), got {n}")
    if "kx" not in ds:
        ds = decoded_structures(ds, surrogate)
    dim = ds["kx"].dims[0]
    if int(n) == 0:
        return ds
    if dim == "solution":
        order = np.argsort(ds["Hc"].values)[: int(n)]  # most negative Hc: largest coercivity
        predicted = np.stack([ds[a].values[order] for a in ANCHORS], axis=-1)
    else:
        order = np.array([0])
        predicted = np.stack([[ds[a].values[-1] for a in ANCHORS]])
    computed = simulate_anchors(ds["kx"].values[order], lanes=lanes)
    ds = ds.copy()
    ds = ds.assign_coords(anchor=list(ANCHORS))
    ds["verified_index"] = ("verified", order, {"long_name": f"index along {dim} of a re-simulated design"})
    ds["predicted"] = (("verified", "anchor"), predicted, {"units": "1", "long_name": "surrogate anchors (Ms, H_A; fields signed)"})
    ds["computed"] = (("verified", "anchor"), computed, {"units": "1", "long_name": "solver anchors of the decoded structure (Ms, H_A)"})
    ds["error"] = (("verified", "anchor"), computed - predicted, {"units": "1", "long_name": "computed - predicted"})
    return ds


def _run(method, seed=0, quick=False, progress=True, verify=0):
    s = _surrogate(None)
    if method == "gradient":
        problem = weighted_problem(s)
        ds = smoothed_gradient_search(problem, iterations=10 if quick else 40, samples=4 if quick else 8, seed=seed,
                                      progress=progress)
    else:
        problem = pareto_problem(s)
        ds = genetic_search(problem, algorithm="nsga2", pop_size=32 if quick else 64, n_gen=6 if quick else 40,
                            seed=seed, progress=progress)
    ds = decoded_structures(ds, s)
    return verify_designs(ds, verify, s)


def anchor_curve(anchors) -> tuple[np.ndarray, np.ndarray]:
    """The six anchor points as a demagnetization curve: (H / H_A, M / Ms) of
    (H_A, M1), (0, Mr), (Hk90, 0.9 Mr), (Hk80, 0.8 Mr), (Hk70, 0.7 Mr), (Hc, 0)."""
    a = np.asarray(anchors, dtype=float)
    h = np.stack([np.ones_like(a[..., 0]), np.zeros_like(a[..., 0]), a[..., 2], a[..., 3], a[..., 4], a[..., 5]], axis=-1)
    m = np.stack([a[..., 0], a[..., 1], 0.9 * a[..., 1], 0.8 * a[..., 1], 0.7 * a[..., 1], np.zeros_like(a[..., 0])], axis=-1)
    return h, m


def plot_designs(ds: xr.Dataset, path, max_designs: int = 4):
    """Decoded structures (easy-axis x-component) over their predicted anchor curves, with
    the solver's anchors where the design was re-simulated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from invdesign.plot import savefig

    dim = ds["kx"].dims[0]
    n_all = ds.sizes[dim]
    if dim == "solution":
        picks = list(np.argsort(ds["Hc"].values)[:max_designs])
        pred = np.stack([ds[a].values for a in ANCHORS], axis=-1)
    else:
        picks = [0]
        pred = np.stack([[ds[a].values[-1] for a in ANCHORS]])
    verified = {int(i): k for k, i in enumerate(ds["verified_index"].values)} if "verified_index" in ds else {}
    fig, axes = plt.subplots(2, len(picks), figsize=(3.2 * len(picks), 6.2), squeeze=False)
    for col, i in enumerate(picks):
        ax = axes[0, col]
        ax.imshow(ds["kx"].values[i].T, origin="lower", cmap="RdBu", vmin=-1, vmax=1)
        ax.set_title(f"design {i} of {n_all}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax = axes[1, col]
        h, m = anchor_curve(pred[i])
        ax.plot(h, m, "o-", color="tab:orange", label="predicted")
        if i in verified:
            hc, mc = anchor_curve(ds["computed"].values[verified[i]])
            ax.plot(hc, mc, "s--", color="tab:blue", label="solver")
        ax.axhline(0, color="0.8", lw=0.8)
        ax.axvline(0, color="0.8", lw=0.8)
        ax.set_xlabel("H / H_A")
        if col == 0:
            ax.set_ylabel("M / Ms")
        ax.legend(fontsize=7)
    fig.suptitle(f"{ds.attrs.get('problem', 'microstructure')}: grain structures of the decoded designs (kx, field along y)", fontsize=10)
    fig.tight_layout()
    return savefig(fig, path)


def _plot(ds, out_dir):
    out_dir = Path(out_dir)
    return [plot_designs(ds, out_dir / f"{ds.attrs.get('problem', 'microstructure')}-designs.png")]


def _summary(ds) -> str:
    from invdesign.optimize import summary_table

    text = summary_table(ds)
    if "computed" in ds:
        lines = ["", "re-simulated designs (predicted -> computed):"]
        for k in range(ds.sizes["verified"]):
            cells = [f"{a} {ds['predicted'].values[k, j]:+.3f} -> {ds['computed'].values[k, j]:+.3f}" for j, a in enumerate(ANCHORS)]
            lines.append("  " + ", ".join(cells))
        text += "\n".join(lines)
    return text


MICROSTRUCTURE = ProblemEntry(
    name="microstructure",
    description="latent-space microstructures: max coercivity, remanence and knee field of a nanocrystalline magnet (surrogate)",
    methods=("genetic", "gradient"), run=_run, plot=_plot, summary=_summary, verifies=True)
