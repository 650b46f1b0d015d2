"""Pictures of the coil-trap designs: the x-z energy map of the final design (equilibrium,
wires, trap frequencies, escape level) and the Pareto front with its chosen designs.

The results are short fakes assembled with the search drivers' own dataset builder from
`evaluate` at a few designs (a real search spends ~15 s compiling implicit gradients)."""

import json

import jax
import numpy as np
import pytest
from invdesign_problems.coil_trap import (
    COIL_TRAP,
    COIL_TRAP_ANTI_HELMHOLTZ,
    COIL_TRAP_PARETO,
    PAPER_SPHERE,
    levitation_problem,
    pareto_picks,
    pareto_problem,
    problem_from_dataset,
    trap_map,
)

import invdesign  # noqa: F401
from invdesign.levitation import Sphere, concentric_trap, escape_barrier
from invdesign.optimize import final
from invdesign.optimize._results import build_dataset


def fake_result(problem, designs, dim):
    """A result of `problem` at `designs` on dim `iteration` (gradient-like) or `solution`."""
    evaluate = jax.jit(problem.evaluate)
    outs = [{k: float(v) for k, v in evaluate(d).items()} for d in designs]
    names = list(outs[0])
    variables = {n: ((dim,), np.array([d[n] for d in designs])) for n in problem.space.names}
    variables.update({n: ((dim,), np.array([o[n] for o in outs])) for n in names})
    return build_dataset(problem, variables, coords={dim: np.arange(len(designs))}, algorithm="test",
                         settings={}, seed=0, converged=False, message="", outputs=names)


@pytest.fixture(scope="module")
def concentric():
    problem = levitation_problem()
    return fake_result(problem, [{"current_inner": 0.038, "current_outer": 0.038},
                                 {"current_inner": 0.040, "current_outer": 0.036}], "iteration")


def test_problem_rebuilt_from_the_dataset(concentric):
    opts = json.loads(concentric.attrs["problem_options"])
    assert opts["geometry"] == "concentric" and opts["sphere"] == PAPER_SPHERE
    problem = problem_from_dataset(concentric)
    assert problem.name == "coil-trap" and list(problem.space.names) == ["current_inner", "current_outer"]
    # the rebuilt problem gives the dataset's final equilibrium back
    last = {n: float(concentric[n][-1]) for n in problem.space.names}
    out = jax.jit(problem.evaluate)(last)
    assert float(out["height"]) == pytest.approx(float(concentric["height"][-1]), rel=1e-12)


def test_trap_map_marks_the_datasets_design(concentric):
    m = trap_map(concentric)
    z_eq = float(concentric["height"][-1])
    # the marked equilibrium is the dataset's final height, frequencies likewise
    assert m["equilibrium"] == (0.0, z_eq)
    assert m["freq_axial"] == float(concentric["freq_axial"][-1])
    assert m["freq_radial"] == float(concentric["freq_radial"][-1])
    # wires where the two loops (6 and 9 um, z = 0) cut the x-z plane, opposite currents:
    # inner loop +I (counter-clockwise about +z) runs into the page (+y) at x = +6 um
    assert sorted(m["wires"]) == sorted([(6e-6, 0.0, 1.0), (-6e-6, 0.0, -1.0),
                                         (9e-6, 0.0, -1.0), (-9e-6, 0.0, 1.0)])
    x, z, d = m["x"], m["z"], m["energy"]
    assert d.shape == (z.size, x.size) and x[x.size // 2] == 0.0
    # the drawn energy is U - U(equilibrium): its minimum along the axis near the
    # equilibrium lies on the grid cell next to z_eq, and is within a cell's energy of 0
    axis = d[:, x.size // 2]
    near = np.abs(z - z_eq) < 3e-6
    i = np.nanargmin(np.where(near, axis, np.nan))
    assert abs(z[i] - z_eq) <= (z[1] - z[0])
    assert -1e-3 * m["depth"] <= axis[i] < 0.05 * m["depth"]
    # cells where the 5 um sphere touches a wire are blank
    wall = np.hypot(np.abs(x)[None, :] - 6e-6, z[:, None]) < 4.9e-6
    assert np.all(np.isnan(d[wall])) and np.isfinite(d[~np.isnan(d)]).all()
    # the escape level on the grid agrees with the library's escape_barrier over the same box
    loops = concentric_trap(0.040, 6e-6, 9e-6, current_outer=0.036)
    ref = escape_barrier(loops, Sphere(**PAPER_SPHERE), z_eq, r_max=x[-1], z_min=z[0], z_max=z[-1], n=(41, 81))
    assert m["depth"] == pytest.approx(float(ref), rel=0.02)
    xs, zs = m["saddle"]
    assert d[np.argmin(np.abs(z - zs)), np.argmin(np.abs(x - xs))] == pytest.approx(m["depth"], rel=1e-12)


@pytest.mark.parametrize("entry", [COIL_TRAP, COIL_TRAP_ANTI_HELMHOLTZ], ids=lambda e: e.name)
def test_coil_trap_plots_include_the_trap_picture(entry, concentric, tmp_path, check_png):
    if entry is COIL_TRAP:
        ds = concentric
    else:
        ds = fake_result(levitation_problem("anti-helmholtz"), [{"current_bottom": 0.03, "current_top": 0.03}],
                         "iteration")
    pngs = entry.plot(ds, tmp_path)
    names = [p.name for p in pngs]
    assert names == [f"{entry.name}-history.png", f"{entry.name}-trap.png"]
    for p in pngs:
        check_png(p)


def test_pareto_front_picks_and_plots(tmp_path, check_png):
    problem = pareto_problem(barrier_grid=16)
    designs = [{"current_inner": i, "current_outer": o, "inner_radius": a, "outer_radius": b}
               for i, o, a, b in [(0.038, 0.038, 6e-6, 9e-6), (0.05, 0.05, 6e-6, 9e-6),
                                  (0.03, 0.034, 6e-6, 10e-6), (0.06, 0.07, 8e-6, 14e-6),
                                  (0.045, 0.04, 5e-6, 9e-6)]]
    ds = fake_result(problem, designs, "solution")
    assert problem_from_dataset(ds).name == "coil-trap-pareto"
    picks = pareto_picks(ds)
    sol = final(ds)
    assert picks["least current"] == int(np.argmin(sol["current"].values))
    assert picks["highest frequency"] == int(np.argmax(sol["freq_min"].values))
    assert picks["deepest"] == int(np.argmax(sol["depth"].values))
    # the knee: nearest the ideal point in objectives scaled to [0, 1] (by hand)
    v = np.stack([sol["freq_min"].values * -1, sol["current"].values, sol["depth"].values * -1], axis=1)
    scaled = (v - v.min(0)) / (v.max(0) - v.min(0))
    assert picks["knee"] == int(np.argmin(np.linalg.norm(scaled, axis=1)))
    pngs = COIL_TRAP_PARETO.plot(ds, tmp_path)
    names = [p.name for p in pngs]
    assert "coil-trap-pareto-front.png" in names and "coil-trap-pareto-knee-trap.png" in names
    for p in pngs:
        check_png(p)
    m = trap_map(ds, solution=picks["knee"])
    assert m["equilibrium"][1] == float(sol["height"][picks["knee"]])
    assert m["depth_objective"] == float(sol["depth"][picks["knee"]])
