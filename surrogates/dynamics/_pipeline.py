"""Training pipeline of the magnetization-dynamics surrogate, stage by stage, resumable.

    python -m invdesign_surrogates.train dynamics --data data/dynamics --out runs/dynamics

Stages (each writes its result into `out` and is skipped when that exists; the neural
stages checkpoint every epoch through `invdesign_surrogates._training.train`, so an
interrupted run continues with the same command):

1. **split** by field index (`split_of`): fields with ``i % 10 == 9`` are the test split,
   ``i % 10 == 8`` validation, the rest training. The SP4 fields 1 and 2 are integrated by
   the solver with the dataset's settings (`sp4.nc`) and are only ever test data.
2. **autoencoder** (`ae.eqx`) on the training states, validation loss on the validation
   states;
3. **latent trajectories** of every field (`latent.nc`);
4. **stepper** (`stepper.eqx`) with the recursive look-ahead loss on windows of the
   training trajectories;
5. **baselines**: PCA / POD with the same number of modes and the same stepper trained on
   its codes (`pca.eqx`, `pca_stepper.eqx`); the lookup of <m>(t) between training fields;
   then the **start-code fit** (`start.eqx`, `StartFit`: the encoded states at 0.01-0.04 ns
   as a quadratic function of the field, for designs over the field; its validation
   error in the header);
6. **evaluation** (`evaluation.nc`): for every test field and SP4 fields 1 and 2, <m>(t)
   of the solver, of encode -> decode of the solver's states, of the rollout started from
   the solver's states at 0.01-0.04 ns (surrogate and PCA) and from the fitted start codes
   (`fitstart_rollout`), and of the lookup, with
   max and RMS |d<m>| per field and method.

<m> of a decoded state is the mean over the cells of the decoded vectors normalised to
unit length (decoded vectors are not exactly unit length).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import numpy as np
import optax
import xarray as xr

from invdesign._validate import check_int

from .._training import train
from .._weights import file_sha256, load_model, save_model
from ..data._shards import atomic_write_netcdf, open_shards
from ._autoencoder import TABLE1_CHANNELS, Autoencoder, autoencoder_loss, decode, encode
from ._baselines import PCA, fit_lookup, fit_pca, lookup_predict, pca_decode, pca_encode
from ._rollout import FIRST, N_PAST, rollout_codes
from ._start import StartFit, fit_start
from ._stepper import Stepper, lookahead_loss, lookahead_windows

__all__ = ["DynamicsConfig", "run_pipeline", "split_of", "mean_m"]



@dataclasses.dataclass(frozen=True)
class DynamicsConfig:
    """Settings of one training run (all JSON-able; recorded in `out/run.json`)."""

    data: str
    out: str
    n_fields: int | None = None  # use the first n fields of the dataset (learning curve)
    latent: int = 16
    # Table 1's last block narrowed from 512 to 384 channels: 1.19 M parameters (4.75 MB in
    # float32) instead of 1.47 M (5.87 MB), under the 5 MB cap on shipped weights
    channels: tuple[int, ...] = TABLE1_CHANNELS[:-1] + (384,)
    # nadam 1e-3 rather than the paper's 1e-4: on 40 training fields the validation loss was
    # 1.09 after 10 epochs at 1e-4 and 0.59 after 24 at 1e-3 (encode -> decode of SP4
    # field 1: max |d<m>| 0.64 against 0.074)
    ae_lr: float = 1e-3
    ae_batch: int = 16
    ae_epochs: int = 10
    # warm start: the trained `ae.eqx` of an earlier run (same grid, latent and channels) is
    # the starting point instead of fresh weights, e.g. to continue on a grown dataset
    ae_init: str | None = None
    # the autoencoder trains on every `ae_every`-th state of each training trajectory
    # (states 10 ps apart are close: 2 halves the cost of an epoch); validation uses all
    ae_every: int = 1
    stepper_lr: float = 1e-3
    stepper_batch: int = 256
    stepper_epochs: int = 300
    stepper_residual: bool = True
    n_ahead: int = 8
    pca_modes: int = 16
    lookup_k: int = 4
    seed: int = 0
    progress: bool = True


def split_of(index) -> np.ndarray:
    """`"train"`, `"val"` or `"test"` for each field index (fixed by the index alone)."""
    index = np.asarray(index)
    return np.where(index % 10 == 9, "test", np.where(index % 10 == 8, "val", "train"))


def mean_m(states) -> np.ndarray:
    """<m> of states `(..., nx, ny, 3)`: the cell average of the unit-normalised vectors."""
    s = np.asarray(states, dtype=np.float64)
    n = np.linalg.norm(s, axis=-1, keepdims=True)
    return np.mean(s / np.where(n > 0, n, 1.0), axis=(-3, -2))


def _log(msg: str, progress: bool) -> None:
    if progress:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _dataset(cfg: DynamicsConfig) -> xr.Dataset:
    ds = open_shards(Path(cfg.data), "sample")
    if cfg.n_fields is not None:
        ds = ds.isel(sample=slice(0, int(cfg.n_fields)))
    return ds


def _states(ds: xr.Dataset, rows) -> np.ndarray:
    """`(n, n_times, nx, ny, 3)` float32 states of the samples at positions `rows`."""
    m = ds["m"].isel(sample=np.asarray(rows))
    if "z" in m.dims:
        m = m.isel(z=0)
    return np.asarray(m.values, dtype=np.float32)


def _sp4(cfg: DynamicsConfig, ds: xr.Dataset, out: Path) -> xr.Dataset:
    """Solver trajectories of the SP4 fields 1 and 2 with the dataset's settings (cached)."""
    path = out / "sp4.nc"
    if not path.exists():
        from invdesign.micromag._sp4 import SP4_FIELDS_T

        from ..data.dynamics import compute_shard

        data = Path(cfg.data)
        if not (data / "manifest.json").exists():
            raise ValueError(f"data: {str(data)!r} must be the dataset folder (with manifest.json and s_state.nc)")
        settings = json.loads((data / "manifest.json").read_text())["settings"]
        res = compute_shard(settings, {"index": [-1, -2], "fields_T": [SP4_FIELDS_T[1], SP4_FIELDS_T[2]],
                                       "s_state": str((data / "s_state.nc").resolve())})
        atomic_write_netcdf(res, path)
    with xr.open_dataset(path, engine="h5netcdf") as f:
        return f.load()


