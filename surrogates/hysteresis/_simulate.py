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

__all__ = ["AngleCalibration", "easy_axes_from_kx", "grains_from_map", "kx_systems", "simulate_anchors"]


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


def _merge_small(labels, min_area):
    """Relabel components smaller than `min_area` into the neighbour they share most cell edges with.

    Rounds until none is left: in each round every small component, smallest first, joins
    its neighbour of most shared edges (ties: the larger neighbour), unless that neighbour
    or the component itself already merged in this round.
    """
    shape = labels.shape
    _, labels = np.unique(labels, return_inverse=True)
    labels = labels.reshape(shape)
    for _ in range(256):
        n = int(labels.max()) + 1
        area = np.bincount(labels.ravel(), minlength=n)
        small = area < min_area
        if n == 1 or not small.any():
            break
        a = np.concatenate([labels[1:, :].ravel(), labels[:-1, :].ravel(), labels[:, 1:].ravel(), labels[:, :-1].ravel()])
        b = np.concatenate([labels[:-1, :].ravel(), labels[1:, :].ravel(), labels[:, :-1].ravel(), labels[:, 1:].ravel()])
        keep = (a != b) & small[a]
        pairs, counts = np.unique(a[keep] * n + b[keep], return_counts=True)
        src, dst = pairs // n, pairs % n
        # best neighbour per source: most shared edges, then the larger neighbour, then the lower label
        order = np.lexsort((dst, -area[dst], -counts, src))
        src, dst = src[order], dst[order]
        first = np.ones(src.size, bool)
        first[1:] = src[1:] != src[:-1]
        src, dst = src[first], dst[first]
        target = np.arange(n)
        taken = np.zeros(n, bool)
        smallest_first = np.argsort(area[src], kind="stable")
        for r, t in zip(src[smallest_first], dst[smallest_first]):
            if not (taken[r] or taken[t]):
                target[r] = t
                taken[r] = taken[t] = True
        labels = target[labels]
        _, labels = np.unique(labels, return_inverse=True)
        labels = labels.reshape(shape)
    return labels


class AngleCalibration:
    """A monotone map of decoded axis angles onto the data's angle distribution.

    The decoder is blurry: it pulls the axis angle `psi = asin(kx)` towards the field
    axis (on the shipped VAE the mean `|psi|` of real training structures is 0.66 rad,
    that of their reconstructions 0.41), so a decoded structure is better aligned than the
    structure it stands for, and its remanence and switching fields come out too high.
    The calibration is quantile matching of `|psi|`: fitted on real structures and their
    reconstructions, it sends the q-quantile of the reconstructions' `|psi|` to the
    q-quantile of the real `|psi|` (piecewise linear between `n_quantiles` levels, the sign
    kept). It is applied to a decoded map before its grain projection
    (`LatentSurrogate.structure`).

    **Arguments:** `real_kx`, `decoded_kx`: maps `(..., nx, ny)` in [-1, 1] (the same
    structures, or two samples of the same distribution); `n_quantiles` (>= 2).

    ```python
    >>> rng = np.random.default_rng(0)
    >>> real = rng.uniform(-1, 1, (4, 8, 8))
    >>> cal = AngleCalibration(real, 0.5 * real)  # a decoder that halves every kx
    >>> bool(np.allclose(cal(0.5 * real), real, atol=0.02))
    True

    ```
    """

    def __init__(self, real_kx, decoded_kx, n_quantiles: int = 201):
        if isinstance(n_quantiles, bool) or int(n_quantiles) != n_quantiles or n_quantiles < 2:
            raise ValueError(f"n_quantiles must be an int >= 2, got {n_quantiles!r}")
        q = np.linspace(0.0, 1.0, int(n_quantiles))
        self.real_quantiles = np.quantile(np.abs(np.arcsin(_check_kx(real_kx, "real_kx"))), q)
        self.decoded_quantiles = np.quantile(np.abs(np.arcsin(_check_kx(decoded_kx, "decoded_kx"))), q)
        # equal quantiles (a flat stretch of the distribution) would make interp ambiguous
        self.decoded_quantiles = self.decoded_quantiles + np.arange(len(q)) * 1e-12

    def __call__(self, kx):
        """The calibrated map: `sin(sign(psi) f(|psi|))`, same shape as `kx`."""
        psi = np.arcsin(np.clip(np.asarray(kx, dtype=np.float64), -1.0, 1.0))
        return np.sin(np.sign(psi) * np.interp(np.abs(psi), self.decoded_quantiles, self.real_quantiles))


def grains_from_map(kx, *, step_deg: float = 10.0, min_area: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A piecewise-constant grain structure from a continuous easy-axis map (a decoded design).

    The decoder returns a smooth map of `kx`; the training structures are grains of constant
    easy axis. This projection makes a decoded map a grain structure like the data's:

    1. the axis angle `psi = asin(kx)` is rounded to multiples of `step_deg` degrees;
    2. the 4-connected regions of equal rounded angle are the grains;
    3. grains of fewer than `min_area` cells join the neighbour they share the most cell
       edges with (repeatedly, smallest first);
    4. every grain gets the mean of the decoded `psi` over its cells: `kx = sin(mean psi)`.

    A map that is already piecewise constant on grains of at least `min_area` cells, with
    neighbouring grains at least `step_deg` apart, comes back unchanged up to that rounding.
    The result is what the solver simulates (`simulate_anchors`) and what the anchor model
    reads for a design, so prediction and verification concern the same structure.

    **Arguments:**

    - `kx`: `(nx, ny)` or `(n, nx, ny)` in [-1, 1].
    - `step_deg`: angle quantum in degrees (> 0, <= 90).
    - `min_area`: smallest grain in cells (>= 1).

    **Returns:** `(kx_grains, grain_id)`: float64 `(n, nx, ny)` and int64 `(n, nx, ny)`.

    ```python
    >>> k = np.zeros((8, 8)); k[:, 4:] = 0.5
    >>> g, ids = grains_from_map(k + 0.01)
    >>> sorted(set(np.round(g[0].ravel(), 6).tolist())) == [round(np.sin(np.arcsin(0.01)), 6), 0.51], int(ids.max())
    (True, 1)

    ```
    """
    k = _check_kx(kx)
    if not (np.isfinite(step_deg) and 0 < step_deg <= 90):
        raise ValueError(f"step_deg must be in (0, 90], got {step_deg!r}")
    if isinstance(min_area, bool) or int(min_area) != min_area or min_area < 1:
        raise ValueError(f"min_area must be an int >= 1, got {min_area!r}")
    from ._baseline import _equal_regions

    psi = np.arcsin(k)
    q = np.round(psi / np.radians(step_deg))
    regions = _equal_regions(q, 0.5)
    out_k = np.empty_like(k)
    out_id = np.empty(k.shape, np.int64)
    for i in range(k.shape[0]):
        labels = _merge_small(regions[i], int(min_area))
        n = labels.max() + 1
        mean = np.bincount(labels.ravel(), weights=psi[i].ravel(), minlength=n) / np.bincount(labels.ravel(), minlength=n)
        out_k[i] = np.sin(mean)[labels]
        out_id[i] = labels
    return out_k, out_id


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
