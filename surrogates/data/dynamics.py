"""Training data for the magnetization-dynamics surrogate (muMAG standard problem 4).

As in Kovacs et al., "Learning magnetization dynamics" (2019): start from the SP4 s-state,
apply an in-plane field drawn uniformly from a segment of opening angle 44 degrees around
the direction opposing the initial magnetization (-x) with mu0 |H| uniform in [22, 41] mT,
integrate the LLG equation for 1 ns and store the magnetization every 10 ps.

Run from the command line (resumes where it stopped; add `--scheduler tcp://host:8786`
for a cluster):

    python -m invdesign_surrogates.data.dynamics --out data/dynamics

Defaults (about half an hour on 2 CPU cores): the paper's grid of 256 x 64 x 1 cells
(1.95 x 1.95 x 3 nm^3), 64 trajectories of 101 snapshots (0 to 1 ns). One trajectory
costs about 45 s of one core. Scale up with `--n-fields 200` (the paper's count) or more
on a cluster (`--scheduler`); `--grid 128 32 1` (3.9 nm cells) is about 16x cheaper per
trajectory; `--per-shard` sets how many trajectories one Dask task computes.

A dataset grows: rerun in the same folder with a larger `--n-fields` and only the new
fields are integrated (field k is the same for every count; grow by whole shards, i.e. from
a multiple of `--per-shard`).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from pathlib import Path

import numpy as np
import xarray as xr

from ._shards import atomic_write_netcdf, open_shards, run_shards

GENERATOR = "sp4-dynamics"

DEFAULTS = {
    "grid": [256, 64, 1],
    "n_fields": 64,
    "per_shard": 2,
    "seed": 0,
    "t_end": 1e-9,
    "dt_out": 1e-11,
    "rtol": 1e-5,
    "method": "bs3",
    "angle_deg": 44.0,
    "field_mT": [22.0, 41.0],
}


def sample_fields(n: int, *, seed: int, angle_deg: float = 44.0, field_mT=(22.0, 41.0)) -> np.ndarray:
    """`n` in-plane fields mu0 H (tesla), shape `(n, 3)`, opposing the s-state (+x).

    Directions uniform in an arc of `angle_deg` centred on -x, magnitudes uniform in
    `field_mT`.

    ```python
    >>> h = sample_fields(1000, seed=1)
    >>> ang = np.degrees(np.arctan2(h[:, 1], -h[:, 0]))
    >>> mag = np.linalg.norm(h, axis=1) * 1e3
    >>> bool(np.all(np.abs(ang) <= 22.0) and np.all((mag >= 22.0) & (mag <= 41.0)))
    True
    >>> print(f"{ang.min():.0f} {ang.max():.0f} {mag.min():.0f} {mag.max():.0f} {h[:, 2].max():.1f}")
    -22 22 22 41 0.0

    ```
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    lo, hi = float(field_mT[0]), float(field_mT[1])
    if not (0 < lo <= hi):
        raise ValueError(f"field_mT must be 0 < low <= high, got {field_mT}")
    if not (0 <= angle_deg <= 360):
        raise ValueError(f"angle_deg must be in [0, 360], got {angle_deg}")
    # one (direction, magnitude) pair per row of a single stream: the first k fields are the
    # same for every n >= k, so a dataset grows by appending fields
    u = np.random.default_rng(seed).uniform(size=(n, 2))
    half = np.radians(angle_deg) / 2
    phi = np.pi + (2.0 * u[:, 0] - 1.0) * half
    b = (lo + (hi - lo) * u[:, 1]) * 1e-3
    return np.stack([b * np.cos(phi), b * np.sin(phi), np.zeros(n)], axis=1)


def _s_state_path(out_dir: Path) -> Path:
    return out_dir / "s_state.nc"


def compute_s_state(grid) -> xr.Dataset:
    """The relaxed SP4 s-state on `grid` as a dataset (variable `m`)."""
    from invdesign.micromag import average_magnetization, sp4_initial_state, sp4_system

    system = sp4_system(tuple(grid))
    res = sp4_initial_state(system)
    m = np.asarray(res.m)
    return xr.Dataset(
        {"m": (("x", "y", "z", "component"), m, {"units": "1", "long_name": "unit magnetization"})},
        coords={"component": ["x", "y", "z"]},
        attrs={
            "max_torque": res.max_torque,
            "converged": int(res.converged),
            "m_avg": np.asarray(average_magnetization(system, res.m)).tolist(),
        },
    )


