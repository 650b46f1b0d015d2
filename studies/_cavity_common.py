"""Shared pieces of the cavity studies (paper: n-loop-cavity-levitation.md).

Paper set-up (Table 1): stub radius 2 mm, stub height 5 mm, cavity height 55 mm, radii
4-7 mm; N52 magnets (Br = 1.47 T); sphere r = 0.5 mm, 3.67 mg; disk r = 0.5 mm, t = 0.5 mm,
2.75 mg. Energies are plotted in nJ with the paper's 20 nJ contour spacing.
"""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from invdesign import atomic_write  # noqa: E402  (importing invdesign enables x64)
from invdesign.cavity import (  # noqa: E402
    PAPER_DISK,
    PAPER_SPHERE,
    CoaxialCavity,
    DiskMagnet,
    SphereMagnet,
    meissner_model,
    moment_direction,
    nloop_model,
)
from invdesign.optimize import save  # noqa: E402
from invdesign.plot import savefig  # noqa: E402

FIGURES = Path(__file__).resolve().parent / "figures"
NJ = 1e-9
CONTOUR_NJ = 20.0
AZIMUTHAL = np.asarray(moment_direction(np.pi / 2, 0.0))  # +x: azimuthal in the y-z plane
VERTICAL = np.array([0.0, 0.0, 1.0])
RADIAL = np.array([0.0, 1.0, 0.0])

MODEL_LABELS = {
    "image": "1: image (infinite plane)",
    "two_loop": "2: two loops",
    "nloop": "3: N-loop (paper, 0.3 mm elements)",
    "meissner": "4: Meissner BEM (ideal)",
}


def sphere(br=1.47):
    return SphereMagnet(**PAPER_SPHERE, remanence=br)


def disk(br=1.47):
    return DiskMagnet(**PAPER_DISK, remanence=br)


@functools.lru_cache(maxsize=None)
def cavity(radius=7e-3):
    return CoaxialCavity(radius=float(radius))


@functools.lru_cache(maxsize=4)
def model3(radius=7e-3):
    return nloop_model(cavity(radius))


@functools.lru_cache(maxsize=4)
def model4(radius=7e-3):
    return meissner_model(cavity(radius))


def write_text(path, text: str) -> Path:
    """Write a text file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, text)


def save_dataset(ds, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save(ds, path)
    return path


def contour_panel(ax, ds, title, cavity_=None, marks=(), levels_nj=CONTOUR_NJ):
    """Energy landscape (nJ, relative to its minimum) with contours every `levels_nj`."""
    e = ds["energy"].values / NJ
    e = e - np.nanmin(e)
    y = ds.y.values * 1e3
    z = ds.z.values * 1e3
    top = min(np.nanmax(e), 40 * levels_nj)
    levels = np.arange(0.0, top + levels_nj, levels_nj)
    cs = ax.contourf(y, z, np.where(np.isnan(e), np.nan, np.minimum(e, top)), levels=40, cmap="viridis")
    ax.contour(y, z, e, levels=levels, colors="k", linewidths=0.4)
    if cavity_ is not None:
        rs, hs, R = float(cavity_.stub_radius) * 1e3, float(cavity_.stub_height) * 1e3, float(cavity_.radius) * 1e3
        ax.fill_between([-rs, rs], 0, hs, color="0.6")
        ax.axvline(-R, color="0.3", lw=2)
        ax.axvline(R, color="0.3", lw=2)
    for y0, z0, style in marks:
        ax.plot(y0 * 1e3, z0 * 1e3, style, ms=8)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("y (mm)")
    ax.set_ylabel("z (mm)")
    ax.set_aspect("equal")
    return cs


__all__ = [
    "FIGURES", "NJ", "CONTOUR_NJ", "AZIMUTHAL", "VERTICAL", "RADIAL", "MODEL_LABELS", "sphere", "disk",
    "cavity", "model3", "model4", "write_text", "save_dataset", "contour_panel", "plt", "savefig",
]
