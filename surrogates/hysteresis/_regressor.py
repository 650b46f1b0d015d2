"""Multi-target regressor of the six anchor points (Kovacs et al., Table 2) and ensembles.

A parameter-sharing network: shared dense layers 512-1024-512-256-128-64 (elu), then one
head per anchor 32-16-8-4-2 (elu) and a linear output of size 1. With an input of size 512
this is exactly Table 2 (1 502 006 trainable parameters).

The input is a feature vector (the VAE latent means, optionally concatenated with other
features), the outputs are the anchors `(M1, Mr, Hk90, Hk80, Hk70, Hc)` in the paper's
units: M / Ms and H / H_A (signed: the fields are negative). The network itself works on
standardised inputs and targets: the module keeps `x_mean, x_std` (inputs) and
`y_mean, y_std` (targets) as arrays that are not trained: they pass through
`jax.lax.stop_gradient` (zero gradient) and `trainable_filter` marks them False for
`eqx.partition`. Set them from the training split with `with_statistics`.

Loss (`regressor_loss`): the mean squared error on standardised targets by default, as in
the paper's training (its eq. 9; it reports the mean absolute error). Standardising weighs
the six anchors equally although M1 varies over ~0.08 Ms and the fields over ~0.6 H_A;
the squared error has smooth gradients near zero residual, which suits Adam/Nadam without
a learning-rate decay. `metric="mae"` trains on the absolute error instead (the reported
metric; more robust to the few curves with an outlying knee field).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from invdesign._validate import is_concrete

from ._vae import DTYPE, _build, _positive_int

__all__ = [
    "ANCHORS",
    "Regressor",
    "Ensemble",
    "predict",
    "predict_ensemble",
    "regressor_loss",
    "ensemble_loss",
    "with_statistics",
    "trainable_filter",
    "count_parameters",
    "paper_units",
]

#: The six anchor points, in the order of the regressor outputs (and the dataset's `anchor`).
ANCHORS = ("M1", "Mr", "Hk90", "Hk80", "Hk70", "Hc")

SHARED_WIDTHS = (512, 1024, 512, 256, 128, 64)
HEAD_WIDTHS = (32, 16, 8, 4, 2)


def _widths(name, value) -> tuple[int, ...]:
    try:
        widths = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be a non-empty sequence of ints >= 1, got {value!r}") from None
    if not widths:
        raise ValueError(f"{name} must be a non-empty sequence of ints >= 1, got an empty sequence")
    return tuple(_positive_int(name, w) for w in widths)


def _mlp(sizes, key):
    keys = jax.random.split(key, len(sizes) - 1)
    return tuple(eqx.nn.Linear(a, b, key=k, dtype=DTYPE) for a, b, k in zip(sizes[:-1], sizes[1:], keys))


def _layers(in_features, shared_widths, head_widths, n_targets, *, key):
    k_shared, k_heads = jax.random.split(key)
    shared = _mlp((in_features,) + shared_widths, k_shared)
    head_sizes = (shared_widths[-1],) + head_widths + (1,)
    heads = tuple(_mlp(head_sizes, k) for k in jax.random.split(k_heads, n_targets))
    return shared, heads


def _stat(name, value, size, default):
    if value is None:
        return jnp.asarray(np.full((size,), default, np.float32))
    if not is_concrete(value):
        if value.shape != (size,):
            raise ValueError(f"{name} must have shape ({size},), got {tuple(value.shape)}")
        return jnp.asarray(value, DTYPE)
    arr = np.asarray(value, dtype=float)
    if arr.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    if name.endswith("std") and np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0 (allowed range: (0, inf)), got min {arr.min()}")
    return jnp.asarray(arr.astype(np.float32))  # converted on the host: no compilation


class Regressor(eqx.Module):
    """Parameter-sharing multi-target regressor (Table 2): features -> six anchors.

    **Arguments:**

    - `in_features`: length of the input feature vector (the paper: 512 latent means).
    - `key`: a `jax.random` key for the initial weights.
    - `shared_widths`: widths of the shared elu layers (default 512-1024-512-256-128-64).
    - `head_widths`: widths of each head's elu layers before its linear output of size 1
      (default 32-16-8-4-2).
    - `n_targets`: number of heads/outputs (default 6, the `ANCHORS`).
    - `x_mean`, `x_std`, `y_mean`, `y_std`: standardisation of inputs `(in_features,)` and
      targets `(n_targets,)` (default 0 and 1); usually set with `with_statistics`.

    Calling the module on one feature vector gives the anchors in the paper's units
    (`predict` batches). `hyperparameters` holds the JSON-ready constructor arguments
    (the statistics are arrays: they travel with the weights).

    ```python
    >>> reg = Regressor(8, key=jax.random.key(0))
    >>> len(reg.heads), reg(np.zeros(8)).shape, predict(reg, np.zeros((5, 8))).dtype
    (6, (6,), dtype('float32'))
    >>> count_parameters(Regressor(512, key=jax.random.key(0)))  # Table 2
    1502006

    ```
    """

    shared: tuple[eqx.nn.Linear, ...]
    heads: tuple[tuple[eqx.nn.Linear, ...], ...]
    x_mean: Float[Array, " in_features"]
    x_std: Float[Array, " in_features"]
    y_mean: Float[Array, " n_targets"]
    y_std: Float[Array, " n_targets"]
    in_features: int = eqx.field(static=True)
    shared_widths: tuple[int, ...] = eqx.field(static=True)
    head_widths: tuple[int, ...] = eqx.field(static=True)
    n_targets: int = eqx.field(static=True)

    def __init__(
        self,
        in_features: int,
        *,
        key: PRNGKeyArray,
        shared_widths=SHARED_WIDTHS,
        head_widths=HEAD_WIDTHS,
        n_targets: int = len(ANCHORS),
        x_mean=None,
        x_std=None,
        y_mean=None,
        y_std=None,
    ):
        self.in_features = _positive_int("in_features", in_features)
        self.shared_widths = _widths("shared_widths", shared_widths)
        self.head_widths = _widths("head_widths", head_widths)
        self.n_targets = _positive_int("n_targets", n_targets)
        layout = (self.in_features, self.shared_widths, self.head_widths, self.n_targets)
        self.shared, self.heads = _build(_layers, *layout, key=key)
        self.x_mean = _stat("x_mean", x_mean, self.in_features, 0.0)
        self.x_std = _stat("x_std", x_std, self.in_features, 1.0)
        self.y_mean = _stat("y_mean", y_mean, self.n_targets, 0.0)
        self.y_std = _stat("y_std", y_std, self.n_targets, 1.0)

    @property
    def hyperparameters(self) -> dict:
        """Constructor arguments (JSON-ready: ints and lists)."""
        return {
            "in_features": self.in_features,
            "shared_widths": list(self.shared_widths),
            "head_widths": list(self.head_widths),
            "n_targets": self.n_targets,
        }

    def standardised(self, features: Float[Array, " in_features"]) -> Float[Array, " n_targets"]:
        """The network output for one feature vector: standardised targets."""
        x_mean, x_std = jax.lax.stop_gradient((self.x_mean, self.x_std))
        h = (jnp.asarray(features, DTYPE) - x_mean) / x_std
        for layer in self.shared:
            h = jax.nn.elu(layer(h))
        outs = []
        for head in self.heads:
            o = h
            for layer in head[:-1]:
                o = jax.nn.elu(layer(o))
            outs.append(head[-1](o)[0])
        return jnp.stack(outs)

    def __call__(self, features: Float[Array, " in_features"]) -> Float[Array, " n_targets"]:
        """Anchors of one feature vector in the paper's units (M/Ms, H/H_A)."""
        y_mean, y_std = jax.lax.stop_gradient((self.y_mean, self.y_std))
        return self.standardised(features) * y_std + y_mean


