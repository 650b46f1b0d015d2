import datetime
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import invdesign  # noqa: F401
from invdesign.optimize import (
    Constraint,
    DesignProblem,
    DesignSpace,
    Objective,
    Parameter,
    final,
    genetic_search,
    gradient_search,
    history,
    load,
    save,
    summary_table,
)


def _problem():
    space = DesignSpace(
        [
            Parameter("radius", 1e-3, 1e-1, "m", long_name="loop radius", log=True),
            Parameter("current", -10.0, 10.0, "A", long_name="loop current"),
        ]
    )

    def evaluate(p):
        return {
            "energy": (jnp.log10(p["radius"]) + 2.0) ** 2 + (p["current"] - 1.0) ** 2,
            "force": p["current"] * p["radius"],
            "overload": p["current"] - 5.0,
            "ratio": p["current"] / 10.0,
        }

    return DesignProblem(
        "loop",
        space,
        evaluate,
        [Objective("energy", units="J", long_name="stored energy"), Objective("force", sense="max", units="N")],
        [Constraint("overload", units="A", long_name="current above rating")],
        description="a toy loop problem",
    )


@pytest.fixture(scope="module")
def grad_ds():
    return gradient_search(_problem(), weights={"energy": 1.0, "force": 0.1}, progress=False)


@pytest.fixture(scope="module")
def gen_ds():
    return genetic_search(_problem(), pop_size=12, n_gen=4, seed=3, progress=False)


def _all_attrs(ds):
    yield ds.attrs
    for v in ds.variables.values():
        yield v.attrs


@pytest.mark.parametrize("which", ["grad_ds", "gen_ds"])
def test_round_trip_exact(which, request, tmp_path):
    ds = request.getfixturevalue(which)
    path = tmp_path / "run.nc"
    save(ds, path)
    back = load(path)
    xr.testing.assert_identical(back, ds)
    assert os.listdir(tmp_path) == ["run.nc"]  # no temporary file left behind
    # Fully loaded: replacing the file does not change the loaded data.
    values = back["radius"].values.copy()
    save(ds.assign(radius=ds["radius"] * 0 + 1.0), path)
    np.testing.assert_array_equal(back["radius"].values, values)
    with xr.open_dataset(path, engine="h5netcdf") as raw:
        assert float(raw["radius"].values.flat[0]) == 1.0


@pytest.mark.parametrize("which", ["grad_ds", "gen_ds"])
def test_schema_attrs(which, request):
    ds = request.getfixturevalue(which)
    a = ds.attrs
    assert a["problem"] == "loop" and a["description"] == "a toy loop problem"
    assert json.loads(a["parameters"]) == ["radius", "current"]
    assert json.loads(a["objectives"]) == ["energy", "force"]
    assert json.loads(a["constraints"]) == ["overload"]
    assert json.loads(a["outputs"]) == ["ratio"]
    assert json.loads(a["senses"]) == {"energy": "min", "force": "max"}
    assert set(json.loads(a["versions"])) == {"invdesign", "jax", "optax", "pymoo", "numpy", "xarray"}
    assert isinstance(json.loads(a["settings"]), dict)
    assert a["converged"] in (0, 1) and type(a["converged"]) is int
    created = datetime.datetime.fromisoformat(a["created_utc"])
    assert created.utcoffset() == datetime.timedelta(0)
    for attrs in _all_attrs(ds):
        for value in attrs.values():
            assert not isinstance(value, (dict, bool, np.bool_)) and value is not None
    for name, units, long_name in [
        ("radius", "m", "loop radius"),
        ("current", "A", "loop current"),
        ("energy", "J", "stored energy"),
        ("force", "N", "force"),
        ("overload", "A", "current above rating"),
        ("ratio", "", "ratio"),
    ]:
        assert ds[name].attrs["units"] == units
        assert ds[name].attrs["long_name"] == long_name
    assert ds.radius.attrs["log_scale"] == 1 and ds.radius.attrs["lower"] == 1e-3


