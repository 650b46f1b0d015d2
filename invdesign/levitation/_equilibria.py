"""Equilibria of the sphere: damped Newton on ``grad U = 0`` with implicit differentiation."""

from __future__ import annotations

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import _validate as v
from .._types import BatchBool, BatchInt, BatchScalar, ScalarLike, Vec3, Vec3Like
from ..constants import G0
from .._newton import implicit_stationary_point
from ..fields import Loops
from ._energy import _grad_point, check_g, check_position, check_types
from ._modes import TrapModes, _trap_modes_jit
from ._sphere import Sphere

__all__ = ["EquilibriumInfo", "EquilibriumError", "equilibrium", "find_equilibria"]

_METHODS = ("newton", "saddle_free")


class EquilibriumError(RuntimeError):
    """Newton did not converge to an equilibrium from the given start."""


class EquilibriumInfo(eqx.Module):
    """Diagnostics of `equilibrium` (returned with ``return_info=True``).

    - `converged`: the last undamped Newton step was below ``rtol`` times the distance to
      the nearest wire (bool).
    - `iterations`: Newton iterations used.
    - `step`: that last step length divided by the distance to the nearest wire.
    - `clearance`: distance from the equilibrium to the nearest wire minus the sphere
      radius (m); negative means the sphere would overlap a conductor there.
    """

    converged: BatchBool
    iterations: BatchInt
    step: BatchScalar
    clearance: BatchScalar


@jax.jit
def _equilibrium(loops, sphere, x0, g, saddle_free, max_iter, rtol):
    # damped Newton on grad U = 0, steps capped at half the distance to the nearest wire (a
    # trust radius on the field's own length scale, so an iterate never jumps across a
    # conductor); converged when the undamped step is below rtol times that distance
    x, info = implicit_stationary_point(
        lambda x: _grad_point(x, loops, sphere, g), jnp.asarray(x0, dtype=float),
        max_iter=max_iter, xtol=rtol, length_scale=loops.distance_to_wire,
        trust_radius=lambda x: 0.5 * loops.distance_to_wire(x), saddle_free=saddle_free)
    clearance = jax.lax.stop_gradient(loops.distance_to_wire(x) - sphere.radius)
    return x, EquilibriumInfo(converged=info.converged, iterations=info.iterations, step=info.step,
                              clearance=clearance)


def _check_options(method, max_iter, rtol):
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    v.check_positive("rtol", rtol)


def equilibrium(loops: Loops, sphere: Sphere, x0: Vec3Like, *, g: ScalarLike = G0,
                method: str = "saddle_free", max_iter: int = 100, rtol: float = 1e-10,
                return_info: bool = False) -> Vec3 | tuple[Vec3, EquilibriumInfo]:
    """Equilibrium position of the sphere (``grad U = 0``) by damped Newton from `x0`.

    The solve is wrapped in `jax.lax.custom_root`: derivatives of the returned position with
    respect to the loops, the sphere and `g` follow from the implicit function theorem
    (``dx*/dp = -H^{-1} d(grad U)/dp``), not from unrolling the iteration. Works under `jit`
    and `vmap`.

    **Arguments:**

    - `loops`: the current loops.
    - `sphere`: the particle.
    - `x0`: starting point ``(3,)`` in metres (the sphere there must not overlap a wire).
    - `g`: gravitational acceleration (m/s^2), along ``-z``.
    - `method`: ``"saddle_free"`` (default: Newton with ``|eigenvalues|`` of the Hessian,
      heads for a minimum of U) or ``"newton"`` (plain Newton: any stationary point).
    - `max_iter`: maximum number of Newton iterations.
    - `rtol`: convergence when the Newton step is below ``rtol`` times the distance to the
      nearest wire.
    - `return_info`: also return an `EquilibriumInfo`.

    **Returns:** the equilibrium ``(3,)`` (m), or ``(x, info)``. Called with concrete
    values and ``return_info=False``, a non-converged solve raises `EquilibriumError`;
    under `jit`/`vmap` check ``info.converged`` instead. Classify the result with
    `trap_modes` (a saddle is an equilibrium too).

    ```python
    >>> from invdesign.levitation import concentric_trap, concentric_sphere
    >>> x = equilibrium(concentric_trap(), concentric_sphere(), jnp.array([0.0, 0.0, 3e-6]))
    >>> round(float(x[2]) * 1e6, 4)  # um above the chip, k = 1
    3.7141
    ```
    """
    check_types(loops, sphere)
    check_position("x0", x0, loops, sphere)
    if np.shape(x0) != (3,):
        raise ValueError(f"x0 must have shape (3,), got {np.shape(x0)} (use find_equilibria or vmap)")
    check_g(g)
    _check_options(method, max_iter, rtol)
    x, info = _equilibrium(loops, sphere, jnp.asarray(x0, dtype=float), g, method == "saddle_free",
                           int(max_iter), rtol)
    if return_info:
        return x, info
    if v.is_concrete(x) and not bool(info.converged):
        raise EquilibriumError(
            f"equilibrium: Newton ({method}) did not converge from x0 = {np.asarray(x0).tolist()} "
            f"in {int(info.iterations)} iterations (last step {float(info.step):.3g} of the "
            f"distance to the nearest wire, position {np.asarray(x).tolist()}); try another x0, "
            "a larger max_iter, or return_info=True")
    return x


