"""Training data for the hysteresis surrogate: grain structures and demagnetization curves.

As in Kovacs et al., "Exploring the hysteresis properties of nanocrystalline permanent
magnets using deep learning", section 2: 2D Voronoi grain structures with the number of
grains n_g uniform in [16, 256] and the maximum misorientation theta uniform in [-pi, pi],
easy axes uniform in [-theta, theta] around the field axis y; Nd2Fe14B; cells of
2 x 2 x 36000 nm^3; the field stepped down from H_A in steps of 0.01 H_A.

Two parts, both resumable Dask jobs writing atomic shards:

- `unlabeled`: many structures (cheap): the x-component of the easy axis per cell (the
  paper's autoencoder input), the grain ids, n_g, theta and the structure seed.
- `labeled`: a subset with demagnetization curves M(H) and the six anchor points.

Command line (resumes; `--scheduler tcp://host:8786` for a cluster):

    python -m invdesign_surrogates.data.hysteresis --out data/hysteresis

Defaults (about half an hour on 2 CPU cores): a 64 x 64 grid of 2 nm cells (128 nm
square, cells at the paper's 2 nm, below the 4.3 nm Bloch wall width), 20000 unlabeled
structures and 128 labeled curves, each followed until M < -0.5 Ms past the coercive field
(all six anchor points lie before that; `--full-branch` runs to -H_A). The paper's
320 nm square is `--grid 160 160` (about 7x the work per curve); its 3977 labeled curves
need a cluster: `--n-labeled 4000 --scheduler ...`.
"""

from __future__ import annotations

import argparse
import functools
import datetime as _dt
import json
from pathlib import Path

import numpy as np
import xarray as xr

from ._shards import atomic_write_netcdf, open_shards

ANCHORS = ("M1", "Mr", "Hk90", "Hk80", "Hk70", "Hc")

#: The labeled set's fixed test split: structure index i is held out when i % 5 == 4
#: (a fifth of every index range, so the split stays fixed as the set grows). No model
#: is trained or tuned on these structures.
TEST_EVERY = 5


def is_test(index) -> np.ndarray:
    """True for labeled structure indices in the fixed held-out test split (`i % 5 == 4`)."""
    index = np.asarray(index)
    if index.dtype.kind not in "iu" or np.any(index < 0):
        raise ValueError(f"index must hold non-negative integer structure indices, got {index!r}")
    return index % TEST_EVERY == TEST_EVERY - 1

DEFAULTS = {
    "grid": [64, 64],
    "cell": 2e-9,
    "thickness": 36000e-9,
    "n_grains_range": [16, 256],
    "theta_range": [-np.pi, np.pi],
    "n_unlabeled": 20000,
    "unlabeled_per_shard": 2500,
    "n_labeled": 1024,
    "labeled_per_shard": 16,
    "seed": 0,
    "step": 0.01,
    "tol": 1e-5,
    "stop_below": -0.5,
    "dtype": "float64",
}


def structure_seed(seed: int, kind: int, index: int) -> int:
    """Independent, reproducible seed for structure `index` of part `kind` (0 unlabeled, 1 labeled)."""
    return int(np.random.SeedSequence([int(seed), int(kind), int(index)]).generate_state(1)[0])


#: structure parameters (n_g, theta) are drawn in blocks of this many indices, so that the
#: parameters of index i never depend on how many structures were asked for
PARAMETER_BLOCK = 128


