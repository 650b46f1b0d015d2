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

__all__ = ["savefig", "plot_history", "plot_pareto", "display_scale"]


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
