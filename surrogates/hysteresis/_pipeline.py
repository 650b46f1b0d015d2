"""Training pipeline of the hysteresis surrogate (Kovacs et al., sections 3-4).

`run_pipeline(PipelineConfig(labeled=..., out=...))` runs, in an output folder that it
can resume after any interruption:

1. **Unlabeled structures** (`out/data/unlabeled`, generated with
   `invdesign_surrogates.data.hysteresis`, or an existing file `config.unlabeled`). The
   last `vae_val` structures are held out to validate the VAE.
2. **VAE latent size**: one short run per candidate (Nadam, batch 64, `select_epochs`
   over the first `select_structures` training structures): every size in `latents` at
   the first of `vae_lrs`, then the other learning rates at the best size; compared by
   the loss (reconstruction + KL) on the held-out structures. The winner continues for
   `vae_epochs` over all training structures (the epoch of least held-out loss is kept).
   `reuse_vae` skips steps 1-2 and takes the VAE of an earlier run.
3. **Features** of the labeled structures: latent means and `image_statistics` (of `kx`
   only, as `predict` sees it). Curves that did not reach all six anchors or did not
   converge are left out.
4. **Cross-validation on the training split only** (`is_test(sample)` is never trained
   on): the training structures are dealt into `cv_folds` folds; the ridge baseline is
   cross-validated on the same folds. For each candidate in `feature_sets` one training
   run trains `cv_folds x members` regressors at once (the members of fold `k` never see
   fold `k`'s structures: their loss masks them out), and after every epoch records the
   out-of-fold MAE of each fold's ensemble mean per anchor. The score of an epoch is the
   mean over anchors of (CV MAE / the baseline's CV MAE); each candidate's number of
   epochs minimises the score (a running mean over `cv_smooth` epochs; a run stops when
   that has not improved for `cv_patience` epochs), and the candidate with the least
   score wins. Two candidates combine the network with the ridge fit of the statistics
   (fitted per fold on the same training structures): `"latent_stats_residual"` trains
   the networks on the ridge residual (output layers start at zero, i.e. at the ridge),
   `"latent_stats_blend"` blends the `"latent_stats"` networks with the ridge; for both
   the CV picks, per anchor and epoch, the network weight `w` in `BLEND_WEIGHTS` (0: the
   ridge alone) of least CV MAE (`AnchorModel.correction`). The CV also calibrates the
   spread: per anchor, the factor that makes `|error| / spread` as large on average
   (geometric mean) as for a normal distribution.
5. **Final ensemble**: `members` regressors (different initial weights) on all training
   structures for the chosen number of epochs; the baseline refitted on the same
   structures.
6. **Evaluation on the fixed test split**: MAE per anchor in the paper's units for the
   surrogate and the baseline beside Table 3, fraction of test targets within 2 spreads
   (`evaluation.nc`); the first `slice_size` test structures go to `test_slice.nc` and
   their MAE into the weights header.
7. **Learning curve**: steps 4-6 (the chosen feature set) on the first `n` training
   structures for several `n` (`learning_curve.nc`).

Outputs in `out`: `vae.eqx` and `anchors.eqx` (float32 weights with JSON headers, see
`invdesign_surrogates._weights`), `evaluation.nc`, `cv.nc`, `learning_curve.nc`,
`test_slice.nc`, `run.json` (the configuration and what each stage recorded) and the
training checkpoints under `vae/`, `regressor/` and `learning_curve/`. Every training run
checkpoints after each epoch and resumes bit for bit (`resume=True`); finished runs are
read back from their checkpoints, and a finished `vae.eqx` is not retrained.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from invdesign import atomic_write

from .._training import read_checkpoint_header, train
from .._weights import file_sha256, load_model, read_header, save_model
from ._anchors import FEATURE_SETS, LINEAR_SETS, RESIDUAL_SETS, AnchorModel, linear_from_baseline, predict_anchors  # noqa: F401
from ._baseline import STATISTICS, fit_baseline, image_statistics
from ._regressor import ANCHORS, HEAD_WIDTHS, Ensemble, paper_units
from ._vae import VAE, encode, vae_loss_terms

__all__ = ["PipelineConfig", "run_pipeline", "TABLE3_MAE", "choose_epoch", "fold_assignment", "smooth"]

#: Mean absolute errors of the paper's surrogate on its test set (Table 3), paper units.
TABLE3_MAE = {"M1": 0.0030, "Mr": 0.0152, "Hk90": 0.0184, "Hk80": 0.0245, "Hk70": 0.0234, "Hc": 0.0206}

#: E[log |z|] for a standard normal z: -(Euler gamma + ln 2) / 2.
_LOG_ABS_NORMAL = -0.5 * (np.euler_gamma + np.log(2.0))

VAE_FILE = "vae.eqx"
ANCHORS_FILE = "anchors.eqx"
SLICE_FILE = "test_slice.nc"
UNITS = "M1, Mr in Ms; Hk90, Hk80, Hk70, Hc in H_A (signed)"


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Settings of `run_pipeline` (all JSON-able; recorded in `run.json` and the weights headers).

    Data: `labeled` (path of the labeled dataset: `kx`, `anchors`, attr `H_A`), `out`
    (output folder), `labeled_limit` (use only samples with index < it; None: all),
    `unlabeled` (an existing unlabeled dataset file with `kx`; None: generate
    `n_unlabeled` structures with `data_seed` into `out/data`), `vae_val` (held-out
    unlabeled structures, the last ones).

    VAE: `latents`, `vae_lrs` (the candidates), `vae_channels`, `vae_dense`, `vae_batch`,
    `vae_beta` (weight of the KL term; 1 is the paper's VAE, below 1 trades the prior
    match for sharper reconstructions),
    `select_structures`, `select_epochs` (the short runs), `vae_epochs` (the long run; 0
    keeps the selected short-run model), `reuse_vae` (path of a `vae.eqx` or of a run
    folder holding one: skip the unlabeled data and the VAE training), `vae_init` (a
    `vae.eqx` to continue: no short runs, its latent size and learning rate, `vae_epochs`
    more epochs over all structures), `vae_only` (stop after the VAE stage).

    Regressor: `feature_sets` (candidates, see `FEATURE_SETS`), `members`,
    `shared_widths`, `head_widths`, `reg_lr` (Nadam), `reg_batch`, `cv_folds`,
    `cv_max_epochs`, `cv_smooth` (odd window of the running mean of the CV score),
    `cv_patience` (stop a CV run when the smoothed score has not improved for this many
    epochs; 0: never).

    Evaluation: `slice_size` (test structures in `test_slice.nc`), `learning_curve`
    (training-set sizes; None: 25, 50, 100, 250, 500, 1000, 2000 below the training-set
    size, plus all of it; an empty tuple skips the curve).

    `seed` fixes fold assignment, initial weights and shuffles; `progress` shows bars.
    """

    labeled: str
    out: str
    labeled_limit: int | None = None
    unlabeled: str | None = None
    n_unlabeled: int = 100_000
    data_seed: int = 0
    vae_val: int = 2000
    latents: tuple = (16, 32, 64)
    vae_lrs: tuple = (1e-4,)
    vae_channels: tuple = (16, 32, 64, 128, 256)
    vae_dense: int = 256
    vae_batch: int = 64
    vae_beta: float = 1.0
    select_structures: int = 25_600
    select_epochs: int = 1
    vae_epochs: int = 10
    reuse_vae: str | None = None
    vae_init: str | None = None
    vae_only: bool = False
    feature_sets: tuple = FEATURE_SETS
    members: int = 5
    shared_widths: tuple = (256, 256, 128, 64)
    head_widths: tuple = HEAD_WIDTHS
    reg_lr: float = 1e-4
    reg_batch: int = 16
    cv_folds: int = 4
    cv_max_epochs: int = 400
    cv_smooth: int = 21
    cv_patience: int = 100
    slice_size: int = 20
    learning_curve: tuple | None = None
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        for name in ("labeled", "out"):
            if not isinstance(getattr(self, name), (str, os.PathLike)) or not str(getattr(self, name)):
                raise ValueError(f"{name} must be a path, got {getattr(self, name)!r}")
            object.__setattr__(self, name, str(getattr(self, name)))
        for name in ("unlabeled", "reuse_vae", "vae_init"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, str(getattr(self, name)))
        if self.vae_init is not None and self.reuse_vae is not None:
            raise ValueError("vae_init and reuse_vae exclude each other (continue training a VAE, or reuse it as it is)")
        if self.vae_init is not None and not (isinstance(self.vae_epochs, (int, np.integer)) and self.vae_epochs >= 1):
            raise ValueError(f"vae_epochs must be >= 1 with vae_init (epochs to continue), got {self.vae_epochs!r}")
        if self.vae_only and self.reuse_vae is not None:
            raise ValueError("vae_only with reuse_vae would do nothing: the VAE stage is what vae_only runs")
        object.__setattr__(self, "vae_only", bool(self.vae_only))
        ints = {
            "n_unlabeled": 2, "data_seed": 0, "vae_val": 1, "vae_dense": 1, "vae_batch": 1, "select_structures": 1,
            "select_epochs": 1, "vae_epochs": 0, "members": 1, "reg_batch": 1, "cv_folds": 2, "cv_max_epochs": 1,
            "cv_smooth": 1, "cv_patience": 0, "slice_size": 1, "seed": 0,
        }
        for name, low in ints.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
            object.__setattr__(self, name, int(v))
        if self.cv_smooth % 2 == 0:
            raise ValueError(f"cv_smooth must be odd (a centred window), got {self.cv_smooth}")
        if self.labeled_limit is not None and (isinstance(self.labeled_limit, bool) or int(self.labeled_limit) < 10):
            raise ValueError(f"labeled_limit must be None or an integer >= 10, got {self.labeled_limit!r}")
        for name in ("latents", "vae_channels", "shared_widths", "head_widths"):
            v = tuple(getattr(self, name))
            if not v or any(isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 1 for x in v):
                raise ValueError(f"{name} must be a non-empty sequence of integers >= 1, got {getattr(self, name)!r}")
            object.__setattr__(self, name, tuple(int(x) for x in v))
        for name in ("vae_lrs",):
            v = tuple(float(x) for x in getattr(self, name))
            if not v or not all(np.isfinite(x) and x > 0 for x in v):
                raise ValueError(f"{name} must be a non-empty sequence of learning rates > 0, got {getattr(self, name)!r}")
            object.__setattr__(self, name, v)
        if isinstance(self.vae_beta, bool) or not (np.isfinite(float(self.vae_beta)) and float(self.vae_beta) > 0):
            raise ValueError(f"vae_beta must be > 0 (weight of the KL term), got {self.vae_beta!r}")
        object.__setattr__(self, "vae_beta", float(self.vae_beta))
        if not (np.isfinite(self.reg_lr) and self.reg_lr > 0):
            raise ValueError(f"reg_lr must be > 0, got {self.reg_lr!r}")
        object.__setattr__(self, "reg_lr", float(self.reg_lr))
        fs = tuple(self.feature_sets)
        if not fs or any(f not in FEATURE_SETS for f in fs) or len(set(fs)) != len(fs):
            raise ValueError(f"feature_sets must be distinct names from {FEATURE_SETS}, got {self.feature_sets!r}")
        object.__setattr__(self, "feature_sets", fs)
        if self.learning_curve is not None:
            lc = tuple(int(n) for n in self.learning_curve)
            if any(n < 8 for n in lc):
                raise ValueError(f"learning_curve sizes must be >= 8, got {self.learning_curve!r}")
            object.__setattr__(self, "learning_curve", tuple(sorted(set(lc))))

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


