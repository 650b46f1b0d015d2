"""Inputs that used to slip through (issue 13, section 6): each gives a clear error naming the argument.

One table: every bad call with the exception type and the argument name its message must
contain (the DESIGN contract: "raises a clear error naming the argument and the allowed
range; it never returns silent NaN"). Before the fix these returned 6.2e-7 J for a magnet
inside the stub, a negative energy below a plate, energies for ``response = -1`` and
``tilt = nan``, K(0.1) for ``ellipked(0.5, mc=0.9)``, a 2-loop disk for ``n_loops = 2.5``,
"no stable equilibrium" for a reversed bracket, an MLIR error for ``sample(0, -1)``, a
silent climb for a negative Adam rate, and an unnamed conversion error for
``Loops(radius='abc')``. The last tests pin the behaviour under `jit` (run-time errors from
`equinox.error_if` in the loop fields) and that good inputs still work.
"""

import functools
import math
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import invdesign  # noqa: F401
from invdesign.cavity import (
    CoaxialCavity,
    DiskMagnet,
    ImageModel,
    MeissnerModel,
    SphereMagnet,
    TwoLoopModel,
    axis_height,
    landscape,
    mechanical_frequencies,
    nloop_model,
    plate_mesh,
    refine_minima,
    total_energy,
)
from invdesign.constants import MU0
from invdesign.fields import Loops, dipole_field, loop_field, loop_vector_potential
from invdesign.levitation import concentric_sphere, concentric_trap, energy, equilibrium
from invdesign.micromag import Grid, Material, exchange_length
from invdesign.optimize import DesignProblem, DesignSpace, Objective, Parameter, gradient_search
from invdesign.special import ellipe, ellipk, ellipked

UP = jnp.array([0.0, 0.0, 1.0])
SPHERE = SphereMagnet()  # radius 0.5 mm


@functools.cache
def _cavity_nloop():
    """The paper's cavity (stub r = 2 mm, h = 5 mm) on a coarse N-loop mesh (only the checks run)."""
    return nloop_model(CoaxialCavity(), 3e-3)


@functools.cache
def _plate_meissner():
    """A Meissner plate at z = 0, vacuum above, without a geometry (mesh distances)."""
    return MeissnerModel(plate_mesh(5e-3, 2e-3), None)


@functools.cache
def _space():
    return DesignSpace([Parameter("x", -3.0, 3.0, "m"), Parameter("y", -3.0, 3.0, "m")])


@functools.cache
def _problem():
    def evaluate(p):
        return {"f": (p["x"] - 2.0) ** 2 + (p["y"] - 1.0) ** 2}

    return DesignProblem("bad_input_quadratic", _space(), evaluate, [Objective("f", units="m^2")])


def _adam(rate):
    return gradient_search(_problem(), method="adam", learning_rate=rate, max_iter=3, progress=False)


