"""Resumable, Dask-parallel generation of datasets as atomically written netCDF shards.

A dataset directory holds

- `manifest.json`: the generator name, its settings and the list of shards (name + the
  JSON-able parameters of each). Written once; a later run with different settings in the
  same directory is refused (it would mix incompatible data).
- `<shard>.nc`: one h5netcdf file per shard, written to a temporary file in the same
  directory and renamed into place, so a shard file is either complete or absent.

Running again skips every shard whose file opens and carries the matching shard hash;
an unreadable or mismatching file (a crash mid-rename is impossible, but a disk can be
corrupted or a file edited) is reported, moved aside to `<shard>.nc.corrupt` (then
`.corrupt.1`, ...: earlier ones are kept) and recomputed. An error of the system while
checking (an `OSError` with an errno, a `MemoryError`) is raised, not taken for corruption.
Temporary files that killed workers left behind (`.<shard>.nc.*.tmp`) are removed when a
run starts, if they are older than `STALE_SECONDS`.

Every worker must see the dataset folder at the same path: with `scheduler=` (a cluster),
`out_dir` has to be on a file system shared by all workers. Shard parameters never hold
absolute paths; a worker function that needs files of the dataset takes a `folder`
keyword and receives the folder there.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import time
import warnings
from pathlib import Path
from typing import Callable, NamedTuple

import xarray as xr

from invdesign import atomic_write

MANIFEST = "manifest.json"

#: age (s) after which a leftover temporary file of a shard counts as abandoned
STALE_SECONDS = 3600.0


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
    except OSError as err:
        if err.errno is not None:  # the system failed (EIO, EACCES, ...), not the file's content
            raise
        return False  # h5py reports unreadable content as OSError without errno
    except (ValueError, KeyError, TypeError, RuntimeError, IndexError):
        return False  # undecodable content


def prepare(out_dir, generator: str, settings: dict, shards: list[dict]) -> Path:
    """Create `out_dir` with its manifest, or check an existing manifest is compatible.

    A dataset grows: a later run with the same generator and settings may ask for more
    shards (the recorded list must be a prefix of the new one; the manifest is extended)
    or for fewer (the new list must be a prefix of the recorded one; nothing changes).
    Anything else is refused, so incompatible data never mixes.
    """
    out_dir = Path(out_dir)
    path = out_dir / MANIFEST
    manifest = {"generator": generator, "settings": settings, "shards": shards}
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"out_dir {out_dir} has an unreadable {MANIFEST}: {err}") from None
        if old.get("generator") != generator or old.get("settings") != settings:
            raise ValueError(
                f"out_dir {out_dir} already holds a '{old.get('generator')}' dataset with different "
                "settings; use a new directory (or delete it) instead of mixing data"
            )
        recorded = old.get("shards", [])
        n = min(len(recorded), len(shards))
        if recorded[:n] != shards[:n]:
            raise ValueError(
                f"out_dir {out_dir} holds a dataset with another shard layout (same settings, different "
                "shards); use a new directory"
            )
        if len(shards) > len(recorded):
            atomic_write_json(path, manifest)
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, manifest)
    return out_dir


def _write_shard(ds: xr.Dataset, generator: str, settings: dict, shard: dict, path) -> None:
    ds.attrs["shard_hash"] = shard_hash(generator, settings, shard["params"])
    ds.attrs["shard"] = shard["name"]
    ds.attrs["complete"] = 1
    atomic_write_netcdf(ds, Path(path))


def _folder_kw(fn: Callable, path) -> dict:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return {}
    return {"folder": str(Path(path).parent)} if "folder" in params else {}


def _run_one(fn: Callable, generator: str, settings: dict, shard: dict, path: str) -> str:
    """Worker task: compute one shard and write it atomically.

    A shard file already there was written by this task: Dask reruns finished tasks whose
    results lived on a worker that was lost (killed, or dropped after missing heartbeats),
    and such a rerun returns at once instead of computing the shard again."""
    if Path(path).exists():
        return path
    _write_shard(fn(settings, shard["params"], **_folder_kw(fn, path)), generator, settings, shard, path)
    return path


def _run_group(fn: Callable, generator: str, settings: dict, shards: list[dict], paths: list[str]) -> list[str]:
    """Worker task: compute several shards in one call of `fn(settings, [params, ...])`
    (e.g. one batched solve) and write each shard atomically (a rerun after a lost worker
    returns at once when every file is there, see `_run_one`)."""
    if all(Path(p).exists() for p in paths):
        return paths
    results = fn(settings, [s["params"] for s in shards], **_folder_kw(fn, paths[0]))
    if len(results) != len(shards):  # pragma: no cover - generator bug
        raise RuntimeError(f"{generator}: expected {len(shards)} shard datasets, got {len(results)}")
    for ds, shard, path in zip(results, shards, paths):
        _write_shard(ds, generator, settings, shard, path)
    return paths


def _free_name(path: Path) -> Path:
    """`path`, or `path.1`, `path.2`, ... : the first name not taken."""
    k = 0
    candidate = path
    while candidate.exists():
        k += 1
        candidate = path.with_name(f"{path.name}.{k}")
    return candidate


def remove_stale_temporaries(out_dir, shards: list[dict], older_than: float = STALE_SECONDS) -> list[Path]:
    """Remove temporary shard files (`.<shard>.nc.*.tmp`) older than `older_than` seconds."""
    out_dir = Path(out_dir)
    now = time.time()
    removed = []
    for shard in shards:
        for tmp in out_dir.glob(f".{shard['name']}.nc.*.tmp"):
            try:
                if now - tmp.stat().st_mtime > older_than:
                    tmp.unlink()
                    removed.append(tmp)
            except FileNotFoundError:  # pragma: no cover - removed meanwhile
                pass
    return removed


def pending_shards(out_dir, generator: str, settings: dict, shards: list[dict]) -> list[dict]:
    """Shards whose files are missing or corrupt (corrupt files are moved aside)."""
    out_dir = Path(out_dir)
    todo = []
    for shard in shards:
        path = out_dir / f"{shard['name']}.nc"
        if path.exists():
            if check_shard(path, shard_hash(generator, settings, shard["params"])):
                continue
            bad = _free_name(path.with_suffix(".nc.corrupt"))
            warnings.warn(f"shard {path.name} is unreadable or does not match its settings; moved to {bad.name} and recomputed")
            os.replace(path, bad)
        todo.append(shard)
    return todo


class ShardJob(NamedTuple):
    """One dataset to compute: `fn`, its directory, generator name, settings and shards.

    With `batched`, `fn(settings, [params, ...]) -> [xr.Dataset, ...]` receives up to `group`
    pending shards per task (one batched computation); otherwise
    `fn(settings, params) -> xr.Dataset` is called per shard (and `group` must be 1).
    """

    fn: Callable
    out_dir: Path
    generator: str
    settings: dict
    shards: list
    group: int = 1
    batched: bool = False


def _client(client, scheduler, n_workers):
    from dask.distributed import Client, LocalCluster

    if client is not None:
        return client, None
    if scheduler is not None:
        return Client(scheduler), None
    from invdesign._xla import environment_with_cpu_flags

    n = n_workers or os.cpu_count() or 1
    # workers get the XLA flags that speed up the field loops on CPU (see invdesign._xla)
    flags = environment_with_cpu_flags({"XLA_FLAGS": os.environ.get("XLA_FLAGS", "")})
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                           env={"XLA_FLAGS": flags["XLA_FLAGS"]})
    return Client(cluster), cluster


def run_jobs(
    jobs: list[ShardJob],
    *,
    client=None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: bool = True,
) -> list[list[Path]]:
    """Compute the pending shards of several datasets on one Dask client, all submitted at once.

    Every job's manifest is checked (or written) before anything is submitted, so a job with
    bad settings fails before work starts; after that the jobs do not wait for each other
    (a long labeled job and a quick unlabeled one run side by side). Returns each job's
    shard paths. See `run_shards` for the client arguments.
    """
    prepared = []
    for job in jobs:
        if int(job.group) < 1 or (int(job.group) > 1 and not job.batched):
            raise ValueError(f"group must be >= 1 (and 1 unless the job is batched), got {job.group}")
        out_dir = prepare(job.out_dir, job.generator, job.settings, job.shards)
        for tmp in remove_stale_temporaries(out_dir, job.shards):
            warnings.warn(f"removed {tmp.name}, a temporary file left by a worker that was stopped")
        prepared.append((job, out_dir, pending_shards(out_dir, job.generator, job.settings, job.shards)))
    paths = [[out_dir / f"{s['name']}.nc" for s in job.shards] for job, out_dir, _ in prepared]
    if not any(todo for _, _, todo in prepared):
        return paths
    if client is None and scheduler is None and n_workers == 0:
        _run_in_process(prepared, progress)
        return paths
    from dask.distributed import as_completed
    from tqdm.auto import tqdm

    client, own_cluster = _client(client, scheduler, n_workers)
    try:
        futures = {}
        bars = []
        for j, (job, out_dir, todo) in enumerate(prepared):
            bars.append(tqdm(total=len(job.shards), initial=len(job.shards) - len(todo), desc=job.generator, unit="shard",
                             disable=not progress, position=j))
            for a in range(0, len(todo), job.group):
                chunk = todo[a:a + job.group]
                files = [str(out_dir / f"{s['name']}.nc") for s in chunk]
                key = f"{job.generator}-{chunk[0]['name']}-{shard_hash(job.generator, job.settings, [s['params'] for s in chunk])}"
                if not job.batched:
                    fut = client.submit(_run_one, job.fn, job.generator, job.settings, chunk[0], files[0], key=key, pure=False)
                else:
                    fut = client.submit(_run_group, job.fn, job.generator, job.settings, chunk, files, key=key, pure=False)
                futures[fut] = (j, len(chunk))
        for fut in as_completed(list(futures)):
            fut.result()  # re-raise worker errors
            j, n = futures.pop(fut)
            fut.release()  # a finished shard is on disk: nothing for Dask to keep (or recompute)
            bars[j].update(n)
        for bar in bars:
            bar.close()
    finally:
        if own_cluster is not None:
            client.close()
            own_cluster.close()
    return paths


def _run_in_process(prepared, progress: bool) -> None:
    """`n_workers=0`: every pending task in this process, one after another, no Dask.

    For a machine whose accelerator one process should own (a GPU computing large
    batches), and for debugging. Each task's shards are written as soon as it finishes, so
    a stopped run keeps them; a line per task gives its wall time."""
    from tqdm.auto import tqdm

    for job, out_dir, todo in prepared:
        bar = tqdm(total=len(job.shards), initial=len(job.shards) - len(todo), desc=job.generator, unit="shard",
                   disable=not progress)
        for a in range(0, len(todo), job.group):
            chunk = todo[a:a + job.group]
            files = [str(out_dir / f"{s['name']}.nc") for s in chunk]
            t0 = time.perf_counter()
            if job.batched:
                _run_group(job.fn, job.generator, job.settings, chunk, files)
            else:
                _run_one(job.fn, job.generator, job.settings, chunk[0], files[0])
            bar.update(len(chunk))
            if progress:
                bar.write(f"{job.generator}: {chunk[0]['name']}..{chunk[-1]['name']} in {time.perf_counter() - t0:.1f} s")
        bar.close()


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
    group: int = 1,
    batched: bool = False,
) -> list[Path]:
    """Compute every pending shard with Dask and return all shard paths.

    **Arguments:**

    - `fn`: `fn(settings, params) -> xr.Dataset` (or, with `group` > 1,
      `fn(settings, [params, ...]) -> [xr.Dataset, ...]`), importable at module level (it
      is pickled to the workers).
    - `out_dir`: dataset directory (created).
    - `generator`, `settings`: name and JSON-able settings recorded in the manifest.
    - `shards`: list of `{"name": str, "params": dict}`.
    - `client`: an existing `dask.distributed.Client`; else `scheduler` (address of a
      running scheduler, e.g. "tcp://host:8786"); else a `LocalCluster` with `n_workers`
      single-threaded worker processes (default: the CPU count); `n_workers=0` computes
      the tasks in this process, one after another, without Dask (a GPU machine).
    - `progress`: show a tqdm bar over shards.
    - `group`, `batched`: shards per task and the calling convention of `fn` (see `ShardJob`).
    """
    job = ShardJob(fn, Path(out_dir), generator, settings, shards, group, batched)
    return run_jobs([job], client=client, scheduler=scheduler, n_workers=n_workers, progress=progress)[0]


def open_shards(out_dir, dim: str, n_shards: int | None = None) -> xr.Dataset:
    """Open the shards of a finished dataset concatenated along `dim` (checks completeness).

    `n_shards`: only the first `n_shards` recorded shards (a dataset that grew beyond the
    size asked for); default all.
    """
    out_dir = Path(out_dir)
    path = out_dir / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{out_dir} is not a dataset directory (no {MANIFEST})")
    manifest = json.loads(path.read_text())
    shards = manifest["shards"]
    if n_shards is not None:
        if not (0 < int(n_shards) <= len(shards)):
            raise ValueError(f"n_shards must be in [1, {len(shards)}] (shards recorded in {out_dir}), got {n_shards}")
        shards = shards[: int(n_shards)]
    missing = [s["name"] for s in shards if not (out_dir / f"{s['name']}.nc").exists()]
    if missing:
        raise ValueError(f"dataset in {out_dir} is incomplete: {len(missing)} shards missing (e.g. {missing[0]}); run the generator again to resume")
    parts = []
    for s in shards:
        p = out_dir / f"{s['name']}.nc"
        if not check_shard(p, shard_hash(manifest["generator"], manifest["settings"], s["params"])):
            raise ValueError(f"shard {p} is corrupt or does not match the manifest; run the generator again to recompute it")
        parts.append(xr.open_dataset(p, engine="h5netcdf").load())
    ds = xr.concat(parts, dim=dim, combine_attrs="drop_conflicts")
    for key in ("shard", "shard_hash", "complete"):
        ds.attrs.pop(key, None)
    ds.attrs["settings"] = json.dumps(manifest["settings"], sort_keys=True)
    ds.attrs["generator"] = manifest["generator"]
    ds.attrs["shards"] = json.dumps(shards, sort_keys=True)
    return ds


def restore_shards(combined, out_dir, dim: str = "sample") -> Path:
    """Split a combined dataset written from `open_shards` back into a resumable directory.

    The combined file records its generator, settings and shard list. Each shard's samples
    are selected by the `index` list of its parameters, along `dim`. The result is the
    directory a run would have left, so a later run with the same settings grows it
    instead of recomputing it (for example from a committed labeled set on a fresh machine).
    Shards that are already in `out_dir` and valid are left alone.
    """
    with xr.open_dataset(combined, engine="h5netcdf") as src:
        ds = src.load()
    for key in ("generator", "settings", "shards"):
        if key not in ds.attrs:
            raise ValueError(f"combined {str(combined)!r} has no {key!r} attribute: not written by open_shards")
    generator = ds.attrs["generator"]
    settings = json.loads(ds.attrs["settings"])
    shards = json.loads(ds.attrs["shards"])
    out_dir = prepare(out_dir, generator, settings, shards)
    for shard in shards:
        path = out_dir / f"{shard['name']}.nc"
        if path.exists() and check_shard(path, shard_hash(generator, settings, shard["params"])):
            continue
        part = ds.sel({dim: shard["params"]["index"]})
        for key in ("generator", "settings", "shards", "description"):
            part.attrs.pop(key, None)
        _write_shard(part, generator, settings, shard, path)
    return out_dir
