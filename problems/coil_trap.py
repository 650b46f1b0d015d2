"""Design problems on two-loop chip traps for a levitated perfect diamagnet.

Geometry: the concentric chip trap of the paper (two coaxial loops in the plane z = 0,
inner and outer radius, opposite currents) levitating a niobium microsphere (perfect
diamagnet, paper section 5.2: radius 5 um, mass 4.487e-12 kg) on the axis above the chip.

(a) `levitation_problem`: choose the two currents (optionally the two radii) so that the
    sphere levitates stably at a target height with every trap frequency above a floor, at
    the least total current. The equilibrium height is found inside `evaluate` and
    differentiated implicitly, so gradients of the height and of the trap frequencies with
    respect to the design go through the equilibrium itself.
(b) `pareto_problem`: NSGA-II trade-off of the lowest trap frequency (max) against the total
    current (min) and the trap depth, the energy barrier to escape (max), over the currents
    and radii of the concentric trap.

`COIL_TRAP`, `COIL_TRAP_ANTI_HELMHOLTZ` and `COIL_TRAP_PARETO` are the command-line entries
(`invdesign run coil-trap`); their table is the generic `invdesign.optimize.summary_table`.
Besides the search history they draw the designed trap: the sphere's energy on the x-z plane
around the final design with wires, equilibrium, trap frequencies and escape level
(`plot_trap_map`, numbers from `trap_map`), and for the Pareto run the front with its
extremes and knee marked (`plot_pareto_front`, `pareto_picks`) and the knee design's map.
"""

from __future__ import annotations

import functools
import json
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import invdesign  # noqa: F401  (x64)
from invdesign.fields import Loops
from invdesign.levitation import (
    Sphere,
    anti_helmholtz_trap,
    axial_equilibrium,
    axis_stiffness,
    concentric_trap,
    energy,
    escape_barrier,
    minimax_escape_levels,
    signed_frequency,
)
from invdesign.optimize import (
    Constraint,
    DesignProblem,
    DesignSpace,
    Objective,
    Parameter,
    ProblemEntry,
    final,
    genetic_search,
    gradient_search,
    hybrid_search,
)

__all__ = [
    "COIL_TRAP",
    "COIL_TRAP_ANTI_HELMHOLTZ",
    "COIL_TRAP_PARETO",
    "PAPER_SPHERE",
    "levitation_problem",
    "pareto_picks",
    "pareto_problem",
    "plot_pareto_front",
    "plot_trap_map",
    "problem_from_dataset",
    "trap_map",
    "trap_outputs",
]

PAPER_SPHERE = dict(radius=5e-6, mass=4.487e-12)
"""The niobium sphere of the paper's concentric trap (section 5.2)."""

UM = 1e-6
MIN_RADIUS_GAP = 1e-6
"""The outer loop radius exceeds the inner one by at least this (m)."""
MIN_WIRE_GAP = 0.5e-6
"""Smallest allowed gap between the 5 um sphere's surface and a wire at equilibrium (m);
scaled with the sphere radius for other spheres."""

_OUTPUTS = {
    "height": ("m", "equilibrium height of the sphere centre"),
    "freq_axial": ("Hz", "axial trap frequency (negative: unstable)"),
    "freq_radial": ("Hz", "radial trap frequency (negative: unstable)"),
    "freq_min": ("Hz", "lowest trap frequency"),
    "clearance": ("m", "gap between sphere surface and nearest wire"),
    "depth": ("J", "trap depth (lowest escape barrier)"),
}


