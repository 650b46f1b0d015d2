"""Energy landscapes, wells, levitation heights, mechanical frequencies and response calibration.

These work with any of the four response models (`ImageModel`, `TwoLoopModel`, `NLoopModel`,
`MeissnerModel`) and either magnet. Positions are in the cavity frame (metres); the energy is
``response * U_mag + m g (up . x)`` with ``up = up_vector(tilt)``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.optimize
import tqdm
import xarray as xr

from .. import _validate as v
from ._magnets import gravity_energy
from ._superconductor import CavityModel, check_position, clearance

__all__ = [
    "landscape",
    "grid_minima",
    "Well",
    "find_wells",
    "refine_minimum",
    "axis_height",
    "mechanical_frequencies",
    "HeightDatum",
    "calibrate_response",
    "PAPER_NLOOP_SPACING",
    "MEISSNER_SPACING",
    "nloop_model",
    "meissner_model",
]


def _total(model, magnet, x, d, tilt, response):
    return response * model.magnetic_energy(magnet, x, d) + gravity_energy(magnet, x, tilt)


def _magnetic(model, magnet, x, d):
    return model.magnetic_energy(magnet, x, d)


# compiled once per model structure and mesh size, shared by all calls
_total_jit = eqx.filter_jit(_total)
_total_grad = eqx.filter_jit(jax.grad(_total, argnums=2))
_total_hess = eqx.filter_jit(jax.hessian(_total, argnums=2))
@eqx.filter_jit
def _total_grad_batch(model, magnet, xs, d, tilt, response):
    g = jax.grad(_total, argnums=2)
    return jax.lax.map(lambda x: g(model, magnet, x, d, tilt, response), xs, batch_size=8)



_magnetic_grad = eqx.filter_jit(jax.grad(_magnetic, argnums=2))
_magnetic_hess = eqx.filter_jit(jax.hessian(_magnetic, argnums=2))


@eqx.filter_jit
def _energies(model, magnet, pts, d):
    return model.magnetic_energies(magnet, pts, d)


def _relaxed_total(model, magnet, x, tilt, response):
    w = model.response_tensor(magnet, x)
    return response * jnp.linalg.eigvalsh(w)[0] + gravity_energy(magnet, x, tilt)


_relaxed_hess = eqx.filter_jit(jax.hessian(_relaxed_total, argnums=2))


def _args(direction, tilt, response):
    return jnp.asarray(direction, dtype=float), jnp.asarray(tilt, dtype=float), jnp.asarray(response, dtype=float)


def landscape(
    model: CavityModel,
    magnet,
    y,
    z,
    direction,
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
    y = np.asarray(y, dtype=float)
    z = np.asarray(z, dtype=float)
    if y.ndim != 1 or z.ndim != 1 or y.size == 0 or z.size == 0:
        raise ValueError(f"y and z must be non-empty 1-D grids, got shapes {y.shape} and {z.shape}")
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


def refine_minimum(model, magnet, y0, z0, direction, *, x=0.0, tilt=math.pi / 2, response=1.0, max_iter=50, tol=1e-10):
    """Newton refinement of a minimum in the plane ``x = const`` from a starting point.

    Steps are limited to 0.2 mm and kept inside the vacuum (the magnet never overlaps a
    wall). Returns a `Well`; ``converged`` is False if the gradient did not fall below
    ``tol`` (N per metre of energy gradient, i.e. newtons) or the Hessian is not positive.
    """
    d, t, r = _args(direction, tilt, response)
    x = float(x)

    def full(p):
        return jnp.array([x, p[0], p[1]])

    def grad(p):
        return np.asarray(_total_grad(model, magnet, full(p), d, t, r))[1:]

    def hess(p):
        return np.asarray(_total_hess(model, magnet, full(p), d, t, r))[1:, 1:]

    def val(p):
        return float(_total_jit(model, magnet, full(p), d, t, r))

    p = np.array([y0, z0], dtype=float)

    def fits(q):
        return float(clearance(model, magnet, jnp.array([x, q[0], q[1]]))) >= 0.0

    converged = False
    for _ in range(max_iter):
        g = grad(p)
        h = hess(p)
        if np.linalg.norm(g) < tol:
            converged = bool(np.all(np.linalg.eigvalsh(h) > 0))
            break
        w, vecs = np.linalg.eigh(h)
        w = np.maximum(np.abs(w), 1e-12 * max(1.0, np.abs(w).max()))
        step = -(vecs @ ((vecs.T @ g) / w))
        n = np.linalg.norm(step)
        if n > 2e-4:
            step *= 2e-4 / n
        f0 = val(p)
        lam = 1.0
        while lam > 1e-4:
            q = p + lam * step
            if fits(q) and val(q) <= f0 + 1e-4 * lam * float(g @ step):
                break
            lam *= 0.5
        else:
            break
        p = q
    return Well(y=float(p[0]), z=float(p[1]), energy=val(p), converged=converged)


def find_wells(model, magnet, direction, y, z, *, x=0.0, tilt=math.pi / 2, response=1.0, refine=True) -> list[Well]:
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


def axis_height(model, magnet, direction, z_lo, z_hi, *, xy=(0.0, 0.0), tilt=math.pi / 2, response=1.0, n_scan=48):
    """Equilibrium height ``z`` (m) on a vertical line, the root of ``dU/dz`` in ``[z_lo, z_hi]``.

    The stable equilibrium (``dU/dz`` changing from negative to positive) is bracketed by
    scanning `n_scan` points (one batched evaluation) and refined by Brent's method. Raises
    ValueError if there is none.
    """
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


def mechanical_frequencies(model, magnet, position, direction, *, tilt=math.pi / 2, response=1.0, relax_orientation=False):
    """Small-oscillation frequencies (Hz) of the magnet's centre of mass at an equilibrium.

    The Hessian of the total energy with respect to the position is taken by automatic
    differentiation. With `relax_orientation` the moment follows the lowest-energy direction
    at every position (the energy is the smallest eigenvalue of the response tensor; dipole
    magnets only); otherwise the moment direction is fixed in the cavity frame.

    **Returns:** dict with ``hessian`` (3x3, N/m), ``eigenfrequencies`` and ``modes``
    (ascending; negative frequency = unstable direction), and ``f_r``, ``f_phi``, ``f_z``,
    the frequencies along the cylindrical directions of the cavity at `position`.
    """
    p = jnp.asarray(position, dtype=float)
    check_position(model, magnet, p)
    d, t, r = _args(direction, tilt, response)
    if relax_orientation:
        h = np.asarray(_relaxed_hess(model, magnet, p, t, r))
    else:
        h = np.asarray(_total_hess(model, magnet, p, d, t, r))
    h = 0.5 * (h + h.T)
    m = float(magnet.mass)
    w, vecs = np.linalg.eigh(h)
    f = np.sign(w) * np.sqrt(np.abs(w) / m) / (2.0 * np.pi)
    r = math.hypot(float(p[0]), float(p[1]))
    e_r = np.array([float(p[0]) / r, float(p[1]) / r, 0.0]) if r > 0 else np.array([1.0, 0.0, 0.0])
    e_phi = np.array([-e_r[1], e_r[0], 0.0])
    e_z = np.array([0.0, 0.0, 1.0])

    def along(e):
        k = float(e @ h @ e)
        return math.copysign(math.sqrt(abs(k) / m) / (2.0 * math.pi), k)

    return dict(hessian=h, eigenfrequencies=f, modes=vecs, f_r=along(e_r), f_phi=along(e_phi), f_z=along(e_z))


# --------------------------------------------------------------------------- calibration


@dataclasses.dataclass(frozen=True)
class HeightDatum:
    """A measured levitation height to calibrate a model's response factor against.

    **Fields:** `label`; `model` and `magnet`; `direction` of the moment; `kind` ``"axis"``
    (equilibrium on the vertical line through `xy`, searched in ``[z_lo, z_hi]``) or
    ``"well"`` (the minimum in the y-z plane started from ``(y0, z0)``); `height` (m, the
    measured value, as the cavity-frame ``z`` of the magnet centre minus `reference`);
    `reference` (m); `source` (where the number comes from).
    """

    label: str
    model: CavityModel
    magnet: object
    direction: Sequence[float]
    height: float
    kind: str = "axis"
    xy: tuple = (0.0, 0.0)
    z_lo: float = 0.0
    z_hi: float = 0.0
    y0: float = 0.0
    z0: float = 0.0
    reference: float = 0.0
    source: str = ""


def _axis_newton(d: HeightDatum, response: float, z0: float, dd, max_iter: int = 12):
    """Newton on dU/dz = 0 along the vertical line from a nearby start; None if it fails."""
    t, r = jnp.asarray(math.pi / 2), jnp.asarray(response, dtype=float)
    z = float(z0)
    for _ in range(max_iter):
        x = jnp.array([d.xy[0], d.xy[1], z])
        g = float(_total_grad(d.model, d.magnet, x, dd, t, r)[2])
        h = float(_total_hess(d.model, d.magnet, x, dd, t, r)[2, 2])
        if not h > 0:
            return None
        step = max(-2e-4, min(2e-4, -g / h))
        z += step
        if abs(step) < 1e-11:
            return z
    return None


def _height_and_slope(d: HeightDatum, response: float, start=None):
    """Model height (m) at `response`, its derivative d height / d response and the position.

    `start`: the position found at a nearby response (warm start: Newton instead of a scan).
    """
    dd = jnp.asarray(d.direction, dtype=float)
    if d.kind == "axis":
        z = _axis_newton(d, response, start, dd) if start is not None else None
        if z is None:
            z = axis_height(d.model, d.magnet, d.direction, d.z_lo, d.z_hi, xy=d.xy, response=response)
        x = jnp.array([d.xy[0], d.xy[1], z])
        g = _magnetic_grad(d.model, d.magnet, x, dd)
        h = _magnetic_hess(d.model, d.magnet, x, dd)
        # dU/dz = response * dUm/dz + m g = 0  =>  dz/dresp = -dUm/dz / (resp * d2Um/dz2)
        slope = -float(g[2]) / (response * float(h[2, 2]))
        return z - d.reference, slope, z
    if d.kind == "well":
        y0, z0 = start if start is not None else (d.y0, d.z0)
        w = refine_minimum(d.model, d.magnet, y0, z0, d.direction, response=response)
        if not w.converged:
            raise RuntimeError(
                f"calibration datum {d.label!r}: no well near (y, z) = ({y0:g}, {z0:g}) m at response {response:g} "
                "(the well may not exist there: start the fit from another `initial`)"
            )
        x = jnp.array([0.0, w.y, w.z])
        g = np.asarray(_magnetic_grad(d.model, d.magnet, x, dd))[1:]
        h = np.asarray(_magnetic_hess(d.model, d.magnet, x, dd))[1:, 1:]
        # grad U = response grad Um + m g e_z = 0  =>  d(y, z)/dresp = -(response H_m)^-1 grad Um
        dp = -np.linalg.solve(response * h, g)
        return w.z - d.reference, float(dp[1]), (w.y, w.z)
    raise ValueError(f"kind must be 'axis' or 'well', got {d.kind!r}")


def calibrate_response(
    data: Sequence[HeightDatum],
    *,
    initial: float = 1.0,
    steps: int = 60,
    learning_rate: float = 0.1,
    name: str = "response",
    progress: bool = False,
) -> xr.Dataset:
    """Fit one effective response factor to measured heights by gradient descent.

    The model energy is ``chi * U_mag + m g (up . x)``; ``chi = 1`` is the ideal response of
    the model. The loss is the mean squared relative height error; ``log chi`` is updated by
    Adam (optax), with gradients of each height from the implicit-function theorem at the
    equilibrium (exact, no finite differences). Between steps every height is re-solved by
    Newton's method from the previous equilibrium. `progress` shows a tqdm bar.

    **Returns:** a Dataset with the fitted value (attr and variable `response`), the history
    (`loss`, `response_history` over `iteration`) and, per datum, the measured and model
    heights and the relative residuals.
    """
    if len(data) == 0:
        raise ValueError("data is empty: give at least one HeightDatum")
    v.check_positive("initial", initial)
    meas = np.array([d.height for d in data])
    v.check_positive("height", meas)
    opt = optax.adam(learning_rate)
    theta = jnp.asarray(math.log(initial))
    state = opt.init(theta)
    hist_chi, hist_loss = [], []
    starts = [None] * len(data)
    bar = tqdm.tqdm(range(int(steps)), desc=f"calibrating {name}", disable=not progress)
    for _ in bar:
        chi = float(jnp.exp(theta))
        hs, slopes, starts = zip(*(_height_and_slope(d, chi, s) for d, s in zip(data, starts)))
        rel = (np.array(hs) - meas) / meas
        loss = float(np.mean(rel**2))
        dloss_dchi = float(np.mean(2.0 * rel * np.array(slopes) / meas))
        hist_chi.append(chi)
        hist_loss.append(loss)
        bar.set_postfix(chi=f"{chi:.4g}", loss=f"{loss:.3g}")
        updates, state = opt.update(jnp.asarray(dloss_dchi * chi), state)
        theta = optax.apply_updates(theta, updates)
    chi = float(jnp.exp(theta))
    hs = np.array([_height_and_slope(d, chi, s)[0] for d, s in zip(data, starts)])
    rel = (hs - meas) / meas
    return xr.Dataset(
        {
            "response": ((), chi, dict(units="1", long_name=f"fitted {name} factor")),
            "response_history": (("iteration",), np.array(hist_chi), dict(units="1", long_name=f"{name} factor")),
            "loss": (("iteration",), np.array(hist_loss), dict(units="1", long_name="mean squared relative height error")),
            "measured_height": (("datum",), meas, dict(units="m", long_name="measured levitation height")),
            "model_height": (("datum",), hs, dict(units="m", long_name="model levitation height at the fitted factor")),
            "relative_residual": (("datum",), rel, dict(units="1", long_name="(model - measured) / measured")),
            "source": (("datum",), np.array([d.source for d in data], dtype=object), dict(long_name="where the datum comes from")),
        },
        coords={"datum": ("datum", np.array([d.label for d in data], dtype=object)), "iteration": np.arange(len(hist_chi))},
        attrs=dict(
            fitted_response=chi,
            rms_relative_residual=float(np.sqrt(np.mean(rel**2))),
            optimizer="adam",
            learning_rate=float(learning_rate),
            steps=int(steps),
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        ),
    )


# --------------------------------------------------------------------------- model factories

PAPER_NLOOP_SPACING = 0.3e-3
"""Element spacing (m) used for the paper's N-loop model (model 3) in this project.