# ---------------------------------------------------------------------------------------
# small helpers


def _log(msg: str) -> None:
    print(f"[{_dt.datetime.now().strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict:
    import invdesign

    return {"invdesign": invdesign.__version__, "jax": jax.__version__, "equinox": eqx.__version__,
            "optax": optax.__version__, "numpy": np.__version__, "xarray": xr.__version__}


@functools.lru_cache(maxsize=None)
def _nadam(lr: float):
    """One optimizer object per learning rate, so compiled training steps are reused."""
    return optax.nadam(lr)


def _array_sha256(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}|{a.shape}|".encode())
        h.update(a.data)
    return h.hexdigest()


def _write_json(path: Path, obj) -> None:
    atomic_write(path, json.dumps(obj, indent=1, sort_keys=True))


def _write_nc(ds: xr.Dataset, path: Path) -> None:
    atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))


def smooth(values, window: int) -> np.ndarray:
    """Centred running mean of `values` over `window` (odd) entries; shorter at the ends.

    ```python
    >>> smooth([0.0, 3.0, 0.0, 3.0], 3).tolist()
    [1.5, 1.0, 2.0, 1.5]

    ```
    """
    v = np.asarray(values, dtype=float)
    h = int(window) // 2
    c = np.concatenate([[0.0], np.cumsum(v)])
    i = np.arange(v.size)
    lo, hi = np.maximum(i - h, 0), np.minimum(i + h + 1, v.size)
    return (c[hi] - c[lo]) / (hi - lo)


def choose_epoch(cv_mae, reference, window: int = 1) -> tuple[int, np.ndarray]:
    """The epoch (counted from 1) of least cross-validated score, and the score per epoch.

    **Arguments:**

    - `cv_mae`: `(epochs, anchors)` cross-validated MAE per epoch and anchor.
    - `reference`: `(anchors,)` the MAE each anchor is measured against (the baseline's
      CV MAE): the score of an epoch is `mean(cv_mae[e] / reference)`.
    - `window`: odd width of the running mean applied to the score before the argmin.

    **Returns:** `(epoch, score)` with `score` the unsmoothed `(epochs,)` score.

    ```python
    >>> mae = np.array([[4.0, 2.0], [2.0, 1.0], [1.0, 1.0], [2.0, 2.0]])
    >>> choose_epoch(mae, np.array([2.0, 1.0]))
    (3, array([2.  , 1.  , 0.75, 1.5 ]))

    ```
    """
    mae = np.asarray(cv_mae, dtype=float)
    ref = np.asarray(reference, dtype=float)
    if mae.ndim != 2 or ref.shape != (mae.shape[1],) or not np.all(ref > 0):
        raise ValueError(f"cv_mae (epochs, anchors) and reference (anchors,) > 0 must match, got {mae.shape}, {ref.shape}")
    score = np.mean(mae / ref, axis=1)
    return int(np.argmin(smooth(score, window))) + 1, score


def fold_assignment(n: int, folds: int, seed: int) -> np.ndarray:
    """Fold index (0 ... folds-1) of each of `n` training structures: a seeded permutation mod `folds`.

    ```python
    >>> f = fold_assignment(10, 4, 0)
    >>> np.bincount(f).tolist()
    [3, 3, 2, 2]

    ```
    """
    if not 2 <= folds <= n:
        raise ValueError(f"folds must be in [2, n] = [2, {n}], got {folds}")
    return (np.random.default_rng([seed, 4711]).permutation(n) % folds).astype(np.int32)


# ---------------------------------------------------------------------------------------
# run folder


