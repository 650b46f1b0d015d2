"""Energy landscapes, their minima and wells, and levitation heights on the axis.

These work with any of the four response models (`ImageModel`, `TwoLoopModel`, `NLoopModel`,
`MeissnerModel`) and either magnet. Positions are in the cavity frame (metres); the energy is
`total_energy`, ``response * U_mag + m g (up . x)`` with ``up = up_vector(tilt)``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import xarray as xr
from jaxtyping import ArrayLike, Float, Shaped

from .._newton import newton_minimize
from .._types import BatchScalarLike, Point3Like, ScalarLike, Vec3Like
from .. import _validate as v
from ._energy import _args, _energies, _total_grad, _total_grad_batch, check_pose_args, total_energy
from ._magnets import Magnet, gravity_energy
from ._model import CavityModel, check_position, clearance

__all__ = ["Well", "axis_height", "find_wells", "grid_minima", "landscape", "refine_minima", "refine_minimum"]

YLike = Float[ArrayLike, " ny"]
"""A 1-D grid of y (m)."""

ZLike = Float[ArrayLike, " nz"]
"""A 1-D grid of z (m)."""

StartsLike = Float[ArrayLike, "p 2"]
"""Starting points ``(y, z)`` (m) in the plane, one row per start."""

PerStart = Shaped[np.ndarray, " p"]
"""One value per start (floats; booleans for ``converged``)."""


def landscape(
    model: CavityModel,
    magnet: Magnet,
    y: YLike,
    z: ZLike,
    direction: Point3Like,
    *,
    x: float = 0.0,
    tilt: float = math.pi / 2,
    response: float = 1.0,
    batch_size: int | None = None,
) -> xr.Dataset:
    """Total energy on a grid in the plane ``x = const`` (the paper's y-z landscapes).

    **Arguments:**

    - `model`, `magnet`: response model and magnet.
    - `y`, `z`: 1-D grids (m).
    - `direction`: moment direction (3,), e.g. ``moment_direction(pi / 2, 0)`` (azimuthal).
    - `x`: the plane's offset (m); `tilt`: axis elevation (rad); `response`: response factor.

    **Returns:** a Dataset with `energy`, `magnetic_energy`, `gravity_energy` (J, NaN where
    the magnet would overlap the superconductor) and `valid` on dims ``(z, y)``.
    """
    check_pose_args(magnet, direction, tilt, response)
    y = np.asarray(v.as_float("y", y))
    z = np.asarray(v.as_float("z", z))
    if y.ndim != 1 or z.ndim != 1 or y.size == 0 or z.size == 0:
        raise ValueError(f"y and z must be non-empty 1-D grids, got shapes {y.shape} and {z.shape}")
    v.check_finite("y", y)
    v.check_finite("z", z)
    v.check_finite("x", v.as_float("x", x))
    Z, Y = np.meshgrid(z, y, indexing="ij")
    pts = np.stack([np.full(Y.size, float(x)), Y.ravel(), Z.ravel()], axis=-1)
    ok = np.asarray(clearance(model, magnet, jnp.asarray(pts))) >= 0.0
    u_mag = np.full(Y.size, np.nan)
    if ok.any():
        d = jnp.asarray(direction, dtype=float)
        if batch_size is None:
            u_mag[ok] = np.asarray(_energies(model, magnet, jnp.asarray(pts[ok]), d))
        else:
            u_mag[ok] = np.asarray(model.magnetic_energies(magnet, jnp.asarray(pts[ok]), d, batch_size=batch_size))
    u_g = np.asarray(gravity_energy(magnet, jnp.asarray(pts), tilt))
    u_g = np.where(ok, u_g, np.nan)
    shape = Z.shape
    total = response * u_mag + u_g
    attrs = dict(units="J")
    ds = xr.Dataset(
        {
            "energy": (("z", "y"), total.reshape(shape), dict(attrs, long_name="total energy")),
            "magnetic_energy": (("z", "y"), u_mag.reshape(shape), dict(attrs, long_name="magnetic energy (response 1)")),
            "gravity_energy": (("z", "y"), u_g.reshape(shape), dict(attrs, long_name="gravitational energy")),
            "valid": (("z", "y"), ok.reshape(shape).astype(np.int8), dict(long_name="magnet fits (1) or overlaps a wall (0)")),
        },
        coords={
            "y": ("y", y, dict(units="m", long_name="y")),
            "z": ("z", z, dict(units="m", long_name="height above the floor")),
        },
        attrs=dict(
            model=type(model).__name__,
            magnet=type(magnet).__name__,
            remanence_T=float(magnet.remanence),
            direction=json.dumps([float(c) for c in np.asarray(direction, dtype=float)]),
            x_m=float(x),
            tilt_deg=math.degrees(float(tilt)),
            response=float(response),
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        ),
    )
    return ds


def grid_minima(ds: xr.Dataset, var: str = "energy") -> list[tuple[float, float, float]]:
    """Grid points lower than all eight neighbours: ``[(energy, y, z), ...]`` sorted by energy.

    NaN (invalid) neighbours count as higher; points on the grid border are excluded.
    """
    e = ds[var].values
    ee = np.where(np.isnan(e), np.inf, e)
    pad = np.pad(ee, 1, constant_values=np.inf)
    core = pad[1:-1, 1:-1]
    is_min = np.isfinite(core)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di == 0 and dj == 0:
                continue
            is_min &= core < pad[1 + di : pad.shape[0] - 1 + di, 1 + dj : pad.shape[1] - 1 + dj]
    is_min[0, :] = is_min[-1, :] = False
    is_min[:, 0] = is_min[:, -1] = False
    iz, iy = np.nonzero(is_min)
    out = [(float(e[a, b]), float(ds.y.values[b]), float(ds.z.values[a])) for a, b in zip(iz, iy)]
    return sorted(out)


@dataclasses.dataclass(frozen=True)
class Well:
    """A local minimum of the energy in the y-z plane: position (m) and energy (J)."""

    y: float
    z: float
    energy: float
    converged: bool


@eqx.filter_jit
def _plane_minima(model, magnet, starts, x, directions, tilt, responses, max_iter, gtol, xtol, max_halvings):
    def one(q0, d, r):
        def full(q):
            return jnp.concatenate([x[None], q])

        def val(q):
            return total_energy(model, magnet, full(q), d, tilt=tilt, response=r)

        q, info = newton_minimize(
            jax.grad(val), q0, value_fn=val, max_iter=max_iter, gtol=gtol, xtol=xtol, trust_radius=2e-4,
            line_search=True, max_halvings=max_halvings, armijo=1e-4,
            feasible=lambda q: clearance(model, magnet, full(q)) >= 0.0)
        return q, val(q), info.converged & info.positive_definite

    return jax.vmap(one)(starts, directions, responses)


def refine_minima(model: CavityModel, magnet: Magnet, starts: StartsLike, directions: Vec3Like, *, x: float = 0.0,
                  tilt: ScalarLike = math.pi / 2, responses: BatchScalarLike = 1.0, max_iter: int = 50,
                  gtol: float = 1e-10, xtol: float = 0.0, max_halvings: int = 14) -> dict[str, PerStart]:
    """Batched Newton refinement of minima in the plane ``x = const``, one jit-compiled solve.

    Each start ``(P, 2)`` = (y, z) (m) has its own moment direction ``(P, 3)`` (or one for
    all) and response factor ``(P,)`` (or one). The shared saddle-free Newton solver
    (`invdesign._newton`): steps capped at 0.2 mm, backtracking (Armijo, at most
    `max_halvings` halvings) that keeps the magnet clear of every wall. Converged: gradient
    norm below `gtol` (N) or a Newton step below `xtol` (m), with a positive-definite
    Hessian; a start whose line search stalls (at a wall) is not converged.

    **Returns:** dict of arrays ``y``, ``z`` (m), ``energy`` (J), ``converged`` (bool).
    """
    check_pose_args(magnet, directions, tilt, responses, response_name="responses")
    starts = np.asarray(v.as_float("starts", starts))
    if starts.size == 0 or starts.size % 2:
        raise ValueError(f"starts must be points (y, z) of shape (P, 2), got shape {starts.shape}")
    v.check_finite("starts", starts)
    v.check_finite("x", v.as_float("x", x))
    p = jnp.asarray(starts.reshape(-1, 2))
    n = p.shape[0]
    d = jnp.broadcast_to(jnp.asarray(directions, dtype=float), (n, 3))
    r = jnp.broadcast_to(jnp.asarray(responses, dtype=float), (n,))
    if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 1):
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    q, e, ok = _plane_minima(model, magnet, p, jnp.asarray(float(x)), d, jnp.asarray(tilt, dtype=float), r,
                             int(max_iter), float(gtol), float(xtol), int(max_halvings))
    q = np.asarray(q)
    return dict(y=q[:, 0], z=q[:, 1], energy=np.asarray(e), converged=np.asarray(ok))


def refine_minimum(model: CavityModel, magnet: Magnet, y0: float, z0: float, direction: Point3Like, *,
                   x: float = 0.0, tilt: ScalarLike = math.pi / 2, response: ScalarLike = 1.0, max_iter: int = 50,
                   tol: float = 1e-10) -> Well:
    """Newton refinement of a minimum in the plane ``x = const`` from a starting point.

    Steps are limited to 0.2 mm and kept inside the vacuum (the magnet never overlaps a
    wall). Returns a `Well`; ``converged`` is False if the gradient did not fall below
    ``tol`` (N per metre of energy gradient, i.e. newtons) or the Hessian is not positive.
    One start of `refine_minima`.
    """
    res = refine_minima(model, magnet, [[y0, z0]], direction, x=x, tilt=tilt, responses=response,
                        max_iter=max_iter, gtol=tol)
    return Well(y=float(res["y"][0]), z=float(res["z"][0]), energy=float(res["energy"][0]),
                converged=bool(res["converged"][0]))


def find_wells(model: CavityModel, magnet: Magnet, direction: Point3Like, y: YLike, z: ZLike, *, x: float = 0.0,
               tilt: float = math.pi / 2, response: float = 1.0, refine: bool = True) -> list[Well]:
    """All local minima in the y-z plane: grid minima of a `landscape`, Newton-refined.

    Returns the wells sorted by energy (the first is the global minimum); duplicates that
    converge to the same point (within 10 um) are merged.
    """
    ds = landscape(model, magnet, y, z, direction, x=x, tilt=tilt, response=response)
    wells = []
    for e, y0, z0 in grid_minima(ds):
        w = refine_minimum(model, magnet, y0, z0, direction, x=x, tilt=tilt, response=response) if refine else Well(y0, z0, e, False)
        if all(math.hypot(w.y - o.y, w.z - o.z) > 1e-5 for o in wells):
            wells.append(w)
    return sorted(wells, key=lambda w: w.energy)


def axis_height(model: CavityModel, magnet: Magnet, direction: Point3Like, z_lo: float, z_hi: float, *,
                xy: tuple[float, float] = (0.0, 0.0), tilt: ScalarLike = math.pi / 2, response: ScalarLike = 1.0,
                n_scan: int = 48) -> float:
    """Equilibrium height ``z`` (m) on a vertical line, the root of ``dU/dz`` in ``[z_lo, z_hi]``.

    The stable equilibrium (``dU/dz`` changing from negative to positive) is bracketed by
    scanning `n_scan` points (one batched evaluation) and refined by Brent's method. Raises
    ValueError if there is none, and naming the argument for a bracket with ``z_lo >= z_hi``,
    a `z_lo` where the magnet does not fit, or a bad `direction`, `tilt` or `response`.
    """
    check_pose_args(magnet, direction, tilt, response)
    for name, val in (("z_lo", z_lo), ("z_hi", z_hi)):
        v.check_finite(name, v.as_float(name, val))
        if np.ndim(val) != 0:
            raise ValueError(f"{name} must be a scalar height (m), got shape {np.shape(val)}")
    if not float(z_lo) < float(z_hi):
        raise ValueError(
            f"z_lo must be below z_hi: the bracket [z_lo, z_hi] = [{float(z_lo):g}, {float(z_hi):g}] m is "
            f"{'empty' if float(z_lo) == float(z_hi) else 'reversed'} (swap z_lo and z_hi)"
        )
    n_scan = v.check_int("n_scan", n_scan, 2)
    d, t, r = _args(direction, tilt, response)
    x0, y0 = (float(c) for c in xy)

    def dudz(zz):
        return _total_grad(model, magnet, jnp.array([x0, y0, float(zz)]), d, t, r)[2]

    check_position(model, magnet, jnp.array([x0, y0, float(z_lo)]), name="z_lo")
    zs = np.linspace(float(z_lo), float(z_hi), n_scan)
    line = jnp.stack([jnp.full(n_scan, x0), jnp.full(n_scan, y0), jnp.asarray(zs)], axis=-1)
    g = np.asarray(_total_grad_batch(model, magnet, line, d, t, r))[:, 2]
    idx = np.nonzero((g[:-1] < 0) & (g[1:] >= 0))[0]
    if idx.size == 0:
        raise ValueError(
            f"no stable equilibrium between z_lo = {z_lo:g} m and z_hi = {z_hi:g} m (dU/dz does not change sign from - to +)"
        )
    k = idx[0]
    return float(scipy.optimize.brentq(lambda zz: float(dudz(zz)), zs[k], zs[k + 1], xtol=1e-12))
