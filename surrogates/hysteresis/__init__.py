"""Hysteresis surrogate (Kovacs et al., "Exploring the hysteresis properties of
nanocrystalline permanent magnets using deep learning"): a variational autoencoder of
easy-axis maps (Table 1), a parameter-sharing regressor of the six anchor points of the
demagnetization curve from latent codes (Table 2), ensembles of regressors, and the
image-statistics + ridge baseline the surrogate must beat.

Models are plain `equinox.Module`s in float32 with JSON-ready `hyperparameters`; the losses
have the generic trainer's signature `loss(model, batch: dict, key)`: `vae_loss` on
`{"kx": (n, grid, grid)}`, `regressor_loss` / `ensemble_loss` on
`{"features": (n, in_features), "targets": (n, 6)}` (anchors in the paper's units, see
`paper_units`). Partition trainable arrays with `eqx.partition(model, trainable_filter(model))`.

```python
>>> import jax, numpy as np
>>> vae = VAE(grid=16, latent=4, channels=(4, 8), dense=16, key=jax.random.key(0))
>>> mean, _ = encode(vae, np.zeros((2, 16, 16)))
>>> reg = Regressor(vae.latent, key=jax.random.key(1))
>>> predict(reg, mean).shape
(2, 6)

```
"""

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
from ._regressor import predict as predict
from ._regressor import predict_ensemble as predict_ensemble
from ._regressor import regressor_loss as regressor_loss
from ._regressor import trainable_filter as trainable_filter
from ._regressor import with_statistics as with_statistics
from ._vae import VAE as VAE
from ._vae import Decoder as Decoder
from ._vae import Encoder as Encoder
from ._vae import decode as decode
from ._vae import encode as encode
from ._vae import kl_divergence as kl_divergence
from ._vae import reconstruct as reconstruct
from ._vae import vae_loss as vae_loss
from ._vae import vae_loss_terms as vae_loss_terms

__all__ = [
    "ANCHORS",
    "STATISTICS",
    "VAE",
    "Baseline",
    "Decoder",
    "Encoder",
    "Ensemble",
    "Regressor",
    "count_parameters",
    "decode",
    "encode",
    "ensemble_loss",
    "fit_baseline",
    "image_statistics",
    "kl_divergence",
    "paper_units",
    "predict",
    "predict_ensemble",
    "quadratic_features",
    "reconstruct",
    "regressor_loss",
    "trainable_filter",
    "vae_loss",
    "vae_loss_terms",
    "with_statistics",
]
