"""Figures of merit of a tilted stub cavity as one differentiable function of its geometry.

`TiltedCavityDesign` evaluates, for a cavity radius, tilt, stub radius and height and a
magnet remanence, where the levitated sphere settles (the global minimum of its energy in
the y-z plane), how deep its well is and its mechanical frequencies, as pure JAX (`jit`,
`grad` and `vmap` work through it, including through the boundary-element solve):

- **global minimum**: the argmin of the energy on a coarse grid over the vacuum (under
  `stop_gradient`) starts the shared damped Newton solver (`invdesign._newton`, saddle-free,
  0.25 mm trust radius, backtracking that keeps the magnet clear of the walls, a fixed
  number of steps); `implicit_stationary_point` gives the derivatives of the minimum with
  respect to the design from the implicit-function theorem on ``grad U = 0``.
- **well depth** (`well_depth`): on the grid (cells where the magnet would touch a wall are
  walls) the minimax escape level of the global-minimum cell (`minimax_escape_levels`: the
  lowest, over 4-connected paths, of the highest energy on the path) to the exits: every
  other grid minimum (a well it could fall into) and the top row (`escape_height` above the
  stub top). The depth is the energy of the bottleneck cell minus that of the minimum; the
  bottleneck cell is held fixed under differentiation and its energy follows the geometry,
  so the depth is differentiable almost everywhere.
- **mechanical frequencies** (`frequency_summary`) from the 3x3 Hessian of the energy in
  position at the minimum (x = 0 is a symmetry plane, so the y-z minimum is a 3-D
  equilibrium).

The mesh layout (element counts) is fixed once, so the mesh is a smooth function of the
geometry; the static pair lists of the boundary-element assembly are the union of
`near_pairs` over a set of corner geometries (the corners of a design box).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Callable, ClassVar, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from .. import _validate as v
from .._newton import implicit_stationary_point
from .._types import Scalar, ScalarLike
from ..levitation import minimax_escape_levels
from ._bem import PairLists, near_pairs
from ._energy import _with_gravity, total_energy
from ._frequencies import frequency_summary
from ._geometry import CoaxialCavity
from ._magnets import GRADES, PAPER_SPHERE, SphereMagnet, moment_direction
from ._meissner import MeissnerModel
from ._mesh import Mesh, cavity_layout, cavity_mesh

__all__ = ["CAVITY_GEOMETRY", "TiltedCavityDesign", "box_corners", "union_pairs", "well_depth"]

CAVITY_GEOMETRY = dict(radius=7e-3, height=55e-3, stub_radius=2e-3, stub_height=5e-3)
"""The paper's cavity (Table 1): R = 7 mm, height 55 mm, stub radius 2 mm, stub height 5 mm."""

_MM = 1e-3

Design = Mapping[str, ScalarLike]
"""A design point ``{parameter: value}`` (`radius`, `tilt`, ...; floats or traced scalars)."""

EnergyGrid = Float[Array, "nz ny"]
"""Energies (J) on the coarse ``(n_z, n_y)`` grid, ``inf`` where the magnet does not fit."""

CellIndex = Int[ArrayLike, ""]
"""A flat index into the coarse grid (may be traced)."""

Count = Int[Array, ""]
"""A 0-d integer count."""

FlatIndex = Int[Array, ""]
"""A flat grid index as a 0-d integer array."""

EnergyAt = Callable[[FlatIndex], Scalar]
"""``flat index -> energy`` (J) of a grid cell at its traced position."""

GridPoints = Float[Array, "g 3"]
"""Points of the coarse grid ``(n_z n_y, 3)`` (m), z-major."""

PlanePoint = Float[Array, "2"]
"""A point ``(y, z)`` (m) in the plane x = 0."""


def box_corners(box: Mapping[str, tuple[float, float]]) -> tuple[dict[str, float], ...]:
    """All corner geometries ``{key: value}`` of a box ``{key: (lo, hi)}``."""
    keys = list(box)
    return tuple(dict(zip(keys, vals)) for vals in itertools.product(*(box[k] for k in keys)))


def union_pairs(meshes: Iterable[Mesh]) -> PairLists:
    """The union of `near_pairs` over meshes of one layout: ``(near_i, near_j, mid_i, mid_j)``.

    A boundary-element model traced with respect to its geometry needs static pair lists;
    the union over the corners of a design box covers every geometry inside it.
    """
    pair_sets = [near_pairs(m) for m in meshes]
    if not pair_sets:
        raise ValueError("meshes is empty: give at least one concrete mesh")
    out = []
    for k in (0, 2):  # (near_i, near_j) and (mid_i, mid_j)
        ij = np.unique(np.concatenate([np.stack([p[k], p[k + 1]], 1) for p in pair_sets]), axis=0)
        out += [ij[:, 0].astype(np.int32), ij[:, 1].astype(np.int32)]
    return tuple(out)


