"""A generic, resumable minibatch trainer for Equinox surrogates (optax optimizers).

`train` runs epochs of shuffled minibatches through one `eqx.filter_jit` step, records the
per-epoch training and validation losses, keeps the model of the best epoch, shows a tqdm
bar and writes checkpoints that a later call resumes from.

Determinism: the order of the samples in epoch `e` (counted from 0) is
`np.random.default_rng([seed, e]).permutation(n)` and the key of step `i` of that epoch is
`jax.random.split(fold_in(fold_in(key(seed), 0), e), steps)[i]`; nothing else is random. A
run that is stopped and resumed from its checkpoint therefore reproduces, bit for bit on the
same machine, the run that went straight through.

A checkpoint is one file (written atomically; the same container as the shipped weights
of `invdesign_surrogates._weights`, with the magic line `INVDESIGN-CHECKPOINT 1`): a JSON
header with the training settings, the number of finished epochs, the loss history and
the best epoch, then the `eqx.tree_serialise_leaves` bytes of the model, the optimizer
state and the best model. Nothing is pickled. Resuming with other settings (batch size,
seed, data, model or optimizer-state structure, initial model, the caller's `settings`)
is refused with an error listing what differs; only `epochs` may grow.

Everything runs where JAX puts it: the GPU when there is one, the CPU otherwise.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from invdesign import atomic_write

from ._weights import _deserialise, _jsonable, _leaf_spec, _pack, _read_container, _serialise

__all__ = ["TrainResult", "train", "predict_batched", "read_checkpoint_header"]

CHECKPOINT_MAGIC = b"INVDESIGN-CHECKPOINT 1\n"
CHECKPOINT_FORMAT = "invdesign-checkpoint/1"


class TrainResult(eqx.Module):
    """Result of `train`.

    - `model`: the model after the last epoch.
    - `best_model`: the model after epoch `best_epoch` (`None` with `keep_best=False`).
    - `best_epoch`: the epoch (counted from 1) with the lowest validation loss, or the
      lowest training loss when there is no validation data.
    - `history`: float64 arrays with one entry per epoch: `"train_loss"`, `"val_loss"`
      (with validation data) and `"train_<name>"` / `"val_<name>"` for every auxiliary
      value of a `has_aux` loss.
    - `epochs`: the number of finished epochs; `resumed_from`: the epoch the run resumed
      from (0 for a fresh start).
    - `opt_state`: the optimizer state after the last epoch.
    """

    model: Any
    best_model: Any
    best_epoch: int
    history: dict
    epochs: int
    resumed_from: int
    opt_state: Any


# ---------------------------------------------------------------------------------------
# checks and fingerprints


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _as_arrays(data, name: str) -> tuple[dict[str, np.ndarray], int]:
    """The dict `data` as numpy arrays sharing a leading sample axis, and that axis' length."""
    if not isinstance(data, Mapping) or not data:
        raise ValueError(f"{name} must be a non-empty dict of arrays sharing the leading sample axis, got {data!r:.80}")
    arrays, n, first = {}, None, None
    for k in sorted(data):
        if not isinstance(k, str):
            raise ValueError(f"{name} keys must be strings, got {k!r}")
        a = np.asarray(data[k])
        if a.ndim == 0:
            raise ValueError(f"{name}[{k!r}] must have a leading sample axis, got a scalar")
        if n is None:
            n, first = a.shape[0], k
        elif a.shape[0] != n:
            raise ValueError(
                f"{name} arrays must share the leading sample axis: {name}[{first!r}] has {n} samples, "
                f"{name}[{k!r}] has {a.shape[0]}"
            )
        arrays[k] = a
    if n == 0:
        raise ValueError(f"{name} has no samples (leading axis of length 0)")
    return arrays, n


