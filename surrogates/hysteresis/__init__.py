"""Hysteresis surrogate (Kovacs et al., "Exploring the hysteresis properties of
nanocrystalline permanent magnets using deep learning"): a variational autoencoder of
easy-axis maps (Table 1), a parameter-sharing regressor of the six anchor points of the
demagnetization curve (Table 2), ensembles of regressors, the image-statistics + ridge
baseline the surrogate must beat, the training pipeline and the shipped surrogate.

The shipped surrogate (weights in `shipped/`, read once):

- `predict(kx, return_spread=False)`: structures `(n, 64, 64)` -> anchors `(n, 6)`:
  `M1, Mr` in Ms and `Hk90, Hk80, Hk70, Hc` in H_A (`ANCHORS`), plus a spread;
- `encode(kx)` / `decode(z)`: latent means of structures and structures of latent codes.

Training: `python -m invdesign_surrogates.train hysteresis --labeled PATH --out DIR`
(`run_pipeline`, `PipelineConfig`).

Building blocks: models are plain `equinox.Module`s in float32 with JSON-ready
`hyperparameters`; `vae_encode(vae, kx)` / `vae_decode(vae, z)` / `predict_regressor(reg,
features)` apply a given model. The losses have the generic trainer's signature
`loss(model, batch: dict, key)`: `vae_loss` on `{"kx": (n, grid, grid)}`,
`regressor_loss` / `ensemble_loss` on `{"features": (n, in_features), "targets": (n, 6)}`
(anchors in the paper's units, see `paper_units`). Partition trainable arrays with
`eqx.partition(model, trainable_filter(model))`.

```python
>>> import jax, numpy as np
>>> vae = VAE(grid=16, latent=4, channels=(4, 8), dense=16, key=jax.random.key(0))
>>> mean, _ = vae_encode(vae, np.zeros((2, 16, 16)))
>>> reg = Regressor(vae.latent, key=jax.random.key(1))
>>> predict_regressor(reg, mean).shape
(2, 6)

```
"""

from ._anchors import FEATURE_SETS as FEATURE_SETS
from ._anchors import AnchorModel as AnchorModel
from ._anchors import anchor_features as anchor_features
from ._anchors import predict_anchors as predict_anchors
from ._baseline import STATISTICS as STATISTICS
from ._baseline import Baseline as Baseline
from ._baseline import fit_baseline as fit_baseline
from ._baseline import image_statistics as image_statistics
from ._baseline import quadratic_features as quadratic_features
from ._regressor import ANCHORS as ANCHORS
from ._regressor import Ensemble as Ensemble
from ._regressor import Regressor as Regressor
from ._regressor import count_parameters as count_parameters
from ._regressor import ensemble_loss as ensemble_loss
from ._regressor import paper_units as paper_units
from ._regressor import predict as predict_regressor
from ._regressor import predict_ensemble as predict_ensemble
from ._regressor import regressor_loss as regressor_loss
from ._regressor import trainable_filter as trainable_filter
from ._regressor import with_statistics as with_statistics
from ._pipeline import TABLE3_MAE as TABLE3_MAE
from ._pipeline import PipelineConfig as PipelineConfig
from ._pipeline import run_pipeline as run_pipeline
from ._design import LatentSurrogate as LatentSurrogate
from ._design import load_surrogate as load_surrogate
from ._shipped import decode as decode
from ._shipped import encode as encode
from ._shipped import load_shipped as load_shipped
from ._shipped import predict as predict
from ._vae import VAE as VAE
from ._vae import Decoder as Decoder
from ._vae import Encoder as Encoder
from ._simulate import AngleCalibration as AngleCalibration
from ._simulate import easy_axes_from_kx as easy_axes_from_kx
from ._simulate import grains_from_map as grains_from_map
from ._simulate import kx_systems as kx_systems
from ._simulate import simulate_anchors as simulate_anchors
from ._vae import decode as vae_decode
from ._vae import encode as vae_encode
from ._vae import kl_divergence as kl_divergence
from ._vae import reconstruct as reconstruct
from ._vae import vae_loss as vae_loss
from ._vae import vae_loss_terms as vae_loss_terms

__all__ = [
    "ANCHORS",
    "FEATURE_SETS",
    "STATISTICS",
    "TABLE3_MAE",
    "VAE",
    "AnchorModel",
    "Baseline",
    "Decoder",
    "Encoder",
    "Ensemble",
    "PipelineConfig",
    "Regressor",
    "anchor_features",
    "count_parameters",
    "LatentSurrogate",
    "decode",
    "easy_axes_from_kx",
    "grains_from_map",
    "AngleCalibration",
    "kx_systems",
    "load_surrogate",
    "simulate_anchors",
    "encode",
    "ensemble_loss",
    "fit_baseline",
    "image_statistics",
    "kl_divergence",
    "load_shipped",
    "paper_units",
    "predict",
    "predict_anchors",
    "predict_ensemble",
    "predict_regressor",
    "quadratic_features",
    "reconstruct",
    "regressor_loss",
    "run_pipeline",
    "trainable_filter",
    "vae_decode",
    "vae_encode",
    "vae_loss",
    "vae_loss_terms",
    "with_statistics",
]
