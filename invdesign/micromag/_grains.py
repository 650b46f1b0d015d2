"""2D Voronoi grain structures on the finite-difference grid.

The hysteresis paper (Kovacs et al., section 2.2) uses two-dimensional nanocrystalline
structures from a Voronoi tessellation: ``n_g`` grains, each with an in-plane easy axis
whose misorientation angle (measured from the alignment direction, the external field
axis ``+y``) is drawn uniformly from ``[-theta, theta]``; ``n_g`` and ``theta`` themselves are
drawn uniformly from ``[16, 256]`` and ``[-pi, pi]`` for each structure.

Here seed points are drawn uniformly in the rectangle ``[0, nx dx] x [0, ny dy]`` and every
cell centre ``((i + 1/2) dx, (j + 1/2) dy)`` belongs to the grain of its nearest seed
(Euclidean distance, no periodic images; ties, a zero-probability event, go to either
seed). The easy axis of a grain with angle ``psi`` is ``k = (sin psi, cos psi, 0)``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.spatial import cKDTree

from .._validate import check_cell, check_shape

__all__ = [
    "GrainStructure",
    "GrainParameters",
    "GrainBoundaryFaces",
    "voronoi_grains",
    "sample_grain_parameters",
    "grain_boundary_faces",
]


@dataclass(frozen=True, eq=False)
class GrainStructure:
    """A 2D Voronoi grain structure on an ``(nx, ny)`` grid (result of `voronoi_grains`).

    - `grain_id`: ``(nx, ny)`` int array, the grain of each cell. Ids are contiguous: the
      grains that own at least one cell are ``0 .. n_occupied - 1`` (in the order in which
      their seeds were drawn); grains whose Voronoi region contains no cell centre (possible
      when grains are about as small as a cell) get the ids ``n_occupied .. n_grains - 1``.
    - `angles`: ``(n_grains,)`` easy-axis angles (radians) from the alignment direction
      ``+y``, indexed by grain id (so ``angles[grain_id]`` is the angle of every cell).
    - `easy_axis`: ``(nx, ny, 3)`` float64 unit vectors ``(sin psi, cos psi, 0)`` per cell.
    - `seeds`: ``(n_grains, 2)`` seed points in metres, indexed by grain id.
    - `n_grains`: number of grains requested (= seeds drawn, including empty grains).
    - `max_misorientation`: ``theta``; the angles are uniform in ``[-|theta|, |theta|]``.

    All arrays are read-only.
    """

    grain_id: np.ndarray
    angles: np.ndarray
    easy_axis: np.ndarray
    seeds: np.ndarray
    n_grains: int
    max_misorientation: float

    @property
    def n_occupied(self) -> int:
        """Number of grains owning at least one cell (``grain_id.max() + 1``)."""
        return int(self.grain_id.max()) + 1

    @property
    def shape(self) -> tuple:
        """Grid shape ``(nx, ny)``."""
        return tuple(self.grain_id.shape)


class GrainParameters(NamedTuple):
    """Sampled structure parameters (result of `sample_grain_parameters`).

    - `n_grains`: ``(n,)`` int64 numbers of grains.
    - `max_misorientation`: ``(n,)`` float64 maximum misorientation angles ``theta`` (rad).
    """

    n_grains: np.ndarray
    max_misorientation: np.ndarray


class GrainBoundaryFaces(NamedTuple):
    """Faces between cells of different grains (result of `grain_boundary_faces`).

    - `x`: ``(nx - 1, ny)`` bool, face between cells ``(i, j)`` and ``(i + 1, j)``.
    - `y`: ``(nx, ny - 1)`` bool, face between cells ``(i, j)`` and ``(i, j + 1)``.
    """

    x: np.ndarray
    y: np.ndarray


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _check_shape(shape) -> tuple:
    return check_shape(shape, 2)


def _check_cell(cell) -> tuple:
    return check_cell(cell, 2, allow_extra=True)


def _check_theta(theta, name="max_misorientation") -> float:
    try:
        arr = np.asarray(theta)
    except Exception:  # noqa: BLE001 - anything that is not array-like
        arr = np.asarray(None)
    if arr.ndim != 0 or arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be a real number in [-pi, pi] (radians), got {theta!r}")
    value = float(arr)
    if not math.isfinite(value) or abs(value) > math.pi:
        raise ValueError(f"{name} must be finite and in [-pi, pi] (radians), got {theta!r}")
    return value


def voronoi_grains(shape, cell, n_grains, max_misorientation, *, seed) -> GrainStructure:
    """Random 2D Voronoi grain structure with misoriented in-plane easy axes.

    Seeds are uniform in ``[0, nx dx] x [0, ny dy]``; each cell centre joins the grain of its
    nearest seed (k-d tree query, vectorised); one angle per grain is uniform in
    ``[-|theta|, |theta|]`` (``theta = 0``: all axes exactly ``+y``). The random draws are, in
    this order, the ``(n_grains, 2)`` seed coordinates and the ``n_grains`` angles. Grain ids
    are relabelled so that the grains owning cells are ``0 .. n_occupied - 1``; see
    `GrainStructure` for empty grains.

    **Arguments:**

    - `shape`: ``(nx, ny)`` grid size in cells (positive ints).
    - `cell`: ``(dx, dy)`` cell size in metres (a third entry, the thickness, is accepted
      and ignored).
    - `n_grains`: number of grains, an int in ``[1, nx ny]``.
    - `max_misorientation`: ``theta`` in ``[-pi, pi]`` (radians); the sign is irrelevant.
    - `seed`: an int, a `np.random.SeedSequence` or a `np.random.Generator` (used, and
      advanced, as is).

    **Returns:** a `GrainStructure`.

    ```python
    >>> g = voronoi_grains((40, 40), (2e-9, 2e-9), 8, 0.5, seed=1)
    >>> g.grain_id.shape, g.easy_axis.shape, g.n_grains
    ((40, 40), (40, 40, 3), 8)
    >>> bool(np.all(np.abs(g.angles) <= 0.5))
    True
    ```
    """
    nx, ny = _check_shape(shape)
    dx, dy = _check_cell(cell)
    if not _is_int(n_grains):
        raise ValueError(f"n_grains must be an int, got {n_grains!r}")
    n_grains = int(n_grains)
    if not 1 <= n_grains <= nx * ny:
        raise ValueError(f"n_grains must be in [1, nx * ny] = [1, {nx * ny}], got {n_grains}")
    theta = _check_theta(max_misorientation)
    rng = np.random.default_rng(seed)

    seeds = rng.uniform(size=(n_grains, 2)) * np.array([nx * dx, ny * dy])
    t = abs(theta)
    angles = rng.uniform(-t, t, size=n_grains)  # t = 0 gives exact zeros

    cx = (np.arange(nx) + 0.5) * dx
    cy = (np.arange(ny) + 0.5) * dy
    centres = np.stack(np.meshgrid(cx, cy, indexing="ij"), axis=-1).reshape(-1, 2)
    _, nearest = cKDTree(seeds).query(centres)
    nearest = nearest.reshape(nx, ny)

    # contiguous ids: occupied grains first (in draw order), then the empty ones
    occupied = np.bincount(nearest.ravel(), minlength=n_grains) > 0
    order = np.concatenate([np.flatnonzero(occupied), np.flatnonzero(~occupied)])
    new_id = np.empty(n_grains, dtype=np.int64)
    new_id[order] = np.arange(n_grains)
    grain_id = new_id[nearest]
    seeds, angles = seeds[order], angles[order]

    psi = angles[grain_id]
    easy_axis = np.stack([np.sin(psi), np.cos(psi), np.zeros_like(psi)], axis=-1)
    for arr in (grain_id, angles, easy_axis, seeds):
        arr.setflags(write=False)
    return GrainStructure(
        grain_id=grain_id,
        angles=angles,
        easy_axis=easy_axis,
        seeds=seeds,
        n_grains=n_grains,
        max_misorientation=theta,
    )


def sample_grain_parameters(n, *, seed, n_grains_range=(16, 256), theta_range=(-math.pi, math.pi)):
    """Draw structure parameters as in the paper: ``n_g`` and ``theta`` uniform.

    ``n_grains`` is uniform over the integers of `n_grains_range` (both ends included),
    ``theta`` uniform in `theta_range` (drawn in that order).

    **Arguments:**

    - `n`: number of structures (int >= 0).
    - `seed`: an int, a `np.random.SeedSequence` or a `np.random.Generator`.
    - `n_grains_range`: ``(lo, hi)`` ints with ``1 <= lo <= hi`` (default the paper's
      ``(16, 256)``).
    - `theta_range`: ``(lo, hi)`` with ``-pi <= lo <= hi <= pi`` (default ``(-pi, pi)``).

    **Returns:** `GrainParameters` ``(n_grains, max_misorientation)``, arrays of length `n`.

    ```python
    >>> ng, theta = sample_grain_parameters(1000, seed=0)
    >>> bool(ng.min() >= 16 and ng.max() <= 256 and np.all(np.abs(theta) <= np.pi))
    True
    ```
    """
    if not _is_int(n) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    try:
        lo, hi = n_grains_range
    except (TypeError, ValueError):
        raise ValueError(f"n_grains_range must be a pair (lo, hi) of ints, got {n_grains_range!r}") from None
    if not (_is_int(lo) and _is_int(hi) and 1 <= lo <= hi):
        raise ValueError(f"n_grains_range must be ints with 1 <= lo <= hi, got {n_grains_range!r}")
    try:
        tlo, thi = theta_range
    except (TypeError, ValueError):
        raise ValueError(f"theta_range must be a pair (lo, hi) in [-pi, pi], got {theta_range!r}") from None
    tlo, thi = _check_theta(tlo, "theta_range"), _check_theta(thi, "theta_range")
    if tlo > thi:
        raise ValueError(f"theta_range must have lo <= hi, got {theta_range!r}")
    rng = np.random.default_rng(seed)
    ng = rng.integers(int(lo), int(hi), size=int(n), endpoint=True, dtype=np.int64)
    theta = rng.uniform(tlo, thi, size=int(n))
    return GrainParameters(ng, theta)


def grain_boundary_faces(grain_id) -> GrainBoundaryFaces:
    """Mark the cell faces that separate two different grains.

    **Arguments:**

    - `grain_id`: ``(nx, ny)`` integer array (e.g. `GrainStructure.grain_id`).

    **Returns:** `GrainBoundaryFaces` ``(x, y)``: bool arrays of shape ``(nx - 1, ny)``
    (``grain_id[i + 1, j] != grain_id[i, j]``) and ``(nx, ny - 1)``
    (``grain_id[i, j + 1] != grain_id[i, j]``).

    ```python
    >>> bx, by = grain_boundary_faces(np.array([[0, 0, 1], [2, 0, 1]]))
    >>> bx.astype(int).tolist(), by.astype(int).tolist()
    ([[1, 0, 0]], [[0, 1], [1, 1]])
    ```
    """
    ids = np.asarray(grain_id)
    if ids.ndim != 2:
        raise ValueError(f"grain_id must be a 2-D (nx, ny) array, got shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"grain_id must have an integer dtype, got {ids.dtype}")
    return GrainBoundaryFaces(ids[1:, :] != ids[:-1, :], ids[:, 1:] != ids[:, :-1])