def trap_outputs(loops, sphere, z_min, z_max, with_barrier=False, barrier_grid=48):
    """Equilibrium on the axis and its figures of merit (pure JAX, vmappable).

    **Returns:** dict with `height` (m), `found` (1/0), `freq_axial`, `freq_radial`,
    `freq_min` (Hz, signed: negative means unstable), `clearance` (m, distance from the
    sphere surface to the nearest wire), and `depth` (J, if `with_barrier`).
    """
    z_eq, found = axial_equilibrium(loops, sphere, z_min, z_max)
    x_eq = jnp.stack([0.0, 0.0, z_eq])
    # on the axis the Hessian is diagonal and follows from the closed-form axis field
    # (`axis_stiffness`, equal to `energy_hessian` there); third derivatives through it for
    # the gradients compile in seconds where the elliptic-integral Hessian took 40 s
    k_z, k_r = axis_stiffness(z_eq, loops, sphere)
    f_z = signed_frequency(k_z, sphere.mass)
    f_r = signed_frequency(k_r, sphere.mass)
    out = {
        "height": z_eq,
        "found": jnp.asarray(found, float),
        "freq_axial": f_z,
        "freq_radial": f_r,
        "freq_min": jnp.minimum(f_z, f_r),
        "clearance": loops.distance_to_wire(x_eq) - sphere.radius,
    }
    if with_barrier:
        r_out = jnp.max(loops.radius)
        depth = escape_barrier(loops, sphere, z_eq, r_max=2.0 * r_out, z_min=-r_out,
                               z_max=z_max, n=barrier_grid)
        # no exit reachable without the sphere touching a wire: count it as no depth at all
        # (touching a conductor is a loss, not confinement)
        out["depth"] = jnp.where(jnp.isfinite(depth), depth, 0.0)
    return out


PAPER_SPHERE_AH = dict(radius=0.5e-6, mass=4.487e-15)
"""The niobium sphere of the paper's anti-Helmholtz trap (section 5.1)."""


def _concentric_design(free):
    params = [
        Parameter("current_inner", 1e-3, 0.2, "A", "inner loop current", log=True, initial=0.038),
        Parameter("current_outer", 1e-3, 0.2, "A", "outer loop current (opposite sense)", log=True,
                  initial=0.038),
    ]
    if free:
        params += [
            Parameter("inner_radius", 3e-6, 12e-6, "m", "inner loop radius", initial=6e-6),
            Parameter("outer_radius", 6e-6, 20e-6, "m", "outer loop radius", initial=9e-6),
        ]

    def build(p):
        a_in, a_out = p.get("inner_radius", 6e-6), p.get("outer_radius", 9e-6)
        loops = concentric_trap(p["current_inner"], a_in, a_out, current_outer=p["current_outer"])
        extra = {"radius_order": a_in + MIN_RADIUS_GAP - a_out} if free else {}
        return loops, (0.2 * UM, 20 * UM), extra

    cons = [Constraint("radius_order", "m", "inner radius + 1 um - outer radius", scale=UM)] if free else []
    return params, build, cons


def _anti_helmholtz_design(free):
    params = [
        Parameter("current_bottom", 1e-3, 0.2, "A", "lower loop current", log=True, initial=0.030),
        Parameter("current_top", 1e-3, 0.2, "A", "upper loop current (opposite sense)", log=True,
                  initial=0.030),
    ]
    if free:
        params += [
            Parameter("radius", 0.5e-6, 3e-6, "m", "loop radius", initial=1e-6),
            Parameter("spacing", 0.5e-6, 3e-6, "m", "distance between the loops", initial=1e-6),
        ]

    def build(p):
        spacing = p.get("spacing", 1e-6)
        loops = anti_helmholtz_trap(p["current_bottom"], p.get("radius", 1e-6), spacing,
                                    current_top=p["current_top"])
        return loops, (-0.45 * spacing, 0.45 * spacing), {}

    return params, build, []


_GEOMETRIES = {
    # name: (design builder, sphere, target height, frequency floor, height tolerance)
    "concentric": (_concentric_design, PAPER_SPHERE, 4e-6, 300.0, 20e-9),
    "anti-helmholtz": (_anti_helmholtz_design, PAPER_SPHERE_AH, 0.1e-6, 20e3, 5e-9),
}


