"""From an easy-axis map to a simulated demagnetization curve (the solver re-check).

The surrogate's input, and the decoder's output, is the x-component `kx` of the easy axis
per cell; the field is along +y. An easy-axis map becomes a simulable structure like this:

- `kx` is clipped to [-1, 1] (a decoder's tanh output never leaves it; the clip only guards
  rounding), and every cell gets the unit easy axis `(kx, +sqrt(1 - kx^2), 0)`. That is the
  axis angle `psi = asin(kx)` in [-pi/2, pi/2] from the field axis.
- Why the y-component is taken positive: the anisotropy is uniaxial, so `k` and `-k` are the
  same axis. A grain at `psi` with `|psi| > pi/2` (the data draw `psi` in [-theta, theta] with
  `theta` up to pi) is the axis at `psi - pi*sign(psi)`, whose x-component is `-kx`. The
  stored `kx = sin(psi)` therefore cannot tell an axis at `psi` from its mirror image at
  `-psi` about the field axis (both have `|ky|` equal, and the sign of `ky` is not stored). The
  rule picks one of the two for every cell. For one grain, the mirror image has the same
  curve (the field lies on the mirror line). For coupled grains, the relative angles at
  the grain boundaries can differ, and with them the curve. `kx_roundtrip_study`
  (`studies/hysteresis_surrogate.py`) measures how much this choice alone moves the anchors
  of real structures.
- The material, cells and fields are those of the training data (`grain_system`: Nd2Fe14B,
  2 x 2 x 36000 nm^3 cells, fully exchange-coupled, so grain boundaries need no labels). The
  curve is computed with the batched solver and its anchors are returned in the paper's
  units.
"""

from __future__ import annotations

import numpy as np

__all__ = ["easy_axes_from_kx", "kx_systems", "simulate_anchors"]


def _check_kx(kx, name="kx") -> np.ndarray:
    arr = np.asarray(kx, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] < 2 or arr.shape[2] < 2:
        raise ValueError(f"{name} must have shape (n, nx, ny) or (nx, ny), got {np.shape(kx)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (got NaN or inf)")
    if np.any(np.abs(arr) > 1 + 1e-6):
        raise ValueError(f"{name} must lie in [-1, 1] (the x-component of a unit easy axis), got values up to {np.max(np.abs(arr)):.4g}")
    return np.clip(arr, -1.0, 1.0)


def easy_axes_from_kx(kx) -> np.ndarray:
    """Unit easy axes `(kx, +sqrt(1 - kx^2), 0)` per cell, shape `(n, nx, ny, 3)` (see module docs).

    ```python
    >>> easy_axes_from_kx(np.array([[0.0, 1.0], [-0.6, 0.6]]))[0, 1, 0].tolist()
    [-0.6, 0.8, 0.0]

    ```
    """
    k = _check_kx(kx)
    return np.stack([k, np.sqrt(1.0 - k**2), np.zeros_like(k)], axis=-1)


def kx_systems(kx, *, cell=(2e-9, 2e-9, 36000e-9)) -> list:
    """`System`s for easy-axis maps `kx` (n, nx, ny), with the training data's material."""
    from invdesign.micromag import GrainStructure, grain_system

    axes = easy_axes_from_kx(kx)
    out = []
    for a in axes:
        nx, ny = a.shape[:2]
        # one label for every cell: fully coupled exchange needs no grain boundaries
        g = GrainStructure(
            grain_id=np.zeros((nx, ny), np.int64), angles=np.zeros(1), easy_axis=a, seeds=np.zeros((1, 2)),
            n_grains=1, max_misorientation=float(np.pi),
        )
        out.append(grain_system(g, cell))
    return out


def simulate_anchors(kx, *, step: float = 0.01, tol: float = 1e-5, stop_below: float = -0.5, lanes: int | None = 1) -> np.ndarray:
    """Anchor points (n, 6) of easy-axis maps `kx` by the micromagnetic solver.

    M1, Mr in units of Ms; Hk90, Hk80, Hk70, Hc in units of H_A (signed, as the data). Same
    settings as the training data (`invdesign_surrogates.data.hysteresis.DEFAULTS`).
    """
    from invdesign.micromag import demagnetization_curves

    curves = demagnetization_curves(kx_systems(kx), step=step, tol=tol, stop_below=stop_below, lanes=lanes)
    a = curves["anchors"].values.copy()
    a[:, 2:] /= curves.attrs["H_A"]
    return a
