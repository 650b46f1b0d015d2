"""A hypothesis sweep over the public entry points with random shapes, signs, zeros, NaN and inf.

The contract (DESIGN "Bad input"): every call either returns a finite result or raises
ValueError/TypeError whose message names one of the call's arguments; never an internal
error, never a NaN. The documented exceptions, each pinned by its own tests elsewhere:

- `ellipk`/`ellipe`/`ellipked` follow scipy: NaN for ``m > 1`` or ``m = NaN`` (outside the
  domain, `tests/test_special.py`), ``K(1) = inf``, ``E(-inf) = inf``;
- a field point exactly on a wire (loop) or at the dipole gives ``inf``;
- under `jit` the loop checks are run-time errors (RuntimeError/ValueError naming the
  argument, `equinox.error_if`); observation points are not checked there (NaN in, NaN out);
- `equilibrium` may raise `EquilibriumError` (Newton did not converge from that start).

Values come from a small pool (signed zeros, +-1, mm-scale lengths, NaN, +-inf) plus a few
non-numeric junk values; shapes from a small fixed set, so that the eager JAX operations
compile once per shape and the whole file runs in well under a minute on one core. The
number of calls tried (the "sweep size") is printed at the end of the module and stored in
the pytest cache under ``invdesign/api_sweep``.
"""

import collections
import math
import re
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import invdesign  # noqa: F401
from invdesign.cavity import (
    DiskMagnet,
    ImageModel,
    SphereMagnet,
    TwoLoopModel,
    mechanical_frequencies,
    total_energy,
)
from invdesign.fields import Loops, dipole_field, loop_field, loop_vector_potential
from invdesign.levitation import (
    EquilibriumError,
    Sphere,
    anti_helmholtz_trap,
    axial_equilibrium,
    concentric_trap,
    energy,
    equilibrium,
    force,
)
from invdesign.micromag import Grid, Material, exchange_length
from invdesign.optimize import DesignSpace, Parameter
from invdesign.special import ellipe, ellipk, ellipked

NAN, INF = math.nan, math.inf
POOL = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 1e-3, -1e-3, 3e-3, 7e-3, 0.1]
"""Finite scalar values: zeros, signs, mm scales (NaN and +-inf are mixed in by `arrays`)."""

JUNK = ["abc", None, [1.0, "x"], b"\x00", {"a": 1}]
"""Non-numeric values (drawn one time in ten)."""

SWEEP = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                 suppress_health_check=list(HealthCheck))

CALLS = collections.Counter()
START = time.perf_counter()


def pick(good, bad, bad_one_in=8):
    """A value from `good`, or (one time in `bad_one_in`) from `bad`."""
    return st.sampled_from([False] * (bad_one_in - 1) + [True]).flatmap(
        lambda is_bad: st.sampled_from(list(bad) if is_bad and bad else list(good)))


def arrays(shapes, values=POOL, bad=(NAN, INF, -INF)):
    """Float arrays of a shape from `shapes` (a bare float for shape ()) with entries from
    `values`; one array in eight has entries from `bad` mixed in (each entry one time in
    three), so that most calls get past the argument checks and reach the computation."""
    def build(shape, poisoned):
        n = int(np.prod(shape))
        entry = pick(values, bad, bad_one_in=3) if poisoned else st.sampled_from(values)
        return st.lists(entry, min_size=n, max_size=n).map(
            lambda xs: float(xs[0]) if shape == () else np.array(xs, dtype=float).reshape(shape))
    return st.tuples(st.sampled_from(shapes), st.sampled_from([False] * 7 + [True])).flatmap(lambda a: build(*a))


def or_junk(strategy):
    """`strategy`, or (one time in sixteen) a non-numeric value."""
    return st.sampled_from([False] * 15 + [True]).flatmap(lambda j: st.sampled_from(JUNK) if j else strategy)