# (id, call, exception type, argument the message must name, optional extra pattern)
BAD = [
    # cavity: magnetic_energy of every model refuses a magnet that does not fit
    ("nloop magnet inside the stub", lambda: _cavity_nloop().magnetic_energy(SPHERE, jnp.array([0.0, 0.0, 3e-3]), UP),
     ValueError, "position", "inside the stub"),
    ("nloop magnet below the floor", lambda: _cavity_nloop().magnetic_energy(SPHERE, jnp.array([4.5e-3, 0.0, -1e-3]), UP),
     ValueError, "position", None),
    ("meissner magnet below a plate", lambda: _plate_meissner().magnetic_energy(SPHERE, jnp.array([0.0, 0.0, -1e-3]), UP),
     ValueError, "position", "below the floor or a plate"),
    ("meissner magnet touching a plate", lambda: _plate_meissner().magnetic_energy(SPHERE, jnp.array([0.0, 0.0, 1e-4]), UP),
     ValueError, "position", None),
    ("meissner batched energies below a plate",
     lambda: _plate_meissner().magnetic_energies(SPHERE, jnp.array([[0.0, 0.0, 2e-3], [0.0, 0.0, -1e-3]]), UP),
     ValueError, "positions", None),
    ("image magnet below the plane", lambda: ImageModel(0.0).magnetic_energy(SPHERE, jnp.array([0.0, 0.0, -1e-3]), UP),
     ValueError, "position", None),
    ("two-loop magnet below the loop", lambda: TwoLoopModel().magnetic_energy(SPHERE, jnp.array([0.0, 0.0, 1e-3]), UP),
     ValueError, "position", None),
    ("magnetic_energy zero direction", lambda: ImageModel(0.0).magnetic_energy(SPHERE, jnp.array([0.0, 0.0, 2e-3]), jnp.zeros(3)),
     ValueError, "direction", None),
    ("magnetic_energy NaN direction", lambda: TwoLoopModel().magnetic_energy(SPHERE, jnp.array([0.0, 0.0, 8e-3]), jnp.array([0.0, jnp.nan, 1.0])),
     ValueError, "direction", None),
    ("magnetic_energy 2-vector direction", lambda: ImageModel(0.0).magnetic_energy(SPHERE, jnp.array([0.0, 0.0, 2e-3]), jnp.ones(2)),
     ValueError, "direction", None),
    ("magnetic_energy not a magnet", lambda: ImageModel(0.0).magnetic_energy("N52", jnp.array([0.0, 0.0, 2e-3]), UP),
     TypeError, "magnet", None),
    # cavity: total_energy
    ("total_energy response -1", lambda: total_energy(ImageModel(0.0), SPHERE, jnp.array([0.0, 0.0, 2e-3]), UP, response=-1.0),
     ValueError, "response", None),
    ("total_energy response 0", lambda: total_energy(ImageModel(0.0), SPHERE, jnp.array([0.0, 0.0, 2e-3]), UP, response=0.0),
     ValueError, "response", None),
    ("total_energy tilt nan", lambda: total_energy(ImageModel(0.0), SPHERE, jnp.array([0.0, 0.0, 2e-3]), UP, tilt=float("nan")),
     ValueError, "tilt", None),
    ("total_energy tilt 'up'", lambda: total_energy(ImageModel(0.0), SPHERE, jnp.array([0.0, 0.0, 2e-3]), UP, tilt="up"),
     TypeError, "tilt", None),
    ("total_energy zero direction (sphere)", lambda: total_energy(ImageModel(0.0), SPHERE, jnp.array([0.0, 0.0, 2e-3]), jnp.zeros(3)),
     ValueError, "direction", None),
    ("total_energy zero direction (disk, N-loop)",
     lambda: total_energy(_cavity_nloop(), DiskMagnet(), jnp.array([4.5e-3, 0.0, 3e-3]), jnp.zeros(3)),
     ValueError, "direction", None),
    ("mechanical_frequencies response nan",
     lambda: mechanical_frequencies(ImageModel(0.0), SPHERE, jnp.array([0.0, 0.0, 2e-3]), UP, response=float("nan")),
     ValueError, "response", None),
    ("landscape zero direction", lambda: landscape(ImageModel(0.0), SPHERE, [0.0, 1e-3], [2e-3, 3e-3], jnp.zeros(3)),
     ValueError, "direction", None),
    ("refine_minima responses -1", lambda: refine_minima(ImageModel(0.0), SPHERE, [[0.0, 2e-3]], UP, responses=-1.0),
     ValueError, "responses", None),
    # special functions
    ("ellipked m + mc != 1", lambda: ellipked(0.5, mc=0.9), ValueError, "mc", None),
    ("ellipked mc nan", lambda: ellipked(0.5, mc=float("nan")), ValueError, "mc", None),
    ("ellipked m string", lambda: ellipked("0.5"), TypeError, "m", None),
    # magnets
    ("DiskMagnet n_loops 2.5", lambda: DiskMagnet(n_loops=2.5), TypeError, "n_loops", None),
    ("DiskMagnet n_loops '12'", lambda: DiskMagnet(n_loops="12"), TypeError, "n_loops", None),
    ("DiskMagnet n_loops True", lambda: DiskMagnet(n_loops=True), TypeError, "n_loops", None),
    ("DiskMagnet n_loops 0", lambda: DiskMagnet(n_loops=0), ValueError, "n_loops", None),
    # axis_height bracket
    ("axis_height reversed bracket", lambda: axis_height(ImageModel(0.0), SPHERE, UP, 5e-3, 2e-3),
     ValueError, "z_lo", r"z_hi.*reversed"),
    ("axis_height empty bracket", lambda: axis_height(ImageModel(0.0), SPHERE, UP, 2e-3, 2e-3),
     ValueError, "z_lo", r"z_hi.*empty"),
    ("axis_height z_hi nan", lambda: axis_height(ImageModel(0.0), SPHERE, UP, 2e-3, float("nan")),
     ValueError, "z_hi", None),
    # design space
    ("sample n -1", lambda: _space().sample(0, -1), ValueError, r"\bn\b", None),
    ("sample n 0", lambda: _space().sample(0, 0), ValueError, r"\bn\b", None),
    ("sample n 2.5", lambda: _space().sample(0, 2.5), TypeError, r"\bn\b", None),
    ("sample key 'a'", lambda: _space().sample("a", 3), TypeError, "key_or_seed", None),
    # gradient search learning rate
    ("adam learning_rate -0.1", lambda: _adam(-0.1), ValueError, "learning_rate", None),
    ("adam learning_rate nan", lambda: _adam(float("nan")), ValueError, "learning_rate", None),
    ("adam learning_rate inf", lambda: _adam(float("inf")), ValueError, "learning_rate", None),
    ("adam learning_rate 0", lambda: _adam(0.0), ValueError, "learning_rate", None),
    ("adam learning_rate 'fast'", lambda: _adam("fast"), TypeError, "learning_rate", None),
    ("lbfgs learning_rate -1",
     lambda: gradient_search(_problem(), method="lbfgs", learning_rate=-1.0, max_iter=3, progress=False),
     ValueError, "learning_rate", None),
    # loop fields
    ("Loops radius 'abc'", lambda: Loops(radius="abc", current=1.0), TypeError, "radius", None),
    ("Loops current [1, 'x']", lambda: Loops(radius=1.0, current=[1.0, "x"]), TypeError, "current", None),
    ("loop_field normal 'z'", lambda: loop_field(jnp.zeros(3), 1.0, 1.0, normal="z"), TypeError, "normal", None),
    ("loop_vector_potential points None", lambda: loop_vector_potential(None, 1.0, 1.0), TypeError, "points", None),
    ("dipole_field moment strings", lambda: dipole_field(jnp.ones(3), ["a", "b", "c"]), TypeError, "moment", None),
    # levitation and micromagnetics
    ("equilibrium g nan", lambda: equilibrium(concentric_trap(), concentric_sphere(), jnp.array([0.0, 0.0, 3e-6]), g=float("nan")),
     ValueError, r"\bg\b", None),
    ("energy g 'earth'", lambda: energy(jnp.array([0.0, 0.0, 3e-6]), concentric_trap(), concentric_sphere(), g="earth"),
     TypeError, r"\bg\b", None),
    ("Material Ms 'x'", lambda: Material.uniform(Grid((2, 2, 1), (1e-9, 1e-9, 1e-9)), Ms="x", A=1e-11),
     TypeError, "Ms", None),
    ("exchange_length Ms 0", lambda: exchange_length(0.0, 1.3e-11), ValueError, "Ms", None),
    ("exchange_length A -1", lambda: exchange_length(8e5, -1.0), ValueError, r"\bA\b", None),
]


