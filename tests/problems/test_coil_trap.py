"""Coil-trap design problems: the equilibrium and its frequencies against an independent
on-axis calculation (mpmath), implicit gradients against central differences, CLI run."""

import json
import math

import jax
import mpmath as mp
import pytest

import invdesign  # noqa: F401
from invdesign import cli
from invdesign.constants import G0, MU0
from invdesign.optimize import available_problems, load
from invdesign_problems.coil_trap import PAPER_SPHERE, levitation_problem, pareto_problem

mp.mp.dps = 40


def onaxis_reference(i_in, i_out, a_in, a_out, k, radius, mass, z_in=0.0, z_out=0.0, z_lo=1e-6,
                     z_hi=1e-5):
    """Equilibrium height and stiffnesses from the textbook on-axis loop field only
    (loops of radius a at height z_loop with currents i_in and -i_out)."""
    V = mp.mpf(4) / 3 * mp.pi * mp.mpf(radius) ** 3
    mu0 = mp.mpf(MU0)

    def bz(z):
        return sum(mu0 * mp.mpf(i) * mp.mpf(a) ** 2 / (2 * (mp.mpf(a) ** 2 + (z - mp.mpf(zl)) ** 2) ** 1.5)
                   for i, a, zl in ((i_in, a_in, z_in), (-i_out, a_out, z_out)))

    def du(z):  # dU/dz on the axis (B_r = 0 there)
        return mp.mpf(mass) * G0 + k * V * bz(z) * mp.diff(bz, z) / mu0

    # the stable crossing of dU/dz from - to + between z_lo and z_hi
    zs = [mp.mpf(z_lo) + (mp.mpf(z_hi) - mp.mpf(z_lo)) * t / 200 for t in range(201)]
    for z0, z1 in zip(zs[:-1], zs[1:]):
        if du(z0) < 0 < du(z1):
            z = mp.findroot(du, (z0, z1), solver="anderson")
            break
    b, b1, b2 = bz(z), mp.diff(bz, z), mp.diff(bz, z, 2)
    kz = k * V * (b1**2 + b * b2) / mu0
    kr = k * V * (b1**2 / 2 - b * b2) / (2 * mu0)
    return float(z), float(kz), float(kr)


@pytest.mark.parametrize("k", [1.0, 1.5])
def test_equilibrium_and_frequencies_against_onaxis_reference(k):
    problem = levitation_problem(k=k)
    out = jax.jit(problem.evaluate)({"current_inner": 0.038, "current_outer": 0.038})
    z, kz, kr = onaxis_reference(0.038, 0.038, 6e-6, 9e-6, k, PAPER_SPHERE["radius"], PAPER_SPHERE["mass"])
    m = PAPER_SPHERE["mass"]
    assert float(out["height"]) == pytest.approx(z, rel=1e-10)
    assert float(out["freq_axial"]) == pytest.approx(math.sqrt(kz / m) / (2 * math.pi), rel=1e-8)
    assert float(out["freq_radial"]) == pytest.approx(math.sqrt(kr / m) / (2 * math.pi), rel=1e-8)
    # the paper (Fig. 3): a single stable point on the axis close to z = 3 um
    assert 2.5e-6 < float(out["height"]) < 4.5e-6


def test_anti_helmholtz_geometry_against_onaxis_reference():
    problem = levitation_problem("anti-helmholtz", free_geometry=True)
    x = {"current_bottom": 0.031, "current_top": 0.024, "radius": 1.1e-6, "spacing": 1.2e-6}
    evaluate = jax.jit(problem.evaluate)
    out = evaluate(x)
    z, kz, kr = onaxis_reference(0.031, 0.024, 1.1e-6, 1.1e-6, 1.0, 0.5e-6, 4.487e-15,
                                 z_in=-0.6e-6, z_out=0.6e-6, z_lo=-0.5e-6, z_hi=0.5e-6)
    m = 4.487e-15
    assert float(out["height"]) == pytest.approx(z, rel=1e-9)
    assert float(out["freq_axial"]) == pytest.approx(math.sqrt(kz / m) / (2 * math.pi), rel=1e-8)
    assert float(out["freq_radial"]) == pytest.approx(math.sqrt(kr / m) / (2 * math.pi), rel=1e-8)
    # the stronger lower loop lifts the field zero above the mid-plane
    assert float(out["height"]) > 0
    grad = jax.jit(jax.grad(lambda p: problem.evaluate(p)["freq_min"]))(x)
    f = lambda p: evaluate(p)["freq_min"]  # noqa: E731  (the compiled evaluate serves the differences)
    for name, h in {"current_bottom": 1e-6, "spacing": 1e-11, "radius": 1e-11}.items():
        assert float(grad[name]) == pytest.approx(float(_fd(f, x, name, h)), rel=2e-6), name


