"""Demagnetization curves of 2D nanocrystalline grain structures.

The hysteresis paper (Kovacs et al., section 2.2): 2D Voronoi structures, easy axes and
magnetization in the xy plane, cells of 2 x 2 x 36000 nm^3 to mimic translational symmetry
along z, Nd2Fe14B intrinsic properties, the field along the alignment axis y stepped down
from H_A to -H_A in steps of 0.01 H_A with an energy minimisation at each step.
"""

from __future__ import annotations

import time

import jax.numpy as jnp
import numpy as np
import xarray as xr

from ..constants import MU0
from ._anchors import anchor_points
from ._grains import GrainStructure, grain_boundary_faces
from ._grid import Grid, Material
from ._minimize import minimize
from ._terms import System, average_magnetization

#: Nd2Fe14B intrinsic properties used by the paper (SI)
ND2FE14B = {"A": 8e-12, "Ms": 1.61 / MU0, "K1": 4.2e6}


def anisotropy_field_strength(K1: float, Ms: float) -> float:
    """H_A = 2 K1 / (mu0 Ms) in A/m.

    ```python
    >>> print(f"{MU0 * anisotropy_field_strength(4.2e6, 1.61 / MU0):.4f} T")
    6.5564 T

    ```
    """
    return 2.0 * K1 / (MU0 * Ms)


def grain_system(
    grains: GrainStructure,
    cell=(2e-9, 2e-9, 36000e-9),
    *,
    A: float = ND2FE14B["A"],
    Ms: float = ND2FE14B["Ms"],
    K1: float = ND2FE14B["K1"],
    intergrain_exchange: float = 1.0,
    demag: bool = True,
) -> System:
    """A `System` for a 2D grain structure: one layer of (thick) cells, per-grain easy axes.

    **Arguments:**

    - `grains`: a `GrainStructure` from `voronoi_grains` (its grid shape `(nx, ny)`).
    - `cell`: cell size (m); the default is the paper's 2 x 2 x 36000 nm^3.
    - `A`, `Ms`, `K1`: intrinsic properties (default Nd2Fe14B).
    - `intergrain_exchange`: factor on the exchange across grain boundaries (1 = fully
      coupled, 0 = decoupled grains).
    - `demag`: include magnetostatic interactions.
    """
    grain_id = np.asarray(grains.grain_id)
    if grain_id.ndim != 2:
        raise ValueError(f"grains.grain_id must be 2-D (nx, ny), got shape {grain_id.shape}")
    if not (np.isfinite(intergrain_exchange) and intergrain_exchange >= 0):
        raise ValueError(f"intergrain_exchange must be finite and >= 0, got {intergrain_exchange}")
    nx, ny = grain_id.shape
    grid = Grid((nx, ny, 1), cell)
    bx, by = grain_boundary_faces(grain_id)
    coupling = (
        np.where(bx, intergrain_exchange, 1.0)[..., None],
        np.where(by, intergrain_exchange, 1.0)[..., None],
        np.ones((nx, ny, 0)),
    )
    mat = Material.uniform(
        grid, Ms=Ms, A=A, K1=K1, easy_axis=np.asarray(grains.easy_axis)[:, :, None, :],
        alpha=1.0, coupling=coupling,
    )
    return System(grid, mat, demag=demag)


