"""Design problems on the coaxial stub cavity levitating a spherical magnet (tilted cavity).

Set-up (paper `n-loop-cavity-levitation.md`, sections III.2 and III.5, Table 1): a
superconducting coaxial quarter-wave stub cavity (axis z, floor at z = 0, height 55 mm;
cavity radius R, stub radius r_stub, stub height h_stub) lying on its side with its axis
raised `tilt` above the horizontal, so gravity pulls the magnet towards the lower side wall
(the -y side: `up = (0, cos tilt, sin tilt)` in the cavity frame). The magnet is the
paper's sphere (radius 0.5 mm, 3.67 mg; N52, Br = 1.47 T unless designed) with its moment
along +x, i.e. azimuthal about the stub for a magnet in the y-z plane (the paper's lowest-
energy orientation, beta = 90 deg, gamma = 0), held fixed in the cavity frame. The physics
is the ideal Meissner boundary-element model (model 4, `MeissnerModel`) on a coarse mesh
(1 mm elements near the stub, refined at its rim); the energy is
`response * U_mag + m g (up . x)` with an optional response factor < 1 for a cavity that
screens more weakly than an ideal one (see `fitted_response`).

Figures of merit of one design (`CavityDesign`, pure JAX, `jit`/`grad`/`vmap`-able):

- **global minimum** in the y-z plane: the argmin of the energy on a coarse grid over the
  vacuum (under `stop_gradient`) starts a damped Newton iteration with a fixed number of
  steps; the iteration is wrapped in `jax.lax.custom_root`, so derivatives of the position
  with respect to the design follow from the implicit function theorem on `grad U = 0`,
  `dq*/dp = -H^-1 d(grad U)/dp` (not from unrolling the iteration).
- **target**: the point `(y, z) = (-(r_stub + target_offset[0]), h_stub + target_offset[1])`
  beside the rim of the stub on the lower side, following the stub when it is designed.
  The default offsets (0.5 mm, 3.5 mm) put the magnet centre 3.5 mm above the stub top,
  just outside the rim on the lower side: about as close to the stub as the ideal (response
  1) Meissner screening lets the N52 sphere come in a tilted cavity (upright it floats about
  3 mm above the stub; tilted, the weaker axial pull of gravity lifts it), and it is
  reachable inside the default design box (near R = 6.5 mm, tilt = 20 deg) rather than on
  its boundary. With a weaker response (0.1-0.3) the magnet sits lower and further out;
  pass smaller offsets then (e.g. (0.8 mm, 1.5 mm)).
- **well depth**: the energy the magnet needs to leave its well within the y-z plane. On the
  grid (cells where the magnet would touch a wall are walls), the minimax escape level of
  the global-minimum cell (`minimax_escape_levels`: the lowest, over 4-connected grid
  paths, of the highest energy on the path) to the *exits*: every other local minimum of
  the grid (another well it could fall into) and the top row of the grid, `escape_height`
  (default 9 mm) above the stub top (where the magnet has left the stub's sensing region).
  The depth is the energy of the bottleneck cell minus the energy of the refined minimum.
  The bottleneck cell (its index) is held fixed under differentiation and the gradient flows
  through its energy at its grid position, so the depth is differentiable almost
  everywhere (it jumps where the bottleneck moves to another cell). A tilted cavity usually
  has a single well (paper Fig. 8); then the depth is the climb to the escape height, and
  grows with the tilt.
- **mechanical frequencies**: from the 3x3 Hessian of the energy in position at the
  minimum (x included: x = 0 is a symmetry plane, so the y-z minimum is a 3-D equilibrium),
  `f = sign(k) sqrt(|k| / m) / (2 pi)` for its eigenvalues, plus `f_r`, `f_phi`, `f_z`
  along the cylindrical directions (paper Fig. 8c, which reports 28, 4.3 and 11 Hz for its
  5 mm cavity and N-loop model).

Problems:

(a) `gradient_problem`: cavity radius R (4-7 mm) and tilt (2-30 deg), optionally the stub
    radius and height; minimise the distance of the global minimum from the target subject
    to a well depth of at least `min_depth` (20 nJ, the paper's contour spacing) and every
    mechanical frequency inside `[f_lo, f_hi]`. Solved with `gradient_search` (the command
    line uses Adam on the augmented Lagrangian: one value-and-gradient per step, where an
    L-BFGS line search would spend several).
(b) `pareto_problem`: NSGA-II over R, tilt, r_stub, h_stub and the magnet grade (a
    continuous `grade` in [-0.5, 3.5] rounded to the nearest of N35, N42, N50, N52: only
    these four magnets exist, paper Table 1); objectives: distance from the target (min),
    well depth (max), lowest mechanical frequency (max). The evaluation is the same pure JAX
    function at a fixed mesh layout (so `evaluate` stays `vmap`-able in principle), but the
    problem also carries an `elementwise` function (`JittedPoint`) and is searched through
    Dask, one individual per task: with jax/jaxlib 0.10.2 on a 2-core CPU, the batched
    (`vmap`) evaluation of a population intermittently deadlocks the XLA CPU runtime (all
    threads idle; seen with loops whose body differentiates through the boundary-element
    solve), while single-point evaluations run reliably. One jitted point uses every core.

Meshes: the element counts (`cavity_layout`) are fixed once, so the mesh is a smooth
function of R, r_stub and h_stub (elements stretch with the geometry); `(a)` takes the layout
of the initial design, `(b)` the layout of the largest gap in the box (no element larger
than `spacing`). The static integration pair lists of the boundary-element assembly are the
union of `near_pairs` over the corners of the design box.

`CAVITY` and `CAVITY_PARETO` are the command-line entries (`invdesign run cavity`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import invdesign  # noqa: F401  (x64)
from invdesign.cavity import (
    GRADES,
    PAPER_SPHERE,
    CoaxialCavity,
    MeissnerModel,
    SphereMagnet,
    cavity_layout,
    cavity_mesh,
    gravity_energy,
    moment_direction,
    near_pairs,
)
from invdesign.levitation import minimax_escape_levels, signed_frequency
from invdesign.optimize import (
    Constraint,
    DesignProblem,
    DesignSpace,
    Objective,
    Parameter,
    ProblemEntry,
    genetic_search,
    gradient_search,
)

__all__ = [
    "CAVITY_DEFAULTS",
    "GRADE_NAMES",
    "CavityDesign",
    "fitted_response",
    "JittedPoint",
    "gradient_problem",
    "pareto_problem",
    "summary_table",
    "CAVITY",
    "CAVITY_PARETO",
]

MM = 1e-3
NJ = 1e-9

CAVITY_DEFAULTS = dict(radius=7e-3, height=55e-3, stub_radius=2e-3, stub_height=5e-3)
"""The paper's cavity (Table 1): R = 7 mm, height 55 mm, stub radius 2 mm, stub height 5 mm."""