class _Run:
    """The output folder: `run.json` (configuration + stage records), atomic updates."""

    def __init__(self, config: PipelineConfig, resume: bool):
        self.config = config
        self.out = Path(config.out)
        self.path = self.out / "run.json"
        cfg = config.to_json()
        cfg.pop("progress")
        if self.path.exists():
            state = json.loads(self.path.read_text())
            if not resume:
                raise ValueError(
                    f"out {str(self.out)!r} already holds a run (run.json); pass resume=True (--resume) to continue "
                    "it, or another out folder"
                )
            saved = state.get("config", {})
            diffs = [f"{k}: {saved.get(k)!r} in the run, {cfg.get(k)!r} now" for k in sorted(set(saved) | set(cfg))
                     if saved.get(k) != cfg.get(k)]
            if diffs:
                raise ValueError(f"cannot resume the run in {str(self.out)!r} with other settings ({'; '.join(diffs)})")
            self.state = state
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            self.state = {"config": cfg, "created_utc": _now(), "stages": {}}
            self.save()

    def save(self):
        _write_json(self.path, self.state)

    def record(self, stage: str, value) -> None:
        self.state["stages"][stage] = value
        self.save()

    def stage(self, stage: str):
        return self.state["stages"].get(stage)


def _callback(callback, stage):
    if callback is None:
        return None
    return lambda epoch, logs: callback(stage, epoch, logs)


# ---------------------------------------------------------------------------------------
# 1-2: unlabeled structures and the VAE


def _unlabeled(config: PipelineConfig, run: _Run) -> tuple[np.ndarray, dict]:
    """kx `(n, grid, grid)` float32 of the unlabeled structures and their record."""
    if config.unlabeled is not None:
        path = Path(config.unlabeled)
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            kx = ds["kx"].values.astype(np.float32)
            sample = ds["sample"].values if "sample" in ds.coords else np.arange(kx.shape[0])
            settings = ds.attrs.get("settings")
        record = {"source": str(path), "file_sha256": file_sha256(path)}
    else:
        from invdesign_surrogates.data.hysteresis import generate

        data = run.out / "data"
        combined = data / "unlabeled.nc"
        if not (combined.exists() and _samples(combined) == config.n_unlabeled):
            _log(f"generating {config.n_unlabeled} unlabeled structures in {data} (resumable)")
            generate(data, parts=("unlabeled",), n_unlabeled=config.n_unlabeled, seed=config.data_seed,
                     unlabeled_per_shard=min(2500, config.n_unlabeled), progress=config.progress)
        with xr.open_dataset(combined, engine="h5netcdf") as ds:
            kx = ds["kx"].values[: config.n_unlabeled].astype(np.float32)
            sample = ds["sample"].values[: config.n_unlabeled]
            settings = ds.attrs.get("settings")
        record = {"source": str(combined), "generator": "invdesign_surrogates.data.hysteresis part 'unlabeled'",
                  "structure_seeds": "structure_seed(data_seed, 0, index)", "data_seed": config.data_seed}
    n = kx.shape[0]
    if n <= config.vae_val:
        raise ValueError(f"vae_val must be below the {n} unlabeled structures, got {config.vae_val}")
    record.update(
        n=int(n),
        index_range=[int(sample.min()), int(sample.max()) + 1],
        train_index_range=[int(sample[0]), int(sample[n - config.vae_val - 1]) + 1],
        val_index_range=[int(sample[n - config.vae_val]), int(sample[-1]) + 1],
        select_index_range=[int(sample[0]), int(sample[min(config.select_structures, n - config.vae_val) - 1]) + 1],
        kx_sha256=_array_sha256(kx),
        settings=settings,
    )
    run.record("unlabeled", record)
    return kx, record


def _samples(path) -> int:
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return int(ds.sizes["sample"])


def _vae_loss_aux(model, batch, key, beta=1.0):
    t = vae_loss_terms(model, batch, key, beta=beta)
    return t["loss"], {"mse": t["mse"], "kl": t["kl"]}


def _vae_settings(config, stage, hp, lr):
    return {"stage": stage, "lr": lr, "optimizer": "nadam", "beta": config.vae_beta, "hyperparameters": hp}


def _train_vae(config: PipelineConfig, run: _Run, grid: int, callback) -> tuple[VAE, dict, Path]:
    """Select the latent size, train the VAE, write `vae.eqx`; returns (vae, header, path)."""
    path = run.out / VAE_FILE
    done = run.stage("vae")
    if done is not None and path.exists() and file_sha256(path) == done["sha256"]:
        vae, header = load_model(path, _vae_factory, sha256=done["sha256"])
        _log(f"VAE: read {path} (latent {vae.latent})")
        return vae, header, path
    kx, record = _unlabeled(config, run)
    if kx.shape[1:] != (grid, grid):
        raise ValueError(f"the unlabeled structures are {kx.shape[1:]}, the labeled ones ({grid}, {grid})")
    n_train = kx.shape[0] - config.vae_val
    train_kx, val_kx = kx[:n_train], kx[n_train:]
    select_kx = train_kx[: config.select_structures]
    if config.vae_batch > select_kx.shape[0]:
        raise ValueError(f"vae_batch must be <= the {select_kx.shape[0]} structures of a short run, got {config.vae_batch}")
    folder = run.out / "vae"
    folder.mkdir(exist_ok=True)
    loss_fn = functools.partial(_vae_loss_aux, beta=config.vae_beta)
    candidates = []
    results = {}
    base = jax.random.key(config.seed)

    def short_run(latent, lr):
        hp = {"grid": grid, "latent": latent, "channels": list(config.vae_channels), "dense": config.vae_dense}
        model = VAE(**hp, key=jax.random.fold_in(base, 1000 + latent))
        t0 = time.perf_counter()
        _log(f"VAE short run: latent {latent}, lr {lr:g}, {config.select_epochs} epoch(s) over {select_kx.shape[0]} structures")
        res = train(model, loss_fn, _nadam(lr), {"kx": select_kx}, epochs=config.select_epochs,
                    batch_size=config.vae_batch, seed=config.seed, val_data={"kx": val_kx},
                    checkpoint=folder / f"select_latent{latent}_lr{lr:g}.ckpt", progress=config.progress,
                    key_needed=True, has_aux=True, keep_best=False,
                    settings=_vae_settings(config, "vae-select", hp, lr), callback=_callback(callback, "vae-select"))
        h = res.history
        cand = {"latent": latent, "lr": lr, "val_loss": h["val_loss"][-1], "val_mse": h["val_mse"][-1],
                "val_kl": h["val_kl"][-1], "train_loss": h["train_loss"][-1], "epochs": res.epochs,
                "wall_s_this_call": time.perf_counter() - t0}
        _log(f"  held-out loss {cand['val_loss']:.2f} (mse {cand['val_mse']:.4f}, kl {cand['val_kl']:.1f})")
        candidates.append(cand)
        results[(latent, lr)] = (res.model, hp)

    init = None
    if config.vae_init is not None:  # continue a trained VAE: its latent size and learning rate
        init_path = _vae_file(config.vae_init)
        model, init_header = load_model(init_path, _vae_factory, expect={"grid": [grid, grid]})
        hp = init_header["hyperparameters"]
        sel = init_header.get("latent_selection", {})
        candidates = sel.get("candidates", [])
        best = {"latent": int(hp["latent"]), "lr": float(init_header["optimizer"]["lr"])}
        init = {"path": str(init_path), "sha256": file_sha256(init_path), "epochs": init_header.get("epochs"),
                "losses": init_header.get("losses"), "history": init_header.get("history")}
        run.record("vae_selection", {"candidates": candidates, "chosen": best, "continued_from": str(init_path)})
        _log(f"VAE: continuing {init_path} (latent {best['latent']}, lr {best['lr']:g})")
    else:
        # the latent sizes at the first learning rate, then the other learning rates at the best latent size
        for latent in config.latents:
            short_run(latent, config.vae_lrs[0])
        best_latent = min(candidates, key=lambda c: c["val_loss"])["latent"]
        for lr in config.vae_lrs[1:]:
            short_run(best_latent, lr)
        best = min(candidates, key=lambda c: c["val_loss"])
        model, hp = results[(best["latent"], best["lr"])]
        run.record("vae_selection", {"candidates": candidates, "chosen": {"latent": best["latent"], "lr": best["lr"]}})
        _log(f"VAE: latent {best['latent']}, lr {best['lr']:g} chosen by held-out loss")
    final = {"epochs": 0, "best_epoch": 0, "history": {}}
    if config.vae_epochs > 0:
        t0 = time.perf_counter()
        _log(f"VAE long run: {config.vae_epochs} epochs over {n_train} structures")
        res = train(model, loss_fn, _nadam(best["lr"]), {"kx": train_kx}, epochs=config.vae_epochs,
                    batch_size=config.vae_batch, seed=config.seed, val_data={"kx": val_kx},
                    checkpoint=folder / "final.ckpt", progress=config.progress, key_needed=True, has_aux=True,
                    keep_best=True, settings=_vae_settings(config, "vae-final", hp, best["lr"]),
                    callback=_callback(callback, "vae-final"))
        model = res.best_model
        final = {"epochs": res.epochs, "best_epoch": res.best_epoch,
                 "history": {k: v.tolist() for k, v in res.history.items()},
                 "wall_s_this_call": time.perf_counter() - t0}
    if final["history"]:
        losses = {k: v[final["best_epoch"] - 1] for k, v in final["history"].items()}
    else:
        losses = {k: best[k] for k in ("val_loss", "val_mse", "val_kl", "train_loss")}
    header = {
        "hyperparameters": hp,
        "grid": [grid, grid],
        "latent": hp["latent"],
        "kind": "hysteresis VAE (Kovacs et al. Table 1 layout, configurable widths)",
        "input": "kx: x-component of the easy axis per cell, in [-1, 1], field along y",
        "optimizer": {"name": "nadam", "lr": best["lr"], "batch_size": config.vae_batch},
        "loss": f"mean over batch of [sum over cells (x_hat - x)^2 + beta KL] (beta = {config.vae_beta:g})",
        "beta": config.vae_beta,
        "latent_selection": {"candidates": candidates, "chosen": {"latent": best["latent"], "lr": best["lr"]},
                             "criterion": "held-out loss after the short runs"
                             + (" (of the continued VAE)" if init is not None else "")},
        "epochs": {"select": 0 if init is not None else config.select_epochs,
                   "select_structures": 0 if init is not None else int(select_kx.shape[0]),
                   "final": final["epochs"], "best_final_epoch": final["best_epoch"]},
        "continued_from": init,
        "losses": losses,
        "history": final["history"],
        "unlabeled": record,
        "seed": config.seed,
        "created_utc": _now(),
    }
    sha = save_model(path, model, header)
    run.record("vae", {"sha256": sha, "latent": hp["latent"], "final": {k: v for k, v in final.items() if k != "history"}})
    _log(f"VAE written to {path} (sha256 {sha[:12]}...)")
    return model, read_header(path), path


