"""The interface of the superconducting response models, and the position checks.

Every model gives the magnetic energy ``U_mag`` of a magnet (position, moment direction) in
front of a superconducting surface and the signed distance of points to that surface;
`total_energy` adds gravity. `CavityModel` is abstract (an `equinox.Module` with abstract
methods); the four concrete models (`ImageModel`, `TwoLoopModel`, `NLoopModel`,
`MeissnerModel`) are final. The mesh-based models share `_MeshModel`, whose `mesh` and
`geometry` are abstract variables that the concrete models declare as fields.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .. import _validate as v
from .._types import BatchScalar, Mat3, Point3Like, Scalar, Vec3Like
from ._geometry import CoaxialCavity, _mesh_distance
from ._magnets import Magnet
from ._mesh import Mesh

__all__ = ["CavityModel", "check_direction", "check_magnet", "check_position", "clearance"]

PositionsLike = Float[ArrayLike, "p 3"]
"""Magnet positions ``(P, 3)`` (m) for the batched energies."""

Energies = Float[Array, " p"]
"""One energy (J) per position."""


class CavityModel(eqx.Module):
    """Abstract base of the superconducting response models.

    A model implements `magnetic_energy` (the energy ``U_mag`` of a magnet in front of the
    superconductor) and `surface_distance` (signed distance to the superconductor). The
    batched `magnetic_energies` and the dipole `response_tensor` are built on
    `magnetic_energy`; a model may specialise them for speed.
    """

    @abc.abstractmethod
    def magnetic_energy(self, magnet: Magnet, position: Point3Like, direction: Point3Like,
                        normalize: bool = True) -> Scalar:
        """Magnetic energy ``U_mag`` (J) of `magnet` at `position` with its moment along `direction`.

        **Arguments:**

        - `magnet`: `SphereMagnet` or `DiskMagnet`.
        - `position`: magnet centre ``(3,)`` (m) in the cavity frame.
        - `direction`: moment direction ``(3,)``.
        - `normalize`: if True (default) `direction` is normalised to a unit vector. If
          False it is used as given: the energy is then the quadratic form ``U(m)`` of the
          moment vector ``m = |mu| direction``, i.e. ``|direction|^2`` times the energy of
          the unit direction; `response_tensor` polarises this form.

        Called with concrete values, the concrete models raise ValueError naming
        `position` if the magnet overlaps the superconductor (inside a wall or the stub,
        below the floor or a plate, touching a surface) and naming `direction` if it is not
        a finite nonzero 3-vector; TypeError naming `magnet` for anything but a magnet.
        Inside `jit`/`grad` traces these checks are skipped (see `check_position`).
        """

    @abc.abstractmethod
    def surface_distance(self, points: Vec3Like) -> BatchScalar:
        """Signed distance (m) from points ``(..., 3)`` to the superconductor; negative behind its surface."""

    def magnetic_energies(self, magnet: Magnet, positions: PositionsLike, direction: Vec3Like, *,
                          batch_size: int = 256) -> Energies:
        """`magnetic_energy` at many positions ``(P, 3)`` with one direction (or ``(P, 3)``)."""
        _check_energy_call(self, magnet, positions, direction, name="positions")
        pos = jnp.asarray(positions, dtype=float)
        d = jnp.broadcast_to(jnp.asarray(direction, dtype=float), pos.shape)
        return jax.lax.map(lambda a: self.magnetic_energy(magnet, a[0], a[1]), (pos, d), batch_size=batch_size)

    def response_tensor(self, magnet: Magnet, position: Point3Like) -> Mat3:
        """Symmetric 3x3 ``W`` with ``U_mag = d^T W d`` for a unit direction ``d`` (dipole response).

        By polarisation of the quadratic form ``U(m)`` of an unnormalised moment vector.
        """
        eye = jnp.eye(3)
        u = lambda m: self.magnetic_energy(magnet, position, m, normalize=False)  # noqa: E731
        diag = jnp.stack([u(eye[a]) for a in range(3)])
        w = jnp.diag(diag)
        for a, b in ((0, 1), (0, 2), (1, 2)):
            off = 0.5 * (u(eye[a] + eye[b]) - diag[a] - diag[b])
            w = w.at[a, b].set(off).at[b, a].set(off)
        return w


class _MeshModel(CavityModel):
    """Base of the models on a surface `Mesh`: wall distances from the exact geometry if given."""

    mesh: eqx.AbstractVar[Mesh]
    geometry: eqx.AbstractVar[CoaxialCavity | None]

    def surface_distance(self, points: Vec3Like) -> BatchScalar:
        if self.geometry is not None:
            return self.geometry.clearance(points)
        return _mesh_distance(self.mesh, points)


def clearance(model: CavityModel, magnet: Magnet, positions: Vec3Like) -> BatchScalar:
    """Gap (m) between the magnet's bounding sphere and the superconductor (negative: overlap)."""
    return model.surface_distance(positions) - magnet.extent


def check_direction(direction, name: str = "direction", nonzero: bool = True) -> None:
    """Raise ValueError naming `name` unless `direction` is ``(..., 3)``, finite and (if `nonzero`) nonzero."""
    if nonzero:
        v.check_nonzero_vectors(name, direction)
    else:
        v.check_vectors(name, direction)


def check_magnet(magnet, name: str = "magnet") -> None:
    """Raise TypeError naming `name` unless `magnet` is a `SphereMagnet` or `DiskMagnet`."""
    from ._magnets import DiskMagnet, SphereMagnet

    if not isinstance(magnet, (SphereMagnet, DiskMagnet)):
        raise TypeError(f"{name} must be a SphereMagnet or DiskMagnet, got {type(magnet).__name__}: {magnet!r}")


def _check_energy_call(model, magnet, position, direction, normalize=True, name="position"):
    """The eager checks of a `magnetic_energy(ies)` call (skipped for traced values, see `_validate`).

    `magnet` a magnet; `direction` finite ``(..., 3)`` and nonzero when it is normalised (a
    zero vector has no direction; with ``normalize=False`` it is a moment scale and may be
    0); `position` ``(..., 3)``, finite and with the magnet clear of the superconductor.
    """
    check_magnet(magnet)
    check_direction(direction, nonzero=normalize)
    check_position(model, magnet, position, name=name)


def check_position(model: CavityModel, magnet: Magnet, position: Vec3Like, name: str = "position") -> None:
    """Raise ValueError naming `name` if the magnet at `position` overlaps the superconductor.

    Eager only: with traced values (inside `jit`, `grad`, `vmap`) it does nothing, because
    the solvers deliberately evaluate trial points near and beyond walls and reject them by
    `clearance`. Compiled code that needs the guarantee checks `clearance(...) >= 0` itself.
    """
    if not v.is_concrete(position, model, magnet):
        return
    v.check_vectors(name, position)
    p = np.asarray(position, dtype=float)
    dist = np.asarray(model.surface_distance(jnp.asarray(p)))
    ext = float(magnet.extent)
    if np.any(dist < 0):
        where = (
            "inside the superconductor (below the floor or a plate, inside the stub or a wall)"
            if isinstance(model, _MeshModel) else "behind the superconducting surface"
        )
        raise ValueError(
            f"{name} = {p.tolist()} m lies {where} (distance {float(np.min(dist)):.3g} m to the vacuum side)"
        )
    if np.any(dist < ext):
        raise ValueError(
            f"{name} = {p.tolist()} m puts the magnet into a wall: its centre is {float(np.min(dist)):.3g} m from the "
            f"superconductor but the magnet reaches {ext:.3g} m (allowed: distance >= {ext:.3g} m)"
        )
