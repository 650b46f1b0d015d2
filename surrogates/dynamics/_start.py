"""Start codes as a function of the field, so that a rollout is a function of the field alone.

A rollout starts from the encoded solver states at 0.01-0.04 ns (`rollout`). A design search
over the field would need the solver for those four states at every trial field, and the
gradient through it. Over 0.04 ns the states move little and smoothly with the field, so
`StartFit` replaces them by a quadratic least-squares fit of the training fields' encoded
start codes in the field:

    c0(b) = sum_k coef_k phi_k(u),   u = (b - centre) / unit,
    phi = (1, u_x, u_y, u_x^2, u_x u_y, u_y^2)

(`centre` and `unit` the mean and the largest standard deviation of the training fields'
components, so the features are O(1)). `fit_start` fits it in float64 from the codes of a
training run (`latent.nc`); the pipeline stores it as `start.eqx` and reports the
validation fields' error. It is a differentiable JAX function of the field.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._nn import DTYPE, _positive_int

__all__ = ["StartFit", "fit_start"]

N_FEATURES = 6


def _features(u, xp=jnp):
    ux, uy = u[..., 0], u[..., 1]
    return xp.stack([xp.ones_like(ux), ux, uy, ux * ux, ux * uy, uy * uy], axis=-1)


class StartFit(eqx.Module):
    """Quadratic fit of the `n_past` start codes in the field (see the module notes).

    `StartFit(n_past, latent)` is a zero skeleton (for `load_model`); `fit_start` fits one.
    Calling it with a field `(..., 2)` (tesla) returns codes `(..., n_past, latent)`.
    """

    coef: Float[Array, "6 n_past latent"]
    centre: Float[Array, " 2"]
    unit: Float[Array, ""]

    def __init__(self, n_past: int, latent: int, *, coef=None, centre=None, unit=None):
        n_past, latent = _positive_int("n_past", n_past), _positive_int("latent", latent)
        self.coef = jnp.zeros((N_FEATURES, n_past, latent), DTYPE) if coef is None else jnp.asarray(coef, DTYPE)
        self.centre = jnp.zeros(2, DTYPE) if centre is None else jnp.asarray(centre, DTYPE)
        self.unit = jnp.asarray(1.0 if unit is None else unit, DTYPE)
        if self.coef.shape != (N_FEATURES, n_past, latent) or self.centre.shape != (2,) or self.unit.shape != ():
            raise ValueError(f"StartFit arrays must have shapes coef ({N_FEATURES}, {n_past}, {latent}), centre (2,), "
                             f"unit (), got {self.coef.shape}, {self.centre.shape}, {self.unit.shape}")

    @property
    def hyperparameters(self) -> dict:
        return {"n_past": int(self.coef.shape[1]), "latent": int(self.coef.shape[2])}

    def __call__(self, field: Float[ArrayLike, "... 2"]) -> Float[Array, "... n_past latent"]:
        b = jnp.asarray(field, DTYPE)[..., :2]
        phi = _features((b - self.centre) / self.unit)
        return jnp.einsum("...k,kpl->...pl", phi, self.coef)


def fit_start(codes: Float[ArrayLike, "n n_past latent"], fields: Float[ArrayLike, "n 2"]) -> StartFit:
    """Least-squares `StartFit` of start codes `(n, n_past, latent)` on fields `(n, 2)` (tesla).

    **Raises:** ValueError naming the argument for mismatched shapes, fewer fields than the
    six features, or non-finite values.
    """
    c = np.asarray(codes, dtype=np.float64)
    b = np.asarray(fields, dtype=np.float64)
    if c.ndim != 3:
        raise ValueError(f"codes must have shape (n, n_past, latent), got {c.shape}")
    if b.ndim != 2 or b.shape[1] < 2 or b.shape[0] != c.shape[0]:
        raise ValueError(f"fields must have shape ({c.shape[0]}, 2), got {b.shape}")
    if c.shape[0] < N_FEATURES:
        raise ValueError(f"codes: at least {N_FEATURES} fields are needed for the quadratic fit, got {c.shape[0]}")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(b))):
        raise ValueError("codes and fields must be finite")
    b = b[:, :2]
    centre = b.mean(axis=0)
    unit = float(max(b.std(axis=0).max(), 1e-12))
    phi = _features((b - centre) / unit, np)
    coef, *_ = np.linalg.lstsq(phi, c.reshape(len(c), -1), rcond=None)
    return StartFit(c.shape[1], c.shape[2], coef=coef.reshape(N_FEATURES, *c.shape[1:]), centre=centre, unit=unit)
