"""Search results as `xarray.Dataset`: assembly, attr checks, atomic save and load.

The schema is described in the `invdesign.optimize` package docstring.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from .._io import atomic_write
from ._problem import DesignProblem

__all__ = ["versions", "variable_attrs", "build_dataset", "save", "load", "final", "history"]

HISTORY_PREFIX = "history_"


def versions() -> str:
    """JSON string of the versions of invdesign, jax, optax, pymoo, numpy, xarray."""
    out = {}
    try:
        import invdesign

        out["invdesign"] = str(getattr(invdesign, "__version__", "unknown"))
    except Exception:  # pragma: no cover - package import failure is reported as unknown
        out["invdesign"] = "unknown"
    for lib in ("jax", "optax", "pymoo", "numpy", "xarray"):
        try:
            out[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover
            out[lib] = "unknown"
    return json.dumps(out, sort_keys=True)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return repr(obj)


def to_json(obj: Any) -> str:
    """Serialise settings to a deterministic JSON string (numpy scalars become numbers)."""
    return json.dumps(obj, default=_json_default, sort_keys=True)


def variable_attrs(problem: DesignProblem, name: str) -> dict[str, Any]:
    """The `units`, `long_name`, `role` (and bounds / sense / scale) attrs of a named quantity."""
    if name in problem.space.names:
        p = problem.space[name]
        return {
            "units": p.units,
            "long_name": p.long_name or p.name,
            "role": "parameter",
            "lower": p.lower,
            "upper": p.upper,
            "log_scale": int(p.log),
        }
    for o in problem.objectives:
        if o.name == name:
            return {
                "units": o.units,
                "long_name": o.long_name or o.name,
                "role": "objective",
                "sense": o.sense,
                "scale": o.scale,
            }
    for c in problem.constraints:
        if c.name == name:
            return {
                "units": c.units,
                "long_name": c.long_name or c.name,
                "role": "constraint",
                "scale": c.scale,
                "feasible_when": "<= 0",
            }
    units, long_name = getattr(problem, "outputs", {}).get(name, ("", name))
    return {"units": units, "long_name": long_name, "role": "output"}


def build_dataset(
    problem: DesignProblem,
    variables: Mapping[str, tuple[tuple[str, ...], Any]],
    *,
    coords: Mapping[str, Any],
    algorithm: str,
    settings: Mapping[str, Any],
    seed: int,
    converged: bool,
    message: str,
    outputs: list[str],
    attrs: Mapping[str, Mapping[str, Any]] | None = None,
) -> xr.Dataset:
    """Assemble a search result following the schema above.

    **Arguments:**

    - `variables`: `{name: (dims, array)}`; names of parameters/objectives/constraints/outputs,
      optionally with the `history_` prefix, get their attrs from the problem.
    - `coords`: dimension coordinates.
    - `algorithm`, `settings`, `seed`, `converged`, `message`: run metadata.
    - `outputs`: every evaluate output name (objectives, constraints, extras).
    - `attrs`: explicit attrs for driver diagnostics (`{"grad_norm": {"units": "", ...}}`).

    **Returns:** the `xarray.Dataset`.
    """
    attrs = dict(attrs or {})
    data_vars = {}
    for name, (dims, values) in variables.items():
        base = name[len(HISTORY_PREFIX):] if name.startswith(HISTORY_PREFIX) else name
        if name in attrs:
            var_attrs = dict(attrs[name])
        else:
            var_attrs = variable_attrs(problem, base)
            if base != name:
                var_attrs["long_name"] = f"{var_attrs['long_name']} (population history)"
        data_vars[name] = xr.Variable(dims, np.asarray(values), attrs=var_attrs)
    extras = [n for n in outputs if n not in problem.required_outputs]
    ds = xr.Dataset(data_vars, coords=dict(coords))
    ds.attrs = {
        "problem": problem.name,
        "description": problem.description,
        "algorithm": algorithm,
        "settings": to_json(dict(settings)),
        "seed": int(seed),
        "versions": versions(),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "parameters": json.dumps(list(problem.space.names)),
        "objectives": json.dumps(problem.objective_names),
        "constraints": json.dumps(problem.constraint_names),
        "outputs": json.dumps(extras),
        "senses": json.dumps({o.name: o.sense for o in problem.objectives}),
        "converged": int(bool(converged)),
        "message": str(message),
    }
    if problem.options:
        ds.attrs["problem_options"] = problem.options
    check_attrs(ds)
    return ds


def check_attrs(ds: xr.Dataset) -> None:
    """Raise TypeError naming the attr if any dataset or variable attr is a dict, bool or None."""
    items = [("dataset", ds.attrs)] + [(f"variable {k!r}", v.attrs) for k, v in ds.variables.items()]
    for where, attrs in items:
        for key, value in attrs.items():
            if isinstance(value, (dict, bool, np.bool_)) or value is None:
                raise TypeError(f"{where} attr {key!r} must be a string or number, got {type(value).__name__}")


def save(ds: xr.Dataset, path: str | os.PathLike) -> None:
    """Write `ds` to netCDF with `engine="h5netcdf"`, atomically.

    The file is written to a temporary name in the same directory and moved into place with
    `os.replace` (through `invdesign.atomic_write`), so `path` never holds a partial file.

    **Arguments:**

    - `ds`: a search result.
    - `path`: target file (`.nc`); its directory must exist.

    **Example:** `save(gradient_search(problem), "run.nc")`
    """
    check_attrs(ds)
    atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))


def load(path: str | os.PathLike) -> xr.Dataset:
    """Read a dataset written by `save`, fully loaded into memory (the file is closed).

    **Example:** `ds = load("run.nc"); ds.attrs["algorithm"]`
    """
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def final(ds: xr.Dataset) -> xr.Dataset:
    """The answer of a search on dim `solution`, for gradient and genetic results alike.

    Gradient results give their last iteration as a one-element `solution`; genetic results
    their Pareto set / best individual (the variables without the `history_` prefix).
    """
    if "iteration" in ds.dims:
        out = ds.isel(iteration=[-1]).rename({"iteration": "solution"})
        return out.assign_coords(solution=np.arange(1))
    keep = [k for k, v in ds.data_vars.items() if "solution" in v.dims]
    return ds[keep]


def history(ds: xr.Dataset) -> xr.Dataset:
    """The search history: gradient iterations, or genetic populations under bare names."""
    if "iteration" in ds.dims:
        return ds
    keep = {k: k[len(HISTORY_PREFIX):] for k in ds.data_vars if k.startswith(HISTORY_PREFIX)}
    extra = [k for k, v in ds.data_vars.items() if "generation" in v.dims and k not in keep]
    return ds[list(keep) + extra].rename(keep)