class Ensemble(eqx.Module):
    """`n_members` regressors of the same layout with independent initial weights, stacked.

    Every array of `members` (one `Regressor`) has a leading axis of size `n_members`; the
    members run in one `eqx.filter_vmap`. Calling the ensemble on one feature vector gives
    `(mean, spread)`: the mean over the members and their standard deviation (population
    std, `ddof=0`), each `(n_targets,)` in the paper's units.

    **Arguments:**

    - `in_features`: length of the input feature vector.
    - `n_members`: number of regressors (>= 1; default 5).
    - `key`: a `jax.random` key; member `i` is initialised from `split(key, n_members)[i]`.
    - the other keyword arguments are those of `Regressor` (shared by all members).

    ```python
    >>> ens = Ensemble(8, n_members=3, key=jax.random.key(0))
    >>> mean, spread = predict_ensemble(ens, np.zeros((5, 8)))
    >>> ens.hyperparameters["n_members"], mean.shape, spread.shape, bool(np.all(spread > 0))
    (3, (5, 6), (5, 6), True)

    ```
    """

    members: Regressor
    n_members: int = eqx.field(static=True)

    def __init__(self, in_features: int, n_members: int = 5, *, key: PRNGKeyArray, **regressor_kwargs):
        self.n_members = _positive_int("n_members", n_members)
        keys = jax.random.split(key, self.n_members)
        if isinstance(keys, jax.core.Tracer):
            self.members = eqx.filter_vmap(lambda k: Regressor(in_features, key=k, **regressor_kwargs))(keys)
        else:  # member by member on the host (no compilation), then stacked
            members = [Regressor(in_features, key=k, **regressor_kwargs) for k in keys]
            arrays, static = eqx.partition(members, eqx.is_array)
            stacked = jax.tree_util.tree_map(lambda *xs: jnp.asarray(np.stack([np.asarray(x) for x in xs])), *arrays)
            self.members = eqx.combine(stacked, static[0])

    @property
    def hyperparameters(self) -> dict:
        """Constructor arguments (JSON-ready): `n_members` plus those of the members."""
        hp = dict(self.members.hyperparameters)
        return {"in_features": hp.pop("in_features"), "n_members": self.n_members, **hp}

    def member_predictions(self, features: Float[Array, " in_features"]) -> Float[Array, "n_members n_targets"]:
        """Each member's anchors for one feature vector (paper's units)."""
        return eqx.filter_vmap(lambda m: m(features))(self.members)

    def __call__(self, features: Float[Array, " in_features"]):
        """`(mean, spread)` over the members for one feature vector, each `(n_targets,)`."""
        p = self.member_predictions(features)
        return jnp.mean(p, axis=0), jnp.std(p - p[:1], axis=0)  # shifted: exactly 0 for equal members