def _vae_factory(header):
    return VAE(**header["hyperparameters"], key=jax.random.key(0))


def _vae_file(path) -> Path:
    """`path` itself, or the `vae.eqx` in it when it is a run folder."""
    path = Path(path)
    return path / VAE_FILE if path.is_dir() else path


def _reuse_vae(config: PipelineConfig, run: _Run, grid: int):
    path = _vae_file(config.reuse_vae)
    vae, header = load_model(path, _vae_factory, expect={"grid": [grid, grid]})
    sha = file_sha256(path)
    target = run.out / VAE_FILE
    if target.resolve() != path.resolve():
        atomic_write(target, path.read_bytes())
    run.record("vae", {"sha256": sha, "latent": vae.latent, "reused_from": str(path)})
    _log(f"VAE: reusing {path} (latent {vae.latent}, sha256 {sha[:12]}...)")
    return vae, header, target


# ---------------------------------------------------------------------------------------
# 3: labeled data and features


def _labeled(config: PipelineConfig) -> dict:
    from invdesign_surrogates.data.hysteresis import is_test

    path = Path(config.labeled)
    if not path.exists():
        raise FileNotFoundError(f"labeled {str(path)!r} does not exist")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        for name in ("kx", "anchors"):
            if name not in ds:
                raise ValueError(f"labeled {str(path)!r} has no variable {name!r}")
        if "H_A" not in ds.attrs:
            raise ValueError(f"labeled {str(path)!r} has no attribute 'H_A' (the anisotropy field, A/m)")
        if list(ds["anchor"].values) != list(ANCHORS):
            raise ValueError(f"labeled {str(path)!r} anchors must be {ANCHORS}, got {list(ds['anchor'].values)}")
        sample = ds["sample"].values.astype(np.int64)
        kx = ds["kx"].values.astype(np.float32)
        anchors = ds["anchors"].values
        ok = np.all(np.isfinite(anchors), axis=1)
        for flag in ("complete", "converged"):
            if flag in ds:
                ok &= ds[flag].values.astype(bool)
        H_A = float(ds.attrs["H_A"])
    if config.labeled_limit is not None:
        keep = sample < config.labeled_limit
        sample, kx, anchors, ok = sample[keep], kx[keep], anchors[keep], ok[keep]
    order = np.argsort(sample, kind="stable")
    sample, kx, anchors, ok = sample[order], kx[order], anchors[order], ok[order]
    if kx.ndim != 3 or kx.shape[1] != kx.shape[2]:
        raise ValueError(f"labeled kx must have shape (n, grid, grid), got {kx.shape}")
    test = is_test(sample)
    y = np.full(anchors.shape, np.nan)
    y[ok] = paper_units(anchors[ok], H_A)
    return {
        "path": path, "sha256": file_sha256(path), "sample": sample, "kx": kx, "y": y, "ok": ok,
        "train": ~test & ok, "test": test & ok, "H_A": H_A, "grid": int(kx.shape[1]),
        "dropped": sample[~ok].tolist(),
    }


# ---------------------------------------------------------------------------------------
# 4-5: regressors


def _member_masked_loss(member, g, x, targets, fold):
    y = targets[:, g, :]
    mask = (fold != g)[:, None] & jnp.isfinite(y)
    y_mean, y_std = jax.lax.stop_gradient((member.y_mean, member.y_std))
    pred = jax.vmap(member.standardised)(x)
    err = pred - (jnp.where(mask, y, y_mean) - y_mean) / y_std
    return jnp.sum(jnp.where(mask, err**2, 0.0)) / jnp.maximum(jnp.sum(mask), 1)


def _reg_train_loss(model: Ensemble, batch):
    """MSE on standardised targets; member m belongs to fold group m // K and skips that fold's samples."""
    x, targets, fold = (jnp.asarray(batch[k]) for k in ("features", "targets", "fold"))
    k = model.n_members // targets.shape[1]
    groups = jnp.arange(model.n_members) // k
    losses = eqx.filter_vmap(lambda m, g: _member_masked_loss(m, g, x, targets, fold))(model.members, groups)
    return jnp.mean(losses), {}


def _out_of_fold(model: Ensemble, batch):
    """Each sample's prediction by the members of its fold group: (mean, spread, target, rows, group)."""
    x, targets, fold = (jnp.asarray(batch[k]) for k in ("features", "targets", "fold"))
    g_count = targets.shape[1]
    k = model.n_members // g_count
    n = x.shape[0]
    preds = eqx.filter_vmap(lambda m: jax.vmap(m)(x))(model.members).reshape(g_count, k, n, -1)
    g = jnp.clip(fold, 0, g_count - 1)
    rows = jnp.arange(n)
    p = preds[g, :, rows, :]  # (n, k, anchors)
    return jnp.mean(p, axis=1), jnp.std(p - p[:, :1], axis=1), targets[rows, g], rows, g


def _log_ratio(err, spread):
    return jnp.log(jnp.maximum(err, 1e-12)) - jnp.log(jnp.maximum(spread, 1e-12))


def _reg_val_loss(model: Ensemble, batch):
    """Out-of-fold ensemble mean of each sample's fold group: MAE per anchor (paper units), log |error| / spread."""
    mean, spread, y, _, _ = _out_of_fold(model, batch)
    err = jnp.abs(mean - y)
    logz = _log_ratio(err, spread)
    aux = {}
    for i, a in enumerate(ANCHORS):
        aux[f"mae_{a}"] = jnp.mean(err[:, i])
        aux[f"logz_{a}"] = jnp.mean(logz[:, i])
    return jnp.mean(err / jax.lax.stop_gradient(model.members.y_std[0])), aux