def _fingerprint(arrays: dict[str, np.ndarray] | None) -> dict | None:
    if arrays is None:
        return None
    h = hashlib.sha256()
    for k, a in arrays.items():
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(np.ascontiguousarray(a).data)
    return {
        "samples": int(next(iter(arrays.values())).shape[0]),
        "arrays": {k: [list(a.shape), str(a.dtype)] for k, a in arrays.items()},
        "sha256": h.hexdigest(),
    }


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _settings_diff(saved: dict, now: dict) -> list[str]:
    a, b = _flatten(saved), _flatten(now)
    diffs = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            if k.endswith("_leaves"):
                diffs.append(f"{k} (shapes/dtypes) differ")
            else:
                diffs.append(f"{k}: {a.get(k)!r} in the checkpoint, {b.get(k)!r} now")
    return diffs


# ---------------------------------------------------------------------------------------
# compiled steps


def _call(loss_fn, model, batch, key, key_needed: bool, has_aux: bool):
    out = loss_fn(model, batch, key) if key_needed else loss_fn(model, batch)
    return out if has_aux else (out, {})


@eqx.filter_jit
def _train_step(model, opt_state, batch, key, loss_fn, optimizer, key_needed, has_aux):
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def objective(p):
        return _call(loss_fn, eqx.combine(p, static), batch, key, key_needed, has_aux)

    (loss, aux), grads = jax.value_and_grad(objective, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return eqx.apply_updates(model, updates), opt_state, loss, aux


@eqx.filter_jit
def _eval_step(model, batch, key, loss_fn, key_needed, has_aux):
    return _call(loss_fn, eqx.nn.inference_mode(model), batch, key, key_needed, has_aux)


def _epoch_means(losses: list, auxes: list, sizes: list, prefix: str) -> dict[str, float]:
    """Sample-weighted means of the per-batch losses and auxiliary values (one device sync)."""
    losses, auxes = jax.device_get((losses, auxes))
    w = np.asarray(sizes, dtype=np.float64)
    out = {f"{prefix}_loss": float(np.dot(np.asarray(losses, dtype=np.float64), w) / w.sum())}
    for name in auxes[0] if auxes else {}:
        values = np.asarray([np.asarray(a[name], dtype=np.float64) for a in auxes])
        out[f"{prefix}_{name}"] = float(np.dot(values, w) / w.sum())
    return out


def _evaluate(model, arrays, n, batch_size, key, loss_fn, key_needed, has_aux) -> dict[str, float]:
    losses, auxes, sizes = [], [], []
    for start in range(0, n, batch_size):
        batch = {k: v[start : start + batch_size] for k, v in arrays.items()}
        loss, aux = _eval_step(model, batch, key, loss_fn, key_needed, has_aux)
        losses.append(loss)
        auxes.append(aux)
        sizes.append(min(batch_size, n - start))
    return _epoch_means(losses, auxes, sizes, "val")


# ---------------------------------------------------------------------------------------
# checkpoints


def read_checkpoint_header(path: str | os.PathLike) -> dict:
    """The JSON header of the training checkpoint at `path`: `settings`, `epoch` (finished
    epochs), `history` (lists of per-epoch values), `best_epoch`, `best_value`.

    **Raises:** `ValueError` naming `path` when it is not a checkpoint or is damaged.
    """
    header = _read_container(path, CHECKPOINT_MAGIC)[0]
    if header.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(path)!r} is corrupt or of an unknown checkpoint format {header.get('format')!r}")
    return header


def _write_checkpoint(path: Path, settings: dict, state: dict) -> None:
    header = {
        "format": CHECKPOINT_FORMAT,
        "settings": settings,
        "epoch": state["epoch"],
        "history": state["history"],
        "best_epoch": state["best_epoch"],
        "best_value": state["best_value"],
    }
    payload = _serialise((state["model"], state["opt_state"], state["best_model"]))
    atomic_write(path, _pack(CHECKPOINT_MAGIC, header, payload))


