"""A plain-text table of the final design of any search result."""

from __future__ import annotations

import json
import math

import numpy as np
import xarray as xr

from .._units import display_scale
from ._results import final

__all__ = ["summary_table"]

_SECTIONS = ("parameter", "objective", "constraint", "output", "diagnostic")


def _format(value: float, units: str) -> str:
    if not math.isfinite(value):
        return f"{value} {units}".rstrip()
    if units == "rad":
        return f"{value:.6g} rad ({math.degrees(value):.4g} deg)"
    factor, unit = display_scale([value], units)
    return f"{value * factor:.6g} {unit}".rstrip()


def _role(var: xr.DataArray, value: float) -> str:
    role = var.attrs.get("role", "")
    if role == "objective":
        return f"objective ({var.attrs.get('sense', 'min')})"
    if role == "constraint":
        return "constraint, " + ("ok" if value <= 0.0 else "VIOLATED")
    return role


def _names(ds: xr.Dataset, attr: str) -> list[str]:
    try:
        return list(json.loads(ds.attrs.get(attr, "[]")))
    except (TypeError, ValueError):
        return []


def summary_table(ds: xr.Dataset) -> str:
    """A plain-text table of the final design of a search result and its figures of merit.

    The header names the problem, algorithm, seed and convergence, then the problem
    description and the driver's message. One row per scalar quantity of the final design
    (last gradient iteration, or the first solution of a genetic search), grouped as
    parameters, objectives (with their sense), constraints (`ok` when `g <= 0`, else
    `VIOLATED`), extra outputs, and driver diagnostics (gradient norm, constraint violation,
    ...). Values are shown with a readable SI prefix of their `units` attr (angles in `rad`
    unprefixed and in degrees), followed by the role and the `long_name`.

    **Arguments:**

    - `ds`: a dataset returned by `gradient_search` or `genetic_search` (or read by `load`).

    **Returns:** the table as one string (no trailing newline).

    **Example:**

    ```python
    print(summary_table(gradient_search(problem)))
    ```
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"ds must be an xarray.Dataset (a search result), got {type(ds).__name__}")
    row = final(ds) if ("iteration" in ds.dims or "solution" in ds.dims) else ds
    if "solution" in row.dims:
        if row.sizes["solution"] == 0:
            raise ValueError("ds has no final design: dim 'solution' is empty")
        row = row.isel(solution=0)
    listed = (_names(ds, "parameters") + _names(ds, "objectives") + _names(ds, "constraints")
              + _names(ds, "outputs"))
    rest = sorted(k for k in row.data_vars if k not in listed)
    rows: dict[str, list[tuple[str, float, xr.DataArray]]] = {s: [] for s in _SECTIONS}
    rows[""] = []
    seen: set[str] = set()
    for name in listed + rest:
        if name in seen or name not in row.data_vars:
            continue
        seen.add(name)
        var = row[name]
        if var.ndim or not np.issubdtype(var.dtype, np.number):
            continue
        role = var.attrs.get("role", "")
        rows[role if role in rows else ""].append((name, float(var.values), ds[name]))

    attrs = ds.attrs
    header = f"{attrs.get('problem', '?')} ({attrs.get('algorithm', '?')}"
    if "seed" in attrs:
        header += f", seed={attrs['seed']}"
    header += f", converged={attrs.get('converged', '')})"
    lines = [header]
    for key in ("description", "message"):
        if attrs.get(key):
            lines.append(str(attrs[key]))
    every = [r for section in rows.values() for r in section]
    if not every:
        lines.append("  (no scalar quantities in the final design)")
        return "\n".join(lines)
    width = max(len(name) for name, _, _ in every)
    cells = {name: _format(value, var.attrs.get("units", "")) for name, value, var in every}
    vwidth = max(18, max(len(c) for c in cells.values()))
    for section in (*_SECTIONS, ""):
        for name, value, var in rows[section]:
            role = _role(var, value)
            long_name = var.attrs.get("long_name", "")
            text = f"  {name:<{width}}  {cells[name]:>{vwidth}}   {role}"
            if long_name and long_name != name:
                text += f": {long_name}" if role else long_name
            lines.append(text.rstrip())
    if "iteration" in ds.dims:
        lines.append(f"  (final design: the last of {ds.sizes['iteration']} iterations)")
    elif "solution" in ds.dims:
        lines.append(f"  ({ds.sizes['solution']} solutions on dim 'solution'; the first is shown)")
    return "\n".join(lines)