def well_depth(u_grid: EnergyGrid, i0: CellIndex, energy_at: EnergyAt,
               e_min: ScalarLike) -> tuple[Scalar, Count]:
    """Depth (J) of the well of grid cell `i0` and the number of grid minima.

    **Arguments:**

    - `u_grid`: energies ``(nz, ny)`` on the grid, ``inf`` where the magnet does not fit
      (under `stop_gradient`: it only locates the bottleneck).
    - `i0`: flat index of the global-minimum cell.
    - `energy_at`: ``flat index -> energy`` (J) of a cell at its traced position (the
      gradient of the depth flows through it).
    - `e_min`: energy of the refined minimum (J).

    **Returns:** ``(depth, n_wells)``: the bottleneck energy of the minimax escape path to
    another grid minimum or the top row, minus `e_min` (0 when there is no exit), and the
    number of grid cells lower than their eight neighbours.
    """
    nz, ny = u_grid.shape
    u = u_grid.reshape(-1)
    pad = jnp.pad(u_grid, 1, constant_values=jnp.inf)
    is_min = jnp.isfinite(u_grid)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                is_min &= u_grid < pad[1 + di : nz + 1 + di, 1 + dj : ny + 1 + dj]
    top = jnp.zeros((nz, ny), bool).at[-1, :].set(True)
    exits = (is_min | top) & (jnp.arange(nz * ny).reshape(nz, ny) != i0)
    level = minimax_escape_levels(u_grid, exits).reshape(-1)[i0]
    b = jnp.argmin(jnp.where(jnp.isfinite(u), jnp.abs(u - level), jnp.inf))
    depth = jnp.where(jnp.isfinite(level), jnp.maximum(energy_at(b) - e_min, 0.0), 0.0)
    return depth, jnp.sum(is_min)