def levitation_problem(geometry="concentric", target_height=None, freq_floor=None, height_tol=None,
                       k=1.0, free_geometry=False, sphere=None):
    """(a) Least-current currents (and geometry) for stable levitation at a target height.

    **Arguments:**

    - `geometry`: `"concentric"` (two loops in z = 0, the paper's 12/18 um chip trap; design
      the two currents, and with `free_geometry` the two radii) or `"anti-helmholtz"` (two
      equal loops at z = -+spacing/2, the paper's 2 um trap; design the two currents, and
      with `free_geometry` the radius and the spacing).
    - `target_height`: wanted equilibrium height of the sphere centre (m); default 4 um
      above the chip (concentric) or 0.1 um above the mid-plane (anti-Helmholtz).
    - `freq_floor`: every trap frequency must be at least this (Hz); default 300 Hz
      (concentric) or 20 kHz (anti-Helmholtz).
    - `height_tol`: accepted |height - target| (m); default 20 nm or 5 nm.
    - `k`: 1 for a perfect diamagnet (chi = -1), 3/2 for a Meissner-state sphere.
    - `free_geometry`: also design the loop geometry.
    - `sphere`: dict with the sphere's `radius` (m) and `mass` (kg); default the paper's.

    **Returns:** a `DesignProblem` with objective `current` (A, min) and constraints
    `height_error`, `freq_margin`, `no_equilibrium`, `wire_gap` (and `radius_order`), all
    `<= 0`. The equilibrium height is found inside `evaluate` and differentiated implicitly.
    Its `model` maps a design to ``(loops, sphere)`` and its `options` (JSON) rebuild it
    (`problem_from_dataset`), which the design pictures use.
    """
    if geometry not in _GEOMETRIES:
        raise ValueError(f"geometry must be one of {sorted(_GEOMETRIES)}, got {geometry!r}")
    design, sphere0, target0, floor0, tol0 = _GEOMETRIES[geometry]
    sphere = sphere0 if sphere is None else sphere
    target_height = target0 if target_height is None else float(target_height)
    freq_floor = floor0 if freq_floor is None else float(freq_floor)
    height_tol = tol0 if height_tol is None else float(height_tol)
    if not (freq_floor > 0 and height_tol > 0):
        raise ValueError(f"freq_floor and height_tol must be > 0, got {freq_floor}, {height_tol}")
    particle = Sphere(radius=sphere["radius"], mass=sphere["mass"], k=k)
    params, build, geometry_cons = design(free_geometry)
    currents = [q.name for q in params if q.units == "A"]

    def evaluate(p):
        loops, (z_min, z_max), extra = build(p)
        out = trap_outputs(loops, particle, z_min, z_max)
        res = {
            "current": sum(p[c] for c in currents),
            "height_error": ((out["height"] - target_height) / height_tol) ** 2 - 1.0,
            "freq_margin": 1.0 - out["freq_min"] / freq_floor,
            "no_equilibrium": 0.5 - out["found"],
            "wire_gap": MIN_WIRE_GAP * sphere["radius"] / PAPER_SPHERE["radius"] - out["clearance"],
            **extra,
        }
        res.update({k_: v for k_, v in out.items() if k_ != "found"})
        return res

    gap = MIN_WIRE_GAP * sphere["radius"] / PAPER_SPHERE["radius"]
    cons = [
        Constraint("height_error", "", "((height - target) / tol)^2 - 1"),
        Constraint("freq_margin", "", "1 - f_min / f_floor"),
        Constraint("no_equilibrium", "", "0.5 - found (no stable equilibrium on the axis)"),
        Constraint("wire_gap", "m", f"{gap / UM:g} um - gap between sphere surface and wire",
                   scale=sphere["radius"] / 5),
        *geometry_cons,
    ]

    def trap(p):
        return build(p)[0], particle

    options = {"kind": "levitation", "geometry": geometry, "target_height": target_height,
               "freq_floor": freq_floor, "height_tol": height_tol, "k": float(k),
               "free_geometry": bool(free_geometry),
               "sphere": {key: float(val) for key, val in sphere.items()}}
    return DesignProblem(
        "coil-trap" if geometry == "concentric" else f"coil-trap-{geometry}",
        DesignSpace(params),
        evaluate,
        objectives=[Objective("current", "min", "A", "total current of the two loops",
                              scale=0.05)],
        constraints=cons,
        description=(f"{geometry} chip trap: levitate a {sphere['radius'] / UM:g} um sphere "
                     f"({sphere['mass']:.4g} kg, k={k}) at z = {target_height / UM:g} um "
                     f"+- {height_tol * 1e9:g} nm with all trap frequencies >= {freq_floor:g} Hz "
                     f"at least current"),
        outputs=_OUTPUTS,
        model=trap,
        options=json.dumps(options, sort_keys=True),
    )


