"""The anchor model: latent means (and image statistics) of a structure -> six anchors and a spread.

`AnchorModel` is what the pipeline trains and ships next to the VAE. It wraps an
`Ensemble` of regressors and decides which features it sees (`feature_set`):

- `"latent"`: the VAE latent means only (the paper's input);
- `"latent_stats"`: the latent means and the `image_statistics` of the structure,
  concatenated (the ensemble standardises them with the training statistics);
- `"latent_stats_residual"`: as `"latent_stats"`, and the ensemble predicts the residual
  of a linear model of the image statistics (the ridge baseline, fitted on the same
  training structures): anchors = ridge(statistics) + correction * ensemble(latent,
  statistics), with the per-anchor weight `correction` in [0, 1] chosen by
  cross-validation (0: the ridge alone);
- `"stats_residual"`: as `"latent_stats_residual"` with the image statistics alone as the
  ensemble's input (the latent code is not read: on our data it adds noise, see the
  pipeline's cross-validation);
- `"latent_stats_blend"`: as `"latent_stats"`, blended with the ridge fit per anchor:
  anchors = ridge + correction * (ensemble - ridge), `correction` chosen by
  cross-validation (stacking: the two models' errors are partly independent).

The predicted spread is the standard deviation over the members times `spread_scale`, a
per-anchor factor calibrated by cross-validation on the training structures (1 when not
calibrated).

`anchor_features(vae, kx)` computes the inputs and `predict_anchors(vae, model, kx)` runs
everything (the same path the public `invdesign_surrogates.hysteresis.predict` takes).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._training import predict_batched
from ._baseline import STATISTICS, Baseline, image_statistics
from ._regressor import ANCHORS, HEAD_WIDTHS, Ensemble, _positive_int
from ._vae import DTYPE, VAE, _check_kx

__all__ = ["FEATURE_SETS", "AnchorModel", "anchor_features", "predict_anchors", "linear_from_baseline"]

#: The regressor inputs the pipeline can choose between (by cross-validation).
FEATURE_SETS = ("latent", "latent_stats", "latent_stats_residual", "latent_stats_blend", "stats_residual")

#: The feature sets whose ensemble predicts the residual of the linear model of the statistics.
RESIDUAL_SETS = ("latent_stats_residual", "stats_residual")

#: The feature sets with a linear part (the ridge fit of the statistics).
LINEAR_SETS = ("latent_stats_residual", "latent_stats_blend", "stats_residual")


def _vector(name, value, size, default):
    if value is None:
        return jnp.asarray(np.full((size,), default, np.float32))
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (size,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a finite array of shape ({size},), got shape {arr.shape}")
    return jnp.asarray(arr.astype(np.float32))


class AnchorModel(eqx.Module):
    """Ensemble regressor of the six anchors from latent means and image statistics.

    **Arguments:**

    - `n_latent`: the VAE latent size.
    - `feature_set`: one of `FEATURE_SETS` (see the module notes).
    - `n_members`: members of the ensemble (>= 1).
    - `key`: a `jax.random` key (member `i` from `split(key, n_members)[i]`).
    - `shared_widths`, `head_widths`: the members' layout (see `Regressor`).
    - `n_stats`: number of image statistics (default `len(STATISTICS)`).
    - `stats_mean`, `stats_scale`, `linear_w`, `linear_b`: the linear model of the
      statistics (used by `"latent_stats_residual"` and `"latent_stats_blend"`):
      `((s - stats_mean) / stats_scale) @ linear_w + linear_b`; default zero.
    - `spread_scale`: per-anchor factor on the members' standard deviation (default 1).
    - `correction`: per-anchor weight of the ensemble in the residual and blend feature
      sets (default 1; 0 leaves that anchor to the linear part).

    Calling the model on one structure's `(latent, stats)` gives `(mean, spread)`, each
    `(6,)` in the paper's units (M/Ms, H/H_A).

    ```python
    >>> m = AnchorModel(4, "latent_stats", 3, key=jax.random.key(0), shared_widths=(8,), head_widths=(2,))
    >>> m.hyperparameters["n_members"], m.ensemble.members.in_features
    (3, 36)
    >>> mean, spread = m(np.zeros(4), np.zeros(m.n_stats))
    >>> mean.shape, spread.shape
    ((6,), (6,))

    ```
    """

    ensemble: Ensemble
    stats_mean: Float[Array, " n_stats"]
    stats_scale: Float[Array, " n_stats"]
    linear_w: Float[Array, "n_stats n_targets"]
    linear_b: Float[Array, " n_targets"]
    spread_scale: Float[Array, " n_targets"]
    correction: Float[Array, " n_targets"]
    n_latent: int = eqx.field(static=True)
    n_stats: int = eqx.field(static=True)
    feature_set: str = eqx.field(static=True)

    def __init__(
        self,
        n_latent: int,
        feature_set: str,
        n_members: int,
        *,
        key: PRNGKeyArray,
        shared_widths=(256, 256, 128, 64),
        head_widths=HEAD_WIDTHS,
        n_stats: int = len(STATISTICS),
        stats_mean=None,
        stats_scale=None,
        linear_w=None,
        linear_b=None,
        spread_scale=None,
        correction=None,
    ):
        if feature_set not in FEATURE_SETS:
            raise ValueError(f"feature_set must be one of {FEATURE_SETS}, got {feature_set!r}")
        self.n_latent = _positive_int("n_latent", n_latent)
        self.n_stats = _positive_int("n_stats", n_stats)
        self.feature_set = feature_set
        n_in = {"latent": self.n_latent, "stats_residual": self.n_stats}.get(feature_set, self.n_latent + self.n_stats)
        self.ensemble = Ensemble(n_in, n_members, key=key, shared_widths=shared_widths, head_widths=head_widths)
        t = len(ANCHORS)
        self.stats_mean = _vector("stats_mean", stats_mean, self.n_stats, 0.0)
        self.stats_scale = _vector("stats_scale", stats_scale, self.n_stats, 1.0)
        if np.any(np.asarray(self.stats_scale) <= 0):
            raise ValueError("stats_scale must be > 0")
        if linear_w is None:
            self.linear_w = jnp.asarray(np.zeros((self.n_stats, t), np.float32))
        else:
            w = np.asarray(linear_w, dtype=np.float64)
            if w.shape != (self.n_stats, t) or not np.all(np.isfinite(w)):
                raise ValueError(f"linear_w must be a finite array of shape ({self.n_stats}, {t}), got {w.shape}")
            self.linear_w = jnp.asarray(w.astype(np.float32))
        self.linear_b = _vector("linear_b", linear_b, t, 0.0)
        self.spread_scale = _vector("spread_scale", spread_scale, t, 1.0)
        self.correction = _vector("correction", correction, t, 1.0)

    @property
    def hyperparameters(self) -> dict:
        """Constructor arguments that fix the skeleton (JSON-ready)."""
        hp = self.ensemble.hyperparameters
        return {
            "n_latent": self.n_latent,
            "feature_set": self.feature_set,
            "n_members": hp["n_members"],
            "shared_widths": hp["shared_widths"],
            "head_widths": hp["head_widths"],
            "n_stats": self.n_stats,
        }

    @property
    def uses_latent(self) -> bool:
        """Whether the model reads the latent code (every feature set but `"stats_residual"`)."""
        return self.feature_set != "stats_residual"

    @property
    def uses_statistics(self) -> bool:
        """Whether the model reads the image statistics (every feature set but `"latent"`)."""
        return self.feature_set != "latent"

    def inputs(self, latent, stats):
        """The ensemble's input vector of one structure."""
        latent = jnp.asarray(latent, DTYPE)
        if self.feature_set == "latent":
            return latent
        if self.feature_set == "stats_residual":
            return jnp.asarray(stats, DTYPE)
        return jnp.concatenate([latent, jnp.asarray(stats, DTYPE)])

    def linear(self, stats):
        """The linear part of one structure (zero unless the feature set is one of `LINEAR_SETS`)."""
        if self.feature_set not in LINEAR_SETS:
            return jnp.zeros(self.linear_b.shape, DTYPE)
        z = (jnp.asarray(stats, DTYPE) - self.stats_mean) / self.stats_scale
        return z @ self.linear_w + self.linear_b

    def __call__(self, latent: Float[Array, " n_latent"], stats: Float[Array, " n_stats"]):
        """`(mean, spread)` of one structure, each `(6,)` in the paper's units."""
        mean, spread = self.ensemble(self.inputs(latent, stats))
        if self.feature_set in RESIDUAL_SETS:
            mean = self.linear(stats) + self.correction * mean
        elif self.feature_set == "latent_stats_blend":
            lin = self.linear(stats)
            mean = lin + self.correction * (mean - lin)
        return mean, spread * self.spread_scale

    def batch(self, inputs):
        """`(mean, spread)` of a batch `inputs = (latent (n, n_latent), stats (n, n_stats))`."""
        latent, stats = inputs
        return jax.vmap(self)(latent, stats)


