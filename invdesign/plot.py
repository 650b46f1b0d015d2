"""Matplotlib helpers shared by the command line and the study scripts.

All functions take result datasets (see `invdesign.optimize`) and write PNG files
atomically; they use the non-interactive Agg backend.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ._io import atomic_write  # noqa: E402
from ._units import display_scale as display_scale  # noqa: E402

__all__ = ["savefig", "plot_history", "plot_pareto", "pareto_picks", "plot_pareto_front", "display_scale"]


def savefig(fig, path) -> Path:
    """Save a figure as PNG atomically (temp file in the same folder, then rename) and close it.

    The folder is created when missing. Returns the path as a `pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=130, bbox_inches="tight", format="png"))
    finally:
        plt.close(fig)
    return path


def _label(ds, name):
    attrs = ds[name].attrs
    factor, unit = display_scale(ds[name].values, attrs.get("units", ""))
    text = attrs.get("long_name", name)
    return factor, (f"{text} [{unit}]" if unit else text)


def plot_history(ds, path, names=None) -> Path:
    """Parameters, objectives and constraints against `iteration` (gradient searches)."""
    if names is None:
        names = (json.loads(ds.attrs["parameters"]) + json.loads(ds.attrs["objectives"])
                 + json.loads(ds.attrs["constraints"]))
    n = len(names)
    ncol = min(3, n)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 2.8 * nrow), squeeze=False)
    it = ds["iteration"].values
    for ax, name in zip(axes.flat, names):
        factor, label = _label(ds, name)
        ax.plot(it, ds[name].values * factor, lw=1.5)
        ax.set_xlabel("iteration")
        ax.set_ylabel(label, fontsize=8)
        if ds[name].attrs.get("role") == "constraint":
            ax.axhline(0.0, color="k", lw=0.8, ls="--")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(f"{ds.attrs.get('problem', '')}: {ds.attrs.get('algorithm', '')} history")
    fig.tight_layout()
    return savefig(fig, path)


def plot_pareto(ds, path, x, y, color=None) -> Path:
    """Scatter of the final solutions (dim `solution`) of a genetic search, `y` against `x`,
    optionally coloured by a third quantity; the last population is drawn in grey."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    fx, lx = _label(ds, x)
    fy, ly = _label(ds, y)
    hx, hy = f"history_{x}", f"history_{y}"
    if hx in ds and hy in ds:
        last_x = ds[hx].isel(generation=-1).values * fx
        last_y = ds[hy].isel(generation=-1).values * fy
        ax.scatter(last_x, last_y, s=8, c="0.8", label="last population")
    if color is not None:
        fc, lc = _label(ds, color)
        sc = ax.scatter(ds[x].values * fx, ds[y].values * fy, c=ds[color].values * fc, s=22,
                        cmap="viridis", label="Pareto set")
        fig.colorbar(sc, ax=ax, label=lc)
    else:
        ax.scatter(ds[x].values * fx, ds[y].values * fy, s=22, label="Pareto set")
    ax.set_xlabel(lx)
    ax.set_ylabel(ly)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(f"{ds.attrs.get('problem', '')}: {ds.attrs.get('algorithm', '')}")
    fig.tight_layout()
    return savefig(fig, path)


def _final(ds):
    from .optimize import final

    return final(ds)


def _feasible(ds, sol):
    """Mask over dim `solution`: every declared constraint present in `sol` is `<= 0`."""
    n = sol.sizes.get("solution", 0)
    cons = [c for c in json.loads(ds.attrs.get("constraints", "[]")) if c in sol]
    if not cons:
        return np.ones(n, dtype=bool)
    return np.all(np.stack([np.asarray(sol[c].values, dtype=float) <= 0 for c in cons], axis=1), axis=1)


def pareto_picks(ds, labels=None) -> dict:
    """Chosen designs of a Pareto set: the best of each objective and the knee.

    Only feasible solutions count when there are any (every constraint ``<= 0``); solutions
    with a non-finite objective never count. The knee is the design nearest the ideal point
    once every objective is scaled to ``[0, 1]`` over the counted set (0 the best value,
    senses from ``ds.attrs["senses"]``).

    **Arguments:**

    - `ds`: a genetic search result (its final set on dim `solution`; a gradient result
      counts as a one-element set).
    - `labels`: ``{objective: pick name}``; objectives not named get ``"best NAME"``.

    **Returns:** ``{pick name: index on dim solution}``, one entry per objective in the
    order of ``ds.attrs["objectives"]`` then ``"knee"``; empty when no solution counts.
    """
    labels = dict(labels or {})
    sol = _final(ds)
    objectives = json.loads(ds.attrs["objectives"])
    senses = json.loads(ds.attrs["senses"])
    if sol.sizes.get("solution", 0) == 0 or not objectives:
        return {}
    # lower is better in every column
    vals = np.stack([np.asarray(sol[o].values, dtype=float) * (1.0 if senses[o] == "min" else -1.0)
                     for o in objectives], axis=1)
    feasible = _feasible(ds, sol)
    if feasible.any():
        vals[~feasible] = np.nan
    ok = np.all(np.isfinite(vals), axis=1)
    if not ok.any():
        return {}
    vals[~ok] = np.nan
    picks = {labels.get(o, f"best {o}"): int(np.nanargmin(vals[:, j])) for j, o in enumerate(objectives)}
    lo, hi = np.nanmin(vals, axis=0), np.nanmax(vals, axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    dist = np.sqrt(np.sum(((vals - lo) / span) ** 2, axis=1))
    picks["knee"] = int(np.nanargmin(dist))
    return picks


def _value_text(ds, name, value):
    units = ds[name].attrs.get("units", "") if name in ds else ""
    if units == "rad":
        return f"{np.degrees(value):.3g} deg"
    factor, unit = display_scale([value], units)
    return f"{value * factor:.3g} {unit}".strip()


def plot_pareto_front(ds, path, x, ys, picks=None, color=None, columns=None) -> Path:
    """The final set of a genetic search with its chosen designs marked.

    One panel per name in `ys`, against `x`; the final set coloured by `color` (feasible
    solutions filled, infeasible ones as grey crosses), the last population in grey (the
    `history_` variables), the picks circled in red and lettered A, B, ... with a table of
    their parameters and `columns` below.

    **Arguments:**

    - `ds`: a genetic search result.
    - `path`: the PNG to write.
    - `x`, `ys`: variable names for the horizontal axis and for each panel's vertical axis.
    - `picks`: ``{name: index on dim solution}``; default `pareto_picks(ds)`.
    - `color`: a variable name for every panel, one name (or None) per panel, or None.
    - `columns`: values listed in the table after the parameters; default the objectives
      and constraints.

    **Returns:** the path.
    """
    ys = [ys] if isinstance(ys, str) else list(ys)
    colors = [color] * len(ys) if color is None or isinstance(color, str) else list(color)
    if len(colors) != len(ys):
        raise ValueError(f"color must be one name or one per panel ({len(ys)}), got {len(colors)}")
    sol = _final(ds)
    picks = pareto_picks(ds) if picks is None else dict(picks)
    by_index = {}
    for label, i in picks.items():
        by_index.setdefault(int(i), []).append(label)
    letters = {i: chr(ord("A") + k) for k, i in enumerate(by_index)}
    feasible = _feasible(ds, sol)
    fig, axes = plt.subplots(1, len(ys), figsize=(5.5 * len(ys), 4.6), squeeze=False)
    for ax, yn, cn in zip(axes.flat, ys, colors):
        fx, lx = _label(ds, x)
        fy, ly = _label(ds, yn)
        hx, hy = f"history_{x}", f"history_{yn}"
        if hx in ds and hy in ds:
            ax.scatter(ds[hx].isel(generation=-1).values * fx, ds[hy].isel(generation=-1).values * fy,
                       s=8, c="0.8", label="last population")
        sx, sy = np.asarray(sol[x].values, float) * fx, np.asarray(sol[yn].values, float) * fy
        if cn is not None:
            fc, lc = _label(ds, cn)
            sc = ax.scatter(sx[feasible], sy[feasible], c=np.asarray(sol[cn].values, float)[feasible] * fc, s=24,
                            cmap="viridis", label="Pareto set")
            fig.colorbar(sc, ax=ax, label=lc)
        else:
            ax.scatter(sx[feasible], sy[feasible], s=24, label="Pareto set")
        if not feasible.all():
            ax.scatter(sx[~feasible], sy[~feasible], s=24, marker="x", c="0.45", label="infeasible")
        for i, letter in letters.items():
            ax.scatter([sx[i]], [sy[i]], s=160, facecolors="none", edgecolors="r", linewidths=1.5)
            ax.annotate(letter, (sx[i], sy[i]), xytext=(6, 6), textcoords="offset points", color="r",
                        fontweight="bold")
        ax.set_xlabel(lx)
        ax.set_ylabel(ly)
        ax.legend(loc="best", fontsize=7)
    if columns is None:
        columns = json.loads(ds.attrs["objectives"]) + json.loads(ds.attrs.get("constraints", "[]"))
    names = json.loads(ds.attrs["parameters"]) + [c for c in columns if c in sol]
    head = ["", "pick"] + names
    rows = [[letters[i], ", ".join(labels)] + [_value_text(ds, n, float(sol[n][i])) for n in names]
            for i, labels in by_index.items()]
    widths = [max(len(r[k]) for r in [head] + rows) for k in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head] + rows]
    n_feasible = int(feasible.sum())
    fig.suptitle(f"{ds.attrs.get('problem', '')}: Pareto front ({sol.sizes['solution']} designs"
                 + ("" if feasible.all() else f", {n_feasible} feasible") + "), chosen designs in red", fontsize=10)
    fig.tight_layout()
    fig.text(0.01, -0.01, "\n".join(lines) if rows else "no feasible design to pick", fontsize=7, va="top",
             family="monospace")
    return savefig(fig, path)
