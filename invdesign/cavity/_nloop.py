"""Model 3: the paper's N-loop model (section II.3, appendix A), and its factory.

Every surface element of radius ``rho`` carries a loop current ``i = -B_n rho / mu0`` from
the magnet's normal field at its centre; the loops' fields at the magnet give
``U = -1/2 sum mu . B_loop``. The elements do not see each other and the energy is not a
converged discretisation of anything: for a plane it scales with the element radius
(``U / U_image`` is about ``0.65 rho / h``), so results belong to one mesh resolution
(`PAPER_NLOOP_SPACING`).
"""

from __future__ import annotations

import jax.numpy as jnp

from .._types import Point3Like, Scalar, Vec3Like
from ..constants import MU0
from ..fields import loop_field
from ._geometry import CoaxialCavity
from ._magnets import Magnet, _unit
from ._mesh import ElementScalar, Mesh, MeshLayout, cavity_mesh
from ._model import Energies, PositionsLike, _check_energy_call, _MeshModel

__all__ = ["NLoopModel", "PAPER_NLOOP_SPACING", "nloop_model"]

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


class NLoopModel(_MeshModel):
    """The paper's N-loop model on a mesh of circular elements (section II.3, appendix A).

    **Arguments:**

    - `mesh`: the surface elements (their radii are the loop radii).
    - `geometry`: optional `CoaxialCavity`, used for exact wall-distance checks.
    """

    mesh: Mesh
    geometry: CoaxialCavity | None = None

    def loop_currents(self, magnet: Magnet, position: Point3Like, direction: Point3Like) -> ElementScalar:
        """Loop current (A) of every element, ``i = -B_n rho / mu0``."""
        b = magnet.field(self.mesh.centre, position, direction)
        bn = jnp.sum(b * self.mesh.normal, axis=-1)
        return -bn * self.mesh.radius / MU0

    def magnetic_energy(self, magnet: Magnet, position: Point3Like, direction: Point3Like,
                        normalize: bool = True) -> Scalar:
        _check_energy_call(self, magnet, position, direction, normalize)
        d = jnp.asarray(direction, dtype=float)
        scale = jnp.linalg.norm(d) if not normalize else 1.0
        d_u = _unit(d) if normalize else d / jnp.where(scale > 0, scale, 1.0)
        i = self.loop_currents(magnet, position, d_u) * scale
        b = loop_field(position, self.mesh.radius, i, self.mesh.centre, self.mesh.normal)
        return -0.5 * magnet.moment * jnp.dot(d_u * scale, b)

    def magnetic_energies(self, magnet: Magnet, positions: PositionsLike, direction: Vec3Like, *,
                          batch_size: int = 32) -> Energies:
        return super().magnetic_energies(magnet, positions, direction, batch_size=batch_size)


def nloop_model(cavity: CoaxialCavity, spacing: float = PAPER_NLOOP_SPACING, *,
                layout: MeshLayout | None = None) -> NLoopModel:
    """The paper's N-loop model (model 3) on equal elements over the whole cavity.

    `layout` (from `cavity_layout(other, spacing, graded=False, rim=False)`) fixes the
    element counts, so that nearby geometries share array shapes and compiled functions.
    """
    return NLoopModel(cavity_mesh(cavity, spacing, graded=False, rim=False, layout=layout), cavity)