# ----------------------------------------------------------------------------- helpers


def _check_features(model, features, name="features"):
    arr = features if isinstance(features, jax.core.Tracer) else np.asarray(features)
    n = model.members.in_features if isinstance(model, Ensemble) else model.in_features
    if arr.ndim < 1 or arr.shape[-1] != n:
        raise ValueError(f"{name} must have shape (..., {n}) to match the model's in_features, got {tuple(arr.shape)}")
    if is_concrete(arr):
        if arr.dtype.kind not in "fiu":
            raise ValueError(f"{name} must be a real array, got dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite (it has NaN or inf entries)")
    return jnp.asarray(arr, DTYPE)


def _batched(fn, x):
    lead = x.shape[:-1]
    out = jax.vmap(fn)(x.reshape(-1, x.shape[-1]))
    return jax.tree_util.tree_map(lambda o: o.reshape(lead + o.shape[1:]), out)


@eqx.filter_jit
def _predict(model, x):
    return _batched(model, x)


def predict(model: Regressor, features: ArrayLike) -> Float[Array, "*batch n_targets"]:
    """Anchors (paper's units, float32) for features of shape `(..., in_features)`.

    **Arguments:**

    - `model`: a `Regressor`.
    - `features`: finite feature vectors, any number of leading batch axes.

    **Returns:** shape `(..., n_targets)`: `M1, Mr` in Ms and `Hk90, Hk80, Hk70, Hc` in H_A.
    """
    if not isinstance(model, Regressor):
        raise ValueError(f"model must be a Regressor (use predict_ensemble for an Ensemble), got {type(model).__name__}")
    return _predict(model, _check_features(model, features))