def _reg_val_blend(model: Ensemble, batch, *, residual: bool):
    """`_reg_val_loss` plus the MAE and log |error| / spread of every blend `BLEND_WEIGHTS[j]`.

    Network predicting the anchors (`residual=False`, `batch["linear"]` the fold groups'
    ridge predictions): blend `linear + w (network - linear)`. Network predicting the
    ridge residual (`residual=True`, the targets are residuals): blend `ridge + w network`.
    """
    loss, aux = _reg_val_loss(model, batch)
    mean, spread, t, rows, g = _out_of_fold(model, batch)
    if not residual:
        lin = jnp.asarray(batch["linear"])[rows, g]
        mean, t = mean - lin, t - lin
    for j, w in enumerate(BLEND_WEIGHTS):
        err = jnp.abs(w * mean - t)
        logz = _log_ratio(err, spread)
        for i, a in enumerate(ANCHORS):
            aux[f"mae{j}_{a}"] = jnp.mean(err[:, i])
            aux[f"logz{j}_{a}"] = jnp.mean(logz[:, i])
    return loss, aux


# one object each, so the compiled evaluation steps are reused
_val_blend_full = functools.partial(_reg_val_blend, residual=False)
_val_blend_residual = functools.partial(_reg_val_blend, residual=True)


def _group_stats(x, targets, fold, groups):
    """Per fold group: (x_mean, x_std, y_mean, y_std) of the group's training samples."""
    out = []
    for g in range(groups):
        tr = fold != g
        xs, ys = x[tr].astype(np.float64), targets[tr, g].astype(np.float64)
        sx, sy = xs.std(0), np.nanstd(ys, 0)
        out.append((xs.mean(0), np.where(sx < 1e-6, 1.0, sx), np.nanmean(ys, 0), np.where(sy < 1e-6, 1.0, sy)))
    return out


def _make_ensemble(config, n_in, groups, x, targets, fold, key, zero_output=False):
    """`groups x members` regressors with per-group standardisation; `zero_output`: output layers start at zero."""
    k = config.members
    ens = Ensemble(n_in, groups * k, key=key, shared_widths=config.shared_widths, head_widths=config.head_widths)
    if zero_output:  # the correction of a residual model starts at exactly 0 (the linear model)
        heads = tuple(h[:-1] + (eqx.tree_at(lambda l: (l.weight, l.bias), h[-1],
                                            (jnp.zeros_like(h[-1].weight), jnp.zeros_like(h[-1].bias))),)
                      for h in ens.members.heads)
        ens = eqx.tree_at(lambda e: e.members.heads, ens, heads)
    stats = _group_stats(x, targets, fold, groups)
    stacked = [jnp.asarray(np.repeat(np.stack([s[j] for s in stats]), k, axis=0).astype(np.float32)) for j in range(4)]
    return eqx.tree_at(lambda e: (e.members.x_mean, e.members.x_std, e.members.y_mean, e.members.y_std), ens,
                       tuple(stacked)), stats


def _inputs(feature_set, latent, stats):  # feature_set: a run name
    if feature_set == "latent":
        return latent
    if feature_set == "stats_residual":
        return stats
    return np.concatenate([latent, stats], axis=1)


def _residual_targets(feature_set, stats, y, fold, groups):
    """Targets `(n, groups, 6)` (for the residual set minus each group's ridge fit) and the
    ridge fits' predictions `(n, groups, 6)` (group `g` fitted on the samples outside fold `g`)."""
    t = np.repeat(y[:, None, :], groups, axis=1)
    linear = np.zeros_like(t)
    if feature_set != "latent":
        for g in range(groups):
            tr = fold != g
            linear[:, g] = fit_baseline(stats[tr], y[tr]).predict(stats)
        if feature_set in RESIDUAL_SETS:
            t -= linear
    return t.astype(np.float32), linear.astype(np.float32)


def _reg_settings(config, stage, feature_set, n_in, groups):
    return {"stage": stage, "feature_set": feature_set, "lr": config.reg_lr, "optimizer": "nadam", "in_features": n_in,
            "groups": groups, "members": config.members, "shared_widths": list(config.shared_widths),
            "head_widths": list(config.head_widths)}


#: Weights `w` of the network in the blends `linear + w (network - linear)` that the CV
#: compares per anchor for the `"latent_stats_blend"` and `"latent_stats_residual"` sets
#: (`w = 0`: the linear model alone, `w = 1`: the network alone / the full correction).
BLEND_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

#: The CV training run each candidate is read from (a blend needs no network of its own).
_RUN = {"latent": "latent", "latent_stats": "latent_stats", "latent_stats_blend": "latent_stats",
        "latent_stats_residual": "latent_stats_residual", "stats_residual": "stats_residual"}


def _cv_run(config, run, latent, stats, y, fold, candidates, reference, checkpoint, callback, stage) -> dict:
    """Train (or read back) the CV networks of `run`; returns the per-epoch history.

    The run stops early when none of `candidates` (the feature sets read from it) has
    improved its smoothed score for `cv_patience` epochs.
    """
    groups = int(fold.max()) + 1
    x = _inputs(run, latent, stats).astype(np.float32)
    targets, linear = _residual_targets(run, stats, y, fold, groups)
    key = jax.random.fold_in(jax.random.key(config.seed), 2000 + FEATURE_SETS.index(run))
    ens, _ = _make_ensemble(config, x.shape[1], groups, x, targets, fold, key, zero_output=run in RESIDUAL_SETS)
    data = {"features": x, "targets": targets, "fold": fold}
    val_fn = {"latent": _reg_val_loss, "latent_stats": _val_blend_full, "latent_stats_residual": _val_blend_residual,
              "stats_residual": _val_blend_residual}[run]
    if run == "latent_stats":
        data["linear"] = linear

    def stop_now(history) -> bool:  # no candidate's smoothed score improved for cv_patience epochs
        if not config.cv_patience or not history.get("val_mae_M1"):
            return False
        n = len(history["val_mae_M1"])
        return all(n - _candidate(fs, history, reference, config.cv_smooth)["epoch"] >= config.cv_patience
                   for fs in candidates)

    history = {}
    if checkpoint is not None and Path(checkpoint).exists():
        history = read_checkpoint_header(checkpoint)["history"]
    if not stop_now(history) and len(history.get("val_mae_M1", [])) < config.cv_max_epochs:
        history = {k: list(v) for k, v in history.items()}

        def watch(epoch, logs):
            if callback is not None:
                callback(stage, epoch, logs)
            for k, v in logs.items():
                history.setdefault(k, []).append(v)
            if stop_now(history):
                raise _EarlyStop

        try:
            res = train(ens, _reg_train_loss, _nadam(config.reg_lr), data, epochs=config.cv_max_epochs,
                        batch_size=min(config.reg_batch, x.shape[0]), seed=config.seed, val_data=data,
                        val_loss_fn=val_fn, checkpoint=checkpoint, progress=config.progress, has_aux=True,
                        keep_best=False, settings=_reg_settings(config, "cv", run, x.shape[1], groups),
                        callback=watch)
            history = res.history
        except _EarlyStop:
            pass
    return {k: np.asarray(v, dtype=float) for k, v in history.items()}