@dataclasses.dataclass(frozen=True, eq=False)
class TiltedCavityDesign:
    """Figures of merit of a tilted stub cavity levitating a sphere with an azimuthal moment.

    The cavity (axis z, floor at z = 0) lies with its axis raised `tilt` above the
    horizontal, so gravity pulls the magnet towards the lower (-y) side wall; the sphere's
    moment is along +x (azimuthal about the stub in the y-z plane, the paper's lowest-energy
    orientation), fixed in the cavity frame; the physics is the Meissner model
    (`MeissnerModel`) with an optional response factor. Built once from concrete settings;
    calling it with a parameter dict (`radius`, `tilt`, optionally `stub_radius`,
    `stub_height`, `remanence`; missing geometry from `fixed`) returns a dict of scalars:
    `distance` (m, of the minimum from the target), `depth` (J), `f_min`, `f_max`, `f_r`,
    `f_phi`, `f_z` (Hz, signed), `y_min`, `z_min`, `height_above_stub`, `target_y`,
    `target_z` (m), `energy_min` (J), `gap` (m), `residual_force` (N), `n_wells`,
    `remanence` (T). Works under `jit`, `grad` and `vmap`.

    **Arguments:**

    - `layout_geometry`: dict of the cavity (keys of `CAVITY_GEOMETRY`) whose element counts
      fix the mesh layout.
    - `corners`: geometries whose `near_pairs` are merged (the corners of the design box).
    - `fixed`: values for the geometry keys that are not design parameters.
    - `spacing`: element size near the stub (m).
    - `response`: response factor (1 = ideal Meissner screening).
    - `target_offset`: `(dy, dz)` of the target from the stub rim (m): the target is
      `(-(r_stub + dy), h_stub + dz)`.
    - `escape_height`: height above the stub top of the grid's top row (m), an exit.
    - `grid`: `(n_y, n_z)` points of the coarse energy grid.
    - `newton_steps`: fixed number of damped Newton steps from the grid minimum.
    - `magnet`: dict with the sphere's `radius` (m) and `mass` (kg).
    - `remanence`: Br (T) when it is not a design parameter.
    - `margin`: extra clearance (m) of the grid points from the walls.
    - `solver`: the BEM solve of `MeissnerModel` (`"lu"`, or `"inverse"` for populations
      evaluated under `vmap`).
    """

    OUTPUTS: ClassVar[dict[str, tuple[str, str]]] = {
        "y_min": ("m", "y of the global energy minimum (lower side < 0)"),
        "z_min": ("m", "height of the global energy minimum above the floor"),
        "height_above_stub": ("m", "height of the minimum above the stub top"),
        "target_y": ("m", "y of the target point"),
        "target_z": ("m", "z of the target point"),
        "depth": ("J", "well depth (escape level minus minimum energy)"),
        "energy_min": ("J", "total energy at the minimum"),
        "f_r": ("Hz", "mechanical frequency along r (signed)"),
        "f_phi": ("Hz", "mechanical frequency along phi (signed)"),
        "f_z": ("Hz", "mechanical frequency along z (signed)"),
        "f_min": ("Hz", "lowest mechanical eigenfrequency (signed: < 0 unstable)"),
        "f_max": ("Hz", "highest mechanical eigenfrequency"),
        "gap": ("m", "gap between the magnet surface and the nearest wall at the minimum"),
        "residual_force": ("N", "|grad U| in the y-z plane at the refined minimum"),
        "n_wells": ("", "number of local minima on the grid"),
        "remanence": ("T", "remanence Br of the magnet"),
    }
    """Units and long names of the outputs other than `distance` (for result datasets)."""

    layout_geometry: dict[str, float]
    corners: tuple[Mapping[str, float], ...]
    fixed: dict[str, float]
    spacing: float = 1.0e-3
    response: float = 1.0
    target_offset: tuple[float, float] = (0.5e-3, 3.5e-3)
    escape_height: float = 9e-3
    grid: tuple[int, int] = (21, 25)
    newton_steps: int = 10
    magnet: dict[str, float] = dataclasses.field(default_factory=lambda: dict(PAPER_SPHERE))
    remanence: float = GRADES["N52"]
    margin: float = 0.05e-3
    solver: str = "lu"

    def __post_init__(self) -> None:
        v.check_positive("spacing", self.spacing)
        v.check_positive("response", self.response)
        v.check_positive("escape_height", self.escape_height)
        v.check_positive("remanence", self.remanence)
        if self.solver not in ("lu", "inverse"):
            raise ValueError(f'solver must be "lu" or "inverse", got {self.solver!r}')
        dy, dz = (float(t) for t in self.target_offset)
        if not (math.isfinite(dy) and math.isfinite(dz)):
            raise ValueError(f"target_offset must be two finite lengths (m), got {self.target_offset}")
        ny, nz = self.grid
        if not (int(ny) >= 5 and int(nz) >= 5):
            raise ValueError(f"grid must be two integers >= 5, got {self.grid}")
        if not (isinstance(self.newton_steps, (int, np.integer)) and self.newton_steps >= 1):
            raise ValueError(f"newton_steps must be an integer >= 1, got {self.newton_steps!r}")
        unknown = set(self.layout_geometry) - set(CAVITY_GEOMETRY)
        if unknown:
            raise ValueError(f"layout_geometry has unknown keys {sorted(unknown)}; allowed: {sorted(CAVITY_GEOMETRY)}")
        layout = cavity_layout(CoaxialCavity(**self.layout_geometry), self.spacing)
        meshes = [cavity_mesh(CoaxialCavity(**geom), self.spacing, layout=layout) for geom in self.corners]
        object.__setattr__(self, "_layout", layout)
        object.__setattr__(self, "_pairs", union_pairs(meshes))
        object.__setattr__(self, "direction", np.asarray(moment_direction(math.pi / 2, 0.0)))

    @property
    def n_elements(self) -> int:
        """Number of boundary elements of the mesh."""
        return self._layout.size

    def geometry(self, p: Design) -> dict[str, Scalar]:
        """The cavity dimensions (m) of a parameter dict, missing ones from `fixed` or the paper."""
        g = {k: p.get(k, self.fixed.get(k, CAVITY_GEOMETRY[k])) for k in CAVITY_GEOMETRY}
        return {k: jnp.asarray(v, dtype=float) for k, v in g.items()}

    def build(self, p: Design) -> tuple[CoaxialCavity, MeissnerModel, SphereMagnet]:
        """`(cavity, model, magnet)` for a parameter dict (traced or concrete)."""
        cav = CoaxialCavity(**self.geometry(p))
        mesh = cavity_mesh(cav, self.spacing, layout=self._layout)
        model = MeissnerModel(mesh, cav, pairs=self._pairs, solver=self.solver)
        magnet = SphereMagnet(**self.magnet, remanence=p.get("remanence", self.remanence))
        return cav, model, magnet

    def model(self, p: Design) -> tuple[CoaxialCavity, MeissnerModel, SphereMagnet]:
        """Concrete `(cavity, model, magnet)` at a design (for landscapes and checks)."""
        return self.build({k: float(v) for k, v in p.items()})

    def grid_points(self, cav: CoaxialCavity) -> GridPoints:
        """The coarse grid ``(n_z n_y, 3)`` in the plane x = 0 (z-major)."""
        ny, nz = self.grid
        a = self.magnet["radius"] + self.margin
        ys = jnp.linspace(-cav.radius + a, cav.radius - a, ny)
        zs = jnp.linspace(a, cav.stub_height + self.escape_height, nz)
        Z, Y = jnp.meshgrid(zs, ys, indexing="ij")
        return jnp.stack([jnp.zeros(Y.size), Y.ravel(), Z.ravel()], -1)

    def target(self, cav: CoaxialCavity) -> PlanePoint:
        """The target ``(y, z)`` (m) beside the stub rim on the lower side."""
        dy, dz = self.target_offset
        return jnp.stack([-(cav.stub_radius + dy), cav.stub_height + dz])

    def __call__(self, p: Design) -> dict[str, Scalar]:
        cav, model, magnet = self.build(p)
        tilt = jnp.asarray(p["tilt"], dtype=float)
        a = magnet.radius
        ny, nz = self.grid

        def e3(x, model=model, magnet=magnet, tilt=tilt):
            return total_energy(model, magnet, x, self.direction, tilt=tilt, response=self.response)

        def in_plane(q):
            return jnp.concatenate([jnp.zeros(q.shape[:-1] + (1,)), q], axis=-1)

        # coarse grid (no gradient: it only picks the start and the bottleneck cell)
        sg = jax.lax.stop_gradient
        model_s, magnet_s, tilt_s, cav_s = sg(model), sg(magnet), sg(tilt), sg(cav)
        pts = self.grid_points(cav_s)
        ok = cav_s.clearance(pts) >= a + self.margin * 0.999
        safe_pt = jnp.stack([jnp.zeros(()), jnp.zeros(()), cav_s.stub_height + 3.0 * _MM])
        safe = jnp.where(ok[:, None], pts, safe_pt)
        u_mag = model_s.magnetic_energies(magnet_s, safe, self.direction)
        u = _with_gravity(u_mag, magnet_s, safe, tilt_s, self.response)
        u = jnp.where(ok & jnp.isfinite(u), u, jnp.inf)
        i0 = jnp.argmin(u)

        def e2(q):
            return e3(in_plane(q))

        def e2_s(q):
            return e3(in_plane(q), model_s, magnet_s, tilt_s)

        q, _ = implicit_stationary_point(
            jax.grad(e2), pts[i0, 1:], value_fn=e2_s, max_iter=self.newton_steps,
            trust_radius=0.25 * _MM, eig_floor=1e-9, eig_floor_abs=1e-30,
            # below 1 um from the minimum the energy change drowns in rounding: take the
            # full (quadratically convergent) Newton step there
            line_search=True, max_halvings=6, armijo=0.0, accept_below=1e-6,
            feasible=lambda q: cav_s.clearance(in_plane(q)) >= a)
        x = in_plane(q)
        e_min = e3(x)
        residual = jnp.linalg.norm(jax.grad(e2_s)(sg(q)))
        freq = frequency_summary(jax.hessian(e3)(x), magnet.mass, x)
        depth, n_wells = well_depth(u.reshape(nz, ny), i0, lambda b: e3(self.grid_points(cav)[b]), e_min)
        target = self.target(cav)
        return {
            "distance": jnp.sqrt(jnp.sum((q - target) ** 2) + 1e-18),
            "depth": depth,
            "f_min": freq["eigenfrequencies"][0],
            "f_max": freq["eigenfrequencies"][-1],
            "f_r": freq["f_r"],
            "f_phi": freq["f_phi"],
            "f_z": freq["f_z"],
            "y_min": q[0],
            "z_min": q[1],
            "height_above_stub": q[1] - cav.stub_height,
            "target_y": target[0],
            "target_z": target[1],
            "energy_min": e_min,
            "gap": cav.clearance(x) - a,
            "residual_force": residual,
            "n_wells": n_wells.astype(float),
            "remanence": magnet.remanence,
        }