def pareto_problem(k=1.0, sphere=PAPER_SPHERE, barrier_grid=40):
    """(b) Pareto front: lowest trap frequency (max) vs current (min) vs trap depth (max).

    Design: the two currents and the two radii of the concentric trap. Constraints: an
    equilibrium on the axis exists and is stable in every direction, the sphere clears the
    wires by 0.5 um, the outer radius exceeds the inner by 1 um. `model` and `options` as
    in `levitation_problem`.
    """
    particle = Sphere(radius=sphere["radius"], mass=sphere["mass"], k=k)
    params = [
        Parameter("current_inner", 5e-3, 0.1, "A", "inner loop current", log=True),
        Parameter("current_outer", 5e-3, 0.1, "A", "outer loop current (opposite sense)", log=True),
        Parameter("inner_radius", 3e-6, 12e-6, "m", "inner loop radius"),
        Parameter("outer_radius", 8e-6, 20e-6, "m", "outer loop radius"),
    ]
    z_min, z_max = 0.2 * UM, 30 * UM

    def evaluate(p):
        loops = concentric_trap(p["current_inner"], p["inner_radius"], p["outer_radius"],
                                current_outer=p["current_outer"])
        out = trap_outputs(loops, particle, z_min, z_max, with_barrier=True,
                           barrier_grid=barrier_grid)
        return {
            "freq_min": out["freq_min"],
            "current": p["current_inner"] + p["current_outer"],
            "depth": out["depth"],
            "no_equilibrium": 0.5 - out["found"],
            "unstable": -out["freq_min"],
            "wire_gap": MIN_WIRE_GAP - out["clearance"],
            "radius_order": p["inner_radius"] + MIN_RADIUS_GAP - p["outer_radius"],
            "height": out["height"],
            "freq_axial": out["freq_axial"],
            "freq_radial": out["freq_radial"],
        }

    def trap(p):
        return concentric_trap(p["current_inner"], p["inner_radius"], p["outer_radius"],
                               current_outer=p["current_outer"]), particle

    return DesignProblem(
        "coil-trap-pareto",
        DesignSpace(params),
        evaluate,
        objectives=[
            Objective("freq_min", "max", "Hz", "lowest trap frequency", scale=100.0),
            Objective("current", "min", "A", "total current |I_in| + |I_out|", scale=0.05),
            Objective("depth", "max", "J", "trap depth (lowest escape barrier)", scale=1e-17),
        ],
        constraints=[
            Constraint("no_equilibrium", "", "0.5 - found"),
            Constraint("unstable", "Hz", "minus the lowest trap frequency (stable: all > 0)", scale=10.0),
            Constraint("wire_gap", "m", "0.5 um - gap between sphere surface and wire", scale=UM),
            Constraint("radius_order", "m", "inner radius + 1 um - outer radius", scale=UM),
        ],
        description="concentric chip trap: Pareto front of trap frequency, current and trap depth",
        outputs=_OUTPUTS,
        model=trap,
        options=json.dumps({"kind": "pareto", "k": float(k), "barrier_grid": int(barrier_grid),
                            "sphere": {key: float(val) for key, val in sphere.items()}},
                           sort_keys=True),
    )


# ---------------------------------------------------------------------------------------
# pictures of the designs


def problem_from_dataset(ds):
    """The `DesignProblem` a coil-trap result was found with, rebuilt from its attrs.

    Uses the dataset attr `problem_options` (written by every search); results without it
    get the command-line defaults for their problem name (geometry from the name, free
    geometry when the radii are parameters).
    """
    options = ds.attrs.get("problem_options", "")
    if options:
        opts = json.loads(options)
        if opts.pop("kind") == "pareto":
            return pareto_problem(**opts)
        return levitation_problem(**opts)
    name = ds.attrs["problem"]
    if name == "coil-trap-pareto":
        return pareto_problem()
    geometry = "concentric" if name == "coil-trap" else name[len("coil-trap-"):]
    return levitation_problem(geometry, free_geometry=len(json.loads(ds.attrs["parameters"])) > 2)