def predict_ensemble(model: Ensemble, features: ArrayLike):
    """`(mean, spread)` of an `Ensemble` for features `(..., in_features)`, each `(..., n_targets)`."""
    if not isinstance(model, Ensemble):
        raise ValueError(f"model must be an Ensemble, got {type(model).__name__}")
    return _predict(model, _check_features(model, features))


def paper_units(anchors: ArrayLike, H_A: float) -> np.ndarray:
    """Anchors `(..., 6)` as stored in the dataset (M/Ms and A/m) -> the paper's units (M/Ms, H/H_A).

    ```python
    >>> paper_units([[0.99, 0.9, -2e6, -2.5e6, -3e6, -4e6]], 5e6)
    array([[ 0.99,  0.9 , -0.4 , -0.5 , -0.6 , -0.8 ]])

    ```
    """
    a = np.array(anchors, dtype=float)
    if a.ndim < 1 or a.shape[-1] != len(ANCHORS):
        raise ValueError(f"anchors must have shape (..., {len(ANCHORS)}) ordered as {ANCHORS}, got {a.shape}")
    if not (np.isfinite(H_A) and H_A > 0):
        raise ValueError(f"H_A must be finite and > 0 (A/m), got {H_A!r}")
    a[..., 2:] /= H_A
    return a


def with_statistics(model, features: ArrayLike, targets: ArrayLike):
    """`model` (a `Regressor` or `Ensemble`) with its standardisation set from training data.

    Means and standard deviations per column (NaN targets ignored); a column with a
    standard deviation below 1e-6 keeps std 1 (it is only centred). Use the training split
    only.

    **Arguments:**

    - `features`: shape `(n, in_features)`, finite.
    - `targets`: shape `(n, n_targets)` in the paper's units (`paper_units`).
    """
    reg = model.members if isinstance(model, Ensemble) else model
    if not isinstance(reg, Regressor):
        raise ValueError(f"model must be a Regressor or an Ensemble, got {type(model).__name__}")
    _check_features(reg, features)
    x = np.asarray(features, dtype=float)
    y = np.asarray(targets, dtype=float)
    if x.ndim != 2 or y.shape != (x.shape[0], reg.n_targets):
        raise ValueError(f"features (n, {reg.in_features}) and targets (n, {reg.n_targets}) must have matching n, got {x.shape} and {y.shape}")
    if np.any(np.isinf(y)) or np.any(np.all(np.isnan(y), axis=0)):
        raise ValueError("targets must be finite (NaN marks a missing value; every column needs at least one)")

    def std(a, axis):
        s = np.nanstd(a, axis=axis)
        return np.where(s < 1e-6, 1.0, s)

    stats = [np.mean(x, 0), std(x, 0), np.nanmean(y, 0), std(y, 0)]
    stats = tuple(jnp.asarray(np.broadcast_to(s.astype(np.float32), leaf.shape)) for s, leaf in zip(stats, _stat_leaves(model)))
    return eqx.tree_at(_stat_leaves, model, stats)


def _stat_leaves(model):
    m = model.members if isinstance(model, Ensemble) else model
    return (m.x_mean, m.x_std, m.y_mean, m.y_std)


def _is_param(x) -> bool:
    if isinstance(x, jax.ShapeDtypeStruct):
        return jnp.issubdtype(x.dtype, jnp.inexact)
    return eqx.is_inexact_array(x)


def trainable_filter(model):
    """Filter spec (a pytree of bools like `model`) of the trainable arrays, for `eqx.partition`.

    Every inexact array is trainable except the standardisation statistics of a
    `Regressor` / `Ensemble` (which also get zero gradient through `stop_gradient`).

    ```python
    >>> reg = Regressor(4, key=jax.random.key(0), shared_widths=(8,), head_widths=(2,))
    >>> params, static = eqx.partition(reg, trainable_filter(reg))
    >>> params.x_mean is None, params.shared[0].weight.shape
    (True, (8, 4))

    ```
    """
    spec = jax.tree_util.tree_map(_is_param, model)
    if isinstance(model, (Regressor, Ensemble)):
        spec = eqx.tree_at(_stat_leaves, spec, (False,) * 4)
    return spec