def test_unknown_geometry_is_an_error():
    with pytest.raises(ValueError, match="geometry"):
        levitation_problem("helmholtz")


def _fd(f, x, name, h):
    xp, xm = dict(x), dict(x)
    xp[name] = x[name] + h
    xm[name] = x[name] - h
    return (f(xp) - f(xm)) / (2 * h)


@pytest.mark.parametrize("output", ["height", "freq_min", "freq_axial"])
def test_gradients_through_the_equilibrium(output):
    problem = levitation_problem(free_geometry=True)
    x = {"current_inner": 0.041, "current_outer": 0.037, "inner_radius": 6.2e-6, "outer_radius": 9.1e-6}
    f = jax.jit(lambda p: problem.evaluate(p)[output])
    grad = jax.jit(jax.grad(lambda p: problem.evaluate(p)[output]))(x)
    steps = {"current_inner": 1e-6, "current_outer": 1e-6, "inner_radius": 1e-10, "outer_radius": 1e-10}
    for name, h in steps.items():
        fd = float(_fd(lambda p: f(p), x, name, h))
        assert float(grad[name]) == pytest.approx(fd, rel=2e-6), name


def test_pareto_problem_vectorized_matches_single():
    problem = pareto_problem(barrier_grid=24)
    X = problem.space.sample(1, 6)
    batch = problem.evaluate_batch(X, check=False)
    one = jax.jit(problem.evaluate)({n: X[n][2] if isinstance(X, dict) else X[2, i]
                                     for i, n in enumerate(problem.space.names)})
    for key in ("freq_min", "current", "depth", "height"):
        assert float(batch[key][2]) == pytest.approx(float(one[key]), rel=1e-12, abs=1e-30)


def test_cli_lists_and_runs_quick(tmp_path, capsys):
    assert {"coil-trap", "coil-trap-pareto"} <= set(available_problems())
    assert cli.main(["list"]) == 0
    assert "coil-trap" in capsys.readouterr().out
    out = tmp_path / "run"
    assert cli.main(["run", "coil-trap", "--quick", "--out", str(out), "--no-progress"]) == 0
    files = sorted(p.name for p in out.iterdir())
    # --quick runs carry "-quick" in their names (invdesign.cli.run_tag), plots the run tag too
    assert "coil-trap-gradient-quick.nc" in files
    assert any(f.startswith("coil-trap-gradient-quick-") and f.endswith(".png") for f in files)
    ds = load(out / "coil-trap-gradient-quick.nc")
    assert ds.attrs["problem"] == "coil-trap"
    assert json.loads(ds.attrs["parameters"]) == ["current_inner", "current_outer"]
    assert ds["current"].attrs["units"] == "A"
    # the quick run starts at the paper's 38 mA and moves towards the 4 um target
    assert abs(float(ds["height"][-1]) - 4e-6) < abs(float(ds["height"][0]) - 4e-6)
    assert cli.main(["show", str(out / "coil-trap-gradient-quick.nc")]) == 0
    assert "current_inner" in capsys.readouterr().out


def test_cli_bad_arguments(capsys):
    assert cli.main(["run", "no-such-problem"]) == 2
    assert "unknown problem" in capsys.readouterr().err
    assert cli.main(["show", "/nonexistent/file.nc"]) == 2
    assert "FILE" in capsys.readouterr().err