def structure_parameters(settings: dict, kind: int, indices) -> tuple[np.ndarray, np.ndarray]:
    """(n_grains, theta) of structures `indices` of part `kind` (0 unlabeled, 1 labeled).

    Block b = i // 128 draws 128 values of n_g (uniform integers) and then 128 of theta
    (uniform) from the seed sequence (seed, kind, 10**9) for b = 0 and (seed, kind, 10**9, b)
    for later blocks, so a dataset can grow without changing its first structures.
    """
    indices = np.asarray(indices, dtype=np.int64)
    lo, hi = settings["n_grains_range"]
    n_g = np.empty(len(indices), np.int64)
    theta = np.empty(len(indices))
    for b in np.unique(indices // PARAMETER_BLOCK):
        key = [settings["seed"], kind, 10**9] + ([int(b)] if b else [])
        rng = np.random.default_rng(np.random.SeedSequence(key))
        block_ng = rng.integers(lo, hi + 1, PARAMETER_BLOCK)
        block_theta = rng.uniform(settings["theta_range"][0], settings["theta_range"][1], PARAMETER_BLOCK)
        sel = indices // PARAMETER_BLOCK == b
        n_g[sel] = block_ng[indices[sel] % PARAMETER_BLOCK]
        theta[sel] = block_theta[indices[sel] % PARAMETER_BLOCK]
    return n_g, theta


def _structures(settings, kind, indices):
    from invdesign.micromag import voronoi_grains

    all_ng, all_theta = structure_parameters(settings, kind, indices)
    out = []
    for k, i in enumerate(indices):
        s = structure_seed(settings["seed"], kind, i)
        g = voronoi_grains(tuple(settings["grid"]), (settings["cell"],) * 2, int(all_ng[k]), float(all_theta[k]), seed=s)
        out.append((i, s, int(all_ng[k]), float(all_theta[k]), g))
    return out


def _structure_vars(items):
    kx = np.stack([g.easy_axis[..., 0] for *_, g in items]).astype(np.float32)
    gid = np.stack([g.grain_id for *_, g in items]).astype(np.int16)
    return {
        "kx": (("sample", "x", "y"), kx, {"units": "1", "long_name": "x-component of the easy axis (field along y)"}),
        "grain_id": (("sample", "x", "y"), gid, {"long_name": "grain index of each cell"}),
        "n_grains": ("sample", np.array([ng for _, _, ng, _, _ in items]), {"long_name": "number of grains n_g"}),
        "theta": ("sample", np.array([th for _, _, _, th, _ in items]), {"units": "rad", "long_name": "maximum misorientation"}),
        "structure_seed": ("sample", np.array([s for _, s, _, _, _ in items], dtype=np.uint32), {"long_name": "seed of voronoi_grains"}),
    }


def _attrs():
    import invdesign

    return {
        "invdesign_version": invdesign.__version__,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def unlabeled_shard(settings: dict, params: dict) -> xr.Dataset:
    """Worker task: a block of grain structures."""
    items = _structures(settings, 0, params["index"])
    return xr.Dataset(_structure_vars(items), coords={"sample": ("sample", np.asarray(params["index"]))}, attrs=_attrs())


def labeled_shards(settings: dict, params_list: list[dict], lanes: int | None = 1) -> list[xr.Dataset]:
    """Worker task: the structures of several shards with their demagnetization curves,
    computed in one batched solve (`invdesign.micromag.demagnetization_curves` with `lanes`
    structures advancing together: 1 is fastest on a CPU, many on a GPU)."""
    from invdesign.micromag import demagnetization_curves, grain_system

    index = [i for params in params_list for i in params["index"]]
    items = _structures(settings, 1, index)
    cell = (settings["cell"], settings["cell"], settings["thickness"])
    curves = demagnetization_curves(
        [grain_system(g, cell) for *_, g in items], step=settings["step"], tol=settings["tol"],
        stop_below=settings["stop_below"], dtype=settings["dtype"], lanes=lanes,
    )
    if not np.all(np.isfinite(curves["M"].values[:, 0])):  # pragma: no cover - solver bug
        raise RuntimeError(f"non-finite magnetization in structures {index}")
    wall = curves.attrs["wall_time_s"] / len(index)
    out = []
    start = 0
    for params in params_list:
        sel = slice(start, start + len(params["index"]))
        start += len(params["index"])
        part = curves.isel(sample=sel)
        data = _structure_vars(items[sel])
        data.update(
            {
                "M": (("sample", "field"), part["M"].values, {"units": "1", "long_name": "M/Ms along the field (NaN after an early stop)"}),
                "anchors": (("sample", "anchor"), part["anchors"].values, {"long_name": "M1, Mr (M/Ms) and Hk90, Hk80, Hk70, Hc (A/m, signed)"}),
                "complete": ("sample", part["complete"].values, {"long_name": "all six anchor points reached (1/0)"}),
                "converged": ("sample", part["converged"].values, {"long_name": "every minimisation converged (1/0)"}),
                "iterations": ("sample", part["iterations"].values.astype(np.int64), {"long_name": "descent iterations of the curve"}),
                "wall_time": ("sample", np.full(len(params["index"]), wall), {"units": "s", "long_name": "wall time of the batched solve per structure"}),
            }
        )
        ds = xr.Dataset(
            data,
            coords={
                "sample": ("sample", np.asarray(params["index"])),
                "H": ("field", curves["H"].values, {"units": "A/m", "long_name": "applied field along y"}),
                "anchor": list(ANCHORS),
            },
            attrs=_attrs(),
        )
        ds.attrs["H_A"] = curves.attrs["H_A"]
        out.append(ds)
    return out


#: settings that define each part's data (the manifest records these; counts may grow)
PART_SETTINGS = {
    "unlabeled": ("grid", "cell", "thickness", "n_grains_range", "theta_range", "seed", "unlabeled_per_shard"),
    "labeled": ("grid", "cell", "thickness", "n_grains_range", "theta_range", "seed", "labeled_per_shard",
                "step", "tol", "stop_below", "dtype"),
}


def _settings(overrides):
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; allowed: {sorted(DEFAULTS)}")
    s = {**DEFAULTS, **overrides}
    s["grid"] = [int(n) for n in s["grid"]]
    if len(s["grid"]) != 2 or min(s["grid"]) < 2:
        raise ValueError(f"grid must be two integers >= 2, got {s['grid']}")
    if not (s["cell"] > 0 and s["thickness"] > 0):
        raise ValueError("cell and thickness must be > 0 (metres)")
    lo, hi = s["n_grains_range"]
    if not (1 <= lo <= hi <= s["grid"][0] * s["grid"][1]):
        raise ValueError(f"n_grains_range must satisfy 1 <= low <= high <= number of cells {s['grid'][0] * s['grid'][1]} (grid too small for the structure), got {s['n_grains_range']}")
    for key in ("n_unlabeled", "n_labeled", "unlabeled_per_shard", "labeled_per_shard"):
        if int(s[key]) < 0 or (key.endswith("shard") and int(s[key]) < 1):
            raise ValueError(f"{key} must be a positive count, got {s[key]}")
        s[key] = int(s[key])
    if not (0 < float(s["step"]) <= 1):
        raise ValueError(f"step must be in (0, 1] (fraction of H_A), got {s['step']}")
    if not (float(s["tol"]) > 0):
        raise ValueError(f"tol must be > 0, got {s['tol']}")
    if s["stop_below"] is not None and not (-1 <= float(s["stop_below"]) <= 1):
        raise ValueError(f"stop_below must be None or in [-1, 1] (M/Ms), got {s['stop_below']}")
    if s["dtype"] not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {s['dtype']!r}")
    s["theta_range"] = [float(v) for v in s["theta_range"]]
    return s


def _blocks(n, per, prefix):
    return [
        {"name": f"{prefix}-{k:04d}", "params": {"index": list(range(a, a + per))}}
        for k, a in enumerate(range(0, n, per))
    ]


def generate(out_dir, *, parts=("unlabeled", "labeled"), client=None, scheduler=None, n_workers=None, progress=True,
             shards_per_task: int = 1, lanes: int | None = 1, **overrides) -> dict:
    """Generate, resume or grow the hysteresis datasets under `out_dir/<part>`.

    Both parts are submitted to one Dask client at once, so neither waits for the other.
    Counts round up to whole shards. Asking an existing directory for more structures with the
    same settings computes only the missing shards; asking for fewer returns the first ones.
    All settings are validated before any manifest is written.

    **Arguments:** `out_dir`; `parts` (any of "unlabeled", "labeled"); the Dask `client`,
    `scheduler` address or LocalCluster size `n_workers`; `progress`; `shards_per_task`:
    labeled shards solved together in one batch per task; `lanes`: structures of a task
    that advance together (None: all; the answers do not depend on it); settings as in
    `DEFAULTS`.

    Returns a dict part -> combined `xr.Dataset` (also written to `out_dir/<part>.nc`).
    """
    from ._shards import ShardJob, run_jobs

    settings = _settings(overrides)
    if int(shards_per_task) < 1:
        raise ValueError(f"shards_per_task must be >= 1, got {shards_per_task}")
    if lanes is not None and int(lanes) < 1:
        raise ValueError(f"lanes must be None or >= 1, got {lanes}")
    parts = tuple(parts)
    for part in parts:
        if part not in PART_SETTINGS:
            raise ValueError(f"parts must be 'unlabeled' and/or 'labeled', got {part!r}")
    out_dir = Path(out_dir)
    jobs, names = [], []
    for part in parts:
        n = settings[f"n_{part}"]
        per = settings[f"{part}_per_shard"]
        shards = _blocks(n, per, part)
        if not shards:
            continue
        part_settings = {k: settings[k] for k in PART_SETTINGS[part]}
        if part == "unlabeled":
            jobs.append(ShardJob(unlabeled_shard, out_dir / part, f"hysteresis-{part}", part_settings, shards, 1))
        else:
            jobs.append(ShardJob(functools.partial(labeled_shards, lanes=lanes), out_dir / part, f"hysteresis-{part}", part_settings, shards, int(shards_per_task), True))
        names.append(part)
    run_jobs(jobs, client=client, scheduler=scheduler, n_workers=n_workers, progress=progress)
    result = {}
    for part, job in zip(names, jobs):
        ds = open_shards(out_dir / part, "sample", n_shards=len(job.shards))
        ds.attrs["description"] = f"nanocrystalline Nd2Fe14B grain structures ({part})"
        atomic_write_netcdf(ds, out_dir / f"{part}.nc")
        result[part] = ds
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="data/hysteresis")
    p.add_argument("--grid", type=int, nargs=2, default=DEFAULTS["grid"])
    p.add_argument("--n-unlabeled", type=int, default=DEFAULTS["n_unlabeled"])
    p.add_argument("--n-labeled", type=int, default=DEFAULTS["n_labeled"])
    p.add_argument("--labeled-per-shard", type=int, default=DEFAULTS["labeled_per_shard"])
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--full-branch", action="store_true", help="run every curve to -H_A")
    p.add_argument("--parts", nargs="+", default=["unlabeled", "labeled"])
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    p.add_argument("--workers", type=int, default=None, help="LocalCluster worker processes (0: compute in this process without Dask, e.g. on a GPU)")
    p.add_argument("--dtype", choices=["float64", "float32"], default=DEFAULTS["dtype"], help="precision of the batched descent")
    p.add_argument("--shards-per-task", type=int, default=1, help="labeled shards solved in one batch per task (a GPU takes many)")
    p.add_argument("--lanes", type=int, default=1, help="structures advancing together in a batch (1 on a CPU; many on a GPU)")
    a = p.parse_args(argv)
    res = generate(
        a.out, parts=a.parts, scheduler=a.scheduler, n_workers=a.workers, grid=a.grid,
        n_unlabeled=a.n_unlabeled, n_labeled=a.n_labeled, labeled_per_shard=a.labeled_per_shard,
        seed=a.seed, stop_below=None if a.full_branch else DEFAULTS["stop_below"], dtype=a.dtype,
        shards_per_task=a.shards_per_task, lanes=a.lanes,
    )
    print(json.dumps({k: int(v.sizes["sample"]) for k, v in res.items()}))


if __name__ == "__main__":
    main()