def _save(path: Path, model, header: dict) -> None:
    save_model(path, model, {"hyperparameters": model.hyperparameters, **header})


def _warm_start(path, model: Autoencoder):
    """The weights of the trained autoencoder at `path` (its architecture must be `model`'s) and its sha256."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ae_init: {str(path)!r} is not a file (a trained ae.eqx)")
    init, header = load_model(path, lambda h: Autoencoder(**h["hyperparameters"], key=jax.random.key(0)))
    if init.hyperparameters != model.hyperparameters:
        raise ValueError(f"ae_init: {str(path)!r} has hyperparameters {header['hyperparameters']}, this run needs "
                         f"{model.hyperparameters} (grid, latent and channels must agree)")
    return init, file_sha256(path)


def run_pipeline(cfg: DynamicsConfig) -> dict:
    """Run (or continue) every stage; returns the evaluation summary (also in `out/summary.json`)."""
    check_int("ae_every", cfg.ae_every, 1)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    run_json = out / "run.json"
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("out", "progress")}
    settings["channels"] = list(settings["channels"])
    # runs recorded before a setting existed ran with its default
    defaults = {"ae_init": None, "ae_every": 1}
    if run_json.exists() and {**defaults, **json.loads(run_json.read_text())["settings"]} != settings:
        raise ValueError(f"out {str(out)!r} holds a run with other settings; use a new folder")
    run_json.write_text(json.dumps({"settings": settings}, indent=1))

    ds = _dataset(cfg)
    index = ds["sample"].values
    split = split_of(index)
    rows = {name: np.flatnonzero(split == name) for name in ("train", "val", "test")}
    if min(len(r) for r in rows.values()) == 0:
        raise ValueError(f"data: every split needs at least one field, got sizes { {k: len(v) for k, v in rows.items()} }")
    fields = np.asarray(ds["b_ext"].values, dtype=np.float32)[:, :2]
    grid = tuple(int(n) for n in ds["m"].shape[2:4])
    cache = {}

    def train_states():  # read once, for whichever of the autoencoder and the PCA still needs them
        if "m" not in cache:
            cache["m"] = _states(ds, rows["train"]).reshape(-1, *grid, 3)
        return cache["m"]

    def ae_states():
        if cfg.ae_every == 1:
            return train_states()
        n_t = ds.sizes["time"]
        return train_states().reshape(-1, n_t, *grid, 3)[:, ::cfg.ae_every].reshape(-1, *grid, 3)

    key = jax.random.key(cfg.seed)
    k_ae, k_st, k_pst = jax.random.split(key, 3)

    # -- 2. autoencoder ---------------------------------------------------------------------
    ae_path = out / "ae.eqx"
    if ae_path.exists():
        ae, _ = load_model(ae_path, lambda h: Autoencoder(**h["hyperparameters"], key=jax.random.key(0)))
    else:
        _log(f"autoencoder: {len(rows['train'])} training fields, {cfg.ae_epochs} epochs", cfg.progress)
        val_m = _states(ds, rows["val"]).reshape(-1, *grid, 3)
        model = Autoencoder(grid=grid, latent=cfg.latent, channels=cfg.channels, key=k_ae)
        init_sha = None
        if cfg.ae_init is not None:
            model, init_sha = _warm_start(cfg.ae_init, model)
        train_m = ae_states()
        n_train = len(train_m)
        res = train(model, autoencoder_loss, optax.nadam(cfg.ae_lr), {"m": train_m}, val_data={"m": val_m},
                    epochs=cfg.ae_epochs, batch_size=cfg.ae_batch, seed=cfg.seed, checkpoint=out / "ae.ckpt",
                    key_needed=True, progress=cfg.progress, settings={"stage": "ae", **settings})
        ae = res.best_model
        del val_m, train_m
        _save(ae_path, ae, {"grid": list(grid), "best_epoch": res.best_epoch, "epochs": res.epochs,
                            "train_loss": res.history["train_loss"].tolist(), "val_loss": res.history["val_loss"].tolist(),
                            "train_fields": index[rows["train"]].tolist(), "val_fields": index[rows["val"]].tolist(),
                            "ae_every": cfg.ae_every, "train_states": n_train, "init_sha256": init_sha})

    # -- 3. latent trajectories (and the PCA baseline's codes) ------------------------------
    sp4 = _sp4(cfg, ds, out)
    lat_path = out / "latent.nc"
    pca_path = out / "pca.eqx"
    if not pca_path.exists():
        _log(f"PCA baseline: {cfg.pca_modes} modes", cfg.progress)
        pca = fit_pca(train_states(), cfg.pca_modes, method="randomized", seed=cfg.seed)
        save_model(pca_path, pca, {"hyperparameters": pca.hyperparameters, "explained": pca.explained})
    pca, _ = load_model(pca_path, lambda h: PCA(**h["hyperparameters"]))
    cache.clear()
    if not lat_path.exists():
        _log("encoding every trajectory", cfg.progress)
        c_ae, c_pca = [], []
        for r in range(len(index)):
            s = _states(ds, [r])[0]
            c_ae.append(np.asarray(encode(ae, s)))
            c_pca.append(np.asarray(pca_encode(pca, s)))
        sp4_m = np.asarray(sp4["m"].isel(z=0).values, dtype=np.float32)
        lat = xr.Dataset({
            "c": (("sample", "time", "latent"), np.stack(c_ae)),
            "c_pca": (("sample", "time", "mode"), np.stack(c_pca)),
            "sp4_c": (("sp4", "time", "latent"), np.stack([np.asarray(encode(ae, s)) for s in sp4_m])),
            "sp4_c_pca": (("sp4", "time", "mode"), np.stack([np.asarray(pca_encode(pca, s)) for s in sp4_m])),
        }, coords={"sample": index, "sp4": [1, 2], "time": ds["time"].values})
        atomic_write_netcdf(lat, lat_path)
    with xr.open_dataset(lat_path, engine="h5netcdf") as f:
        lat = f.load()

    # -- 4. steppers on both codes ------------------------------------------------------------
    steppers = {}
    for name, var, k in (("stepper", "c", k_st), ("pca_stepper", "c_pca", k_pst)):
        path = out / f"{name}.eqx"
        if not path.exists():
            _log(f"{name}: {cfg.stepper_epochs} epochs", cfg.progress)
            c = lat[var].values
            scale = float(np.std(c[rows["train"]]))  # PCA codes are not O(1): scale them
            tr = lookahead_windows(c[rows["train"]] / scale, fields[rows["train"]], n_past=N_PAST, n_ahead=cfg.n_ahead)
            va = lookahead_windows(c[rows["val"]] / scale, fields[rows["val"]], n_past=N_PAST, n_ahead=cfg.n_ahead)
            model = Stepper(latent=c.shape[-1], n_past=N_PAST, residual=cfg.stepper_residual,
                            output="linear" if cfg.stepper_residual else "elu", key=k)
            res = train(model, lookahead_loss, optax.nadam(cfg.stepper_lr), tr, val_data=va,
                        epochs=cfg.stepper_epochs, batch_size=min(cfg.stepper_batch, len(tr["c"])), seed=cfg.seed,
                        checkpoint=out / f"{name}.ckpt", key_needed=True, progress=cfg.progress,
                        settings={"stage": name, **settings})
            _save(path, res.best_model, {"code_scale": scale, "best_epoch": res.best_epoch, "epochs": res.epochs,
                                         "train_loss": res.history["train_loss"].tolist(),
                                         "val_loss": res.history["val_loss"].tolist()})
        steppers[name] = load_model(path, lambda h: Stepper(**h["hyperparameters"], key=jax.random.key(0)))

    # -- 5b. start codes as a function of the field (for designs over the field) ---------------
    start_path = out / "start.eqx"
    if not start_path.exists():
        c0 = lat["c"].values[:, FIRST:FIRST + N_PAST]
        fit = fit_start(c0[rows["train"]], fields[rows["train"]])
        err = np.asarray(fit(fields[rows["val"]])) - c0[rows["val"]]
        save_model(start_path, fit, {"hyperparameters": fit.hyperparameters,
                                     "val_rms_error": float(np.sqrt(np.mean(err**2))),
                                     "code_std": float(np.std(c0[rows["train"]]))})
    start, _ = load_model(start_path, lambda h: StartFit(**h["hyperparameters"]))

    # -- 6. evaluation --------------------------------------------------------------------------
    summary = evaluate(cfg, ds, rows["test"], sp4, lat, ae, pca, steppers, fields, out, start=start)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _rollout_m(stepper, scale, decoder, c, field, n_times):
    """<m>(t) of the rollout from the codes at indices FIRST..FIRST+3, for indices 0..n_times-1
    (the first FIRST + N_PAST entries are the decoded starting codes)."""
    codes = rollout_codes(stepper, scale, c[FIRST:FIRST + N_PAST], field, n_times - FIRST - N_PAST)
    return mean_m(decoder(np.concatenate([c[:FIRST], codes])))


def evaluate(cfg, ds, test_rows, sp4, lat, ae, pca, steppers, fields, out: Path, start=None) -> dict:
    """<m>(t) of every method on the test fields and SP4 fields 1, 2; errors vs the solver.

    With `start` (a `StartFit`) also `fitstart_rollout`: the rollout from the fitted start
    codes instead of the encoded solver states (what `SwitchingModel` designs with)."""
    st, st_h = steppers["stepper"]
    pst, pst_h = steppers["pca_stepper"]
    train = split_of(ds["sample"].values) == "train"
    look = fit_lookup(fields[train], ds["m_avg"].values[train], k=cfg.lookup_k)
    cases = [(f"field {int(ds['sample'].values[r])}", _states(ds, [r])[0], fields[r], lat["c"].values[r],
              lat["c_pca"].values[r]) for r in test_rows]
    sp4_m = np.asarray(sp4["m"].isel(z=0).values, dtype=np.float32)
    for j, name in enumerate(("SP4 field 1", "SP4 field 2")):
        cases.append((name, sp4_m[j], np.asarray(sp4["b_ext"].values[j, :2], np.float32), lat["sp4_c"].values[j],
                      lat["sp4_c_pca"].values[j]))
    n_t = ds.sizes["time"]
    names = ("solver", "ae_recon", "ae_rollout", "pca_recon", "pca_rollout", "lookup")
    curves = {k: [] for k in names + (("fitstart_rollout",) if start is not None else ())}
    for _, states, field, c, cp in cases:
        curves["solver"].append(mean_m(states))
        curves["ae_recon"].append(mean_m(decode(ae, c)))
        curves["ae_rollout"].append(_rollout_m(st, st_h["code_scale"], lambda z: decode(ae, z), c, field, n_t))
        curves["pca_recon"].append(mean_m(pca_decode(pca, cp)))
        curves["pca_rollout"].append(_rollout_m(pst, pst_h["code_scale"], lambda z: pca_decode(pca, z), cp, field, n_t))
        curves["lookup"].append(np.asarray(lookup_predict(look, field)))
        if start is not None:
            c_fit = np.concatenate([c[:FIRST], np.asarray(start(field))])
            curves["fitstart_rollout"].append(_rollout_m(st, st_h["code_scale"], lambda z: decode(ae, z), c_fit,
                                                         field, n_t))
    arr = {k: np.stack(v) for k, v in curves.items()}
    err = {k: np.linalg.norm(arr[k] - arr["solver"], axis=-1) for k in arr if k != "solver"}
    ev = xr.Dataset(
        {**{f"m_{k}": (("case", "time", "component"), v) for k, v in arr.items()},
         **{f"max_err_{k}": ("case", v.max(axis=1)) for k, v in err.items()},
         **{f"rms_err_{k}": ("case", np.sqrt(np.mean(v**2, axis=1))) for k, v in err.items()}},
        coords={"case": [c[0] for c in cases], "time": ds["time"].values, "component": ["x", "y", "z"]},
        attrs={"description": "<m>(t) of the solver and of every surrogate / baseline; |d<m>| against the solver"},
    )
    atomic_write_netcdf(ev, out / "evaluation.nc")
    held = slice(0, len(test_rows))
    return {
        "test_fields": len(test_rows),
        **{f"{k}_max_err_median": float(np.median(v[held].max(axis=1))) for k, v in err.items()},
        **{f"{k}_rms_err_median": float(np.median(np.sqrt(np.mean(v[held] ** 2, axis=1)))) for k, v in err.items()},
        **{f"sp4_{j + 1}_{k}_max_err": float(v[len(test_rows) + j].max()) for j in range(2) for k, v in err.items()},
    }
