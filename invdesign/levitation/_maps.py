"""Stability maps on the x-z plane (paper Figs. 1-3)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jaxtyping import ArrayLike, Float

from .. import _validate as v
from .._types import ScalarLike
from ..constants import G0, MU0
from ..fields import Loops
from ._energy import _b2, check_types
from ._sphere import Sphere

__all__ = ["CRITERIA", "classify_stability", "stability_map"]

XLike = Float[ArrayLike, " nx"]
ZLike = Float[ArrayLike, " nz"]

CRITERIA = ("laplacian", "planar", "hessian")
"""Stability criteria of `stability_map`:

- ``"laplacian"``: ``lap |B|^2 > 0`` (paper eq. 11, 3-D Laplacian; necessary condition);
- ``"planar"``: ``(d^2/dx^2 + d^2/dz^2) |B|^2 > 0``, the Laplacian restricted to the plotted
  x-z plane (it can be negative; the paper's blue regions match this reading);
- ``"hessian"``: all eigenvalues of the Hessian of U positive (sufficient; the physical one).
"""

_VARIABLE = {"laplacian": "lap_b2", "planar": "lap_b2_xz", "hessian": "min_stiffness"}


def _diagnostics(p, c):
    b2, grad = jax.value_and_grad(_b2)(p, c["loops"])
    hess = jax.hessian(_b2)(p, c["loops"])
    coef = c["coef"]
    lam = jnp.linalg.eigvalsh(0.5 * (hess + hess.T))
    return {
        "b2": b2,
        "lap_b2": jnp.trace(hess),
        "lap_b2_xz": hess[0, 0] + hess[2, 2],
        "min_stiffness": coef * lam[0],
        "force_x": -coef * grad[0],
        "force_z": -coef * grad[2],
    }


@jax.jit
def _evaluate(loops, sphere, pts, mask_radius):
    coef = sphere.k * sphere.volume / (2.0 * MU0)
    dist = loops.distance_to_wire(pts)
    masked = (dist < mask_radius) | (dist <= 0.0)
    # evaluate masked points somewhere harmless (the loops' first centre shifted by 2 radii)
    safe = jnp.reshape(loops.center, (-1, 3))[0] + 2.0 * jnp.max(loops.radius) * jnp.array([1.0, 0.0, 0.0])
    pts = jnp.where(masked[..., None], safe, pts)
    flat = pts.reshape(-1, 3)
    out = jax.vmap(_diagnostics, in_axes=(0, None))(flat, {"loops": loops, "coef": coef})
    out = {k: val.reshape(pts.shape[:-1]) for k, val in out.items()}
    bad = masked | ~jnp.isfinite(out["min_stiffness"]) | ~jnp.isfinite(out["force_z"])
    return {k: jnp.where(bad, jnp.nan, val) for k, val in out.items()}, bad


def classify_stability(ds: xr.Dataset, criterion: str = "laplacian") -> xr.DataArray:
    """Paper classes from a `stability_map` dataset under a chosen stability `criterion`.

    ``0`` unstable, ``1`` stable but the vertical magnetic force is below the weight,
    ``2`` stable and the vertical magnetic force at least the weight; NaN where masked.
    `criterion` is one of `CRITERIA`.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    stable = ds[_VARIABLE[criterion]] > 0.0
    holds = ds["force_z"] >= ds.attrs["weight_N"]
    cls = xr.where(stable, xr.where(holds, 2.0, 1.0), 0.0)
    cls = cls.where(~np.isnan(ds["force_z"]))
    cls.attrs = {
        "units": "1",
        "long_name": f"stability class ({criterion} criterion)",
        "flag_values": "0 1 2",
        "flag_meanings": "unstable stable_below_weight stable_holds_weight",
        "criterion": criterion,
    }
    return cls


def stability_map(loops: Loops, sphere: Sphere, x: XLike, z: ZLike, *, g: ScalarLike = G0,
                  criterion: str = "laplacian", mask_radius: ScalarLike | None = None) -> xr.Dataset:
    """Stability classes of the sphere on the x-z plane (y = 0), as in the paper's Figs. 2-3.

    **Arguments:**

    - `loops`: the current loops; `sphere`: the particle.
    - `x`, `z`: 1-D coordinates of the map (m).
    - `g`: gravitational acceleration (m/s^2); the weight is ``m g``.
    - `criterion`: ``"laplacian"`` (paper eq. 11, default), ``"planar"`` or ``"hessian"``
      (see `CRITERIA`). Note that the 3-D Laplacian of ``|B|^2`` is ``>= 0`` everywhere
      outside the conductors, so with the default no point is unstable; the other two
      variables are in the dataset for every criterion (use `classify_stability`).
    - `mask_radius`: points closer than this to a wire (m) are masked with NaN; default the
      sphere radius (where the sphere would overlap a conductor). Points on a wire are
      always masked.

    **Returns:** an `xarray.Dataset` on dims ``(z, x)`` with `b2` (T^2), `lap_b2`,
    `lap_b2_xz` (T^2/m^2), `min_stiffness` (smallest Hessian eigenvalue of U, N/m),
    `force_x` and `force_z` (magnetic force components, N), and `stability_class`
    (0 unstable, 1 stable with vertical magnetic force < weight, 2 stable and the force
    holds the weight; NaN where masked). Evaluated by one jitted `vmap`.

    ```python
    >>> from invdesign.levitation import anti_helmholtz_trap, anti_helmholtz_sphere
    >>> s = jnp.linspace(-1.5e-6, 1.5e-6, 101)
    >>> ds = stability_map(anti_helmholtz_trap(), anti_helmholtz_sphere(), s, s, criterion="hessian")
    ```
    """
    check_types(loops, sphere)
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    x = np.asarray(x, dtype=float)
    z = np.asarray(z, dtype=float)
    for name, a in (("x", x), ("z", z)):
        if a.ndim != 1 or a.size < 1:
            raise ValueError(f"{name} must be a non-empty 1-D array of coordinates (m), got shape {a.shape}")
        v.check_finite(name, a)
    if mask_radius is None:
        mask_radius = sphere.radius
    if v.is_concrete(mask_radius) and float(np.asarray(mask_radius)) < 0:
        raise ValueError(f"mask_radius must be >= 0, got {mask_radius}")
    xx, zz = np.meshgrid(x, z)
    pts = np.stack([xx, np.zeros_like(xx), zz], axis=-1)
    out, bad = _evaluate(loops, sphere, jnp.asarray(pts), jnp.asarray(mask_radius, dtype=float))
    out = {k: np.asarray(val) for k, val in out.items()}
    weight = float(np.asarray(sphere.mass * g))
    meta = {
        "b2": ("T^2", "squared magnetic flux density |B|^2"),
        "lap_b2": ("T^2/m^2", "Laplacian of |B|^2 (paper eq. 11)"),
        "lap_b2_xz": ("T^2/m^2", "in-plane Laplacian (d2/dx2 + d2/dz2) of |B|^2"),
        "min_stiffness": ("N/m", "smallest eigenvalue of the Hessian of U"),
        "force_x": ("N", "horizontal magnetic force"),
        "force_z": ("N", "vertical magnetic force"),
    }
    ds = xr.Dataset(
        {k: (("z", "x"), out[k], {"units": u, "long_name": ln}) for k, (u, ln) in meta.items()},
        coords={"x": ("x", x, {"units": "m", "long_name": "x"}),
                "z": ("z", z, {"units": "m", "long_name": "height z"})},
        attrs={
            "weight_N": weight,
            "criterion": criterion,
            "sphere_radius_m": float(np.asarray(sphere.radius)),
            "sphere_mass_kg": float(np.asarray(sphere.mass)),
            "sphere_k": float(np.asarray(sphere.k)),
            "g_m_per_s2": float(np.asarray(g)),
            "mask_radius_m": float(np.asarray(mask_radius)),
            "n_masked": int(np.asarray(bad).sum()),
            "settings": json.dumps({"criterion": criterion}),
        },
    )
    ds["stability_class"] = classify_stability(ds, criterion)
    return ds