def _empty_modes():
    z = np.zeros((0,))
    return TrapModes(position=np.zeros((0, 3)), energy=z, force=np.zeros((0, 3)), hessian=np.zeros((0, 3, 3)),
                     eigenvalues=np.zeros((0, 3)), frequencies=np.zeros((0, 3)), modes=np.zeros((0, 3, 3)),
                     lap_b2=z, laplacian_positive=z.astype(bool), stable=z.astype(bool))


def _attrs(units, long_name, **extra):
    return {"units": units, "long_name": long_name, **extra}


def find_equilibria(loops: Loops, sphere: Sphere, starts: Vec3Like, *, g: ScalarLike = G0,
                    method: str = "newton", max_iter: int = 100, rtol: float = 1e-10,
                    merge_tol: ScalarLike | None = None) -> xr.Dataset:
    """All equilibria reached by Newton from several starts, deduplicated and classified.

    **Arguments:**

    - `loops`, `sphere`, `g`: as in `energy`.
    - `starts`: starting points ``(n, 3)`` in metres (each sphere must clear the wires).
    - `method`: ``"newton"`` (default: finds saddles too) or ``"saddle_free"``.
    - `max_iter`, `rtol`: as in `equilibrium`.
    - `merge_tol`: two converged points closer than this (m) are one equilibrium; default
      ``1e-6`` times the largest loop radius.

    **Returns:** an `xarray.Dataset` with dimension ``equilibrium`` (sorted by energy) and
    variables `position` ``(equilibrium, axis)`` (m), `energy` (J), `eigenvalues`
    ``(equilibrium, mode)`` (N/m), `frequencies` (Hz, signed: negative = unstable
    direction), `modes` ``(equilibrium, axis, mode)``, `lap_b2` (T^2/m^2), `stable` (all
    eigenvalues > 0), `laplacian_positive` (lap_b2 > 0), `classification` ("stable" or
    "unstable"), `clearance` (m, distance to the nearest wire minus the sphere radius),
    `residual_force` (N) and `n_starts` (starts that converged there). Non-converged
    starts are dropped; attrs record how many.

    ```python
    >>> from invdesign.levitation import anti_helmholtz_trap, anti_helmholtz_sphere
    >>> ds = find_equilibria(anti_helmholtz_trap(), anti_helmholtz_sphere(),
    ...                      jnp.array([[0, 0, -2e-7], [0, 0, 2e-7]]))
    >>> ds.position.sel(axis="z").values  # the centre, sagged by ~1e-10 m
    array([-1.007...e-10])
    ```
    """
    check_types(loops, sphere)
    starts = np.asarray(starts, dtype=float) if v.is_concrete(starts) else starts
    if starts.ndim == 1:
        starts = starts[None, :]
    if starts.ndim != 2 or starts.shape[-1] != 3:
        raise ValueError(f"starts must have shape (n, 3), got {np.shape(starts)}")
    check_position("starts", starts, loops, sphere)
    check_g(g)
    _check_options(method, max_iter, rtol)
    # one compiled solve reused for every start (much cheaper to compile than a vmapped one)
    x_all, conv, clear = [], [], []
    for x0 in np.asarray(starts):
        x, info = _equilibrium(loops, sphere, jnp.asarray(x0), g, method == "saddle_free", int(max_iter), rtol)
        x_all.append(np.asarray(x))
        conv.append(bool(info.converged) and bool(np.all(np.isfinite(np.asarray(x)))))
        clear.append(float(info.clearance))
    if merge_tol is None:
        merge_tol = 1e-6 * float(np.max(np.asarray(loops.radius)))
    found = []  # [index of the representative start, count]
    for i in np.flatnonzero(conv):
        for entry in found:
            if np.linalg.norm(x_all[i] - x_all[entry[0]]) <= merge_tol:
                entry[1] += 1
                break
        else:
            found.append([i, 1])
    modes = [_trap_modes_jit(jnp.asarray(x_all[i]), loops, sphere, g) for i, _ in found]
    order = np.argsort([float(m.energy) for m in modes], kind="stable")
    found = [found[j] for j in order]
    modes = [modes[j] for j in order]
    if modes:
        modes = jax.tree_util.tree_map(lambda *a: np.stack([np.asarray(t) for t in a]), *modes)
    else:
        modes = _empty_modes()
    idx = np.asarray([i for i, _ in found], dtype=int)
    counts = np.asarray([c for _, c in found], dtype=int)
    converged = np.asarray(conv, dtype=bool)
    stable = np.asarray(modes.stable, dtype=bool)

    ds = xr.Dataset(
        {
            "position": (("equilibrium", "axis"), np.asarray(modes.position).reshape(-1, 3),
                         _attrs("m", "equilibrium position of the sphere centre")),
            "energy": ("equilibrium", np.asarray(modes.energy), _attrs("J", "energy U = m g z + k V |B|^2 / (2 mu0)")),
            "eigenvalues": (("equilibrium", "mode"), np.asarray(modes.eigenvalues),
                            _attrs("N/m", "eigenvalues of the Hessian of U (stiffness), ascending")),
            "frequencies": (("equilibrium", "mode"), np.asarray(modes.frequencies),
                            _attrs("Hz", "trap frequency sign(l) sqrt(|l|/m)/(2 pi); negative marks an unstable mode")),
            "modes": (("equilibrium", "axis", "mode"), np.asarray(modes.modes),
                      _attrs("1", "mode directions (unit eigenvectors of the Hessian, columns)")),
            "lap_b2": ("equilibrium", np.asarray(modes.lap_b2), _attrs("T^2/m^2", "Laplacian of |B|^2 (paper eq. 11)")),
            "stable": ("equilibrium", stable, _attrs("1", "all Hessian eigenvalues > 0 (sufficient for stability)")),
            "laplacian_positive": ("equilibrium", np.asarray(modes.laplacian_positive).astype(bool),
                                   _attrs("1", "lap |B|^2 > 0 (paper eq. 11, necessary for stability)")),
            "classification": ("equilibrium", np.where(stable, "stable", "unstable").astype(object),
                               _attrs("1", "stable iff all Hessian eigenvalues > 0")),
            "clearance": ("equilibrium", np.asarray(clear)[idx],
                          _attrs("m", "distance from the centre to the nearest wire minus the sphere radius")),
            "residual_force": ("equilibrium", np.linalg.norm(np.asarray(modes.force), axis=-1),
                               _attrs("N", "norm of the total force at the returned position")),
            "n_starts": ("equilibrium", counts,
                         _attrs("1", "number of starts that converged to this equilibrium")),
        },
        coords={"axis": ["x", "y", "z"], "mode": np.arange(3)},
        attrs={
            "sphere_radius_m": float(np.asarray(sphere.radius)),
            "sphere_mass_kg": float(np.asarray(sphere.mass)),
            "sphere_k": float(np.asarray(sphere.k)),
            "g_m_per_s2": float(np.asarray(g)),
            "n_starts_total": int(starts.shape[0]),
            "n_converged": int(converged.sum()),
            "settings": json.dumps({"method": method, "max_iter": int(max_iter), "rtol": float(rtol),
                                    "merge_tol_m": float(merge_tol)}),
        },
    )
    return ds