GRADE_NAMES = ("N35", "N42", "N50", "N52")
"""Magnet grades of the paper (Table 1), in the order of the `grade` parameter (0..3)."""

_GRADE_BR = np.array([GRADES[g] for g in GRADE_NAMES])

_OUTPUTS = {
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


def fitted_response(path="studies/figures/cavity_calibration.nc", attr="fitted_response_meissner") -> float:
    """The fitted response factor of the Meissner model, read from a calibration dataset.

    **Arguments:** `path` of the netCDF file written by the calibration study; `attr`, the
    dataset attribute holding the factor.

    **Returns:** the factor as a float (pass it as `response=` to the problems).
    """
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} does not exist (run the cavity calibration study first)")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        if attr not in ds.attrs:
            raise ValueError(f"{str(path)!r} has no attribute {attr!r}; attributes are {sorted(ds.attrs)}")
        value = float(ds.attrs[attr])
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attr} in {str(path)!r} must be finite and > 0, got {value}")
    return value


def _positive(name, value):
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0 (allowed range (0, inf)), got {value}")
    return value


@dataclasses.dataclass(frozen=True, eq=False)
class CavityDesign:
    """Figures of merit of a tilted stub cavity with a levitated sphere (pure JAX).

    Built once from concrete settings (mesh layout, pair lists, grid); calling it with a
    parameter dict (`radius`, `tilt`, optionally `stub_radius`, `stub_height`, `remanence`;
    missing geometry from `fixed`) returns a dict of scalars. Works under `jit`, `grad` and
    `vmap`.

    **Arguments:**

    - `layout_geometry`: dict of the cavity (keys of `CAVITY_DEFAULTS`) whose element counts
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
    """

    layout_geometry: dict
    corners: tuple
    fixed: dict
    spacing: float = 1.0e-3
    response: float = 1.0
    target_offset: tuple = (0.5e-3, 3.5e-3)
    escape_height: float = 9e-3
    grid: tuple = (21, 25)
    newton_steps: int = 10
    magnet: dict = dataclasses.field(default_factory=lambda: dict(PAPER_SPHERE))
    remanence: float = GRADES["N52"]
    margin: float = 0.05e-3

    def __post_init__(self):
        _positive("spacing", self.spacing)
        _positive("response", self.response)
        _positive("escape_height", self.escape_height)
        _positive("remanence", self.remanence)
        dy, dz = (float(t) for t in self.target_offset)
        if not (math.isfinite(dy) and math.isfinite(dz)):
            raise ValueError(f"target_offset must be two finite lengths (m), got {self.target_offset}")
        ny, nz = self.grid
        if not (int(ny) >= 5 and int(nz) >= 5):
            raise ValueError(f"grid must be two integers >= 5, got {self.grid}")
        if not (isinstance(self.newton_steps, (int, np.integer)) and self.newton_steps >= 1):
            raise ValueError(f"newton_steps must be an integer >= 1, got {self.newton_steps!r}")
        cav = CoaxialCavity(**self.layout_geometry)
        layout = cavity_layout(cav, self.spacing)
        pair_sets = []
        for geom in self.corners:
            mesh = cavity_mesh(CoaxialCavity(**geom), self.spacing, layout=layout)
            pair_sets.append(near_pairs(mesh))
        pairs = []
        for k in (0, 2):  # (near_i, near_j) and (mid_i, mid_j)
            ij = np.unique(np.concatenate([np.stack([p[k], p[k + 1]], 1) for p in pair_sets]), axis=0)
            pairs += [ij[:, 0].astype(np.int32), ij[:, 1].astype(np.int32)]
        object.__setattr__(self, "_layout", layout)
        object.__setattr__(self, "_pairs", tuple(pairs))
        object.__setattr__(self, "_direction", np.asarray(moment_direction(math.pi / 2, 0.0)))

    @property
    def n_elements(self) -> int:
        return self._layout.size

    # -- building blocks ---------------------------------------------------------------
    def geometry(self, p):
        g = {k: p.get(k, self.fixed.get(k, CAVITY_DEFAULTS[k])) for k in CAVITY_DEFAULTS}
        return {k: jnp.asarray(v, dtype=float) for k, v in g.items()}

    def build(self, p):
        """`(cavity, model, magnet)` for a parameter dict (traced or concrete)."""
        cav = CoaxialCavity(**self.geometry(p))
        mesh = cavity_mesh(cav, self.spacing, layout=self._layout)
        model = MeissnerModel(mesh, cav, pairs=self._pairs)
        magnet = SphereMagnet(**self.magnet, remanence=p.get("remanence", self.remanence))
        return cav, model, magnet

    def energy(self, model, magnet, tilt, x):
        """Total energy (J) at position `x` (3,)."""
        return self.response * model.magnetic_energy(magnet, x, self._direction) + gravity_energy(magnet, x, tilt)

    def grid_points(self, cav):
        ny, nz = self.grid
        a = self.magnet["radius"] + self.margin
        ys = jnp.linspace(-cav.radius + a, cav.radius - a, ny)
        zs = jnp.linspace(a, cav.stub_height + self.escape_height, nz)
        Z, Y = jnp.meshgrid(zs, ys, indexing="ij")
        return jnp.stack([jnp.zeros(Y.size), Y.ravel(), Z.ravel()], -1)

    # -- the figures of merit ----------------------------------------------------------
    def __call__(self, p):
        cav, model, magnet = self.build(p)
        tilt = jnp.asarray(p["tilt"], dtype=float)
        a = magnet.radius
        ny, nz = self.grid

        def e3(x, model=model, magnet=magnet, tilt=tilt):
            return self.energy(model, magnet, tilt, x)

        def e2(q, **kw):
            return e3(jnp.concatenate([jnp.zeros(1), q]), **kw)

        # coarse grid (no gradient: it only picks the start and the bottleneck cell)
        sg = jax.lax.stop_gradient
        model_s, magnet_s, tilt_s, cav_s = sg(model), sg(magnet), sg(tilt), sg(cav)
        pts = self.grid_points(cav_s)
        ok = cav_s.clearance(pts) >= a + self.margin * 0.999
        safe_pt = jnp.stack([jnp.zeros(()), jnp.zeros(()), cav_s.stub_height + 3.0 * MM])
        safe = jnp.where(ok[:, None], pts, safe_pt)
        u_mag = model_s.magnetic_energies(magnet_s, safe, self._direction)
        u = self.response * u_mag + gravity_energy(magnet_s, safe, tilt_s)
        u = jnp.where(ok & jnp.isfinite(u), u, jnp.inf)
        u2 = u.reshape(nz, ny)
        i0 = jnp.argmin(u)
        q0 = pts[i0, 1:]

        kw_s = dict(model=model_s, magnet=magnet_s, tilt=tilt_s)

        def fits(q):
            x = jnp.concatenate([jnp.zeros(q.shape[:-1] + (1,)), q], axis=-1)
            return cav_s.clearance(x) >= a

        def newton(_f, q_init):
            val = lambda q: e2(q, **kw_s)  # noqa: E731
            grad = jax.grad(val)
            hess = jax.hessian(val)
            ts = jnp.array([1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125])

            def body(_, q):
                g = grad(q)
                h = hess(q)
                lam, vec = jnp.linalg.eigh(0.5 * (h + h.T))
                lam = jnp.maximum(jnp.abs(lam), 1e-9 * jnp.max(jnp.abs(lam)) + 1e-30)
                step = -vec @ ((vec.T @ g) / lam)
                n = jnp.linalg.norm(step)
                step = step * jnp.minimum(1.0, 0.25 * MM / jnp.where(n > 0, n, 1.0))
                cand = q[None, :] + ts[:, None] * step[None, :]
                e_c = jax.vmap(val)(cand)
                # below 1 um from the minimum the energy change drowns in rounding: take the
                # full (quadratically convergent) Newton step there
                good = fits(cand) & ((e_c <= val(q)) | (n < 1e-6)) & jnp.isfinite(e_c)
                k = jnp.argmax(good)
                return jnp.where(jnp.any(good), cand[k], q)

            return jax.lax.fori_loop(0, self.newton_steps, body, q_init)

        def tangent_solve(lin, y):
            return jnp.linalg.solve(jax.jacfwd(lin)(y), y)

        q = jax.lax.custom_root(jax.grad(e2), sg(q0), newton, tangent_solve)
        x = jnp.concatenate([jnp.zeros(1), q])
        e_min = e3(x)
        residual = jnp.linalg.norm(jax.grad(e2)(sg(q), **kw_s))

        # mechanical frequencies from the Hessian in position
        h3 = jax.hessian(e3)(x)
        h3 = 0.5 * (h3 + h3.T)
        lam = jnp.linalg.eigvalsh(h3)
        mass = magnet.mass
        f_eig = signed_frequency(lam, mass)
        f_r = signed_frequency(h3[1, 1], mass)  # e_r = (0, +-1, 0) in the plane x = 0
        f_phi = signed_frequency(h3[0, 0], mass)
        f_z = signed_frequency(h3[2, 2], mass)

        # well depth: minimax escape level of the minimum's cell to the exits
        pad = jnp.pad(u2, 1, constant_values=jnp.inf)
        is_min = jnp.isfinite(u2)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                if di or dj:
                    is_min &= u2 < pad[1 + di : nz + 1 + di, 1 + dj : ny + 1 + dj]
        n_wells = jnp.sum(is_min)
        top = jnp.zeros((nz, ny), bool).at[-1, :].set(True)
        exits = (is_min | top) & (jnp.arange(nz * ny).reshape(nz, ny) != i0)
        levels = minimax_escape_levels(u2, exits)
        level = levels.reshape(-1)[i0]
        b = jnp.argmin(jnp.where(jnp.isfinite(u), jnp.abs(u - level), jnp.inf))
        # the cell is held fixed, its position follows the geometry (pts of the traced cavity),
        # so the gradient is that of the computed depth wherever the cell does not change
        e_b = e3(self.grid_points(cav)[b])
        depth = jnp.where(jnp.isfinite(level), jnp.maximum(e_b - e_min, 0.0), 0.0)

        dy, dz = self.target_offset
        target = jnp.stack([-(cav.stub_radius + dy), cav.stub_height + dz])
        dist = jnp.sqrt(jnp.sum((q - target) ** 2) + 1e-18)
        return {
            "distance": dist,
            "depth": depth,
            "f_min": f_eig[0],
            "f_max": f_eig[-1],
            "f_r": f_r,
            "f_phi": f_phi,
            "f_z": f_z,
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

    def model(self, p):
        """Concrete `(cavity, model, magnet)` at a design (for landscapes and checks)."""
        p = {k: float(v) for k, v in p.items()}
        return self.build(p)


class JittedPoint:
    """A plain-Python `elementwise` function: one design point through the jitted `evaluate`.

    `dict[str, float] -> dict[str, float]`; the compiled function is built on first use (and
    dropped when pickled, so Dask workers compile their own).
    """

    def __init__(self, evaluate):
        self.evaluate = evaluate
        self._fn = None

    def __call__(self, row):
        if self._fn is None:
            self._fn = jax.jit(self.evaluate)
        out = self._fn({k: jnp.asarray(v, dtype=float) for k, v in row.items()})
        return {k: float(v) for k, v in out.items()}

    def __getstate__(self):
        return {"evaluate": self.evaluate, "_fn": None}


def _corners(space_geom):
    """All corner geometries of a box `{key: (lo, hi)}` (keys of `CAVITY_DEFAULTS`)."""
    keys = list(space_geom)
    return tuple(dict(zip(keys, vals)) for vals in itertools.product(*(space_geom[k] for k in keys)))


def _options_json(**kw) -> str:
    return json.dumps({k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()}, sort_keys=True)


def gradient_problem(
    free_stub=False,
    *,
    target_offset=(0.5e-3, 3.5e-3),
    min_depth=20 * NJ,
    f_lo=4.0,
    f_hi=40.0,
    response=1.0,
    remanence=GRADES["N52"],
    spacing=1.0e-3,
    grid=(21, 25),
    escape_height=9e-3,
    initial=None,
    radius_bounds=(4e-3, 7e-3),
    tilt_bounds=(math.radians(2.0), math.radians(30.0)),
):
    """(a) Gradient design: put the global minimum at the target beside the stub rim.

    **Arguments:**

    - `free_stub`: also design the stub radius (1.5-2.5 mm) and height (3-7 mm); `True`,
      `False`, or a pair `(stub_radius, stub_height)` of booleans.
    - `target_offset`: `(dy, dz)` (m) of the target from the stub rim on the lower side:
      target `(y, z) = (-(r_stub + dy), h_stub + dz)`; default (0.5 mm, 3.5 mm).
    - `min_depth`: least well depth (J), default 20 nJ.
    - `f_lo`, `f_hi`: band (Hz) for every mechanical eigenfrequency, default [4, 40] Hz (the
      paper's tilted cavity: 4.3, 11 and 28 Hz).
    - `response`: response factor of the superconductor (1 = ideal Meissner; e.g.
      `fitted_response()` for the paper's real cavity).
    - `remanence`: Br of the sphere (T), default N52 (1.47 T).
    - `spacing`: element size near the stub (m); `grid`: `(n_y, n_z)` of the coarse grid;
      `escape_height`: top of the grid above the stub top (m).
    - `initial`: starting design `{name: value}` (default R = 5 mm, tilt = 10 deg, the
      paper's Fig. 8b, and the paper's stub); it also fixes the mesh layout.
    - `radius_bounds`, `tilt_bounds`: bounds of R (m) and tilt (rad).

    **Returns:** a `DesignProblem` named `cavity`: objective `distance` (m, min);
    constraints `depth_margin = 1 - depth / min_depth`, `freq_low = 1 - f_min / f_lo`,
    `freq_high = f_max / f_hi - 1` (all `<= 0`); outputs as in `CavityDesign`.
    """
    free_rs, free_hs = (free_stub, free_stub) if isinstance(free_stub, bool) else tuple(bool(b) for b in free_stub)
    min_depth = _positive("min_depth", min_depth)
    f_lo, f_hi = _positive("f_lo", f_lo), _positive("f_hi", f_hi)
    if not f_lo < f_hi:
        raise ValueError(f"f_lo must be < f_hi, got f_lo = {f_lo}, f_hi = {f_hi}")
    r_lo, r_hi = (float(b) for b in radius_bounds)
    t_lo, t_hi = (float(b) for b in tilt_bounds)
    if not (0 < t_lo < t_hi <= math.pi / 2):
        raise ValueError(f"tilt_bounds must satisfy 0 < lower < upper <= pi/2 (rad), got {tilt_bounds}")
    init = dict(radius=5e-3, tilt=math.radians(10.0), stub_radius=2e-3, stub_height=5e-3)
    init.update({k: float(v) for k, v in dict(initial or {}).items()})
    params = [
        Parameter("radius", r_lo, r_hi, "m", "cavity radius R", initial=init["radius"]),
        Parameter("tilt", t_lo, t_hi, "rad", "elevation of the cavity axis above horizontal",
                  initial=init["tilt"]),
    ]
    box = {"radius": (r_lo, r_hi)}
    if free_rs:
        params.append(Parameter("stub_radius", 1.5e-3, 2.5e-3, "m", "stub radius", initial=init["stub_radius"]))
        box["stub_radius"] = (1.5e-3, 2.5e-3)
    if free_hs:
        params.append(Parameter("stub_height", 3e-3, 7e-3, "m", "stub height", initial=init["stub_height"]))
        box["stub_height"] = (3e-3, 7e-3)
    if r_lo <= 2.5e-3 + 2 * PAPER_SPHERE["radius"]:
        raise ValueError(f"radius_bounds lower bound must exceed 3.5 mm (stub + magnet), got {r_lo}")
    space = DesignSpace(params)
    fixed = {k: init[k] for k in ("stub_radius", "stub_height") if k not in box}
    layout_geom = {k: init[k] for k in ("radius", "stub_radius", "stub_height")}
    corners = tuple({**fixed, **c} for c in _corners(box))
    design = CavityDesign(layout_geom, corners, fixed, spacing=spacing, response=response,
                          target_offset=tuple(target_offset), escape_height=escape_height, grid=tuple(grid),
                          remanence=remanence)

    def evaluate(p):
        out = design(p)
        res = {
            "distance": out.pop("distance"),
            "depth_margin": 1.0 - out["depth"] / min_depth,
            "freq_low": 1.0 - out["f_min"] / f_lo,
            "freq_high": out["f_max"] / f_hi - 1.0,
        }
        res.update(out)
        return res

    dy, dz = (float(t) for t in target_offset)
    problem = DesignProblem(
        "cavity",
        space,
        evaluate,
        objectives=[Objective("distance", "min", "m", "distance of the global minimum from the target", scale=MM)],
        constraints=[
            Constraint("depth_margin", "", f"1 - depth / {min_depth / NJ:g} nJ"),
            Constraint("freq_low", "", f"1 - f_min / {f_lo:g} Hz"),
            Constraint("freq_high", "", f"f_max / {f_hi:g} Hz - 1"),
        ],
        description=(f"tilted stub cavity, N-grade sphere Br={remanence:g} T, azimuthal moment, Meissner model "
                     f"(response {response:g}, {design.n_elements} elements): global minimum at "
                     f"(-(r_stub + {dy / MM:g} mm), h_stub + {dz / MM:g} mm), depth >= {min_depth / NJ:g} nJ, "
                     f"{f_lo:g} Hz <= f <= {f_hi:g} Hz"),
        outputs=_OUTPUTS,
    )
    problem.design = design
    problem.options = _options_json(kind="gradient", free_stub=[free_rs, free_hs], target_offset=[dy, dz],
                                    min_depth=min_depth, f_lo=f_lo, f_hi=f_hi, response=float(response),
                                    remanence=float(remanence), spacing=float(spacing), grid=list(grid),
                                    escape_height=float(escape_height), initial=init)
    return problem


def pareto_problem(
    *,
    target_offset=(0.5e-3, 3.5e-3),
    response=1.0,
    spacing=1.0e-3,
    grid=(21, 25),
    escape_height=9e-3,
):
    """(b) NSGA-II: distance from the target (min) vs well depth (max) vs lowest frequency (max).

    Design: R (4-7 mm), tilt (2-30 deg), stub radius (1.5-2.5 mm), stub height (3-7 mm) and
    `grade` in [-0.5, 3.5], rounded to the nearest grade index (0: N35 1.22 T, 1: N42
    1.35 T, 2: N50 1.44 T, 3: N52 1.47 T; only these four magnets exist). Constraint: the
    minimum is stable (`unstable = -f_min <= 0`). Other arguments as in `gradient_problem`.
    The mesh layout is that of the widest gap in the box (R = 7 mm, r_stub = 1.5 mm,
    h_stub = 7 mm), so no element is larger than `spacing`.
    """
    box = {"radius": (4e-3, 7e-3), "stub_radius": (1.5e-3, 2.5e-3), "stub_height": (3e-3, 7e-3)}
    params = [
        Parameter("radius", 4e-3, 7e-3, "m", "cavity radius R"),
        Parameter("tilt", math.radians(2.0), math.radians(30.0), "rad", "elevation of the cavity axis above horizontal"),
        Parameter("stub_radius", 1.5e-3, 2.5e-3, "m", "stub radius"),
        Parameter("stub_height", 3e-3, 7e-3, "m", "stub height"),
        Parameter("grade", -0.5, 3.5, "", "magnet grade index (rounded: 0 N35, 1 N42, 2 N50, 3 N52)"),
    ]
    layout_geom = dict(radius=7e-3, stub_radius=1.5e-3, stub_height=7e-3)
    design = CavityDesign(layout_geom, _corners(box), {}, spacing=spacing, response=response,
                          target_offset=tuple(target_offset), escape_height=escape_height, grid=tuple(grid))
    br = jnp.asarray(_GRADE_BR)

    def evaluate(p):
        idx = jnp.clip(jnp.round(p["grade"]), 0, len(GRADE_NAMES) - 1).astype(int)
        out = design({**p, "remanence": br[idx]})
        out["unstable"] = -out["f_min"]
        return out

    dy, dz = (float(t) for t in target_offset)
    problem = DesignProblem(
        "cavity-pareto",
        DesignSpace(params),
        evaluate,
        elementwise=JittedPoint(evaluate),
        objectives=[
            Objective("distance", "min", "m", "distance of the global minimum from the target", scale=MM),
            Objective("depth", "max", "J", "well depth (escape level minus minimum energy)", scale=10 * NJ),
            Objective("f_min", "max", "Hz", "lowest mechanical eigenfrequency", scale=10.0),
        ],
        constraints=[Constraint("unstable", "Hz", "minus the lowest mechanical frequency (stable: > 0)", scale=1.0)],
        description=(f"tilted stub cavity, sphere with azimuthal moment, Meissner model (response {response:g}, "
                     f"{design.n_elements} elements): Pareto front of distance from (-(r_stub + {dy / MM:g} mm), "
                     f"h_stub + {dz / MM:g} mm), well depth and lowest mechanical frequency"),
        outputs=_OUTPUTS,
    )
    problem.design = design
    problem.options = _options_json(kind="pareto", target_offset=[dy, dz], response=float(response),
                                    spacing=float(spacing), grid=list(grid), escape_height=float(escape_height))
    return problem


# ---------------------------------------------------------------------------------------
# command-line entries

QUICK = dict(spacing=1.5e-3, grid=(15, 19))
"""Coarser mesh and grid of `--quick` runs (about 330 elements instead of 660)."""


def _with_options(ds, problem):
    ds.attrs["problem_options"] = problem.options
    return ds


def _run_cavity(method, seed=0, quick=False, progress=True):
    if method == "genetic":
        return _run_pareto(method, seed=seed, quick=quick, progress=progress)
    problem = gradient_problem(**(QUICK if quick else {}))
    # Adam: one value-and-gradient per iteration (the search runs in fixed chunks of 64
    # iterations, and one evaluation with its gradient costs seconds)
    # (measured with 6 outer iterations at the defaults: the distance reaches 2 um after 128
    # steps and then jitters at 2-4 um, so 2 outer iterations, about 6 min on 2 cores)
    ds = gradient_search(problem, method="adam", learning_rate=0.1 if quick else 0.05, max_iter=64,
                         outer_iters=1 if quick else 2, seed=seed, progress=progress)
    return _with_options(ds, problem)


def _run_pareto(method="genetic", seed=0, quick=False, progress=True):
    problem = pareto_problem(**(QUICK if quick else {}))
    # one in-process Dask worker: the individuals run one at a time through the jitted
    # single-point evaluation (which itself uses every core), compiled once
    ds = genetic_search(problem, algorithm="nsga2", pop_size=16 if quick else 40, n_gen=3 if quick else 30,
                        seed=seed, progress=progress, backend="dask",
                        cluster_kwargs=dict(n_workers=1, threads_per_worker=1, processes=False,
                                            dashboard_address=None))
    return _with_options(ds, problem)


def _final_row(ds):
    if "iteration" in ds.dims:
        return ds.isel(iteration=-1)
    return ds.isel(solution=0)


def summary_table(ds) -> str:
    """The generic table of the final design, plus tilt in degrees and the grade."""
    from invdesign.optimize import summary_table as table

    row = _final_row(ds)
    lines = [table(ds)]
    if "tilt" in row:
        lines.append(f"  tilt = {math.degrees(float(row['tilt'])):.3f} deg")
    if "remanence" in row:
        br = float(row["remanence"])
        name = min(GRADES, key=lambda g: abs(GRADES[g] - br))
        lines.append(f"  magnet: {name} sphere (Br = {br:g} T), moment azimuthal (+x)")
    return "\n".join(lines)


def _problem_from_options(options: str):
    opts = json.loads(options)
    kind = opts.pop("kind")
    if kind == "pareto":
        return pareto_problem(**{k: opts[k] for k in ("target_offset", "response", "spacing", "grid", "escape_height")})
    opts["free_stub"] = tuple(opts["free_stub"])
    return gradient_problem(**opts)


def plot_landscape(ds, path, problem=None):
    """Energy landscape (nJ above the minimum, 20 nJ contours) of the final design with its
    minimum (white dot) and the target (red cross)."""
    import matplotlib.pyplot as plt

    from invdesign.cavity import landscape
    from invdesign.plot import savefig

    if problem is None:
        problem = _problem_from_options(ds.attrs["problem_options"])
    design = problem.design
    row = _final_row(ds)
    params = {n: float(row[n]) for n in problem.space.names}
    if "grade" in params:
        params["remanence"] = float(row["remanence"])
        del params["grade"]
    cav, model, magnet = design.model(params)
    R, rs, hs = float(cav.radius), float(cav.stub_radius), float(cav.stub_height)
    a = float(magnet.radius)
    y = np.linspace(-R + a + 1e-5, R - a - 1e-5, 61)
    z = np.linspace(a + 1e-5, hs + design.escape_height, 71)
    land = landscape(model, magnet, y, z, design._direction, tilt=params["tilt"], response=design.response)
    e = land["energy"].values / NJ
    e = e - np.nanmin(e)
    top = min(float(np.nanmax(e)), 400.0)
    fig, ax = plt.subplots(figsize=(5.5, 6))
    cs = ax.contourf(y / MM, z / MM, np.minimum(e, top), levels=40, cmap="viridis")
    ax.contour(y / MM, z / MM, e, levels=np.arange(0.0, top + 20.0, 20.0), colors="k", linewidths=0.4)
    fig.colorbar(cs, ax=ax, label="energy above the minimum [nJ]")
    ax.fill_between([-rs / MM, rs / MM], 0, hs / MM, color="0.6")
    ax.axvline(-R / MM, color="0.3", lw=2)
    ax.axvline(R / MM, color="0.3", lw=2)
    ax.plot(float(row["y_min"]) / MM, float(row["z_min"]) / MM, "wo", ms=7, label="global minimum")
    ax.plot(float(row["target_y"]) / MM, float(row["target_z"]) / MM, "rx", ms=9, mew=2, label="target")
    ax.set_xlabel("y (mm; lower side < 0)")
    ax.set_ylabel("z (mm)")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"R = {R / MM:.2f} mm, tilt = {math.degrees(params['tilt']):.1f} deg, "
                 f"Br = {float(magnet.remanence):g} T", fontsize=9)
    return savefig(fig, path)