def test_gradient_dims_and_final(grad_ds):
    assert grad_ds["radius"].dims == ("iteration",)
    assert grad_ds.attrs["algorithm"] == "gradient-lbfgs"
    sol = final(grad_ds)
    assert sol.sizes["solution"] == 1
    assert float(sol.radius[0]) == float(grad_ds.radius[-1])
    assert history(grad_ds) is grad_ds


def test_genetic_final_and_history(gen_ds):
    sol, hist = final(gen_ds), history(gen_ds)
    assert set(sol.data_vars) == {"radius", "current", "energy", "force", "overload", "ratio", "cv"}
    assert hist["energy"].dims == ("generation", "individual")
    np.testing.assert_array_equal(hist["energy"].values, gen_ds["history_energy"].values)
    # force is maximised: reported as computed (current * radius), not negated.
    np.testing.assert_allclose(hist["force"].values, hist["current"].values * hist["radius"].values, rtol=1e-14)


def test_save_refuses_dict_attr_and_keeps_old_file(grad_ds, tmp_path):
    path = tmp_path / "run.nc"
    save(grad_ds, path)
    bad = grad_ds.copy()
    bad.attrs["settings"] = {"not": "json"}
    with pytest.raises(TypeError, match="dataset attr 'settings' must be a string or number, got dict"):
        save(bad, path)
    bad = grad_ds.copy()
    bad["radius"].attrs["log_scale"] = True
    with pytest.raises(TypeError, match="variable 'radius' attr 'log_scale'"):
        save(bad, path)
    xr.testing.assert_identical(load(path), grad_ds)
    assert os.listdir(tmp_path) == ["run.nc"]


def test_failed_write_leaves_no_partial_file(grad_ds, tmp_path):
    path = tmp_path / "run.nc"
    bad = grad_ds.assign(obj=("iteration", np.array([object()] * grad_ds.sizes["iteration"])))
    with pytest.raises(Exception):
        save(bad, path)
    assert os.listdir(tmp_path) == []


def test_problem_options_and_model_are_declared_fields():
    space = DesignSpace([Parameter("x", -1.0, 1.0, "m")])
    model = object()
    options = json.dumps({"kind": "toy", "grid": [3, 4]})
    problem = DesignProblem("toy", space, lambda p: {"f": p["x"] ** 2}, ["f"], model=model, options=options)
    assert problem.model is model and problem.options == options
    plain = DesignProblem("toy", space, lambda p: {"f": p["x"] ** 2}, ["f"])
    assert plain.model is None and plain.options == ""
    via = DesignProblem.from_functions("toy", space, {"f": lambda p: p["x"] ** 2}, model=model, options=options)
    assert via.model is model and via.options == options
    with pytest.raises(ValueError, match="options must be a valid JSON string"):
        DesignProblem("toy", space, lambda p: {"f": p["x"] ** 2}, ["f"], options="{kind: toy")
    with pytest.raises(TypeError, match="options must be a JSON string"):
        DesignProblem("toy", space, lambda p: {"f": p["x"] ** 2}, ["f"], options={"kind": "toy"})


@pytest.mark.parametrize("search", ["gradient", "genetic"])
def test_problem_options_go_into_the_dataset_attrs(search, tmp_path):
    space = DesignSpace([Parameter("x", -1.0, 1.0, "m"), Parameter("y", -1.0, 1.0, "m")])
    options = json.dumps({"centre": [0.25, -0.5]}, sort_keys=True)

    def evaluate(p):
        return {"f": (p["x"] - 0.25) ** 2 + (p["y"] + 0.5) ** 2}

    problem = DesignProblem("toy", space, evaluate, ["f"], options=options)
    if search == "gradient":
        ds = gradient_search(problem, max_iter=20, progress=False)
    else:
        ds = genetic_search(problem, pop_size=6, n_gen=2, seed=0, progress=False)
    assert ds.attrs["problem_options"] == options
    assert json.loads(ds.attrs["problem_options"]) == {"centre": [0.25, -0.5]}
    save(ds, tmp_path / "toy.nc")
    assert load(tmp_path / "toy.nc").attrs["problem_options"] == options
    # no options: no attr (rather than an empty string)
    bare = gradient_search(DesignProblem("toy", space, evaluate, ["f"]), max_iter=2, progress=False)
    assert "problem_options" not in bare.attrs