def count_parameters(model) -> int:
    """Number of trainable scalars of a model (also of an `eqx.filter_eval_shape` skeleton)."""
    spec = trainable_filter(model)
    leaves = jax.tree_util.tree_leaves(eqx.filter(model, spec))
    return int(sum(np.prod(leaf.shape, dtype=np.int64) for leaf in leaves))


# ----------------------------------------------------------------------------- losses


def _check_batch(model, batch):
    if not isinstance(batch, dict) or "features" not in batch or "targets" not in batch:
        raise ValueError("batch must be a dict with keys 'features' (n, in_features) and 'targets' (n, n_targets) in the paper's units")
    x = _check_features(model, batch["features"], "batch['features']")
    y = jnp.asarray(batch["targets"], DTYPE)
    reg = model.members if isinstance(model, Ensemble) else model
    if x.ndim != 2 or y.shape != (x.shape[0], reg.n_targets):
        raise ValueError(f"batch['features'] (n, {reg.in_features}) and batch['targets'] (n, {reg.n_targets}) must have matching n, got {x.shape} and {y.shape}")
    return x, y


def _member_loss(model: Regressor, x, y, metric):
    y_mean, y_std = jax.lax.stop_gradient((model.y_mean, model.y_std))
    pred = jax.vmap(model.standardised)(x)
    ok = jnp.isfinite(y)
    target = (jnp.where(ok, y, y_mean) - y_mean) / y_std  # NaN = missing target: masked out
    err = pred - target
    per = err**2 if metric == "mse" else jnp.abs(err)
    return jnp.sum(jnp.where(ok, per, 0.0)) / jnp.maximum(jnp.sum(ok), 1)


def _check_metric(metric):
    if metric not in ("mse", "mae"):
        raise ValueError(f"metric must be 'mse' or 'mae', got {metric!r}")


def regressor_loss(model: Regressor, batch: dict, key: PRNGKeyArray | None = None, *, metric: str = "mse") -> Float[Array, ""]:
    """Mean squared (`metric="mse"`, default) or absolute (`"mae"`) error on standardised targets.

    **Arguments:**

    - `model`: a `Regressor`.
    - `batch`: `{"features": (n, in_features), "targets": (n, n_targets)}`, targets in the
      paper's units; NaN targets are missing values and left out of the mean.
    - `key`: unused (the generic signature `loss(model, batch, key)`).
    - `metric`: `"mse"` or `"mae"` (bind with `functools.partial`).

    **Returns:** a float32 scalar: the mean over samples and targets.

    ```python
    >>> reg = Regressor(3, key=jax.random.key(0), shared_widths=(8,), head_widths=(2,))
    >>> batch = {"features": np.ones((4, 3)), "targets": np.zeros((4, 6))}
    >>> loss = regressor_loss(reg, batch, None)
    >>> loss.dtype, bool(jnp.allclose(loss, jnp.mean(predict(reg, batch["features"]) ** 2)))
    (dtype('float32'), True)

    ```
    """
    _check_metric(metric)
    if not isinstance(model, Regressor):
        raise ValueError(f"model must be a Regressor (use ensemble_loss for an Ensemble), got {type(model).__name__}")
    x, y = _check_batch(model, batch)
    return _member_loss(model, x, y, metric)


def ensemble_loss(model: Ensemble, batch: dict, key: PRNGKeyArray | None = None, *, metric: str = "mse") -> Float[Array, ""]:
    """Mean over the members of `regressor_loss` on the same batch.

    The members share no parameters, so each one's gradient is its own loss's gradient
    divided by `n_members` (a constant scale that Adam/Nadam updates do not see).
    """
    _check_metric(metric)
    if not isinstance(model, Ensemble):
        raise ValueError(f"model must be an Ensemble, got {type(model).__name__}")
    x, y = _check_batch(model, batch)
    losses = eqx.filter_vmap(lambda m: _member_loss(m, x, y, metric))(model.members)
    return jnp.mean(losses)
