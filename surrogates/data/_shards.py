"""Resumable, Dask-parallel generation of datasets as atomically written netCDF shards.

A dataset directory holds

- `manifest.json`: the generator name, its settings and the list of shards (name + the
  JSON-able parameters of each). Written once; a later run with different settings in the
  same directory is refused (it would mix incompatible data).
- `<shard>.nc`: one h5netcdf file per shard, written to a temporary file in the same
  directory and renamed into place, so a shard file is either complete or absent.

Running again skips every shard whose file opens and carries the matching shard hash;
an unreadable or mismatching file (a crash mid-rename is impossible, but a disk can be
corrupted or a file edited) is reported, moved aside to `<shard>.nc.corrupt` and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Callable

import xarray as xr

from invdesign import atomic_write

MANIFEST = "manifest.json"


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def atomic_write_json(path: Path, obj) -> None:
    """Write JSON to `path` atomically (temp file in the same directory, then rename; mode 0644)."""
    atomic_write(path, json.dumps(obj, indent=1, sort_keys=True))


def atomic_write_netcdf(ds: xr.Dataset, path: Path, *, compress: bool = True) -> None:
    """Write `ds` with h5netcdf to `path` atomically (mode 0644)."""
    encoding = None
    if compress:
        encoding = {
            name: {"compression": "gzip", "compression_opts": 4}
            for name, var in ds.data_vars.items()
            if var.ndim >= 1 and var.dtype.kind in "fiu"
        }
    atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding))


def shard_hash(generator: str, settings: dict, params: dict) -> str:
    return _hash({"generator": generator, "settings": settings, "params": params})


def check_shard(path: Path, expected_hash: str) -> bool:
    """True if the shard file at `path` opens and carries `expected_hash`."""
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            ok = ds.attrs.get("shard_hash") == expected_hash and int(ds.attrs.get("complete", 0)) == 1
            if ok:
                for var in ds.data_vars.values():
                    var.values  # noqa: B018 - force a full read: detects truncated data
            return ok
    except Exception:  # noqa: BLE001 - any failure to read means corrupt
        return False


def prepare(out_dir, generator: str, settings: dict, shards: list[dict]) -> Path:
    """Create `out_dir` with its manifest, or check an existing manifest matches."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"generator": generator, "settings": settings, "shards": shards}
    path = out_dir / MANIFEST
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"out_dir {out_dir} has an unreadable {MANIFEST}: {err}") from None
        if old.get("generator") != generator or old.get("settings") != settings or old.get("shards") != shards:
            raise ValueError(
                f"out_dir {out_dir} already holds a '{old.get('generator')}' dataset with different "
                "settings; use a new directory (or delete it) instead of mixing data"
            )
    else:
        atomic_write_json(path, manifest)
    return out_dir


def _run_one(fn: Callable, generator: str, settings: dict, shard: dict, path: str) -> str:
    """Worker task: compute one shard and write it atomically."""
    ds = fn(settings, shard["params"])
    ds.attrs["shard_hash"] = shard_hash(generator, settings, shard["params"])
    ds.attrs["shard"] = shard["name"]
    ds.attrs["complete"] = 1
    atomic_write_netcdf(ds, Path(path))
    return path


def pending_shards(out_dir, generator: str, settings: dict, shards: list[dict]) -> list[dict]:
    """Shards whose files are missing or corrupt (corrupt files are moved aside)."""
    out_dir = Path(out_dir)
    todo = []
    for shard in shards:
        path = out_dir / f"{shard['name']}.nc"
        if path.exists():
            if check_shard(path, shard_hash(generator, settings, shard["params"])):
                continue
            bad = path.with_suffix(".nc.corrupt")
            warnings.warn(f"shard {path.name} is unreadable or does not match its settings; moved to {bad.name} and recomputed")
            os.replace(path, bad)
        todo.append(shard)
    return todo


def run_shards(
    fn: Callable,
    out_dir,
    generator: str,
    settings: dict,
    shards: list[dict],
    *,
    client=None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: bool = True,
) -> list[Path]:
    """Compute every pending shard with Dask and return all shard paths.

    **Arguments:**

    - `fn`: `fn(settings, params) -> xr.Dataset`, importable at module level (it is
      pickled to the workers).
    - `out_dir`: dataset directory (created).
    - `generator`, `settings`: name and JSON-able settings recorded in the manifest.
    - `shards`: list of `{"name": str, "params": dict}`.
    - `client`: an existing `dask.distributed.Client`; else `scheduler` (address of a
      running scheduler, e.g. "tcp://host:8786"); else a `LocalCluster` with `n_workers`
      single-threaded worker processes (default: the CPU count).
    - `progress`: show a tqdm bar over shards.
    """
    from dask.distributed import Client, LocalCluster, as_completed
    from tqdm.auto import tqdm

    out_dir = prepare(out_dir, generator, settings, shards)
    paths = [out_dir / f"{s['name']}.nc" for s in shards]
    todo = pending_shards(out_dir, generator, settings, shards)
    if not todo:
        return paths
    own_cluster = None
    if client is None:
        if scheduler is not None:
            client = Client(scheduler)
        else:
            n = n_workers or os.cpu_count() or 1
            own_cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(own_cluster)
    try:
        futures = [
            client.submit(_run_one, fn, generator, settings, s, str(out_dir / f"{s['name']}.nc"), key=f"{generator}-{s['name']}-{shard_hash(generator, settings, s['params'])}", pure=False)
            for s in todo
        ]
        bar = tqdm(total=len(shards), initial=len(shards) - len(todo), desc=generator, unit="shard", disable=not progress)
        for fut in as_completed(futures):
            fut.result()  # re-raise worker errors
            bar.update(1)
        bar.close()
    finally:
        if own_cluster is not None:
            client.close()
            own_cluster.close()
    return paths


def open_shards(out_dir, dim: str) -> xr.Dataset:
    """Open all shards of a finished dataset concatenated along `dim` (checks completeness)."""
    out_dir = Path(out_dir)
    path = out_dir / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{out_dir} is not a dataset directory (no {MANIFEST})")
    manifest = json.loads(path.read_text())
    missing = [s["name"] for s in manifest["shards"] if not (out_dir / f"{s['name']}.nc").exists()]
    if missing:
        raise ValueError(f"dataset in {out_dir} is incomplete: {len(missing)} shards missing (e.g. {missing[0]}); run the generator again to resume")
    parts = []
    for s in manifest["shards"]:
        p = out_dir / f"{s['name']}.nc"
        if not check_shard(p, shard_hash(manifest["generator"], manifest["settings"], s["params"])):
            raise ValueError(f"shard {p} is corrupt or does not match the manifest; run the generator again to recompute it")
        parts.append(xr.open_dataset(p, engine="h5netcdf").load())
    ds = xr.concat(parts, dim=dim, combine_attrs="drop_conflicts")
    for key in ("shard", "shard_hash", "complete"):
        ds.attrs.pop(key, None)
    ds.attrs["settings"] = json.dumps(manifest["settings"], sort_keys=True)
    ds.attrs["generator"] = manifest["generator"]
    return ds
