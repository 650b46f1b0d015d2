"""The shipped hysteresis surrogate: `predict`, `encode`, `decode` with the weights in `shipped/`.

The folder `shipped/` (package data) holds `vae.eqx` (the VAE) and `anchors.eqx` (the
`AnchorModel` ensemble), written by `python -m invdesign_surrogates.train hysteresis ...
--ship`, and `test_slice.nc` (the first structures of the fixed test split, with the MAE
the anchors header records for them). Their sha256 are pinned below: any other or damaged
file is refused. The weights are read once and cached.

Every function takes `weights=None` (the shipped ones) or the folder of a training run
(`vae.eqx` + `anchors.eqx`, checked for integrity but not pinned).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import jax
import numpy as np

from .._weights import file_sha256, load_model
from ._anchors import AnchorModel, predict_anchors
from ._baseline import STATISTICS
from ._regressor import ANCHORS
from ._vae import VAE, _decode, _encode

__all__ = ["SHIPPED", "SHIPPED_SHA256", "load_shipped", "predict", "encode", "decode"]

#: Folder of the shipped weights (package data).
SHIPPED = Path(__file__).parent / "shipped"

#: Pinned sha256 of the shipped files (update with the values `--ship` prints).
SHIPPED_SHA256 = {
    "vae.eqx": "aabda8efbf751a6e9f44c248eec10ec07ae5d7fdec600a1fc0056e7151370f93",
    "anchors.eqx": "0a8920fd3a1893bb80cf0dfc01b0b835d3d162e029e4abb7f9b4550efbaf3f8d",
    "test_slice.nc": "5cc5e2b35d0e20cacf8f257de032f9451b7d7608b650f84d41880d52831aa387",
}

GRID = 64


def _vae_factory(header):
    return VAE(**header["hyperparameters"], key=jax.random.key(0))


def _anchor_factory(header):
    return AnchorModel(**header["hyperparameters"], key=jax.random.key(0))


@functools.lru_cache(maxsize=8)
def _load(folder: str, pinned: bool):
    folder = Path(folder)
    paths = {name: folder / name for name in ("vae.eqx", "anchors.eqx")}
    for name, path in paths.items():
        if not path.exists():
            hint = " (the surrogate has not been trained and shipped yet: run python -m invdesign_surrogates.train hysteresis ... --ship)" if pinned else ""
            raise FileNotFoundError(f"weights: {str(path)!r} does not exist{hint}")
        if pinned and SHIPPED_SHA256[name] is None:
            raise FileNotFoundError(f"weights: no sha256 is pinned for the shipped {name}; pin the value printed by --ship")
    try:
        vae, vae_header = load_model(paths["vae.eqx"], _vae_factory, sha256=SHIPPED_SHA256["vae.eqx"] if pinned else None)
        model, header = load_model(paths["anchors.eqx"], _anchor_factory,
                                   sha256=SHIPPED_SHA256["anchors.eqx"] if pinned else None,
                                   expect={"anchors": list(ANCHORS), "statistics": list(STATISTICS)})
    except ValueError as err:
        raise ValueError(f"weights: {err}") from None
    # a model that reads the latent code must sit on the VAE it was trained with; "stats_residual"
    # reads the image statistics alone, so its VAE (encode, decode, designs) can be retrained
    if model.feature_set != "stats_residual" and header.get("vae_sha256") != file_sha256(paths["vae.eqx"]):
        raise ValueError(f"weights: {str(paths['anchors.eqx'])!r} was trained on another VAE than {str(paths['vae.eqx'])!r} "
                         "(its vae_sha256 differs)")
    if model.n_latent != vae.latent or list(vae_header.get("grid", [])) != [vae.grid, vae.grid] \
            or list(header.get("grid", [])) != [vae.grid, vae.grid]:
        raise ValueError(f"weights: the VAE (grid {vae_header.get('grid')}, latent {vae.latent}) and the anchor model "
                         f"(grid {header.get('grid')}, latent {model.n_latent}) in {str(folder)!r} do not belong together")
    return vae, model, vae_header, header


def load_shipped(weights: str | os.PathLike | None = None):
    """`(vae, anchor_model, vae_header, anchors_header)` of the shipped weights (or of a run folder `weights`).

    Read once and cached. **Raises:** `ValueError` naming `weights` for a damaged or
    unpinned file, or files that do not belong together; `FileNotFoundError` when a file
    is missing.
    """
    if weights is None:
        return _load(str(SHIPPED), True)
    folder = Path(weights)
    if not folder.is_dir():
        raise ValueError(f"weights must be None (the shipped weights) or a folder holding vae.eqx and anchors.eqx, got {str(weights)!r}")
    return _load(str(folder.resolve()), False)


def _structures(kx, grid: int) -> tuple[np.ndarray, bool]:
    arr = np.asarray(kx)
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"kx must be a real array, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3) or arr.shape[-2:] != (grid, grid) or (arr.ndim == 3 and arr.shape[0] == 0):
        raise ValueError(f"kx must have shape (n, {grid}, {grid}) or ({grid}, {grid}) (the grid of the weights), "
                         f"got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("kx must be finite (it has NaN or inf entries)")
    if np.max(np.abs(arr)) > 1 + 1e-6:
        raise ValueError(f"kx is an easy-axis component: values must lie in [-1, 1], got max |kx| = {np.max(np.abs(arr)):.6g}")
    return (arr[None] if arr.ndim == 2 else arr).astype(np.float32), arr.ndim == 2


def predict(kx, *, return_spread: bool = False, weights: str | os.PathLike | None = None):
    """The six anchor points of the demagnetization curve of grain structures.

    **Arguments:**

    - `kx`: x-components of the easy axis per cell (the field is along y), shape
      `(n, 64, 64)` or `(64, 64)`, finite, in [-1, 1].
    - `return_spread`: also return the spread (the members' standard deviation,
      calibrated by cross-validation so that it estimates the error's standard deviation).
    - `weights`: None for the shipped weights, or a training run's folder.

    **Returns:** float32 array `(n, 6)` (or `(6,)` for one structure) of `M1, Mr` (in
    Ms) and `Hk90, Hk80, Hk70, Hc` (in H_A, signed: the fields are negative), ordered as
    `ANCHORS`; with `return_spread`, `(anchors, spread)` of the same shapes.

    **Raises:** `ValueError` naming `kx` (wrong shape or grid, NaN, values outside [-1,
    1]) or `weights` (a damaged file, files that do not belong together).

    **Example** (needs the shipped weights):

    ```python
    kx = xr.open_dataset(labeled)["kx"].values[:2]  # two structures of the shipped labeled set
    anchors, spread = predict(kx, return_spread=True)
    anchors.shape, spread.shape  # ((2, 6), (2, 6))
    ```

    Structures unlike the training data (Voronoi grains, 16-256 per map), such as a single
    grain, are extrapolated: the spread is then much larger than usual.
    """
    vae, model, _, _ = load_shipped(weights)
    arr, single = _structures(kx, vae.grid)
    mean, spread = predict_anchors(vae, model, arr)
    if single:
        mean, spread = mean[0], spread[0]
    return (mean, spread) if return_spread else mean


def encode(kx, *, return_logvar: bool = False, weights: str | os.PathLike | None = None):
    """Latent means of grain structures with the shipped VAE.

    **Arguments:** `kx` as for `predict`; `return_logvar`: also return the log-variances;
    `weights` as for `predict`.

    **Returns:** float32 `(n, latent)` (or `(latent,)` for one structure); with
    `return_logvar`, `(mean, logvar)`.
    """
    vae, _, _, _ = load_shipped(weights)
    arr, single = _structures(kx, vae.grid)
    mean, logvar = (np.asarray(a) for a in _encode(vae, arr))
    if single:
        mean, logvar = mean[0], logvar[0]
    return (mean, logvar) if return_logvar else mean


def decode(z, *, weights: str | os.PathLike | None = None):
    """Grain structures (kx in [-1, 1]) decoded from latent codes with the shipped VAE.

    **Arguments:** `z`: shape `(n, latent)` or `(latent,)`, finite; `weights` as for
    `predict`.

    **Returns:** float32 `(n, 64, 64)` (or `(64, 64)`).
    """
    vae, _, _, _ = load_shipped(weights)
    arr = np.asarray(z)
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"z must be a real array, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2) or arr.shape[-1] != vae.latent or (arr.ndim == 2 and arr.shape[0] == 0):
        raise ValueError(f"z must have shape (n, {vae.latent}) or ({vae.latent},) (the latent size of the weights), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("z must be finite (it has NaN or inf entries)")
    single = arr.ndim == 1
    out = np.asarray(_decode(vae, np.atleast_2d(arr).astype(np.float32)))
    return out[0] if single else out