def _plot_cavity(ds, out_dir):
    from invdesign.plot import plot_history

    if "iteration" not in ds.dims:
        return _plot_pareto(ds, out_dir)
    out_dir = Path(out_dir)
    name = ds.attrs["problem"]
    return [plot_history(ds, out_dir / f"{name}-history.png"),
            plot_landscape(ds, out_dir / f"{name}-landscape.png")]


def _plot_pareto(ds, out_dir):
    from invdesign.plot import plot_pareto

    out_dir = Path(out_dir)
    name = ds.attrs["problem"]
    return [
        plot_pareto(ds, out_dir / f"{name}-distance-depth.png", "distance", "depth", color="f_min"),
        plot_pareto(ds, out_dir / f"{name}-distance-frequency.png", "distance", "f_min", color="depth"),
        plot_landscape(ds, out_dir / f"{name}-landscape.png"),
    ]


CAVITY = ProblemEntry(
    name="cavity",
    description=("tilted stub cavity: cavity radius and tilt putting the N52 sphere's global minimum "
                 "beside the stub rim, depth >= 20 nJ, 4-40 Hz"),
    methods=("gradient", "genetic"),
    run=_run_cavity,
    plot=_plot_cavity,
    summary=summary_table,
)

CAVITY_PARETO = ProblemEntry(
    name="cavity-pareto",
    description="NSGA-II: distance from the stub rim vs well depth vs lowest frequency (R, tilt, stub, grade)",
    methods=("genetic",),
    run=_run_pareto,
    plot=_plot_pareto,
    summary=summary_table,
)
