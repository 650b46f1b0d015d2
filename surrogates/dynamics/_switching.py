"""<m>(t) as a differentiable function of the applied field alone, for switching designs.

`SwitchingModel(weights)` holds a training run's autoencoder, stepper and start-code fit
(`start.eqx`, `StartFit`): for a field `b` (tesla, `(..., 2)`) the start codes at
0.01-0.04 ns are `start(b)`, the stepper continues them, and the decoded states (normalised
cell by cell) give <m>(t) every 10 ps from 0.01 ns. Everything is one JAX function of `b`:
`jit`, `grad` and `vmap` work through it (populations of a genetic search are one batch).

Unlike `rollout`, which starts from the solver's own states, the start codes here are a fit
over the training fields; the pipeline's evaluation reports what that costs on held-out
fields (`fitstart_rollout` beside `ae_rollout`).

Switching. `<m_x>` of SP4-like reversal falls from about +1 towards -1. The switching time
`t_s` is the first time `<m_x>` reaches `threshold` (default -0.9), linearly interpolated
between stored steps (the last time when it never does: callers see `reached = 0`).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._weights import load_model
from ._rollout import DT, FIRST, N_PAST, SHIPPED, SHIPPED_SHA256, _load, cell_mean
from ._start import StartFit
from ._stepper import _rollout

__all__ = ["SwitchingModel", "switching_time"]


def switching_time(mx, times, threshold: float = -0.9):
    """`(t_s, reached)`: first time `mx` (..., n_times) reaches `threshold`, interpolated.

    Differentiable in `mx` (through the interpolation weights) almost everywhere. When it is
    never reached, `t_s = times[-1]` and `reached = False`.
    """
    mx = jnp.asarray(mx)
    times = jnp.asarray(times, mx.dtype)
    below = mx <= threshold
    reached = jnp.any(below, axis=-1)
    k = jnp.argmax(below, axis=-1)  # first index at or below the threshold
    km = jnp.maximum(k - 1, 0)
    a = jnp.take_along_axis(mx, km[..., None], -1)[..., 0]
    b = jnp.take_along_axis(mx, k[..., None], -1)[..., 0]
    w = jnp.where((k > 0) & (a != b), (a - threshold) / jnp.where(a != b, a - b, 1.0), 1.0)
    t = times[km] + jnp.clip(w, 0.0, 1.0) * (times[k] - times[km])
    return jnp.where(reached, t, times[-1]), reached


@functools.lru_cache(maxsize=2)
def _load_start(folder: str, pinned: bool) -> StartFit:
    path = Path(folder) / "start.eqx"
    if not path.exists():
        raise FileNotFoundError(f"weights: {str(path)!r} does not exist (the start-code fit of a training run; "
                                "rerun python -m invdesign_surrogates.train dynamics on the run folder to add it)")
    sha = SHIPPED_SHA256.get("start.eqx") if pinned else None
    if pinned and sha is None:
        raise FileNotFoundError("weights: no sha256 is pinned for the shipped start.eqx")
    model, _ = load_model(path, lambda h: StartFit(**h["hyperparameters"]), sha256=sha)
    return model


class SwitchingModel:
    """The surrogate's <m>(t) as a JAX function of the field (see the module notes).

    **Arguments:**

    - `weights`: a training run's folder (`ae.eqx`, `stepper.eqx`, `start.eqx`), or None
      for the shipped weights.

    **Attributes:** `grid`, `sha256` (of `ae.eqx`), `scale` (the stepper's code scale).
    """

    def __init__(self, weights: str | os.PathLike | None = None):
        folder = SHIPPED if weights is None else Path(weights)
        self.ae, self.stepper, self.scale, self.grid, self.sha256 = _load(str(folder), weights is None)
        self.start = _load_start(str(folder), weights is None)
        if self.start.coef.shape[1:] != (N_PAST, self.ae.latent):
            raise ValueError(f"weights: start.eqx holds codes of shape {self.start.coef.shape[1:]}, "
                             f"the autoencoder needs ({N_PAST}, {self.ae.latent})")
        self._decoder = eqx.nn.inference_mode(self.ae).decoder

    @staticmethod
    def times(t_end: float) -> np.ndarray:
        """The times (s) of `m_avg(..., t_end)`: every 10 ps from 0.01 ns to `t_end`."""
        n = round(float(t_end) / DT)
        if n < FIRST + N_PAST:
            raise ValueError(f"t_end must be at least {(FIRST + N_PAST) * DT:g} s, got {t_end!r}")
        return DT * np.arange(FIRST, n + 1)

    def codes(self, field, t_end: float):
        """Latent codes `(len(times(t_end)), latent)` of one field (tesla, (2,))."""
        n_pred = len(self.times(t_end)) - N_PAST
        b = jnp.asarray(field, jnp.float32)[:2]
        c0 = self.start(b)
        pred = _rollout(self.stepper, b, c0 / self.scale, n_pred) * self.scale
        return jnp.concatenate([c0, pred])

    def m_avg(self, field, t_end: float):
        """<m>(t) `(len(times(t_end)), 3)` of one field; `jax.vmap` it for many."""
        return cell_mean(jax.vmap(self._decoder)(self.codes(field, t_end)))

    def m_avg_min(self, field, t_end: float):
        """`(mx_min, m)`: the lowest <m_x> over `times(t_end)` and <m>(t) `(n_times, 3)` of one
        field. Every state is decoded once outside the gradient; the lowest is decoded again
        for it, so `grad(mx_min)` costs one decoder pass (the derivative of a minimum is that of
        the state where it lies) where differentiating `m_avg(...)[:, 0].min()` costs one per
        state."""
        codes = self.codes(field, t_end)
        m = jax.lax.stop_gradient(cell_mean(jax.vmap(self._decoder)(codes)))
        k = jnp.argmin(m[:, 0])
        return cell_mean(self._decoder(codes[k]))[0], m

    def m_avg_at(self, field, t: float):
        """<m> `(3,)` at one time `t` (a multiple of 10 ps): decodes that state only."""
        return cell_mean(self._decoder(self.codes(field, t)[-1]))
