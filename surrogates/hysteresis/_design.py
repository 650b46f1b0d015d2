"""The surrogate as a function of the latent code, for latent-space design.

A design is a latent code z. The structure it stands for is the grain structure of its
calibrated decoded map, `structure(z) = grains_from_map(calibration(decode(z)))`: the
decoder returns a smooth map of the easy-axis x-component whose axis angles are pulled
towards the field axis; the calibration (`AngleCalibration`, quantile matching fitted on
training structures and their reconstructions) restores the data's angle distribution;
and the projection (`grains_from_map`) rounds the axis angle to 10 degree steps, takes the
connected regions of equal angle as grains (at least 8 cells), and gives each grain the
mean angle (without the calibration, real test structures' reconstructions lost about
twice as much of their switching fields to the solver; see the README). That structure is
what a user would build, what the solver re-checks, and what the anchor model reads: its anchors are predicted exactly as
the public `predict(kx)` predicts them for `kx = structure(z)` (the VAE encodes it again;
the image statistics are those of the grain structure, whose grain counts, boundary
densities and areas are then of the kind the model was trained on; the smooth decoded map
itself would have a grain boundary between every pair of cells). So a design's prediction
and its verification always concern the same structure.

`predict_latent(z)` is traceable (jit, vmap); the projection and the image statistics run
on the host (`jax.pure_callback`). The prediction is piecewise constant in z (the
projection rounds), so it has no useful gradient: the projection is passed straight
through (its backward pass is the identity), which gives the latent-code path's gradient
for models that read the code and zero for the statistics. The microstructure problem's
gradient driver therefore ascends the Gaussian-smoothed objective with sampled
differences (`problems/microstructure.py`); the genetic search needs no gradients.

`stats_distance(z)` is the Mahalanobis distance of the structure's image statistics from
those of the grain structures the decoder gives for the training codes (mean and
regularised covariance; the first `reference` training structures): a design whose
statistics are far from those asks the decoder, the ridge and the networks to
extrapolate, so the design problems bound it. The reference is the decoder's own output
for in-distribution codes, not the training structures themselves: with a blurry decoder
the projected structures differ systematically from Voronoi grains (fewer large jumps
across boundaries), and no design could be near the data's statistics.
`real_stats_distance` records how far the real training structures lie from that
reference; the solver re-check of a design measures what the difference costs.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from ._baseline import STATISTICS, image_statistics
from ._shipped import load_shipped
from ._simulate import AngleCalibration, grains_from_map

__all__ = ["LatentSurrogate", "load_surrogate"]


def _host_statistics(kx):
    kx = np.asarray(kx, dtype=np.float64)
    lead = kx.shape[:-2]
    flat = np.clip(kx.reshape((-1,) + kx.shape[-2:]), -1.0, 1.0)
    stats, _ = image_statistics(flat)
    return stats.astype(np.float32).reshape(lead + (len(STATISTICS),))


def _host_grains(kx, calibration=None):
    kx = np.asarray(kx, dtype=np.float64)
    flat = np.clip(kx.reshape((-1,) + kx.shape[-2:]), -1.0, 1.0)
    if calibration is not None:
        flat = calibration(flat)
    return grains_from_map(flat)[0].astype(np.float32).reshape(kx.shape)


class LatentSurrogate:
    """The shipped (or a run folder's) VAE and anchor model, seen from the latent space.

    - `latent`: latent size; `grid`: cells per side.
    - `train_codes`: latent means of the labeled training structures (never the test split).
    - `reference_codes`: the first `reference` of them; `train_stats_distance`: the
      statistics distances of their grain structures (`structure(reference_codes)`), the
      in-distribution reference of `stats_distance`; `real_stats_distance`: those of the
      real training structures themselves, from the same reference (how far the decoder's
      structures are from the data's).
    - `predict_latent(z)`: `(mean, spread)` of the six anchors (Ms, H_A; fields signed) of
      the structure `structure(z)`, traceable.
    - `predict_latent_full(z)`: `(mean, spread, stats_distance)`, traceable.
    - `predict_latent_batch(codes)`: `(mean, spread)` for `(n, latent)` codes, NumPy out.
    - `decode(codes)`: decoded (smooth) easy-axis maps `(n, grid, grid)`.
    - `structure(codes)`: the designs' grain structures `(n, grid, grid)` (see the module notes).
    - `calibration`: the `AngleCalibration` applied to decoded maps before their grain
      projection (`calibrate=True`, the default), fitted on the `reference` training
      structures and their reconstructions; None with `calibrate=False`.
    """

    def __init__(self, vae, model, train_kx, reference: int = 256, calibrate: bool = True):
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
        # the statistics reference: the grain structures the decoder gives for (the first
        # `reference` of) the training codes, i.e. what an in-distribution design looks like
        ref_codes = self.train_codes[: int(reference)].astype(np.float32)
        self.reference_codes = ref_codes.astype(np.float64)
        decoded = np.clip(np.asarray(_decode(vae, jnp.asarray(ref_codes)), np.float64), -1.0, 1.0)
        self.calibration = AngleCalibration(train_kx[: int(reference)], decoded) if calibrate else None
        ref = _host_grains(decoded, self.calibration)
        st = np.asarray(_host_statistics(ref), np.float64)
        self._stats_mean = st.mean(0)
        sd = st.std(0)
        sd = np.where(sd > 0, sd, 1.0)
        z = (st - self._stats_mean) / sd
        cov = np.cov(z, rowvar=False) + 1e-2 * np.eye(z.shape[1])  # ridge-regularised (rank-deficient statistics)
        w, v = np.linalg.eigh(cov)
        self._whiten = jnp.asarray((v / np.sqrt(w)) / sd[:, None], jnp.float32)  # d = |(s - mean) @ W|
        self._stats_mean_j = jnp.asarray(self._stats_mean, jnp.float32)
        self.train_stats_distance = np.linalg.norm((st - self._stats_mean) @ np.asarray(self._whiten, np.float64), axis=1)
        real = np.asarray(_host_statistics(train_kx[: int(reference)]), np.float64)
        #: distances of the real training structures (not their reconstructions) from the reference
        self.real_stats_distance = np.linalg.norm((real - self._stats_mean) @ np.asarray(self._whiten, np.float64), axis=1)

    def _statistics(self, kx):
        shape = jax.ShapeDtypeStruct(kx.shape[:-2] + (len(STATISTICS),), jnp.float32)
        return jax.pure_callback(_host_statistics, shape, jax.lax.stop_gradient(kx), vmap_method="expand_dims")

    def _grains(self, kx):
        shape = jax.ShapeDtypeStruct(kx.shape, jnp.float32)
        g = jax.pure_callback(functools.partial(_host_grains, calibration=self.calibration), shape,
                              jax.lax.stop_gradient(kx), vmap_method="expand_dims")
        return kx + jax.lax.stop_gradient(g - kx)  # straight through

    def predict_latent_full(self, z):
        z = jnp.asarray(z, jnp.float32)
        kx = self._grains(self.vae.decoder(z))
        mean, _ = self.vae.encoder(kx)
        stats = self._statistics(kx)
        m, spread = self.model(mean, stats)
        dist = jnp.linalg.norm((stats - self._stats_mean_j) @ self._whiten)
        return m, spread, dist

    def predict_latent(self, z):
        m, spread, _ = self.predict_latent_full(z)
        return m, spread

    def predict_latent_batch(self, codes):
        codes = jnp.asarray(np.asarray(codes, np.float32))
        mean, spread = jax.jit(jax.vmap(self.predict_latent))(codes)
        return np.asarray(mean), np.asarray(spread)

    def decode(self, codes):
        return np.asarray(self._decode_batch(self.vae, jnp.asarray(np.asarray(codes, np.float32))))

    def structure(self, codes):
        return _host_grains(self.decode(codes), self.calibration)


def _labeled_path():
    """The shipped labeled set (package data)."""
    from pathlib import Path

    return Path(__file__).resolve().parents[1] / "data" / "shipped" / "hysteresis_labeled_64x64.nc"


def _training_structures():
    """kx of the shipped labeled structures outside the fixed test split."""
    import xarray as xr

    from ..data.hysteresis import is_test

    with xr.open_dataset(_labeled_path(), engine="h5netcdf") as ds:
        keep = ~is_test(ds["sample"].values)
        return ds["kx"].values[keep]


def load_surrogate(weights: str | os.PathLike | None = None, *, calibrate: bool = True) -> LatentSurrogate:
    """The latent-space view of the shipped surrogate (or of a training run's folder)."""
    vae, model, _, _ = load_shipped(weights)
    return LatentSurrogate(vae, model, _training_structures(), calibrate=calibrate)
