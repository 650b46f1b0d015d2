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
import datetime as _dt
import json
from pathlib import Path

import numpy as np
import xarray as xr

from ._shards import atomic_write_netcdf, open_shards, run_shards

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
    "n_labeled": 128,
    "labeled_per_shard": 4,
    "seed": 0,
    "step": 0.01,
    "tol": 1e-5,
    "stop_below": -0.5,
}


def structure_seed(seed: int, kind: int, index: int) -> int:
    """Independent, reproducible seed for structure `index` of part `kind` (0 unlabeled, 1 labeled)."""
    return int(np.random.SeedSequence([int(seed), int(kind), int(index)]).generate_state(1)[0])


def _structures(settings, kind, indices):
    from invdesign.micromag import voronoi_grains

    n_total = settings["n_unlabeled"] if kind == 0 else settings["n_labeled"]
    rng = np.random.default_rng(np.random.SeedSequence([settings["seed"], kind, 10**9]))
    lo, hi = settings["n_grains_range"]
    all_ng = rng.integers(lo, hi + 1, n_total)
    all_theta = rng.uniform(settings["theta_range"][0], settings["theta_range"][1], n_total)
    out = []
    for i in indices:
        s = structure_seed(settings["seed"], kind, i)
        g = voronoi_grains(tuple(settings["grid"]), (settings["cell"],) * 2, int(all_ng[i]), float(all_theta[i]), seed=s)
        out.append((i, s, int(all_ng[i]), float(all_theta[i]), g))
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


def labeled_shard(settings: dict, params: dict) -> xr.Dataset:
    """Worker task: structures with their demagnetization curves and anchor points."""
    from invdesign.micromag import demagnetization_curve, grain_system

    items = _structures(settings, 1, params["index"])
    n_field = int(round(2.0 / settings["step"])) + 1
    M = np.full((len(items), n_field), np.nan)
    anchors = np.full((len(items), len(ANCHORS)), np.nan)
    complete = np.zeros(len(items), np.int8)
    converged = np.zeros(len(items), np.int8)
    iterations = np.zeros(len(items), np.int64)
    wall = np.zeros(len(items))
    H_A = None
    H = None
    for k, (_, _, _, _, g) in enumerate(items):
        system = grain_system(g, (settings["cell"], settings["cell"], settings["thickness"]))
        curve = demagnetization_curve(system, step=settings["step"], tol=settings["tol"], stop_below=settings["stop_below"])
        n = curve.sizes["field"]
        M[k, :n] = curve["M"].values
        H_A = curve.attrs["H_A"]
        H = H_A * (1.0 - settings["step"] * np.arange(n_field))
        anchors[k] = [curve.attrs[a] for a in ANCHORS]
        complete[k] = int(np.all(np.isfinite(anchors[k])))
        converged[k] = int(np.all(curve["converged"].values == 1))
        iterations[k] = int(curve["iterations"].sum())
        wall[k] = curve.attrs["wall_time_s"]
        if not np.all(np.isfinite(curve["M"].values)):
            raise RuntimeError(f"non-finite magnetization in structure {params['index'][k]}")
    data = _structure_vars(items)
    data.update(
        {
            "M": (("sample", "field"), M, {"units": "1", "long_name": "M/Ms along the field (NaN after an early stop)"}),
            "anchors": (("sample", "anchor"), anchors, {"long_name": "M1, Mr (M/Ms) and Hk90, Hk80, Hk70, Hc (A/m, signed)"}),
            "complete": ("sample", complete, {"long_name": "all six anchor points reached (1/0)"}),
            "converged": ("sample", converged, {"long_name": "every minimisation converged (1/0)"}),
            "iterations": ("sample", iterations, {"long_name": "descent iterations of the curve"}),
            "wall_time": ("sample", wall, {"units": "s", "long_name": "wall time of the curve"}),
        }
    )
    ds = xr.Dataset(
        data,
        coords={
            "sample": ("sample", np.asarray(params["index"])),
            "H": ("field", H, {"units": "A/m", "long_name": "applied field along y"}),
            "anchor": list(ANCHORS),
        },
        attrs=_attrs(),
    )
    ds.attrs["H_A"] = H_A
    return ds


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
    s["theta_range"] = [float(v) for v in s["theta_range"]]
    return s


def _blocks(n, per, prefix):
    return [
        {"name": f"{prefix}-{k:04d}", "params": {"index": list(range(a, min(a + per, n)))}}
        for k, a in enumerate(range(0, n, per))
    ]


def generate(out_dir, *, parts=("unlabeled", "labeled"), client=None, scheduler=None, n_workers=None, progress=True, **overrides) -> dict:
    """Generate (or resume) the hysteresis datasets under `out_dir/<part>`.

    Returns a dict part -> combined `xr.Dataset` (also written to `out_dir/<part>.nc`).
    """
    settings = _settings(overrides)
    out_dir = Path(out_dir)
    result = {}
    for part in parts:
        if part == "unlabeled":
            shards = _blocks(settings["n_unlabeled"], settings["unlabeled_per_shard"], "unlabeled")
            fn = unlabeled_shard
        elif part == "labeled":
            shards = _blocks(settings["n_labeled"], settings["labeled_per_shard"], "labeled")
            fn = labeled_shard
        else:
            raise ValueError(f"parts must be 'unlabeled' and/or 'labeled', got {part!r}")
        if not shards:
            continue
        run_shards(fn, out_dir / part, f"hysteresis-{part}", settings, shards, client=client, scheduler=scheduler, n_workers=n_workers, progress=progress)
        ds = open_shards(out_dir / part, "sample")
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
    p.add_argument("--workers", type=int, default=None, help="LocalCluster worker processes")
    a = p.parse_args(argv)
    res = generate(
        a.out, parts=a.parts, scheduler=a.scheduler, n_workers=a.workers, grid=a.grid,
        n_unlabeled=a.n_unlabeled, n_labeled=a.n_labeled, labeled_per_shard=a.labeled_per_shard,
        seed=a.seed, stop_below=None if a.full_branch else DEFAULTS["stop_below"],
    )
    print(json.dumps({k: int(v.sizes["sample"]) for k, v in res.items()}))


if __name__ == "__main__":
    main()