SCALAR = arrays([()])
VEC3 = arrays([(3,), (2, 3)])
LOOP_SCALAR = arrays([(), (2,)])
RADIUS = arrays([(), (2,)], [1e-3, 0.5, 1.0, 2.0], bad=(0.0, -1.0, NAN, INF))


def _finite(out):
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(out)]
    return all(np.all(np.isfinite(a)) for a in leaves if a.dtype.kind in "fc")


def check_call(target, names, fn, *, allowed=None, ok_errors=()):
    """Call `fn()`; ValueError/TypeError must name one of `names`; a result must be finite.

    `allowed(out)` may accept a documented non-finite result; exceptions in `ok_errors`
    are documented outcomes. Any other exception propagates (the test fails).
    """
    CALLS[target] += 1
    try:
        out = fn()
        out = jax.block_until_ready(out) if not isinstance(out, (dict, list, tuple, float, int)) else out
    except ok_errors:
        return None
    except (ValueError, TypeError) as e:
        msg = str(e)
        assert any(re.search(rf"(?<![A-Za-z_]){re.escape(n)}(?![A-Za-z_])", msg) for n in names), (
            f"{target}: {type(e).__name__} does not name any of {names}: {msg}")
        return None
    if not _finite(out):
        assert allowed is not None and allowed(out), f"{target}: non-finite result {out!r}"
    return out


@pytest.fixture(scope="module", autouse=True)
def sweep_report(request):
    yield
    total = sum(CALLS.values())
    seconds = time.perf_counter() - START
    line = f"api sweep: {total} calls in {seconds:.1f} s ({', '.join(f'{k} {v}' for k, v in sorted(CALLS.items()))})"
    request.config.cache.set("invdesign/api_sweep", {"calls": total, "seconds": round(seconds, 1), "by_target": dict(CALLS)})
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("\n" + line)
    else:
        print(line)


# ----------------------------------------------------------------------------- fields


def _on_wire(points, radius, center, normal):
    """True if any point lies exactly on a loop's wire (numpy, broadcast like loop_field)."""
    p = np.asarray(points, float).reshape(-1, 1, 3)
    a = np.atleast_1d(np.asarray(radius, float)).reshape(-1)
    c = np.asarray(center, float).reshape(-1, 3)
    n = np.asarray(normal, float).reshape(-1, 3)
    n = n / np.linalg.norm(n, axis=-1, keepdims=True)
    d = p - c
    z = np.sum(d * n, axis=-1)
    rho2 = np.sum(d * d, axis=-1) - z * z
    return bool(np.any((np.abs(z) < 1e-12) & (np.abs(np.sqrt(np.maximum(rho2, 0.0)) - a) < 1e-12)))


RADII = [1e-3, 0.5, 1.0, 2.0]
BAD_RADII = (0.0, -1.0, NAN, INF)
LAYOUTS = {
    # points, radius/current, center/normal: one loop at one point, two loops at two points
    # (the shapes compile once each), and mismatches that must fail the broadcast check
    "one": ((3,), (), (3,)),
    "two": ((2, 3), (2,), (2, 3)),
    "mismatch": ((2, 3), (3,), (2, 3)),
    "bad_points": ((2,), (), (3,)),
}


@st.composite
def loop_args(draw):
    pts, par, vec = LAYOUTS[draw(st.sampled_from(["one", "two", "two", "one", "mismatch", "bad_points"]))]
    return dict(
        points=draw(or_junk(arrays([pts]))),
        radius=draw(or_junk(arrays([par], RADII, bad=BAD_RADII))),
        current=draw(or_junk(arrays([()] if par == (3,) else [par]))),
        center=draw(or_junk(arrays([vec]))),
        normal=draw(or_junk(arrays([vec], [0.0, 1.0, -1.0, 0.5]))),
    )


@settings(SWEEP, max_examples=100)
@given(args=loop_args(), which=st.sampled_from(["B", "A"]))
def test_loop_field(args, which):
    fn = loop_field if which == "B" else loop_vector_potential
    check_call(f"loop_field/{which}", tuple(args), lambda: fn(**args),
               allowed=lambda out: not np.any(np.isnan(np.asarray(out))) and _on_wire(
                   args["points"], args["radius"], args["center"], args["normal"]))


