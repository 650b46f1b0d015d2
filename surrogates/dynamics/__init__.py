"""Magnetization-dynamics surrogate (Kovacs et al., "Learning magnetization dynamics", 2019):
a convolutional autoencoder of thin-film states (Table 1), a latent time stepper
(Table 2) trained with the recursive look-ahead loss, and the two baselines it must beat
(PCA / POD compression with the same stepper; a lookup of <m>(t) between training fields).

Models are plain `equinox.Module`s in float32 with JSON-ready `hyperparameters`
(`save_model` / `load_model` of `invdesign_surrogates._weights` ship them). Conventions:

- a state is `(nx, ny, 3)` = `(256, 64, 3)`, channels last, in the dataset's axis order
  (its `m[..., 0, :]`; `(256, 64, 1, 3)` is accepted);
- a field is mu0 H in tesla, `(..., 2)` (in-plane; `(..., 3)` with zero z is accepted);
- one stepper step is one stored time step (10 ps); four past states in, one out.

Losses have the generic trainer's signature `loss(model, batch: dict, key)`:
`autoencoder_loss` on `{"m": (n, 256, 64, 3)}`, `lookahead_loss` on
`{"field": (n, 2), "c": (n, 4 + 8, 16)}` (windows of encoded states, `lookahead_windows`).
Their `*_terms` versions return the terms as a dict (for `has_aux`).

```python
>>> import jax, numpy as np
>>> ae = Autoencoder(grid=(16, 8), latent=4, channels=(4, 8), key=jax.random.key(0))
>>> m = np.zeros((4, 16, 8, 3)); m[..., 0] = 1.0
>>> c = encode(ae, m)                        # (4, 4): four states, latent 4
>>> p = Stepper(latent=4, key=jax.random.key(1))
>>> decode(ae, rollout_latent(p, [-0.03, 0.005], c, 10)).shape
(10, 16, 8, 3)

```
"""

from ._autoencoder import SP4_GRID as SP4_GRID
from ._autoencoder import TABLE1_CHANNELS as TABLE1_CHANNELS
from ._autoencoder import AEDecoder as AEDecoder
from ._autoencoder import AEEncoder as AEEncoder
from ._autoencoder import Autoencoder as Autoencoder
from ._autoencoder import autoencoder_loss as autoencoder_loss
from ._autoencoder import autoencoder_loss_terms as autoencoder_loss_terms
from ._autoencoder import compression_ratio as compression_ratio
from ._autoencoder import decode as decode
from ._autoencoder import encode as encode
from ._autoencoder import layer_output_shapes as layer_output_shapes
from ._autoencoder import reconstruct as reconstruct
from ._baselines import PCA as PCA
from ._baselines import Lookup as Lookup
from ._baselines import fit_lookup as fit_lookup
from ._baselines import fit_pca as fit_pca
from ._baselines import lookup_predict as lookup_predict
from ._baselines import pca_decode as pca_decode
from ._baselines import pca_encode as pca_encode
from ._nn import count_parameters as count_parameters
from ._rollout import ExtrapolationWarning as ExtrapolationWarning
from ._rollout import rollout as rollout
from ._start import StartFit as StartFit
from ._start import fit_start as fit_start
from ._stepper import FIELD_SCALE as FIELD_SCALE
from ._stepper import TABLE2_HIDDEN as TABLE2_HIDDEN
from ._stepper import Stepper as Stepper
from ._stepper import lookahead_loss as lookahead_loss
from ._stepper import lookahead_loss_terms as lookahead_loss_terms
from ._stepper import lookahead_windows as lookahead_windows
from ._stepper import rollout_latent as rollout_latent
from ._switching import SwitchingModel as SwitchingModel
from ._switching import switching_time as switching_time

__all__ = [
    "FIELD_SCALE",
    "PCA",
    "SP4_GRID",
    "TABLE1_CHANNELS",
    "TABLE2_HIDDEN",
    "AEDecoder",
    "AEEncoder",
    "Autoencoder",
    "ExtrapolationWarning",
    "Lookup",
    "StartFit",
    "Stepper",
    "SwitchingModel",
    "autoencoder_loss",
    "autoencoder_loss_terms",
    "compression_ratio",
    "count_parameters",
    "decode",
    "encode",
    "fit_lookup",
    "fit_pca",
    "fit_start",
    "layer_output_shapes",
    "lookahead_loss",
    "lookahead_loss_terms",
    "lookahead_windows",
    "lookup_predict",
    "pca_decode",
    "pca_encode",
    "reconstruct",
    "rollout",
    "rollout_latent",
    "switching_time",
]
