"""Chosen designs of a Pareto set (`invdesign.plot.pareto_picks`) and the front with them
marked (`invdesign.plot.plot_pareto_front`), generic and for the cavity Pareto run.

The results are fakes assembled with the search drivers' own dataset builder from numbers
written here (no model is evaluated: the cavity model compiles for minutes)."""

import json

import numpy as np
import pytest

import invdesign  # noqa: F401
from invdesign.optimize import Constraint, DesignProblem, DesignSpace, Objective, Parameter, final
from invdesign.optimize._results import build_dataset
from invdesign.plot import pareto_picks, plot_pareto_front


def genetic_result(problem, params, outputs, pop=6):
    """A genetic-search-like result: the final set `params`/`outputs` ({name: values}) on
    dim `solution`, and two generations of history whose last population is the final set
    plus NaN padding (as `invdesign.optimize._genetic._dataset` lays it out)."""
    n = len(next(iter(params.values())))
    cons = problem.constraint_names
    cv = np.sum([np.maximum(np.asarray(outputs[c], float), 0.0) for c in cons], axis=0) if cons else np.zeros(n)
    variables = {k: (("solution",), np.asarray(v, float)) for k, v in {**params, **outputs}.items()}
    variables["cv"] = (("solution",), cv)
    for k, v in {**params, **outputs, "cv": cv}.items():
        v = np.asarray(v, float)
        last = np.concatenate([v, np.full(pop - n, np.nan)])
        first = np.concatenate([v * 1.1, np.full(pop - n, np.nan)])
        variables["history_" + k] = (("generation", "individual"), np.stack([first, last]))
    variables["n_evals"] = (("generation",), np.array([pop, 2 * pop]))
    diag = {"units": "", "long_name": "diagnostic", "role": "diagnostic"}
    return build_dataset(problem, variables,
                         coords={"solution": np.arange(n), "generation": np.arange(1, 3), "individual": np.arange(pop)},
                         algorithm="nsga2", settings={}, seed=0, converged=bool(np.all(cv <= 0)), message="",
                         outputs=list(outputs), attrs={"cv": diag, "history_cv": diag, "n_evals": diag})


def toy_problem():
    space = DesignSpace([Parameter("a", 0.0, 1e-3, "m", "length a"), Parameter("b", 0.0, 1.0, "A", "current b")])
    return DesignProblem("toy-pareto", space, lambda p: {"cost": p["b"], "stiffness": p["a"], "g": p["a"]},
                         objectives=[Objective("cost", "min", "A", "cost"),
                                     Objective("stiffness", "max", "N/m", "stiffness")],
                         constraints=[Constraint("g", "", "a constraint")])


PARAMS = {"a": [1e-4, 2e-4, 3e-4, 4e-4, 5e-4], "b": [0.1, 0.2, 0.3, 0.4, 0.5]}
COST = [1.0, 2.0, 3.0, 4.0, 5.0]
STIFF = [1.0, 3.5, 4.0, 4.5, 5.0]


def test_picks_by_hand_min_and_max_sense():
    ds = genetic_result(toy_problem(), PARAMS, {"cost": COST, "stiffness": STIFF, "g": [-1.0] * 5})
    picks = pareto_picks(ds)
    # scaled to [0, 1], lower better: cost (c - 1) / 4 = 0, .25, .5, .75, 1;
    # stiffness (5 - s) / 4 = 1, .375, .25, .125, 0; squared distances 1, .203, .3125, .578, 1
    assert picks == {"best cost": 0, "best stiffness": 4, "knee": 1}
    assert list(picks) == ["best cost", "best stiffness", "knee"]
    # labels rename the named objectives only
    assert pareto_picks(ds, labels={"stiffness": "stiffest"}) == {"best cost": 0, "stiffest": 4, "knee": 1}


def test_picks_count_feasible_solutions_only():
    # solutions 0 (cheapest) and 4 (stiffest) violate the constraint
    ds = genetic_result(toy_problem(), PARAMS, {"cost": COST, "stiffness": STIFF, "g": [0.5, -1.0, -1.0, 0.0, 2.0]})
    picks = pareto_picks(ds)
    assert picks["best cost"] == 1 and picks["best stiffness"] == 3
    # over the feasible 1, 2, 3: cost (c - 2) / 2 = 0, .5, 1; stiffness (4.5 - s) = 1, .5, 0:
    # squared distances 1, .5, 1
    assert picks["knee"] == 2
    # against a numpy version of the definition
    sol = final(ds)
    ok = sol["g"].values <= 0
    v = np.stack([sol["cost"].values, -sol["stiffness"].values], axis=1)[ok]
    scaled = (v - v.min(0)) / (v.max(0) - v.min(0))
    assert picks["knee"] == int(np.flatnonzero(ok)[np.argmin(np.linalg.norm(scaled, axis=1))])


def test_picks_edge_cases():
    problem = toy_problem()
    # nothing feasible: every solution counts
    ds = genetic_result(problem, PARAMS, {"cost": COST, "stiffness": STIFF, "g": [1.0] * 5})
    assert pareto_picks(ds) == {"best cost": 0, "best stiffness": 4, "knee": 1}
    # a non-finite objective never counts
    cost = [np.nan] + COST[1:]
    ds = genetic_result(problem, PARAMS, {"cost": cost, "stiffness": [9.0] + STIFF[1:], "g": [-1.0] * 5})
    assert pareto_picks(ds)["best stiffness"] == 4
    # one design: it is every pick; none: no pick
    one = genetic_result(problem, {k: v[:1] for k, v in PARAMS.items()},
                         {"cost": [1.0], "stiffness": [2.0], "g": [0.0]})
    assert pareto_picks(one) == {"best cost": 0, "best stiffness": 0, "knee": 0}
    empty = genetic_result(problem, {k: [] for k in PARAMS}, {"cost": [], "stiffness": [], "g": []})
    assert pareto_picks(empty) == {}


