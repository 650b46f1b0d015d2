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
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax.numpy as jnp

import invdesign  # noqa: F401  (x64)
from invdesign.levitation import (
    Sphere,
    anti_helmholtz_trap,
    axial_equilibrium,
    axis_stiffness,
    concentric_trap,
    escape_barrier,
    signed_frequency,
)
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
    "PAPER_SPHERE",
    "trap_outputs",
    "levitation_problem",
    "pareto_problem",
    "COIL_TRAP",
    "COIL_TRAP_ANTI_HELMHOLTZ",
    "COIL_TRAP_PARETO",
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
    )


def pareto_problem(k=1.0, sphere=PAPER_SPHERE, barrier_grid=40):
    """(b) Pareto front: lowest trap frequency (max) vs current (min) vs trap depth (max).

    Design: the two currents and the two radii of the concentric trap. Constraints: an
    equilibrium on the axis exists and is stable in every direction, the sphere clears the
    wires by 0.5 um, the outer radius exceeds the inner by 1 um.
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
    )


# ---------------------------------------------------------------------------------------
# command-line entries


def _run_coil_trap(method, seed=0, quick=False, progress=True, geometry="concentric"):
    problem = levitation_problem(geometry)
    if method == "gradient":
        return gradient_search(problem, method="lbfgs", max_iter=60 if quick else 300,
                               outer_iters=4 if quick else 20, seed=seed, progress=progress)
    # the +-20 nm height band is a thin feasible strip: the GA needs a large population
    return genetic_search(problem, algorithm="ga", pop_size=24 if quick else 100,
                          n_gen=5 if quick else 150, seed=seed, progress=progress)


def _plot_coil_trap(ds, out_dir):
    from invdesign.plot import plot_history, plot_pareto

    out_dir = Path(out_dir)
    if "iteration" in ds.dims:
        return [plot_history(ds, out_dir / f"{ds.attrs['problem']}-history.png")]
    return [plot_pareto(ds, out_dir / f"{ds.attrs['problem']}-population.png", "current", "freq_min",
                        color="height")]


def _run_pareto(method, seed=0, quick=False, progress=True):
    problem = pareto_problem()
    return genetic_search(problem, algorithm="nsga2", pop_size=24 if quick else 80,
                          n_gen=4 if quick else 60, seed=seed, progress=progress)


def _plot_pareto(ds, out_dir):
    from invdesign.plot import plot_pareto

    out_dir = Path(out_dir)
    return [
        plot_pareto(ds, out_dir / "coil-trap-pareto-freq-current.png", "current", "freq_min",
                    color="depth"),
        plot_pareto(ds, out_dir / "coil-trap-pareto-depth-current.png", "current", "depth",
                    color="freq_min"),
    ]


COIL_TRAP = ProblemEntry(
    name="coil-trap",
    description="least-current concentric chip trap levitating a 5 um sphere at 4 um, f >= 300 Hz",
    methods=("gradient", "genetic"),
    run=_run_coil_trap,
    plot=_plot_coil_trap,
)

COIL_TRAP_ANTI_HELMHOLTZ = ProblemEntry(
    name="coil-trap-anti-helmholtz",
    description="least-current anti-Helmholtz trap levitating a 0.5 um sphere 0.1 um above centre, f >= 20 kHz",
    methods=("gradient", "genetic"),
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