def _wires(loops):
    """Where the loops cut the x-z plane: ``[(x, z, direction)]``, direction +1 when the
    current there runs along +y (into the page of an x-z plot), -1 along -y."""
    radius = np.atleast_1d(np.asarray(loops.radius, dtype=float))
    shape = radius.shape
    centre = np.broadcast_to(np.asarray(loops.center, dtype=float), shape + (3,)).reshape(-1, 3)
    normal_z = np.broadcast_to(np.asarray(loops.normal, dtype=float), shape + (3,)).reshape(-1, 3)[:, 2]
    current = np.broadcast_to(np.asarray(loops.current, dtype=float), shape).reshape(-1)
    out = []
    for a, c, nz, i in zip(radius.reshape(-1), centre, normal_z, current):
        sense = float(np.sign(i * nz))  # counter-clockwise about +z: +y at x = +a
        out += [(float(c[0] + a), float(c[2]), sense), (float(c[0] - a), float(c[2]), -sense)]
    return out


def _flat_loops(loops):
    """The same loops with every field spelled out per loop (one compile of `_energy_grid`
    serves every two-loop trap, whatever broadcasting its builder used)."""
    radius = jnp.ravel(jnp.asarray(loops.radius, dtype=float))
    shape = (radius.size, 3)
    return Loops(radius=radius, current=jnp.broadcast_to(loops.current, radius.shape).ravel(),
                 center=jnp.broadcast_to(loops.center, shape), normal=jnp.broadcast_to(loops.normal, shape))


_escape_levels = jax.jit(minimax_escape_levels)


@jax.jit
def _energy_grid(loops, particle, pts, x_eq):
    """`energy` at the points (NaN where the sphere would touch a wire), at `x_eq`, and
    whether the sphere at `x_eq` clears the wires: one compiled call."""
    free = loops.distance_to_wire(pts) >= particle.radius
    u = energy(jnp.where(free[..., None], pts, x_eq), loops, particle)
    clear = loops.distance_to_wire(x_eq) >= particle.radius
    return jnp.where(free, u, jnp.nan), energy(x_eq, loops, particle), clear


