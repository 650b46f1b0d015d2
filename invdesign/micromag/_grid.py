"""Regular finite-difference grids and per-cell material parameters."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._validate import as_float, check_cell, check_positive, check_shape
from ..constants import MU0


def _check_shape(shape) -> tuple[int, int, int]:
    return check_shape(shape, 3)


def _check_cell(cell) -> tuple[float, float, float]:
    return check_cell(cell, 3)


class Grid(eqx.Module):
    """A regular grid of `shape = (nx, ny, nz)` box cells of size `cell = (dx, dy, dz)` (m).

    Cell `(i, j, k)` has its centre at `((i + 1/2) dx, (j + 1/2) dy, (k + 1/2) dz)`.
    Both fields are static (hashable tuples), so a change of grid recompiles.

    **Arguments:**

    - `shape`: number of cells along x, y, z (positive integers).
    - `cell`: cell edge lengths in metres (finite, > 0).

    ```python
    >>> g = Grid((128, 32, 1), (500e-9 / 128, 125e-9 / 32, 3e-9))
    >>> g.n_cells, f"{g.cell_volume:.4e}", [f"{s * 1e9:.1f}" for s in g.size]
    (4096, '4.5776e-26', ['500.0', '125.0', '3.0'])

    ```
    """

    shape: tuple[int, int, int] = eqx.field(static=True, converter=_check_shape)
    cell: tuple[float, float, float] = eqx.field(static=True, converter=_check_cell)

    @property
    def n_cells(self) -> int:
        return int(np.prod(self.shape))

    @property
    def cell_volume(self) -> float:
        return float(np.prod(self.cell))

    @property
    def size(self) -> tuple[float, float, float]:
        """Edge lengths of the whole box (m)."""
        return tuple(n * d for n, d in zip(self.shape, self.cell))

    def centres(self) -> np.ndarray:
        """Cell-centre coordinates, shape `(nx, ny, nz, 3)` (m)."""
        axes = [(np.arange(n) + 0.5) * d for n, d in zip(self.shape, self.cell)]
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def _per_cell(name, value, shape, *, vector=False):
    target = shape + ((3,) if vector else ())
    arr = as_float(name, value)
    try:
        return jnp.broadcast_to(arr, target)
    except ValueError:
        raise ValueError(
            f"{name} must be a scalar or broadcast to the grid shape {target}, got shape {arr.shape}"
        ) from None


class Material(eqx.Module):
    """Per-cell material parameters on a grid (SI units).

    Cells with `Ms == 0` are empty (vacuum): they carry no magnetization, no exchange and
    no torque.

    **Arguments:**

    - `Ms`: saturation magnetization (A/m), shape `(nx, ny, nz)`; 0 marks empty cells.
    - `A`: exchange stiffness (J/m).
    - `K1`: uniaxial anisotropy constant (J/m^3); positive = easy axis.
    - `easy_axis`: unit easy-axis vectors, shape `(nx, ny, nz, 3)` (normalised here).
    - `alpha`: Gilbert damping (dimensionless).
    - `coupling`: optional per-face multipliers of the exchange coupling, a tuple of three
      arrays of shapes `(nx-1, ny, nz)`, `(nx, ny-1, nz)`, `(nx, ny, nz-1)` (e.g. reduced
      exchange across grain boundaries). `None` means 1 everywhere.

    Use `Material.uniform(grid, ...)` for the common case; scalars broadcast.
    """

    Ms: jnp.ndarray
    A: jnp.ndarray
    K1: jnp.ndarray
    easy_axis: jnp.ndarray
    alpha: jnp.ndarray
    coupling: tuple | None = None

    @classmethod
    def uniform(
        cls,
        grid: Grid,
        *,
        Ms,
        A,
        K1=0.0,
        easy_axis=(0.0, 0.0, 1.0),
        alpha=1.0,
        mask=None,
        coupling=None,
    ) -> "Material":
        """Material on `grid` with (broadcast) parameters; `mask` (bool) marks magnetic cells.

        ```python
        >>> g = Grid((4, 2, 1), (2e-9, 2e-9, 2e-9))
        >>> mat = Material.uniform(g, Ms=8e5, A=1.3e-11, alpha=0.02)
        >>> mat.Ms.shape, float(mat.alpha[0, 0, 0])
        ((4, 2, 1), 0.02)

        ```
        """
        shape = grid.shape
        Ms_arr = _per_cell("Ms", Ms, shape)
        if mask is not None:
            mask_arr = np.asarray(mask, dtype=bool)
            if mask_arr.shape != shape:
                raise ValueError(f"mask must have the grid shape {shape}, got {mask_arr.shape}")
            Ms_arr = jnp.where(mask_arr, Ms_arr, 0.0)
        mat = cls(
            Ms=Ms_arr,
            A=_per_cell("A", A, shape),
            K1=_per_cell("K1", K1, shape),
            easy_axis=_per_cell("easy_axis", easy_axis, shape, vector=True),
            alpha=_per_cell("alpha", alpha, shape),
            coupling=coupling,
        )
        return mat.validated(grid)

    def validated(self, grid: Grid) -> "Material":
        """Check shapes and ranges against `grid`; returns self with normalised easy axes."""
        shape = grid.shape
        for name in ("Ms", "A", "K1", "alpha"):
            arr = getattr(self, name)
            if tuple(arr.shape) != shape:
                raise ValueError(f"{name} must have the grid shape {shape}, got {tuple(arr.shape)}")
            a = np.asarray(arr)
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{name} must be finite, got NaN or inf entries")
        if tuple(self.easy_axis.shape) != shape + (3,):
            raise ValueError(f"easy_axis must have shape {shape + (3,)}, got {tuple(self.easy_axis.shape)}")
        Ms = np.asarray(self.Ms)
        if np.any(Ms < 0):
            raise ValueError(f"Ms must be >= 0 (A/m; 0 marks empty cells), got min {Ms.min():.4g}")
        if not np.any(Ms > 0):
            raise ValueError("Ms must be > 0 in at least one cell (all cells are empty)")
        if np.any(np.asarray(self.A)[Ms > 0] < 0):
            raise ValueError("A must be >= 0 (J/m) in magnetic cells")
        if np.any(np.asarray(self.alpha)[Ms > 0] < 0):
            raise ValueError("alpha must be >= 0 in magnetic cells")
        axis = np.asarray(self.easy_axis)
        norm = np.linalg.norm(axis, axis=-1)
        if not np.all(np.isfinite(axis)):
            raise ValueError("easy_axis must be finite")
        needs_axis = (Ms > 0) & (np.asarray(self.K1) != 0)
        if np.any(norm[needs_axis] == 0):
            raise ValueError("easy_axis must be a nonzero vector in every cell with K1 != 0")
        safe = np.where(norm > 0, norm, 1.0)[..., None]
        coupling = self.coupling
        if coupling is not None:
            if len(coupling) != 3:
                raise ValueError("coupling must be a tuple of three per-face arrays (x, y, z faces)")
            fixed = []
            for ax, c in enumerate(coupling):
                want = tuple(n - (1 if i == ax else 0) for i, n in enumerate(shape))
                c = jnp.asarray(c, dtype=jnp.float64)
                try:
                    c = jnp.broadcast_to(c, want)
                except ValueError:
                    raise ValueError(
                        f"coupling[{ax}] must broadcast to the face shape {want}, got {c.shape}"
                    ) from None
                if not np.all(np.isfinite(np.asarray(c))) or np.any(np.asarray(c) < 0):
                    raise ValueError(f"coupling[{ax}] must be finite and >= 0")
                fixed.append(c)
            coupling = tuple(fixed)
        return Material(
            Ms=self.Ms,
            A=self.A,
            K1=self.K1,
            easy_axis=jnp.asarray(axis / safe),
            alpha=self.alpha,
            coupling=coupling,
        )

    @property
    def mask(self) -> jnp.ndarray:
        """Boolean array of magnetic cells."""
        return self.Ms > 0


def exchange_length(Ms, A) -> float:
    """Exchange length sqrt(2 A / (mu0 Ms^2)) in metres.

    ```python
    >>> print(f"{exchange_length(8e5, 1.3e-11) * 1e9:.3f} nm")
    5.686 nm

    ```
    """
    for name, val in (("Ms", Ms), ("A", A)):
        arr = as_float(name, val)
        if arr.ndim != 0:
            raise ValueError(f"{name} must be a scalar, got shape {arr.shape}")
        check_positive(name, arr)
    return float(np.sqrt(2.0 * A / (MU0 * Ms**2)))