@settings(SWEEP, max_examples=40)
@given(args=loop_args())
def test_loops(args):
    points = args.pop("points")
    loops = check_call("Loops", tuple(args), lambda: Loops(**args))
    if loops is None:
        return
    check_call("Loops.field", ("points",), lambda: loops.field(points),
               allowed=lambda out: not np.any(np.isnan(np.asarray(out))) and _on_wire(
                   points, loops.radius, loops.center, loops.normal))
    check_call("Loops.distance_to_wire", ("points",), lambda: loops.distance_to_wire(points))


_JIT_FIELD = jax.jit(lambda p, a, i, c, n: loop_field(p, a, i, c, n))


@SWEEP
@given(points=arrays([(2, 3)]), radius=arrays([(2,)], [1e-3, 0.5, 1.0, 2.0], bad=(0.0, -1.0, NAN, INF)),
       current=arrays([(2,)]), center=arrays([(2, 3)]),
       normal=arrays([(2, 3)]))
def test_loop_field_under_jit(points, radius, current, center, normal):
    """One compiled function for all examples: bad loops are run-time errors naming the argument."""
    names = ("radius", "current", "center", "normal")
    CALLS["loop_field/jit"] += 1
    try:
        out = np.asarray(_JIT_FIELD(points, radius, current, center, normal))
    except (RuntimeError, ValueError) as e:
        assert any(f"loop {n}" in str(e) for n in names), str(e)
        return
    if not np.all(np.isfinite(out)):
        # documented: points are unchecked under jit (NaN in, NaN out); on a wire: inf
        assert not np.all(np.isfinite(points)) or _on_wire(points, radius, center, normal), (points, out)


@SWEEP
@given(shape=st.sampled_from([(3,), (2, 3)]), data=st.data())
def test_dipole_field(shape, data):
    points, moment, position = (data.draw(or_junk(arrays([shape, (3,)]))) for _ in range(3))
    at = bool(np.all(np.isfinite(np.asarray(points, float)))) if isinstance(points, np.ndarray) else False
    check_call("dipole_field", ("points", "moment", "position"), lambda: dipole_field(points, moment, position),
               allowed=lambda out: at and np.any(np.all(np.asarray(points) == np.asarray(position), axis=-1)))


# ----------------------------------------------------------------------------- special functions

M_VALUES = POOL + [0.9, 0.999999, 1.0 - 1e-15, -7.0, 1.5, 0.25, -0.25, 1e-8]


@settings(SWEEP, max_examples=120)
@given(m=or_junk(arrays([(), (3,)], M_VALUES)), mc_mode=st.sampled_from(["none", "consistent", "random"]),
       mc=arrays([(), (3,)], M_VALUES), which=st.sampled_from(["k", "e", "ked"]))
def test_elliptic(m, mc_mode, mc, which):
    def call():
        if which == "k":
            return ellipk(m)
        if which == "e":
            return ellipe(m)
        if mc_mode == "none":
            return ellipked(m)
        consistent = mc_mode == "consistent" and not isinstance(m, (str, bytes, dict, list, type(None)))
        return ellipked(m, mc=1.0 - np.asarray(m, float) if consistent else mc)

    def documented(out):
        mm = np.broadcast_to(np.asarray(m, float), np.shape(np.asarray(out[0] if isinstance(out, tuple) else out)))
        outs = out if isinstance(out, tuple) else (out,)
        for o in outs:
            o = np.asarray(o)
            nan_ok = (mm > 1.0) | np.isnan(mm)
            inf_ok = (mm == 1.0) | (mm == -INF) | (mm > 1.0 - 1e-300)
            if np.any(np.isnan(o) & ~nan_ok) or np.any(np.isinf(o) & ~inf_ok):
                return False
        return True

    check_call(f"ellip/{which}", ("m", "mc"), call, allowed=documented)