def compute_shard(settings: dict, params: dict, folder=None) -> xr.Dataset:
    """Worker task: integrate the LLG for the fields of one shard.

    `params["s_state"]` names the start-state file relative to the dataset `folder` (the
    runner passes the folder as this worker sees it), so a dataset can move.
    """
    import jax.numpy as jnp

    import invdesign
    from invdesign.constants import MU0
    from invdesign.micromag import average_magnetization, integrate_llg, sp4_system

    grid = tuple(settings["grid"])
    system = sp4_system(grid)
    s_path = Path(params["s_state"])
    if not s_path.is_absolute() and folder is not None:
        s_path = Path(folder) / s_path
    with xr.open_dataset(s_path, engine="h5netcdf") as s:
        m0 = jnp.asarray(s["m"].values)
    n_t = int(round(settings["t_end"] / settings["dt_out"]))
    t = np.linspace(0.0, n_t * settings["dt_out"], n_t + 1)
    fields_T = np.asarray(params["fields_T"], dtype=float)
    snaps, avgs, steps = [], [], []

    def observe(m):
        return m.astype(jnp.float32), average_magnetization(system, m)

    for b in fields_T:
        sol = integrate_llg(system, m0, jnp.asarray(b / MU0), t, rtol=settings["rtol"], atol=settings["rtol"], observe=observe, method=settings["method"])
        if not bool(sol.success):
            raise RuntimeError(f"LLG integration did not reach t_end for field {b} T (max_steps)")
        m_t, avg = sol.values
        if not np.all(np.isfinite(np.asarray(avg))):
            raise RuntimeError(f"non-finite magnetization for field {b} T")
        snaps.append(np.asarray(m_t))
        avgs.append(np.asarray(avg))
        steps.append(int(sol.n_steps))
    idx = np.asarray(params["index"])
    return xr.Dataset(
        {
            "m": (("sample", "time", "x", "y", "z", "component"), np.stack(snaps), {"units": "1", "long_name": "unit magnetization (float32)"}),
            "m_avg": (("sample", "time", "component"), np.stack(avgs), {"units": "1", "long_name": "average unit magnetization"}),
            "b_ext": (("sample", "component"), fields_T, {"units": "T", "long_name": "applied field mu0 H"}),
            "n_steps": ("sample", np.asarray(steps), {"long_name": "accepted Dormand-Prince steps"}),
        },
        coords={
            "sample": ("sample", idx),
            "time": ("time", t, {"units": "s"}),
            "component": ["x", "y", "z"],
        },
        attrs={
            "invdesign_version": invdesign.__version__,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        },
    )


def generate(out_dir, *, client=None, scheduler=None, n_workers=None, progress=True, **overrides) -> xr.Dataset:
    """Generate (or resume) the dynamics dataset in `out_dir`; returns the combined dataset.

    Keyword overrides of `DEFAULTS`: grid, n_fields, per_shard, seed, t_end, dt_out, rtol,
    angle_deg, field_mT. The combined dataset is also written to `out_dir/dynamics.nc`.
    """
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; allowed: {sorted(DEFAULTS)}")
    settings = {**DEFAULTS, **overrides}
    settings["grid"] = [int(n) for n in settings["grid"]]
    if len(settings["grid"]) != 3 or min(settings["grid"]) < 1:
        raise ValueError(f"grid must be three positive integers, got {settings['grid']}")
    if settings["n_fields"] < 1 or settings["per_shard"] < 1:
        raise ValueError("n_fields and per_shard must be >= 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s_path = _s_state_path(out_dir)
    if not s_path.exists():
        atomic_write_netcdf(compute_s_state(settings["grid"]), s_path)
    fields = sample_fields(settings["n_fields"], seed=settings["seed"], angle_deg=settings["angle_deg"], field_mT=settings["field_mT"])
    shards = []
    for k, start in enumerate(range(0, settings["n_fields"], settings["per_shard"])):
        stop = min(start + settings["per_shard"], settings["n_fields"])
        shards.append({
            "name": f"shard-{k:04d}",
            "params": {"index": list(range(start, stop)), "fields_T": fields[start:stop].tolist(), "s_state": s_path.name},
        })
    # n_fields is not part of the dataset's identity: asking for more fields appends shards
    identity = {k: v for k, v in settings.items() if k != "n_fields"}
    run_shards(compute_shard, out_dir, GENERATOR, identity, shards, client=client, scheduler=scheduler, n_workers=n_workers, progress=progress)
    ds = open_shards(out_dir, "sample")
    with xr.open_dataset(s_path, engine="h5netcdf") as s:
        ds["m_initial"] = s["m"].load()
    ds.attrs["description"] = "LLG trajectories of muMAG SP4 from the s-state under random switching fields"
    atomic_write_netcdf(ds, out_dir / "dynamics.nc")
    return ds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="data/dynamics")
    p.add_argument("--grid", type=int, nargs=3, default=DEFAULTS["grid"])
    p.add_argument("--n-fields", type=int, default=DEFAULTS["n_fields"])
    p.add_argument("--per-shard", type=int, default=DEFAULTS["per_shard"])
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    p.add_argument("--workers", type=int, default=None, help="LocalCluster worker processes (0: compute in this process without Dask, e.g. on a GPU)")
    a = p.parse_args(argv)
    ds = generate(a.out, scheduler=a.scheduler, n_workers=a.workers, grid=a.grid, n_fields=a.n_fields, per_shard=a.per_shard, seed=a.seed)
    print(json.dumps({"samples": int(ds.sizes["sample"]), "file": str(Path(a.out) / "dynamics.nc")}))


if __name__ == "__main__":
    main()