def _candidate(feature_set, history, reference, window) -> dict:
    """Chosen epoch, CV MAE, per-anchor network weight and spread calibration of a candidate."""
    if feature_set in ("latent", "latent_stats"):
        mae = np.stack([history[f"val_mae_{a}"] for a in ANCHORS], axis=1)
        logz = np.stack([history[f"val_logz_{a}"] for a in ANCHORS], axis=1)
        epoch, score = choose_epoch(mae, reference, window)
        weight, lz = np.ones(len(ANCHORS)), logz[epoch - 1]
    else:  # the best blend weight per anchor and epoch
        m = np.stack([np.stack([history[f"val_mae{j}_{a}"] for a in ANCHORS], axis=1)
                      for j in range(len(BLEND_WEIGHTS))], axis=1)  # (epochs, weights, anchors)
        best = np.argmin(m, axis=1)
        mae = np.take_along_axis(m, best[:, None, :], axis=1)[:, 0]
        epoch, score = choose_epoch(mae, reference, window)
        j = best[epoch - 1]
        weight = np.asarray(BLEND_WEIGHTS)[j]
        lz = np.array([history[f"val_logz{jj}_{a}"][epoch - 1] for jj, a in zip(j, ANCHORS)])
    return {"feature_set": feature_set, "mae": mae, "score": score, "smoothed": smooth(score, window),
            "epoch": epoch, "cv_mae": mae[epoch - 1], "correction": weight, "epochs_run": len(score),
            "score_at_epoch": float(score[epoch - 1]), "spread_scale": np.exp(lz - _LOG_ABS_NORMAL)}


def _cross_validate(config, feature_set, latent, stats, y, fold, reference, checkpoint, callback, stage):
    """The CV of one candidate `feature_set` (training its run's networks when needed)."""
    t0 = time.perf_counter()
    history = _cv_run(config, _RUN[feature_set], latent, stats, y, fold, [feature_set], reference, checkpoint,
                      callback, stage)
    return dict(_candidate(feature_set, history, reference, config.cv_smooth), wall_s=time.perf_counter() - t0)


class _EarlyStop(Exception):
    """Raised by the CV watcher when the smoothed score stopped improving (the epoch is checkpointed)."""


def _baseline_cv(stats, y, fold):
    """Out-of-fold MAE per anchor of the ridge baseline on the given folds."""
    pred = np.empty_like(y)
    for g in range(int(fold.max()) + 1):
        tr = fold != g
        pred[~tr] = fit_baseline(stats[tr], y[tr]).predict(stats[~tr])
    return np.mean(np.abs(pred - y), axis=0)


def _train_final(config, feature_set, latent, stats, y, epochs, checkpoint, callback, stage):
    """The final ensemble on all given training structures; returns (Ensemble, baseline, history)."""
    run = _RUN[feature_set]
    fold = np.full(latent.shape[0], -1, np.int32)
    x = _inputs(run, latent, stats).astype(np.float32)
    baseline = fit_baseline(stats, y)
    targets = y[:, None, :].astype(np.float32)
    if run in RESIDUAL_SETS:
        targets = (y - baseline.predict(stats))[:, None, :].astype(np.float32)
    key = jax.random.fold_in(jax.random.key(config.seed), 3000 + FEATURE_SETS.index(run))
    ens, _ = _make_ensemble(config, x.shape[1], 1, x, targets, fold, key, zero_output=run in RESIDUAL_SETS)
    res = train(ens, _reg_train_loss, _nadam(config.reg_lr), {"features": x, "targets": targets, "fold": fold},
                epochs=epochs, batch_size=min(config.reg_batch, x.shape[0]), seed=config.seed, checkpoint=checkpoint,
                progress=config.progress, has_aux=True, keep_best=False,
                settings=_reg_settings(config, "final", run, x.shape[1], 1), callback=_callback(callback, stage))
    return res.model, baseline, res.history


def _anchor_model(config, feature_set, n_latent, ensemble, baseline, spread_scale, correction):
    linear = linear_from_baseline(baseline) if feature_set in LINEAR_SETS else {}
    model = AnchorModel(n_latent, feature_set, config.members, key=jax.random.key(0),
                        shared_widths=config.shared_widths, head_widths=config.head_widths,
                        spread_scale=spread_scale, correction=correction, **linear)
    return eqx.tree_at(lambda m: m.ensemble, model, ensemble)


def _anchor_factory(header):
    return AnchorModel(**header["hyperparameters"], key=jax.random.key(0))


# ---------------------------------------------------------------------------------------
# the pipeline


def _mae(pred, y):
    return np.mean(np.abs(np.asarray(pred, float) - y), axis=0)


def _fit_and_test(config, feature_set, vae, lab, train_idx, out_dir, callback, tag):
    """CV (one feature set) + final ensemble + test MAE on the first `train_idx` structures: for the learning curve."""
    latent, stats, y = lab["latent"][train_idx], lab["stats"][train_idx], lab["y"][train_idx]
    fold = fold_assignment(len(train_idx), config.cv_folds, config.seed)
    ref = _baseline_cv(stats, y, fold)
    cv = _cross_validate(config, feature_set, latent, stats, y, fold, ref, out_dir / f"{tag}_cv.ckpt", callback,
                         f"learning-curve:{tag}:cv")
    ens, baseline, _ = _train_final(config, feature_set, latent, stats, y, cv["epoch"], out_dir / f"{tag}_final.ckpt",
                                    callback, f"learning-curve:{tag}:final")
    model = _anchor_model(config, feature_set, vae.latent, ens, baseline, cv["spread_scale"], cv["correction"])
    te = lab["test_idx"]
    mean, _ = predict_anchors(vae, model, lab["kx"][te])
    return {"mae_surrogate": _mae(mean, lab["y"][te]), "mae_baseline": _mae(baseline.predict(lab["stats"][te]), lab["y"][te]),
            "epochs": cv["epoch"], "cv_mae": cv["cv_mae"], "cv_mae_baseline": ref}