def trap_map(ds, solution=0, n=81, problem=None):
    """What `plot_trap_map` draws: the sphere's energy on the x-z plane around a final design.

    The design (the last iteration of a gradient search, or entry `solution` of the final
    set of a genetic one, see `invdesign.optimize.final`) is rebuilt with the problem's own
    loop builder (`problem_from_dataset`).

    **Arguments:**

    - `ds`: a coil-trap search result; `solution`: which final design.
    - `n`: grid points per direction (odd, so the axis x = 0 is on the grid).
    - `problem`: the problem (default rebuilt from `ds`).

    **Returns:** dict with `x`, `z` (m, 1-D), `energy` (J, shape ``(n, n)`` over ``(z, x)``,
    ``U - U(equilibrium)``, NaN where the sphere would touch a wire), `equilibrium`
    ``(0, height)`` (m, the dataset's `height`), `wires` (`[(x, z, direction)]`, see the
    picture's legend), `freq_axial`, `freq_radial` (Hz, the dataset's), `depth` (J: the
    escape barrier over the drawn box computed on this grid as
    `invdesign.levitation.escape_barrier` does, ``inf`` when no exit is reachable without
    touching a wire), `saddle` ``(x, z)`` (m, the bottleneck cell of the escape, x >= 0;
    None without a finite depth), `params` (the design), `sphere_radius` (m) and, for
    results that carry it, `depth_objective` (J, the dataset's `depth`).
    """
    if n < 5 or not n % 2:
        raise ValueError(f"n must be an odd integer >= 5, got {n!r}")
    problem = problem if problem is not None else problem_from_dataset(ds)
    row = final(ds).isel(solution=int(solution))
    params = {name: float(row[name]) for name in problem.space.names}
    loops, particle = problem.model(params)
    z_eq = float(row["height"])
    radius = np.asarray(loops.radius, dtype=float)
    z_loops = [w[1] for w in _wires(loops)]
    r_out = float(np.max(radius))
    half = 1.6 * r_out
    z_lo = min(min(z_loops), z_eq) - 0.8 * r_out
    z_hi = max(max(z_loops), z_eq) + 0.8 * r_out
    x = np.linspace(-half, half, n)
    z = np.linspace(z_lo, z_hi, n)
    xx, zz = np.meshgrid(x, z)
    pts = np.stack([xx, np.zeros_like(xx), zz], axis=-1)
    a_sphere = float(particle.radius)
    u, u_eq, clear = (np.asarray(a) for a in _energy_grid(_flat_loops(loops), particle, pts,
                                                          jnp.array([0.0, 0.0, z_eq])))
    d = u - (float(u_eq) if clear else np.nan)
    # escape over the drawn box, as `escape_barrier` does it (minimax flood on the r = x >= 0
    # half, exits on the outer, top and bottom edges), on this grid so the contour matches
    depth, saddle = np.nan, None
    if clear:
        half_plane = d[:, n // 2:]
        exits = np.zeros(half_plane.shape, dtype=bool)
        exits[:, -1] = exits[0, :] = exits[-1, :] = True
        levels = np.asarray(_escape_levels(half_plane, exits))
        depth = float(levels[int(np.argmin(np.abs(z - z_eq))), 0])
        if np.isfinite(depth):
            # the bottleneck: the cell whose energy is the escape level
            iz, ix = np.unravel_index(np.nanargmin(np.abs(half_plane - depth)), half_plane.shape)
            saddle = (float(x[n // 2 + ix]), float(z[iz]))
    out = {
        "x": x, "z": z, "energy": d, "equilibrium": (0.0, z_eq), "wires": _wires(loops),
        "freq_axial": float(row["freq_axial"]), "freq_radial": float(row["freq_radial"]),
        "depth": depth, "saddle": saddle, "params": params, "sphere_radius": a_sphere,
    }
    if "depth" in row:
        out["depth_objective"] = float(row["depth"])
    return out


def _fmt(value, units):
    from invdesign.plot import display_scale

    factor, label = display_scale([value], units)
    return f"{value * factor:.3g} {label}".strip()


def _design_text(params):
    return ", ".join(f"{name} = {_fmt(val, 'A' if name.startswith('current') else 'm')}"
                     for name, val in params.items())


def plot_trap_map(ds, path, solution=0, label=None, problem=None):
    """Energy map of a final coil-trap design on the x-z plane, written as a PNG.

    Colour: ``U - U(equilibrium)`` of the sphere (clipped to ``-1..3`` trap depths, or to
    percentiles when the trap has no finite depth); grey: the sphere would touch a wire;
    magenta dashed contour and diamonds: the escape energy ``U(equilibrium) + depth`` and
    the escape saddle; circles: the wires (x: current into the page, dot: out of it); red
    star and dotted circle: the equilibrium and the sphere there. The title gives the trap frequencies and the design.
    See `trap_map` for the numbers. Returns the path.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle, Patch
    from matplotlib.transforms import ScaledTranslation

    from invdesign.plot import display_scale, savefig

    m = trap_map(ds, solution=solution, problem=problem)
    x, z, d, depth = m["x"], m["z"], m["energy"], m["depth"]
    has_depth = bool(np.isfinite(depth) and depth > 0)
    finite = d[np.isfinite(d)]
    if has_depth:
        lo, hi = max(float(np.min(finite)), -depth), 3.0 * depth
    elif finite.size:
        lo, hi = (float(q) for q in np.percentile(finite, [2.0, 90.0]))
    else:
        lo, hi = -1.0, 1.0
    if not hi > lo:
        hi = lo + max(abs(lo), 1e-30)
    fe, ue = display_scale([hi - lo], "J")
    fl, ul = display_scale([x[-1]], "m")
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    ax.set_facecolor("0.75")
    levels = np.linspace(lo, hi, 41) * fe
    cs = ax.contourf(x * fl, z * fl, np.clip(d, lo, hi) * fe, levels=levels, cmap="viridis")
    ax.contour(x * fl, z * fl, d * fe, levels=levels[::5], colors="k", linewidths=0.3)
    fig.colorbar(cs, ax=ax, label=f"U - U(equilibrium) [{ue}]")
    handles = [Patch(facecolor="0.75", label="sphere would touch a wire")]
    if has_depth:
        ax.contour(x * fl, z * fl, d * fe, levels=[depth * fe], colors="m", linewidths=1.6,
                   linestyles="--")
        handles.append(Line2D([], [], color="m", ls="--", lw=1.6,
                              label=f"escape level (depth {_fmt(depth, 'J')})"))
    if m["saddle"] is not None:
        xs, zs = m["saddle"]
        ax.plot([-xs * fl, xs * fl], [zs * fl, zs * fl], "D", color="m", mec="w", ms=7)
        handles.append(Line2D([], [], marker="D", ls="", color="m", mec="w", label="escape saddle"))
    for xw, zw, sense in m["wires"]:
        ax.plot(xw * fl, zw * fl, "o", ms=11, mfc="white", mec="k", mew=1.2)
        ax.plot(xw * fl, zw * fl, "kx" if sense > 0 else "k.", ms=7 if sense > 0 else 5, mew=1.5)
    handles += [Line2D([], [], marker="x", ls="", color="k", mfc="white", label="wire, current into page"),
                Line2D([], [], marker=".", ls="", color="k", label="wire, current out of page")]
    x_eq, z_eq = m["equilibrium"]
    ax.add_patch(Circle((x_eq * fl, z_eq * fl), m["sphere_radius"] * fl, fill=False, ec="r", ls=":", lw=1.2))
    handles.append(Line2D([], [], marker="*", ls=":", color="r", ms=12,
                          label=f"equilibrium z = {_fmt(z_eq, 'm')} (sphere dotted)"))
    ax.plot(x_eq * fl, z_eq * fl, "*", color="r", mec="w", ms=15)
    ax.set_xlim(x[0] * fl, x[-1] * fl)
    ax.set_ylim(z[0] * fl, z[-1] * fl)
    ax.set_aspect("equal")
    ax.set_xlabel(f"x [{ul}]")
    ax.set_ylabel(f"z [{ul}]")
    # below the axis labels, whatever height the equal aspect gives the axes
    below = ax.transAxes + ScaledTranslation(0.0, -40 / 72, fig.dpi_scale_trans)
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=below,
              ncol=2, fontsize=7, facecolor="0.85")
    depth_text = (f"depth {_fmt(depth, 'J')}" if has_depth else
                  "walled in (no exit without touching a wire)" if np.isinf(depth) else "no barrier")
    if "depth_objective" in m:
        depth_text += f" (objective {_fmt(m['depth_objective'], 'J')})"
    title = ds.attrs.get("problem", "coil trap") + (f", {label}" if label else "")
    lines = [f"{title}: f_axial = {_fmt(m['freq_axial'], 'Hz')}, f_radial = {_fmt(m['freq_radial'], 'Hz')}",
             depth_text, *textwrap.wrap(_design_text(m["params"]), 70)]
    ax.set_title("\n".join(lines), fontsize=8)
    return savefig(fig, path)


_PICK_WORDS = {"current": "least current", "freq_min": "highest frequency", "depth": "deepest"}


def pareto_picks(ds):
    """Chosen designs of a Pareto set: the best of each objective and the knee
    (`invdesign.plot.pareto_picks`: feasible solutions only when there are any; the knee is
    nearest the ideal point with every objective scaled to ``[0, 1]`` over the set).

    **Returns:** ``{label: index on dim solution}``, labels ``"least current"``,
    ``"highest frequency"``, ``"deepest"`` (``"best NAME"`` for other objectives) and
    ``"knee"``; empty for an empty set.
    """
    from invdesign.plot import pareto_picks as picks

    return picks(ds, labels=_PICK_WORDS)


def plot_pareto_front(ds, path):
    """The Pareto front of `coil-trap-pareto` with the chosen designs of `pareto_picks` marked.

    Two panels: lowest trap frequency and trap depth against total current, coloured by
    the third objective; the last population in grey; the picks lettered, their designs
    listed below (`invdesign.plot.plot_pareto_front`). Returns the path.
    """
    from invdesign.plot import plot_pareto_front as plot_front

    return plot_front(ds, path, "current", ["freq_min", "depth"], picks=pareto_picks(ds),
                      color=["depth", "freq_min"], columns=["freq_min", "current", "depth"])


# ---------------------------------------------------------------------------------------
# command-line entries


def _run_coil_trap(method, seed=0, quick=False, progress=True, geometry="concentric"):
    problem = levitation_problem(geometry)
    if method == "gradient":
        return gradient_search(problem, method="lbfgs", max_iter=60 if quick else 300,
                               outer_iters=4 if quick else 20, seed=seed, progress=progress)
    if method == "hybrid":
        # a short GA for the basin (40 x 20 = 800 evaluations), then the L-BFGS polish
        return hybrid_search(problem, algorithm="ga", pop_size=16 if quick else 40, n_gen=4 if quick else 20,
                             method="lbfgs", seed=seed, progress=progress,
                             gradient_kwargs=dict(max_iter=60 if quick else 300, outer_iters=4 if quick else 20))
    # the +-20 nm height band is a thin feasible strip: the GA needs a large population
    return genetic_search(problem, algorithm="ga", pop_size=24 if quick else 100,
                          n_gen=5 if quick else 150, seed=seed, progress=progress)


def _plot_coil_trap(ds, out_dir):
    from invdesign.plot import plot_history, plot_pareto

    out_dir, name = Path(out_dir), ds.attrs["problem"]
    if "iteration" in ds.dims:
        pngs = [plot_history(ds, out_dir / f"{name}-history.png")]
    else:
        pngs = [plot_pareto(ds, out_dir / f"{name}-population.png", "current", "freq_min",
                            color="height")]
    return pngs + [plot_trap_map(ds, out_dir / f"{name}-trap.png")]


def _run_pareto(method, seed=0, quick=False, progress=True):
    problem = pareto_problem()
    return genetic_search(problem, algorithm="nsga2", pop_size=24 if quick else 80,
                          n_gen=4 if quick else 60, seed=seed, progress=progress)


def _plot_pareto(ds, out_dir):
    from invdesign.plot import plot_pareto

    out_dir = Path(out_dir)
    pngs = [
        plot_pareto(ds, out_dir / "coil-trap-pareto-freq-current.png", "current", "freq_min",
                    color="depth"),
        plot_pareto(ds, out_dir / "coil-trap-pareto-depth-current.png", "current", "depth",
                    color="freq_min"),
        plot_pareto_front(ds, out_dir / "coil-trap-pareto-front.png"),
    ]
    knee = pareto_picks(ds).get("knee")
    if knee is not None:
        pngs.append(plot_trap_map(ds, out_dir / "coil-trap-pareto-knee-trap.png", solution=knee,
                                  label="knee design"))
    return pngs


COIL_TRAP = ProblemEntry(
    name="coil-trap",
    description="least-current concentric chip trap levitating a 5 um sphere at 4 um, f >= 300 Hz",
    methods=("gradient", "genetic", "hybrid"),
    run=_run_coil_trap,
    plot=_plot_coil_trap,
)

COIL_TRAP_ANTI_HELMHOLTZ = ProblemEntry(
    name="coil-trap-anti-helmholtz",
    description="least-current anti-Helmholtz trap levitating a 0.5 um sphere 0.1 um above centre, f >= 20 kHz",
    methods=("gradient", "genetic", "hybrid"),
    run=functools.partial(_run_coil_trap, geometry="anti-helmholtz"),
    plot=_plot_coil_trap,
)

COIL_TRAP_PARETO = ProblemEntry(
    name="coil-trap-pareto",
    description="NSGA-II: trap frequency vs current vs trap depth of the concentric chip trap",
    methods=("genetic",),
    run=_run_pareto,
    plot=_plot_pareto,
)
