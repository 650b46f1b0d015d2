"""The surrogate as a function of the latent code, for latent-space design.

A design is a latent code z, and the structure it stands for is the decoded map
`kx = decode(z)`. That is what a user would build, and what the solver re-checks. Its
anchors are predicted exactly as the public `predict(kx)` does: the VAE encodes the decoded
map again, and the anchor model reads those latent means (and, for the feature sets that
use them, the image statistics of the decoded map). So a design's prediction and its
verification always concern the same structure.

`predict_latent(z)` is traceable (jit, vmap). Gradients flow through the decoder, the
encoder and the ensemble. The image statistics are computed on the host
(`jax.pure_callback`) and have no gradient: a gradient search sees them as constant where
the anchor model uses them (documented in `problems/microstructure.py`). A genetic search
needs no gradients.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from ._baseline import STATISTICS, image_statistics
from ._shipped import load_shipped

__all__ = ["LatentSurrogate", "load_surrogate"]


def _host_statistics(kx):
    kx = np.asarray(kx, dtype=np.float64)
    lead = kx.shape[:-2]
    flat = np.clip(kx.reshape((-1,) + kx.shape[-2:]), -1.0, 1.0)
    stats, _ = image_statistics(flat)
    return stats.astype(np.float32).reshape(lead + (len(STATISTICS),))


class LatentSurrogate:
    """The shipped (or a run folder's) VAE and anchor model, seen from the latent space.

    - `latent`: latent size; `grid`: cells per side.
    - `train_codes`: latent means of the labeled training structures (never the test split).
    - `predict_latent(z)`: `(mean, spread)` of the six anchors (Ms, H_A; fields signed) of
      the structure `decode(z)`, traceable.
    - `predict_latent_batch(codes)`: the same for `(n, latent)` codes, NumPy out.
    - `decode(codes)`: decoded easy-axis maps `(n, grid, grid)`.
    """

    def __init__(self, vae, model, train_kx):
        from ._vae import _decode, _encode

        self.vae, self.model = vae, model
        self.latent = int(vae.latent)
        self.grid = int(vae.grid)
        self._decode_batch = _decode
        train_kx = np.asarray(train_kx, np.float32)
        if train_kx.ndim != 3 or train_kx.shape[1:] != (self.grid, self.grid):
            raise ValueError(f"train_kx must have shape (n, {self.grid}, {self.grid}), got {train_kx.shape}")
        mean, _ = _encode(vae, jnp.asarray(train_kx))
        self.train_codes = np.asarray(mean, dtype=np.float64)

    def _statistics(self, kx):
        if not self.model.uses_statistics:
            return jnp.zeros(kx.shape[:-2] + (len(STATISTICS),), jnp.float32)
        shape = jax.ShapeDtypeStruct(kx.shape[:-2] + (len(STATISTICS),), jnp.float32)
        return jax.pure_callback(_host_statistics, shape, jax.lax.stop_gradient(kx), vmap_method="expand_dims")

    def predict_latent(self, z):
        z = jnp.asarray(z, jnp.float32)
        kx = self.vae.decoder(z)
        mean, _ = self.vae.encoder(kx)
        return self.model(mean, self._statistics(kx))

    def predict_latent_batch(self, codes):
        codes = jnp.asarray(np.asarray(codes, np.float32))
        mean, spread = jax.jit(jax.vmap(self.predict_latent))(codes)
        return np.asarray(mean), np.asarray(spread)

    def decode(self, codes):
        return np.asarray(self._decode_batch(self.vae, jnp.asarray(np.asarray(codes, np.float32))))


def _training_structures():
    """kx of the shipped labeled structures outside the fixed test split."""
    from pathlib import Path

    import xarray as xr

    from ..data.hysteresis import is_test

    labeled = Path(__file__).resolve().parents[1] / "data" / "shipped" / "hysteresis_labeled_64x64.nc"
    with xr.open_dataset(labeled, engine="h5netcdf") as ds:
        keep = ~is_test(ds["sample"].values)
        return ds["kx"].values[keep]


def load_surrogate(weights: str | os.PathLike | None = None) -> LatentSurrogate:
    """The latent-space view of the shipped surrogate (or of a training run's folder)."""
    vae, model, _, _ = load_shipped(weights)
    return LatentSurrogate(vae, model, _training_structures())