# ----------------------------------------------------------------------------- levitation

TRAPS = {"anti_helmholtz": anti_helmholtz_trap, "concentric": concentric_trap}


@SWEEP
@given(kind=st.sampled_from(sorted(TRAPS)), current=or_junk(SCALAR),
       size=or_junk(arrays([()], [1e-6, 2e-6], bad=(-1e-6, 0.0, NAN, INF))),
       sphere=st.tuples(arrays([()], [0.2e-6, 1e-9], bad=(0.0, -1e-6, NAN)),
                        arrays([()], [1e-15, 4e-15], bad=(0.0, -1.0, INF)),
                        arrays([()], [1.0, 1.5], bad=(0.0, NAN))),
       x=or_junk(arrays([(3,), (2, 3)], [0.0, 1e-6, -1e-6, 3e-6, 0.5e-6])),
       g=or_junk(arrays([()], [9.81, 0.0, -9.81])))
def test_levitation_energy_and_force(kind, current, size, sphere, x, g):
    loops = check_call(f"{kind}_trap", ("current", "radius", "separation", "inner_radius", "current_top",
                                        "current_outer"), lambda: TRAPS[kind](current, size))
    ball = check_call("Sphere", ("radius", "mass", "k"), lambda: Sphere(*sphere))
    if loops is None or ball is None:
        return
    check_call("levitation.energy", ("x", "g"), lambda: energy(x, loops, ball, g))
    if np.ndim(x) == 1:  # one more compiled shape would cost more than it finds
        check_call("levitation.force", ("x", "g"), lambda: force(x, loops, ball, g))


_TRAP = concentric_trap()
_BALL = Sphere(0.2e-6, 1e-15)


@settings(SWEEP, max_examples=25)
@given(x0=or_junk(arrays([(3,), (2, 3)], [0.0, 3e-6, 1e-6, -2e-6, 6e-6])),
       g=arrays([()], [9.81, 0.0]),
       bracket=st.tuples(arrays([()], [0.0, 12e-6, -1e-6, 3e-6]), arrays([()], [12e-6, 0.0, 5e-6])))
def test_levitation_equilibria(x0, g, bracket):
    check_call("levitation.equilibrium", ("x0", "g"), lambda: equilibrium(_TRAP, _BALL, x0, g=g),
               ok_errors=(EquilibriumError,))
    check_call("levitation.axial_equilibrium", ("z_min", "z_max", "g"),
               lambda: axial_equilibrium(_TRAP, _BALL, bracket[0], bracket[1], g=g))


# ----------------------------------------------------------------------------- cavity

POSITIONS = arrays([(3,)], [0.0, 1e-3, -1e-3, 3e-3, 7e-3, 0.1])
DIRECTIONS = arrays([(3,), (3,), (3,), (2,)], [0.0, 1.0, -1.0, 0.5])


@settings(SWEEP, max_examples=100)
@given(model=st.sampled_from(["image", "two_loop", "bad_two_loop"]), magnet=st.sampled_from(["sphere", "disk", "junk"]),
       n_loops=st.sampled_from([3, 3, 3, 0, -2, 2.5, "4"]), position=or_junk(POSITIONS),
       direction=or_junk(DIRECTIONS), tilt=or_junk(SCALAR), response=or_junk(SCALAR),
       plane=arrays([()], [0.0, -1e-3, 1e-3]))
