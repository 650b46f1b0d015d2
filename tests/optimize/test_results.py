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