@pytest.mark.parametrize("call, exc, name, extra", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_names_the_argument(call, exc, name, extra):
    with pytest.raises(exc) as info:
        call()
    msg = str(info.value)
    assert re.search(name, msg), f"message does not name {name!r}: {msg}"
    if extra is not None:
        assert re.search(extra, msg), f"message lacks {extra!r}: {msg}"
    assert "moment must be finite" not in msg  # the old misdirected message for a zero direction


# ------------------------------------------------------------------ the old wrong values are gone


def test_stub_and_plate_positions_no_longer_return_energies():
    """Before: 6.2e-7 J inside the stub, a negative energy below a plate; now errors, and good points still work."""
    model = _cavity_nloop()
    gap = jnp.array([4.5e-3, 0.0, 2e-3])  # between the stub and the outer wall
    assert model.magnetic_energy(SPHERE, gap, UP) > 0.0  # the superconductor repels
    plate = _plate_meissner()
    above = float(plate.magnetic_energy(SPHERE, jnp.array([0.0, 0.0, 3e-3]), UP))
    # image dipole above an (almost infinite) plate: mu0 mu^2 (1 + cos^2) / (64 pi h^3), within the plate's size effect
    want = MU0 * float(SPHERE.moment) ** 2 * 2.0 / (64.0 * math.pi * 3e-3**3)
    assert 0.5 * want < above < 1.05 * want


def test_ellipked_accepts_a_consistent_complement():
    """mc = 1 - m to rounding is accepted (also near m = 1, where it is the more accurate input)."""
    k, e, _ = ellipked(0.5, mc=0.5)
    assert float(k) == pytest.approx(1.8540746773013719, rel=1e-15)
    m = 1.0 - 1e-20  # == 1.0 in float64; mc carries the information
    k, _, _ = ellipked(m, mc=1e-20)
    assert float(k) == pytest.approx(0.5 * math.log(16.0 / 1e-20), rel=1e-12)  # K ~ log(16 / mc) / 2
    assert np.isfinite(float(ellipked(-1e10, mc=1.0 + 1e10)[0]))


def test_ellipk_limits_at_minus_infinity():
    """K(-inf) = 0 and E(-inf) = inf (scipy's limits), D(-inf) = 0; before: NaN."""
    k, e, d = ellipked(-math.inf)
    assert float(k) == 0.0 and math.isinf(float(e)) and float(d) == 0.0
    assert float(ellipk(-1e300)) < 1e-140 and float(ellipe(-1e300)) == pytest.approx(1e150, rel=1e-12)


def test_axis_height_still_finds_the_image_height():
    """The forward bracket works: image model, vertical moment, mu0 mu^2 2 / (64 pi h^3) + m g h minimal."""
    z = axis_height(ImageModel(0.0), SPHERE, UP, 1e-3, 20e-3)
    h = (3.0 * 2.0 * MU0 * float(SPHERE.moment) ** 2 / (64.0 * math.pi * float(SPHERE.mass) * 9.80665)) ** 0.25
    assert z == pytest.approx(h, rel=1e-6)


def test_adam_accepts_positive_rates_and_schedules():
    ds = _adam(0.05)
    assert ds.sizes["iteration"] >= 1 and np.all(np.isfinite(ds.f.values))
    ds = _adam(optax.exponential_decay(0.05, transition_steps=10, decay_rate=0.5))
    assert np.all(np.isfinite(ds.f.values))
    ds = _adam(np.float64(0.05))
    assert np.all(np.isfinite(ds.f.values))


def test_sample_accepts_integer_like_counts_and_keys():
    assert _space().sample(0, np.int64(3))["x"].shape == (3,)
    assert _space().sample(jax.random.PRNGKey(1), 2)["y"].shape == (2,)
    assert _space().sample(jax.random.key(1), 2)["y"].shape == (2,)


def test_disk_accepts_numpy_integer_loops():
    assert DiskMagnet(n_loops=np.int64(5)).n_loops == 5


# ------------------------------------------------------------------ behaviour under jit


POINT = jnp.array([0.1, 0.0, 0.3])
RUNTIME = (RuntimeError, ValueError)
"""What a failed `equinox.error_if` raises: JaxRuntimeError / EquinoxRuntimeError (RuntimeError), ValueError under grad."""


@pytest.mark.parametrize("wrap", [jax.jit, eqx.filter_jit], ids=["jax.jit", "eqx.filter_jit"])
@pytest.mark.parametrize(
    "fn, bad, name",
    [
        (lambda a: loop_field(POINT, a, 1.0), -1.0, "radius"),
        (lambda a: loop_field(POINT, a, 1.0), 0.0, "radius"),
        (lambda a: loop_vector_potential(POINT, a, 1.0), jnp.inf, "radius"),
        (lambda c: loop_field(POINT, 1.0, c), jnp.nan, "current"),
        (lambda n: Loops(1.0, 1.0, normal=n).field(POINT), jnp.zeros(3), "normal"),
    ],
    ids=["radius -1", "radius 0", "radius inf (A)", "current nan", "normal zero (Loops)"],
)
def test_loop_checks_survive_jit(wrap, fn, bad, name):
    """The cheap loop checks run under jit as equinox.error_if run-time errors naming the argument."""
    f = wrap(fn)
    with pytest.raises(RUNTIME, match=name):
        jax.block_until_ready(f(bad))


def test_loop_checks_under_grad_and_vmap():
    f = jax.jit(jax.grad(lambda a: loop_field(POINT, a, 1.0)[2]))
    assert np.isfinite(float(f(1.0)))
    with pytest.raises(RUNTIME, match="radius"):
        jax.block_until_ready(f(-1.0))
    g = jax.jit(jax.vmap(lambda a: loop_field(POINT, a, 1.0)))
    b = g(jnp.array([1.0, 2.0]))  # good batch: on-axis-ish values agree with the eager call
    np.testing.assert_allclose(np.asarray(b[1]), np.asarray(loop_field(POINT, 2.0, 1.0)), rtol=1e-14)
    with pytest.raises(RUNTIME, match="radius"):
        jax.block_until_ready(g(jnp.array([1.0, -1.0])))


def test_jit_field_values_unchanged_by_the_checks():
    """On-axis loop field mu0 I a^2 / (2 (a^2 + z^2)^(3/2)) through the checked, compiled path."""
    f = jax.jit(lambda a, z: loop_field(jnp.stack([0.0, 0.0, z]), a, 2.0))
    a, z = 1e-3, 0.7e-3
    want = MU0 * 2.0 * a**2 / (2.0 * (a**2 + z**2) ** 1.5)
    assert float(f(a, z)[2]) == pytest.approx(want, rel=1e-14)


def test_cavity_position_checks_are_eager_only():
    """By design (documented): inside jit the magnet-fits check is skipped (solvers test trial points)."""
    f = jax.jit(lambda p: total_energy(ImageModel(0.0), SPHERE, p, UP))
    assert np.isfinite(float(f(jnp.array([0.0, 0.0, 2e-3]))))
    with pytest.raises(ValueError, match="position"):
        total_energy(ImageModel(0.0), SPHERE, jnp.array([0.0, 0.0, 1e-4]), UP)  # eager: refused