def test_cavity_energies(model, magnet, n_loops, position, direction, tilt, response, plane):
    names = ("position", "direction", "tilt", "response", "magnet", "plane_height", "loop_radius", "loop_height")
    if model == "image":
        mod = ImageModel(plane)  # plane_height is a plain field: NaN is caught by the position check
    elif model == "two_loop":
        mod = TwoLoopModel(2e-3, 5e-3)
    else:
        mod = TwoLoopModel(-2e-3, 5e-3)
    if magnet == "sphere":
        mag = SphereMagnet()
    elif magnet == "disk":
        mag = check_call("DiskMagnet", ("n_loops",), lambda: DiskMagnet(n_loops=n_loops))
        if mag is None:
            return
    else:
        mag = "N52"
    # a negative loop radius in the two-loop model is a bad model parameter: ValueError from the loop field
    if model != "bad_two_loop":
        check_call("cavity.magnetic_energy", names, lambda: mod.magnetic_energy(mag, position, direction))
    check_call("cavity.total_energy", names + ("radius",),
               lambda: total_energy(mod, mag, position, direction, tilt=tilt, response=response))


@settings(SWEEP, max_examples=20)
@given(position=or_junk(POSITIONS), direction=or_junk(DIRECTIONS), response=SCALAR, tilt=SCALAR)
def test_cavity_frequencies(position, direction, response, tilt):
    """(The meshed models share these checks; `tests/test_bad_inputs.py` runs them on meshes.)"""
    names = ("position", "direction", "tilt", "response", "magnet")
    check_call("cavity.mechanical_frequencies", names,
               lambda: mechanical_frequencies(ImageModel(0.0), SphereMagnet(), position, direction, tilt=tilt,
                                              response=response))


# ----------------------------------------------------------------------------- optimize

_SPACE = DesignSpace([Parameter("x", -3.0, 3.0, "m"), Parameter("I", 1e-3, 10.0, "A", log=True)])
SEEDS = pick([0, 1, -1, 2**40, np.int64(3)], [2**70, 1.5, "a", None, True], 3)
COUNTS = pick([1, 2, 3, np.int64(2)], [0, -1, 2.5, "3", None, True], 3)


@SWEEP
@given(seed=SEEDS, n=COUNTS, bounds=st.tuples(or_junk(SCALAR), or_junk(SCALAR)), log=st.booleans())
def test_design_space(seed, n, bounds, log):
    out = check_call("DesignSpace.sample", ("n", "key_or_seed"), lambda: _SPACE.sample(seed, n))
    if out is not None:
        assert np.all((np.asarray(out["x"]) >= -3.0) & (np.asarray(out["x"]) <= 3.0))
        assert np.all((np.asarray(out["I"]) >= 1e-3) & (np.asarray(out["I"]) <= 10.0))
    check_call("Parameter", ("lower", "upper", "log", "name"), lambda: Parameter("p", bounds[0], bounds[1], "m", log=log))


# ----------------------------------------------------------------------------- micromagnetics

SHAPES = pick([(2, 2, 1), (1, 1, 1)], [(0, 2, 1), (2, -1, 1), (2.5, 2, 1), (2, 2), "abc", None, (True, 2, 1)], 4)
CELLS = pick([(1e-9, 1e-9, 1e-9), (2e-9, 1e-9, 3e-9)],
             [(0.0, 1e-9, 1e-9), (-1e-9, 1e-9, 1e-9), (NAN, 1e-9, 1e-9), (1e-9, 1e-9), "abc", (INF, 1.0, 1.0)], 4)
MATERIAL = arrays([(), (2, 2, 1)], [8e5, 1.3e-11, 0.0, -1.0, 0.5])


@SWEEP
@given(shape=SHAPES, cell=CELLS, ms=or_junk(MATERIAL), a=or_junk(MATERIAL), k1=MATERIAL, alpha=MATERIAL,
       axis=or_junk(arrays([(3,)], [0.0, 1.0, -1.0])))
def test_micromag_grid_and_material(shape, cell, ms, a, k1, alpha, axis):
    grid = check_call("Grid", ("shape", "cell"), lambda: Grid(shape, cell))
    check_call("exchange_length", ("Ms", "A"), lambda: exchange_length(ms, a))
    if grid is None:
        return
    check_call("Material.uniform", ("Ms", "A", "K1", "alpha", "easy_axis"),
               lambda: Material.uniform(grid, Ms=ms, A=a, K1=k1, easy_axis=axis, alpha=alpha))