_PREFIX = {"a": 1e-18, "f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6}


def _value(row):
    """The SI value of a table row `name  number prefix+unit   role` (units J, m, A, N)."""
    _, number, unit = row.split()[:3]
    return float(number) * (_PREFIX[unit[0]] if len(unit) == 2 else 1.0)


def _rows(table):
    return {line.split()[0]: line for line in table.splitlines()[3:] if line.startswith("  ") and "(" not in line[:3]}


def test_summary_table_of_a_gradient_result(grad_ds):
    table = summary_table(grad_ds)
    lines = table.splitlines()
    assert lines[0] == f"loop (gradient-lbfgs, seed=0, converged={grad_ds.attrs['converged']})"
    assert lines[1] == "a toy loop problem" and lines[2] == grad_ds.attrs["message"]
    rows = _rows(table)
    names = list(rows)
    # parameters, objectives, constraints, outputs, then the driver's diagnostics
    assert names[:6] == ["radius", "current", "energy", "force", "overload", "ratio"]
    assert {"lagrangian", "scalarized_objective", "grad_norm", "max_violation", "outer", "penalty"} <= set(names[6:])
    assert "multiplier" not in rows  # a vector per iteration: not a scalar of the design
    radius = float(grad_ds.radius[-1])  # about 1 cm: shown in mm
    assert f"{radius * 1e3:.6g} mm" in rows["radius"] and "parameter: loop radius" in rows["radius"]
    assert f"{float(grad_ds.current[-1]):.6g} A" in rows["current"]
    assert "objective (min): stored energy" in rows["energy"] and "objective (max)" in rows["force"]
    overload = float(grad_ds.overload[-1])
    assert ("constraint, ok" if overload <= 0 else "constraint, VIOLATED") in rows["overload"]
    assert "current above rating" in rows["overload"]
    assert rows["ratio"].split()[2] == "output"
    assert f"{float(grad_ds.grad_norm[-1]):.6g}" in rows["grad_norm"] and "diagnostic" in rows["grad_norm"]
    assert lines[-1] == f"  (final design: the last of {grad_ds.sizes['iteration']} iterations)"


def test_summary_table_of_a_genetic_result_shows_the_first_solution(gen_ds):
    table = summary_table(gen_ds)
    rows = _rows(table)
    first = final(gen_ds).isel(solution=0)
    assert _value(rows["energy"]) == pytest.approx(float(first.energy), rel=1e-5)
    assert _value(rows["radius"]) == pytest.approx(float(first.radius), rel=1e-5)
    assert "cv" in rows and "history_energy" not in rows and "n_evals" not in rows
    assert table.splitlines()[0].startswith("loop (nsga2, seed=3, converged=")
    assert table.splitlines()[-1] == f"  ({gen_ds.sizes['solution']} solutions on dim 'solution'; the first is shown)"


def test_summary_table_shows_angles_in_degrees_and_survives_a_file(grad_ds, tmp_path):
    ds = grad_ds.assign(tilt=("iteration", np.full(grad_ds.sizes["iteration"], np.pi / 6)))
    ds["tilt"].attrs.update(units="rad", long_name="tilt of the loop", role="output")
    assert "0.523599 rad (30 deg)   output: tilt of the loop" in summary_table(ds)
    save(grad_ds, tmp_path / "run.nc")
    assert summary_table(load(tmp_path / "run.nc")) == summary_table(grad_ds)
    with pytest.raises(TypeError, match="ds must be an xarray.Dataset"):
        summary_table({"radius": 1.0})