def linear_from_baseline(baseline: Baseline) -> dict:
    """The linear (non-quadratic) `Baseline` as `AnchorModel` arguments (`stats_mean`, ...).

    `Baseline.predict(x) = ((x - mu) / sd - pm) / ps @ coef + intercept`, i.e.
    `(x - (mu + pm sd)) / (sd ps) @ coef + intercept`.
    """
    if baseline.quadratic:
        raise ValueError("baseline must be linear (quadratic=False) to become the linear part of an AnchorModel")
    return {
        "stats_mean": baseline.x_mean + baseline.p_mean * baseline.x_std,
        "stats_scale": baseline.x_std * baseline.p_std,
        "linear_w": baseline.coef,
        "linear_b": baseline.intercept,
    }


def anchor_features(vae: VAE, kx, *, statistics: bool = True, latent: bool = True, batch_size: int = 256,
                    name: str = "kx"):
    """Latent means `(n, latent)` and image statistics `(n, n_stats)` (float32) of structures `kx` `(n, grid, grid)`.

    With `statistics=False` the statistics are zeros (not computed), with `latent=False`
    the latent means. Raises ValueError naming `name` for a wrong shape, NaN or values
    outside [-1, 1].
    """
    arr = _check_kx(vae, kx, name)
    if arr.ndim != 3:
        raise ValueError(f"{name} must have shape (n, {vae.grid}, {vae.grid}), got {tuple(arr.shape)}")
    if latent:
        codes, _ = predict_batched(vae.encoder, arr, batch_size=batch_size)
    else:
        codes = np.zeros((arr.shape[0], vae.latent), np.float32)
    if statistics:
        stats = image_statistics(np.asarray(arr, dtype=np.float64))[0].astype(np.float32)
    else:
        stats = np.zeros((arr.shape[0], len(STATISTICS)), np.float32)
    return np.asarray(codes, np.float32), stats


def predict_anchors(vae: VAE, model: AnchorModel, kx, *, batch_size: int = 256, name: str = "kx"):
    """`(mean, spread)` of the anchors of structures `kx` `(n, grid, grid)`, each `(n, 6)` float32 numpy."""
    latent, stats = anchor_features(vae, kx, statistics=model.uses_statistics, latent=model.uses_latent,
                                    batch_size=batch_size, name=name)
    mean, spread = predict_batched(model.batch, (latent, stats), batch_size=batch_size, vmap=False)
    return np.asarray(mean), np.asarray(spread)