def demagnetization_curve(
    system: System,
    *,
    field_axis=(0.0, 1.0, 0.0),
    h_max: float | None = None,
    step: float = 0.01,
    stop_below: float | None = None,
    tol: float = 1e-5,
    max_iter: int = 20_000,
    m0=None,
    progress=None,
) -> xr.Dataset:
    """Descending branch M(H) from `h_max` to `-h_max` with a minimisation at every step.

    **Arguments:**

    - `system`: the `System` (e.g. from `grain_system`).
    - `field_axis`: direction of the applied field (normalised).
    - `h_max`: start field (A/m); default the anisotropy field H_A = 2 K1/(mu0 Ms) of the
      first magnetic cell.
    - `step`: field step as a fraction of `h_max` (the paper: 0.01).
    - `stop_below`: stop early once M/Ms (projected on the field) has dropped below this
      value past the coercive field, e.g. -0.5; None runs to -h_max.
    - `tol`: torque tolerance of each minimisation (max |m x H|/Ms).
    - `m0`: start state (default saturated along `field_axis`).
    - `progress`: optional callable `progress(i, n)` after each step.

    **Returns:** `xr.Dataset` with dims `field`: `H` (A/m), `M` (M/Ms projected on the
    field axis), `m_avg` (field, component), `converged`, `iterations`, and attrs with the
    six anchor points (`M1`, `Mr`, `Hk90`, `Hk80`, `Hk70`, `Hc`; fields in A/m, NaN when the
    curve does not reach them), `H_A` and the wall time.
    """
    axis = np.asarray(field_axis, dtype=float)
    if axis.shape != (3,) or not np.all(np.isfinite(axis)) or np.linalg.norm(axis) == 0:
        raise ValueError(f"field_axis must be a finite nonzero 3-vector, got {field_axis!r}")
    axis = axis / np.linalg.norm(axis)
    mat = system.material
    mask = np.asarray(system.mask)
    H_A = anisotropy_field_strength(float(np.asarray(mat.K1)[mask][0]), float(np.asarray(mat.Ms)[mask][0]))
    if h_max is None:
        h_max = H_A
    if not (np.isfinite(h_max) and h_max > 0):
        raise ValueError(f"h_max must be finite and > 0 (A/m), got {h_max}")
    if not (0 < step <= 1):
        raise ValueError(f"step must be in (0, 1] (fraction of h_max), got {step}")
    n = int(round(2.0 / step))
    fields = h_max * (1.0 - step * np.arange(n + 1))
    if m0 is None:
        m = jnp.broadcast_to(jnp.asarray(axis), system.grid.shape + (3,))
    else:
        m = jnp.asarray(m0, dtype=jnp.float64)
    t0 = time.perf_counter()
    H_out, M_out, mavg, conv, iters = [], [], [], [], []
    for i, H in enumerate(fields):
        res = minimize(system, m, jnp.asarray(H * axis), tol=tol, max_iter=max_iter)
        m = res.m
        avg = np.asarray(average_magnetization(system, m))
        H_out.append(H)
        mavg.append(avg)
        M_out.append(float(avg @ axis))
        conv.append(bool(res.converged))
        iters.append(int(res.n_iter))
        if progress is not None:
            progress(i + 1, n + 1)
        if stop_below is not None and H < 0 and M_out[-1] < stop_below:
            break
    wall = time.perf_counter() - t0
    H_arr = np.asarray(H_out)
    M_arr = np.asarray(M_out)
    anchors = anchor_points(H_arr, M_arr, h_anisotropy=H_A)
    ds = xr.Dataset(
        {
            "M": ("field", M_arr, {"units": "1", "long_name": "M/Ms projected on the field axis"}),
            "m_avg": (("field", "component"), np.asarray(mavg), {"units": "1", "long_name": "average unit magnetization"}),
            "converged": ("field", np.asarray(conv, dtype=np.int8), {"long_name": "minimiser converged (1/0)"}),
            "iterations": ("field", np.asarray(iters), {"long_name": "descent iterations"}),
        },
        coords={
            "H": ("field", H_arr, {"units": "A/m", "long_name": "applied field along the field axis"}),
            "component": ["x", "y", "z"],
        },
    )
    ds.attrs.update(
        {
            "H_A": H_A,
            "field_axis": axis.tolist(),
            "wall_time_s": wall,
            "tol": tol,
            "step": step,
        }
    )
    for key in ("M1", "Mr", "Hk90", "Hk80", "Hk70", "Hc"):
        ds.attrs[key] = float(getattr(anchors, key))
    return ds
