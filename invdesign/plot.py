"""Matplotlib helpers shared by the command line and the study scripts.

All functions take result datasets (see `invdesign.optimize.results`) and write PNG files
atomically; they use the non-interactive Agg backend.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["savefig", "plot_history", "plot_pareto", "display_scale"]

_PREFIXES = [(1e-18, "a"), (1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "u"), (1e-3, "m"), (1.0, ""), (1e3, "k"), (1e6, "M")]


def display_scale(values, units: str):
    """A (factor, label) pair that shows SI `values` with a readable prefix (m -> um, A -> mA)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if units in ("", None) or v.size == 0 or " " in units or "/" in units or "^" in units:
        return 1.0, units or ""
    mag = float(np.max(np.abs(v))) if v.size else 1.0
    factor, prefix = 1.0, ""
    for f, p in _PREFIXES:
        if mag >= f:
            factor, prefix = f, p
    return 1.0 / factor, prefix + units


def savefig(fig, path) -> Path:
    """Save a figure as PNG atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=130, bbox_inches="tight", format="png")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
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