The paper does not state its element size (its Fig. 9 only shows the mesh). Model 3's
energy grows with the element radius (it is not a convergent discretisation), so its heights
depend on this choice, roughly as ``spacing^(1/5)``. At 0.3 mm (element radius 0.17 mm,
about 29 500 equal elements over the paper's 7 mm x 55 mm cavity) the N52 disk's heights
above the stub for a vertical and a horizontal moment (about 2.3 and 1.9 mm) bracket half
the image height (2.07 mm), which is the paper's statement about its model and its
measurements (image heights "more than two times larger than the actual value", N-loop
"within 5 %"). `studies/cavity_heights.py` tabulates the heights against the spacing.
"""

MEISSNER_SPACING = 0.4e-3
"""Default element size (m) of the Meissner model's cavity mesh (refined at the stub rim)."""


def nloop_model(cavity, spacing: float = PAPER_NLOOP_SPACING, *, layout=None):
    """The paper's N-loop model (model 3) on equal elements over the whole cavity.

    `layout` (from `cavity_layout(other, spacing, graded=False, rim=False)`) fixes the
    element counts, so that nearby geometries share array shapes and compiled functions.
    """
    from ._cavity_mesh import cavity_mesh
    from ._superconductor import NLoopModel

    return NLoopModel(cavity_mesh(cavity, spacing, graded=False, rim=False, layout=layout), cavity)


def meissner_model(cavity, spacing: float = MEISSNER_SPACING, *, layout=None):
    """The self-consistent Meissner model (model 4) on the default graded, rim-refined mesh.

    `layout` (from `cavity_layout(other, spacing)`) fixes the element counts, so that nearby
    geometries share array shapes and compiled functions.
    """
    from ._cavity_mesh import cavity_mesh
    from ._superconductor import MeissnerModel

    return MeissnerModel(cavity_mesh(cavity, spacing, layout=layout), cavity)