def test_generic_front_plot(tmp_path, check_png):
    ds = genetic_result(toy_problem(), PARAMS, {"cost": COST, "stiffness": STIFF, "g": [0.5, -1.0, -1.0, 0.0, 2.0]})
    path = plot_pareto_front(ds, tmp_path / "front.png", "cost", ["stiffness"], color="a")
    assert path == tmp_path / "front.png"
    check_png(path)
    with pytest.raises(ValueError, match="one per panel"):
        plot_pareto_front(ds, tmp_path / "x.png", "cost", ["stiffness"], color=["a", "b"])


def test_coil_trap_labels_kept():
    from invdesign_problems.coil_trap import pareto_picks as coil_picks
    from invdesign_problems.coil_trap import pareto_problem as coil_pareto

    problem = coil_pareto(barrier_grid=16)
    names = list(problem.space.names)
    params = {n: np.linspace(1.0, 2.0, 4) * (0.04 if n.startswith("current") else 8e-6) for n in names}
    outs = {"current": [0.08, 0.1, 0.12, 0.14], "freq_min": [100.0, 300.0, 350.0, 400.0],
            "depth": [4e-18, 3e-18, 2e-18, 1e-18]}
    outs.update({c: [-1.0] * 4 for c in problem.constraint_names})
    ds = genetic_result(problem, params, outs)
    picks = coil_picks(ds)
    assert set(picks) == {"least current", "highest frequency", "deepest", "knee"}
    assert picks["least current"] == 0 and picks["highest frequency"] == 3 and picks["deepest"] == 0
    assert picks == pareto_picks(ds, labels={"current": "least current", "freq_min": "highest frequency",
                                             "depth": "deepest"})


@pytest.fixture(scope="module")
def cavity_pareto():
    from invdesign_problems.cavity import QUICK, pareto_problem

    problem = pareto_problem(**QUICK)  # builds the mesh; never evaluated here
    mm, nj = 1e-3, 1e-9
    params = {"radius": np.array([5.0, 5.5, 6.0, 6.5, 7.0, 6.2]) * mm,
              "tilt": np.radians([5.0, 10.0, 15.0, 20.0, 25.0, 12.0]),
              "stub_radius": np.array([1.6, 1.8, 2.0, 2.2, 2.4, 2.0]) * mm,
              "stub_height": np.array([3.5, 4.0, 5.0, 6.0, 6.5, 5.5]) * mm,
              "grade": np.array([0.1, 1.2, 2.0, 2.9, 3.4, 1.0])}
    f_min = np.array([3.0, 5.0, 7.0, 9.0, 12.0, -2.0])
    outs = {"distance": np.array([0.1, 0.4, 0.8, 1.5, 2.5, 0.05]) * mm,
            "depth": np.array([20.0, 60.0, 90.0, 140.0, 150.0, 300.0]) * nj,
            "f_min": f_min, "unstable": -f_min}
    rest = {"y_min": -3e-3, "z_min": 8e-3, "height_above_stub": 3e-3, "target_y": -2.5e-3, "target_z": 8.5e-3,
            "energy_min": -1e-6, "f_r": 10.0, "f_phi": 12.0, "f_z": 20.0, "f_max": 20.0, "gap": 1e-3,
            "residual_force": 1e-9, "n_wells": 1.0}
    outs.update({k: np.full(6, v) for k, v in rest.items()})
    outs["remanence"] = np.array([1.22, 1.35, 1.44, 1.47, 1.47, 1.35])
    return genetic_result(problem, params, outs, pop=8)


def test_cavity_pareto_picks(cavity_pareto):
    ds = cavity_pareto
    assert json.loads(ds.attrs["objectives"]) == ["distance", "depth", "f_min"]
    assert json.loads(ds.attrs["senses"]) == {"distance": "min", "depth": "max", "f_min": "max"}
    from invdesign_problems.cavity import _PICK_WORDS

    picks = pareto_picks(ds, labels=_PICK_WORDS)
    # solution 5 is closest and deepest but unstable (infeasible): never picked
    assert picks["closest to target"] == 0 and picks["deepest"] == 4 and picks["highest frequency"] == 4
    # knee by hand over the feasible 0..4: distance (d - .1) / 2.4, depth (150 - D) / 130,
    # frequency (12 - f) / 9; squared distances 2, 1.10, .61, .46, 1
    assert picks["knee"] == 3


@pytest.mark.parametrize("entry_name", ["CAVITY_PARETO", "CAVITY"])
def test_cavity_pareto_plots_include_the_front(entry_name, cavity_pareto, tmp_path, monkeypatch, check_png):
    import invdesign_problems.cavity as cavity

    # plot_landscape rebuilds and evaluates the cavity model (minutes of compile): stubbed
    calls = []

    def fake_landscape(ds, path, problem=None):
        calls.append(path)
        return path

    monkeypatch.setattr(cavity, "plot_landscape", fake_landscape)
    pngs = getattr(cavity, entry_name).plot(cavity_pareto, tmp_path)
    name = "cavity-pareto"
    assert [p.name for p in pngs] == [f"{name}-distance-depth.png", f"{name}-distance-frequency.png",
                                      f"{name}-front.png", f"{name}-landscape.png"]
    assert calls == [pngs[-1]]
    for p in pngs[:-1]:
        assert p.exists()
        check_png(p)