def run_pipeline(config: PipelineConfig, *, resume: bool = False, callback=None) -> dict:
    """Run (or resume) the whole pipeline; see the module notes.

    **Arguments:**

    - `config`: a `PipelineConfig`.
    - `resume`: continue a run in `config.out` (its `run.json` must hold the same
      settings); without it an existing run there is an error.
    - `callback`: `callback(stage, epoch, logs)` after every training epoch (it may raise
      to stop the run: the checkpoints keep the finished epochs).

    **Returns:** a summary dict (chosen latent size, feature set and epochs, test MAE per
    anchor of surrogate and baseline, paths of the outputs).
    """
    if not isinstance(config, PipelineConfig):
        raise TypeError(f"config must be a PipelineConfig, got {type(config).__name__}")
    run = _Run(config, bool(resume))
    t_start = time.perf_counter()
    lab = _labeled(config)
    grid = lab["grid"]
    if config.reuse_vae is not None:
        vae, vae_header, vae_path = _reuse_vae(config, run, grid)
    else:
        vae, vae_header, vae_path = _train_vae(config, run, grid, callback)
    if vae.grid != grid:
        raise ValueError(f"the VAE is for a {vae.grid} x {vae.grid} grid, the labeled structures are {grid} x {grid}")
    vae_sha = file_sha256(vae_path)
    if config.vae_only:
        _log(f"VAE stage done (vae_only): {vae_path}")
        return {"vae": str(vae_path), "vae_sha256": vae_sha, "latent": int(vae.latent),
                "vae_losses": vae_header.get("losses"), "wall_s": time.perf_counter() - t_start}

    # features (every structure: the test structures are only encoded, never trained on)
    t0 = time.perf_counter()
    latent, _ = encode(vae, lab["kx"])
    lab["latent"] = np.asarray(latent, np.float32)
    lab["stats"] = image_statistics(lab["kx"].astype(np.float64))[0].astype(np.float32).astype(np.float64)
    train_idx = np.flatnonzero(lab["train"])
    lab["test_idx"] = test_idx = np.flatnonzero(lab["test"])
    _log(f"features of {len(lab['sample'])} labeled structures in {time.perf_counter() - t0:.1f} s: "
         f"{len(train_idx)} training, {len(test_idx)} test, {len(lab['dropped'])} left out (incomplete/not converged)")
    if len(train_idx) < 2 * config.cv_folds or len(test_idx) == 0:
        raise ValueError(f"labeled {config.labeled!r}: {len(train_idx)} training and {len(test_idx)} test structures are too few")
    assert not np.any(lab["test"][train_idx])  # the fixed test split is never trained on
    latent_tr, stats_tr, y_tr = lab["latent"][train_idx], lab["stats"][train_idx], lab["y"][train_idx]
    reg_dir = run.out / "regressor"
    reg_dir.mkdir(exist_ok=True)

    # 4: cross-validation on the training split
    fold = fold_assignment(len(train_idx), config.cv_folds, config.seed)
    ref = _baseline_cv(stats_tr, y_tr, fold)
    _log("baseline CV MAE: " + ", ".join(f"{a} {v:.4f}" for a, v in zip(ANCHORS, ref)))
    runs = {}
    for fs in config.feature_sets:
        runs.setdefault(_RUN[fs], []).append(fs)
    by_set = {}
    for run_name, cands in runs.items():
        _log(f"cross-validation of {', '.join(map(repr, cands))}: {config.cv_folds} folds x {config.members} "
             f"members, up to {config.cv_max_epochs} epochs")
        t0 = time.perf_counter()
        history = _cv_run(config, run_name, latent_tr, stats_tr, y_tr, fold, cands, ref,
                          reg_dir / f"cv_{run_name}.ckpt", callback, f"cv:{run_name}")
        for fs in cands:
            cv = by_set[fs] = dict(_candidate(fs, history, ref, config.cv_smooth), wall_s=time.perf_counter() - t0)
            _log(f"  {fs}: epoch {cv['epoch']} of {cv['epochs_run']}, score {cv['score_at_epoch']:.3f}; CV MAE "
                 + ", ".join(f"{a} {v:.4f}" for a, v in zip(ANCHORS, cv["cv_mae"]))
                 + f"; network weight {cv['correction'].tolist()} ({cv['wall_s']:.0f} s)")
    cvs = [by_set[fs] for fs in config.feature_sets]
    best = min(cvs, key=lambda c: c["score_at_epoch"])
    fs = best["feature_set"]
    _log(f"chosen: feature set {fs!r}, {best['epoch']} epochs")
    def padded(key):
        out = np.full((len(cvs), config.cv_max_epochs) + cvs[0][key].shape[1:], np.nan)
        for i, c in enumerate(cvs):
            out[i, : len(c[key])] = c[key]
        return out

    cv_ds = xr.Dataset(
        {
            "cv_mae": (("feature_set", "epoch", "anchor"), padded("mae"),
                       {"units": UNITS, "long_name": "cross-validated MAE of the fold ensembles' mean (blends: of "
                                                     "the best network weight per anchor; NaN: not run)"}),
            "score": (("feature_set", "epoch"), padded("score"),
                      {"units": "1", "long_name": "mean over anchors of cv_mae / baseline_cv_mae"}),
            "score_smoothed": (("feature_set", "epoch"), padded("smoothed"),
                               {"units": "1", "long_name": f"running mean of score over {config.cv_smooth} epochs"}),
            "chosen_epoch": ("feature_set", np.array([c["epoch"] for c in cvs]), {"long_name": "epochs chosen by CV"}),
            "epochs_run": ("feature_set", np.array([c["epochs_run"] for c in cvs]),
                           {"long_name": "epochs trained before the CV score stopped improving"}),
            "correction": (("feature_set", "anchor"), np.stack([c["correction"] for c in cvs]),
                           {"units": "1", "long_name": "network weight per anchor (blend and residual sets; 0: the "
                                                       "ridge alone)"}),
            "spread_scale": (("feature_set", "anchor"), np.stack([c["spread_scale"] for c in cvs]),
                             {"units": "1", "long_name": "spread calibration factor at the chosen epoch"}),
            "baseline_cv_mae": ("anchor", ref, {"units": UNITS, "long_name": "cross-validated MAE of the ridge baseline"}),
        },
        coords={"feature_set": list(config.feature_sets), "epoch": np.arange(1, config.cv_max_epochs + 1),
                "anchor": list(ANCHORS)},
        attrs={"title": "hysteresis surrogate: cross-validation on the training split", "chosen_feature_set": fs,
               "folds": config.cv_folds, "n_train": len(train_idx), "seed": config.seed,
               "settings": json.dumps(config.to_json(), sort_keys=True), "created_utc": _now()},
    )
    _write_nc(cv_ds, run.out / "cv.nc")
    run.record("cv", {"chosen_feature_set": fs, "candidates": [
        {"feature_set": c["feature_set"], "epoch": c["epoch"], "epochs_run": c["epochs_run"],
         "score": c["score_at_epoch"], "cv_mae": c["cv_mae"].tolist(), "correction": c["correction"].tolist()}
        for c in cvs], "baseline_cv_mae": ref.tolist()})

    # 5: final ensemble + baseline on all training structures
    _log(f"final ensemble: {config.members} members, {best['epoch']} epochs on {len(train_idx)} structures")
    ens, baseline, hist = _train_final(config, fs, latent_tr, stats_tr, y_tr, best["epoch"], reg_dir / "final.ckpt",
                                       callback, "final")
    model = _anchor_model(config, fs, vae.latent, ens, baseline, best["spread_scale"], best["correction"])

    # 6: evaluation on the fixed test split
    y_te = lab["y"][test_idx]
    mean, spread = predict_anchors(vae, model, lab["kx"][test_idx])
    raw_spread = spread / np.asarray(model.spread_scale)
    base_te = baseline.predict(lab["stats"][test_idx])
    mae_s, mae_b = _mae(mean, y_te), _mae(base_te, y_te)
    within = np.mean(np.abs(mean - y_te) <= 2 * spread, axis=0)
    within_raw = np.mean(np.abs(mean - y_te) <= 2 * raw_spread, axis=0)
    table3 = np.array([TABLE3_MAE[a] for a in ANCHORS])
    sl = test_idx[: config.slice_size]
    slice_mean, _ = predict_anchors(vae, model, lab["kx"][sl])
    slice_mae = _mae(slice_mean, lab["y"][sl])
    slice_ds = xr.Dataset(
        {"kx": (("sample", "x", "y"), lab["kx"][sl], {"units": "1", "long_name": "x-component of the easy axis"}),
         "anchors": (("sample", "anchor"), lab["y"][sl], {"units": UNITS, "long_name": "computed anchors (paper units)"})},
        coords={"sample": lab["sample"][sl], "anchor": list(ANCHORS)},
        attrs={"title": "the first structures of the fixed test split (sample % 5 == 4) of the labeled set",
               "labeled_file": lab["path"].name, "labeled_sha256": lab["sha256"], "H_A": lab["H_A"]},
    )
    slice_path = run.out / SLICE_FILE
    atomic_write(slice_path, lambda tmp: slice_ds.to_netcdf(
        tmp, engine="h5netcdf", encoding={"kx": {"compression": "gzip", "compression_opts": 4}}))
    member_stats = model.ensemble.members
    header = {
        "hyperparameters": model.hyperparameters,
        "kind": "hysteresis anchor ensemble (Kovacs et al. Table 2 heads, narrower shared layers)",
        "grid": [grid, grid],
        "anchors": list(ANCHORS),
        "units": UNITS,
        "statistics": list(STATISTICS),
        "vae_sha256": vae_sha,
        "vae_file": VAE_FILE,
        "feature_set": fs,
        "feature_standardisation": {"x_mean": np.asarray(member_stats.x_mean[0]).tolist(),
                                    "x_std": np.asarray(member_stats.x_std[0]).tolist(),
                                    "y_mean": np.asarray(member_stats.y_mean[0]).tolist(),
                                    "y_std": np.asarray(member_stats.y_std[0]).tolist(),
                                    "inputs": "latent means" + ("" if fs == "latent" else " + image statistics")},
        "optimizer": {"name": "nadam", "lr": config.reg_lr, "batch_size": config.reg_batch, "loss": "MSE, standardised targets"},
        "epochs": best["epoch"],
        "epoch_choice": {"folds": config.cv_folds, "max_epochs": config.cv_max_epochs, "smooth": config.cv_smooth,
                         "patience": config.cv_patience,
                         "score": "mean over anchors of CV MAE / baseline CV MAE; blend and residual sets: "
                                  "network weight per anchor from BLEND_WEIGHTS by CV MAE",
                         "blend_weights": list(BLEND_WEIGHTS)},
        "cv": {c["feature_set"]: {"epoch": c["epoch"], "epochs_run": c["epochs_run"], "score": c["score_at_epoch"],
                                  "cv_mae": c["cv_mae"].tolist(), "correction": c["correction"].tolist()} for c in cvs},
        "correction": np.asarray(best["correction"]).tolist(),
        "baseline_cv_mae": ref.tolist(),
        "spread_scale": np.asarray(best["spread_scale"]).tolist(),
        "losses": {"final_train_loss": float(hist["train_loss"][-1])},
        "labeled": {"file": lab["path"].name, "sha256": lab["sha256"], "H_A": lab["H_A"],
                    "train_samples": lab["sample"][train_idx].tolist(), "test_samples": lab["sample"][test_idx].tolist(),
                    "test_rule": "sample % 5 == 4 (never trained or tuned on)", "left_out": lab["dropped"],
                    "labeled_limit": config.labeled_limit},
        "seeds": {"seed": config.seed, "members": "split(fold_in(key(seed), 3000 + feature-set index), members)",
                  "folds": "fold_assignment(n_train, folds, seed)"},
        "test": {"mae": mae_s.tolist(), "baseline_mae": mae_b.tolist(), "table3_mae": table3.tolist(),
                 "within_2_spread": within.tolist(), "n": len(test_idx)},
        "test_slice": {"file": SLICE_FILE, "sha256": file_sha256(slice_path), "samples": lab["sample"][sl].tolist(),
                       "mae": slice_mae.tolist()},
        "created_utc": _now(),
    }
    anchors_path = run.out / ANCHORS_FILE
    anchors_sha = save_model(anchors_path, model, header)
    ev = xr.Dataset(
        {
            "target": (("sample", "anchor"), y_te, {"units": UNITS, "long_name": "computed anchors (micromagnetics)"}),
            "surrogate": (("sample", "anchor"), mean, {"units": UNITS, "long_name": "surrogate: ensemble mean"}),
            "spread": (("sample", "anchor"), spread, {"units": UNITS, "long_name": "surrogate spread (calibrated std over members)"}),
            "spread_raw": (("sample", "anchor"), raw_spread, {"units": UNITS, "long_name": "std over members (uncalibrated)"}),
            "baseline": (("sample", "anchor"), base_te, {"units": UNITS, "long_name": "baseline: image statistics + ridge"}),
            "mae_surrogate": ("anchor", mae_s, {"units": UNITS, "long_name": "test MAE of the surrogate"}),
            "mae_baseline": ("anchor", mae_b, {"units": UNITS, "long_name": "test MAE of the baseline"}),
            "mae_table3": ("anchor", table3, {"units": UNITS, "long_name": "Kovacs et al. Table 3 (their test set)"}),
            "cv_mae_surrogate": ("anchor", best["cv_mae"], {"units": UNITS, "long_name": "CV MAE on the training split"}),
            "cv_mae_baseline": ("anchor", ref, {"units": UNITS, "long_name": "baseline CV MAE on the training split"}),
            "within_2_spread": ("anchor", within, {"units": "1", "long_name": "fraction of test targets within 2 spreads"}),
            "within_2_spread_raw": ("anchor", within_raw, {"units": "1", "long_name": "same, uncalibrated spread"}),
        },
        coords={"sample": lab["sample"][test_idx], "anchor": list(ANCHORS)},
        attrs={"title": "hysteresis surrogate: evaluation on the fixed test split (sample % 5 == 4)",
               "feature_set": fs, "epochs": best["epoch"], "latent": vae.latent, "members": config.members,
               "n_train": len(train_idx), "n_test": len(test_idx), "H_A": lab["H_A"],
               "labeled_file": str(lab["path"]), "labeled_sha256": lab["sha256"], "vae_sha256": vae_sha,
               "anchors_sha256": anchors_sha, "seed": config.seed,
               "settings": json.dumps(config.to_json(), sort_keys=True),
               "versions": json.dumps(_versions(), sort_keys=True), "created_utc": _now()},
    )
    _write_nc(ev, run.out / "evaluation.nc")
    _log("test MAE (surrogate / baseline / Table 3): " + "; ".join(
        f"{a} {s:.4f} / {b:.4f} / {t:.4f}" for a, s, b, t in zip(ANCHORS, mae_s, mae_b, table3)))
    run.record("evaluation", {"anchors_sha256": anchors_sha, "vae_sha256": vae_sha, "feature_set": fs,
                              "epochs": best["epoch"], "mae_surrogate": mae_s.tolist(), "mae_baseline": mae_b.tolist(),
                              "within_2_spread": within.tolist()})

    # 7: learning curve
    n_train = len(train_idx)
    if config.learning_curve is None:
        sizes = [n for n in (25, 50, 100, 250, 500, 1000, 2000) if n < n_train] + [n_train]
    else:
        sizes = sorted({n for n in config.learning_curve if n <= n_train} | ({n_train} if config.learning_curve else set()))
    if sizes:
        lc_dir = run.out / "learning_curve"
        lc_dir.mkdir(exist_ok=True)
        rows = []
        for n in sizes:
            if n == n_train:
                rows.append({"mae_surrogate": mae_s, "mae_baseline": mae_b, "epochs": best["epoch"]})
                continue
            if n < 2 * config.cv_folds or n < 5:
                continue
            _log(f"learning curve: {n} training structures")
            rows.append(_fit_and_test(config, fs, vae, lab, train_idx[:n], lc_dir, callback, f"n{n}"))
            _log("  test MAE surrogate / baseline: " + "; ".join(
                f"{a} {s:.4f} / {b:.4f}" for a, s, b in zip(ANCHORS, rows[-1]["mae_surrogate"], rows[-1]["mae_baseline"])))
        sizes = [n for n in sizes if n == n_train or (n >= 2 * config.cv_folds and n >= 5)]
        lc = xr.Dataset(
            {"mae_surrogate": (("n_train", "anchor"), np.stack([r["mae_surrogate"] for r in rows]), {"units": UNITS}),
             "mae_baseline": (("n_train", "anchor"), np.stack([r["mae_baseline"] for r in rows]), {"units": UNITS}),
             "epochs": ("n_train", np.array([r["epochs"] for r in rows]), {"long_name": "epochs chosen by CV"})},
            coords={"n_train": np.array(sizes), "anchor": list(ANCHORS)},
            attrs={"title": "hysteresis surrogate: test MAE vs number of labeled training structures",
                   "subsets": "the first n training structures in sample order (nested)", "feature_set": fs,
                   "n_test": len(test_idx), "settings": json.dumps(config.to_json(), sort_keys=True),
                   "created_utc": _now()},
        )
        _write_nc(lc, run.out / "learning_curve.nc")
        run.record("learning_curve", {"sizes": sizes, "mae_surrogate": [r["mae_surrogate"].tolist() for r in rows],
                                      "mae_baseline": [r["mae_baseline"].tolist() for r in rows]})
    summary = {
        "out": str(run.out), "latent": vae.latent, "feature_set": fs, "epochs": best["epoch"],
        "n_train": n_train, "n_test": len(test_idx),
        "mae_surrogate": dict(zip(ANCHORS, mae_s.tolist())), "mae_baseline": dict(zip(ANCHORS, mae_b.tolist())),
        "within_2_spread": dict(zip(ANCHORS, within.tolist())),
        "vae_sha256": vae_sha, "anchors_sha256": anchors_sha, "wall_s_this_call": time.perf_counter() - t_start,
    }
    run.record("summary", summary)
    return summary