def _read_checkpoint(path: Path, settings: dict, like: tuple) -> dict:
    header, payload, _ = _read_container(path, CHECKPOINT_MAGIC)
    if header.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(path)!r} is corrupt or of an unknown checkpoint format {header.get('format')!r}")
    diffs = _settings_diff(header.get("settings", {}), settings)
    if diffs:
        raise ValueError(
            f"checkpoint {str(path)!r} was written with other settings ({'; '.join(diffs)}); resume with the "
            "same settings, or pass another checkpoint path (or delete this one) to start afresh"
        )
    model, opt_state, best_model = _deserialise(payload, like, "checkpoint", path)
    return {
        "epoch": int(header["epoch"]),
        "history": {k: [float(x) for x in v] for k, v in header["history"].items()},
        "best_epoch": int(header["best_epoch"]),
        "best_value": header["best_value"],
        "model": model,
        "opt_state": opt_state,
        "best_model": best_model,
    }


# ---------------------------------------------------------------------------------------
# the trainer


def train(
    model: eqx.Module,
    loss_fn: Callable,
    optimizer: optax.GradientTransformation,
    data: Mapping[str, np.ndarray],
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    val_data: Mapping[str, np.ndarray] | None = None,
    val_loss_fn: Callable | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    progress: bool = True,
    key_needed: bool = False,
    has_aux: bool = False,
    keep_best: bool = True,
    drop_last: bool = True,
    settings: Mapping[str, Any] | None = None,
    callback: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    """Train `model` by minibatch descent on `loss_fn`; resumable from `checkpoint`.

    **Arguments:**

    - `model`: the Equinox module to train (its floating array leaves are the parameters).
    - `loss_fn`: `loss_fn(model, batch) -> scalar`, or `loss_fn(model, batch, key)` with
      `key_needed=True` (reparametrisation, dropout). `batch` is a dict like `data` with
      `batch_size` samples. With `has_aux=True` it returns `(loss, {name: scalar})` and
      the per-epoch means of the auxiliary values are recorded too.
    - `optimizer`: an optax `GradientTransformation`; its state is initialised from
      `eqx.filter(model, eqx.is_inexact_array)`.
    - `data`: dict of arrays sharing the leading sample axis (float32 for surrogates).
    - `epochs`: the total number of epochs (a resumed run continues up to it).
    - `batch_size`: samples per step. With `drop_last` (default) the last incomplete batch
      of each shuffled epoch is skipped (one compiled shape).
    - `seed`: non-negative integer; fixes the shuffles and the keys (see the module notes).
    - `val_data`, `val_loss_fn`: validation set and its loss (default `loss_fn`), evaluated
      after every epoch on the whole set in order, with `eqx.nn.inference_mode` on and one
      fixed key.
    - `checkpoint`: file to resume from when it exists and to write every
      `checkpoint_every` epochs, at the end, and when the run stops on an exception (with
      the last finished epoch); `None` for no checkpoints.
    - `progress`: show a tqdm bar over the epochs with the latest losses.
    - `keep_best`: keep (and checkpoint) the model of the best epoch.
    - `settings`: JSON-able dict of what else must match on resume, e.g. the learning rate
      and the model's hyperparameters (the trainer cannot see inside the optimizer).
    - `callback`: `callback(epoch, losses)` after every finished epoch (counted from 1) and
      its checkpoint; it may raise to stop the run.

    **Returns:** a `TrainResult`.

    **Raises:** `ValueError` naming the argument for bad input, naming the differing
    settings when `checkpoint` was written by another run, or when it holds more epochs
    than `epochs`; `FloatingPointError` when a loss becomes NaN or infinite (the
    checkpoint keeps the last finite epoch).

    **Example:**

    ```python
    >>> import jax, jax.numpy as jnp, equinox as eqx, optax, numpy as np
    >>> x = np.linspace(-1, 1, 64, dtype=np.float32)[:, None]
    >>> data = {"x": x, "y": 3 * x - 1}
    >>> model = eqx.nn.Linear(1, 1, key=jax.random.key(0), dtype=jnp.float32)
    >>> def loss(m, batch):
    ...     return jnp.mean((jax.vmap(m)(batch["x"]) - batch["y"]) ** 2)
    >>> r = train(model, loss, optax.adam(0.1), data, epochs=20, batch_size=16, seed=0, progress=False)
    >>> r.history["train_loss"].shape, bool(r.history["train_loss"][-1] < 0.1 * r.history["train_loss"][0])
    ((20,), True)

    ```
    """
    epochs = _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    seed = _check_int("seed", seed, 0)
    checkpoint_every = _check_int("checkpoint_every", checkpoint_every, 1)
    if not isinstance(model, eqx.Module):
        raise TypeError(f"model must be an eqx.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if val_loss_fn is not None and not callable(val_loss_fn):
        raise TypeError(f"val_loss_fn must be callable or None, got {type(val_loss_fn).__name__}")
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(f"optimizer must be an optax.GradientTransformation, got {type(optimizer).__name__}")
    arrays, n = _as_arrays(data, "data")
    val_arrays, n_val = _as_arrays(val_data, "val_data") if val_data is not None else (None, 0)
    if drop_last and batch_size > n:
        raise ValueError(f"batch_size must be <= the {n} samples of data with drop_last=True, got {batch_size}")
    key_needed, has_aux, keep_best, drop_last = bool(key_needed), bool(has_aux), bool(keep_best), bool(drop_last)
    val_loss_fn = loss_fn if val_loss_fn is None else val_loss_fn

    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    run_settings = _jsonable(
        {
            "batch_size": batch_size,
            "seed": seed,
            "key_needed": key_needed,
            "has_aux": has_aux,
            "keep_best": keep_best,
            "drop_last": drop_last,
            "data": _fingerprint(arrays),
            "val_data": _fingerprint(val_arrays),
            "model_class": type(model).__name__,
            "model_leaves": _leaf_spec(model),
            "opt_state_leaves": _leaf_spec(opt_state),
            "initial_model_sha256": hashlib.sha256(_serialise(model)).hexdigest(),
            "user": dict(settings) if settings is not None else {},
        },
        "settings",
    )

    state = {
        "epoch": 0,
        "history": {},
        "best_epoch": 0,
        "best_value": None,
        "model": model,
        "opt_state": opt_state,
        "best_model": model if keep_best else None,
    }
    path = None
    if checkpoint is not None:
        path = Path(checkpoint)
        if path.exists():
            state = _read_checkpoint(path, run_settings, (model, opt_state, model if keep_best else None))
            if state["epoch"] > epochs:
                raise ValueError(
                    f"checkpoint {str(path)!r} holds {state['epoch']} finished epochs, more than epochs={epochs}"
                )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
    resumed_from = state["epoch"]
    saved = state["epoch"]

    base = jax.random.key(seed)
    train_key, val_key = jax.random.fold_in(base, 0), jax.random.fold_in(base, 1)
    steps = n // batch_size if drop_last else -(-n // batch_size)
    bar = tqdm(total=epochs, initial=state["epoch"], disable=not progress, desc="train", unit="epoch", leave=True)
    try:
        for epoch in range(state["epoch"], epochs):
            m, o = state["model"], state["opt_state"]
            order = np.random.default_rng([seed, epoch]).permutation(n)
            keys = jax.random.split(jax.random.fold_in(train_key, epoch), steps) if key_needed else None
            losses, auxes, sizes = [], [], []
            for i in range(steps):
                idx = order[i * batch_size : (i + 1) * batch_size]
                batch = {k: v[idx] for k, v in arrays.items()}
                m, o, loss, aux = _train_step(
                    m, o, batch, None if keys is None else keys[i], loss_fn, optimizer, key_needed, has_aux
                )
                losses.append(loss)
                auxes.append(aux)
                sizes.append(len(idx))
            logs = _epoch_means(losses, auxes, sizes, "train")
            if val_arrays is not None:
                logs.update(_evaluate(m, val_arrays, n_val, batch_size, val_key, val_loss_fn, key_needed, has_aux))
            bad = {k: v for k, v in logs.items() if not np.isfinite(v)}
            if bad:
                raise FloatingPointError(
                    f"training diverged at epoch {epoch + 1}: {bad}; the model of epoch {state['epoch']} is kept"
                    + (f" in checkpoint {str(path)!r}" if path is not None else "")
                    + " (lower the learning rate or check the data)"
                )
            history = {k: list(v) for k, v in state["history"].items()}
            for k, v in logs.items():
                history.setdefault(k, []).append(v)
            value = logs["val_loss" if val_arrays is not None else "train_loss"]
            better = state["best_value"] is None or value < state["best_value"]
            state = {
                "epoch": epoch + 1,
                "history": history,
                "best_epoch": epoch + 1 if better else state["best_epoch"],
                "best_value": value if better else state["best_value"],
                "model": m,
                "opt_state": o,
                "best_model": (m if better else state["best_model"]) if keep_best else None,
            }
            bar.update(1)
            bar.set_postfix({k.replace("_loss", ""): f"{v:.4g}" for k, v in logs.items() if k.endswith("_loss")})
            if path is not None and (state["epoch"] % checkpoint_every == 0 or state["epoch"] == epochs):
                _write_checkpoint(path, run_settings, state)
                saved = state["epoch"]
            if callback is not None:
                callback(state["epoch"], logs)
    except BaseException:
        if path is not None and state["epoch"] > saved:
            try:
                _write_checkpoint(path, run_settings, state)
            except Exception:  # noqa: BLE001 - keep the original error
                pass
        raise
    finally:
        bar.close()

    return TrainResult(
        model=state["model"],
        best_model=state["best_model"],
        best_epoch=state["best_epoch"],
        history={k: np.asarray(v, dtype=np.float64) for k, v in state["history"].items()},
        epochs=state["epoch"],
        resumed_from=resumed_from,
        opt_state=state["opt_state"],
    )


# ---------------------------------------------------------------------------------------
# inference over big arrays


@eqx.filter_jit
def _apply(fn, batch, vmap):
    return jax.vmap(fn)(batch) if vmap else fn(batch)


def predict_batched(fn: Callable, inputs, *, batch_size: int = 256, vmap: bool = True, progress: bool = False):
    """Evaluate `fn` over the leading axis of `inputs` in batches; results as numpy arrays.

    **Arguments:**

    - `fn`: a model or function of one sample (`vmap=True`, the Equinox convention) or of
      a batch (`vmap=False`). Pass `eqx.nn.inference_mode(model)` for models with dropout.
    - `inputs`: an array or a pytree (dict, tuple) of arrays sharing the leading axis.
    - `batch_size`: samples per call. The last batch is padded to the same size (one
      compiled shape) and the padding is dropped from the result.
    - `progress`: show a tqdm bar over the batches.

    **Returns:** the outputs of `fn` for all samples, with the same pytree structure as one
    call's output, as numpy arrays concatenated along the leading axis.

    **Example:**

    ```python
    >>> import numpy as np
    >>> y = predict_batched(lambda x: x**2, np.arange(10.0), batch_size=4)
    >>> y.tolist()
    [0.0, 1.0, 4.0, 9.0, 16.0, 25.0, 36.0, 49.0, 64.0, 81.0]

    ```
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    leaves, treedef = jax.tree_util.tree_flatten(inputs)
    if not leaves:
        raise ValueError("inputs must hold at least one array")
    leaves = [np.asarray(x) if not isinstance(x, jax.Array) else x for x in leaves]
    n = leaves[0].shape[0] if leaves[0].ndim else None
    if n is None or any(x.ndim == 0 or x.shape[0] != n for x in leaves):
        raise ValueError(f"inputs must be arrays sharing the leading axis, got shapes {[x.shape for x in leaves]}")
    if n == 0:
        raise ValueError("inputs has no samples (leading axis of length 0)")
    size = min(batch_size, n)
    outs = []
    for start in tqdm(range(0, n, size), disable=not progress, desc="predict", unit="batch"):
        part = [x[start : start + size] for x in leaves]
        m = part[0].shape[0]
        if m < size:
            part = [
                (jnp if isinstance(x, jax.Array) else np).concatenate([x, x[-1:].repeat(size - m, axis=0)]) for x in part
            ]
        out = _apply(fn, jax.tree_util.tree_unflatten(treedef, part), bool(vmap))
        outs.append(jax.device_get(jax.tree_util.tree_map(lambda y: y[:m], out)))
    return jax.tree_util.tree_map(lambda *ys: np.concatenate([np.asarray(y) for y in ys]), *outs)
