"""Convolutional autoencoder of thin-film magnetization states (Kovacs et al. 2019, Table 1).

Layout. The input is one magnetization state in our data's order, **channels last**:
shape `(nx, ny, 3)` = `(256, 64, 3)` for the SP4 grid (x along the 500 nm side, then y,
then the components m_x, m_y, m_z); the dataset's `m[..., 0, :]` (the single z-layer
dropped), and `(nx, ny, 1, 3)` is accepted too. The paper writes the same grid as
`64 x 256 x 3` (rows = y), so every shape of Table 1 appears here with its first two axes
swapped. Inside, the state runs channels-first `(3, nx, ny)` through:

- encoder: stride-2 convolutions with elu, the first 4 x 4 (padding 1, Keras' "same"),
  the others 2 x 2, widths `channels` = (16, 32, 64, 128, 256, 512) -> a `(512, 4, 1)`
  bottleneck; flatten (2048) -> dropout -> dense to `latent` = 16 units with elu (as in
  Table 1: the latent code lies in (-1, inf)^16);
- decoder: dense 16 -> 2048 with elu -> dropout -> reshape `(512, 4, 1)` -> stride-2
  transposed convolutions with elu (2 x 2) and a last 4 x 4 one with tanh to 3 channels,
  so every reconstructed component lies in (-1, 1).

Dropout (rate 0.1) is active only when the model is called with a `key` outside
`eqx.nn.inference_mode`; `encode` / `decode` always run in inference mode.

With the defaults the layer output shapes are exactly those of Table 1 (transposed, see
`layer_output_shapes`) and the model has 732 928 encoder and 734 451 decoder parameters
(1 467 379 in all, 5.9 MB in float32).

Loss (`autoencoder_loss`). The paper's `L_ED = L_1 + L_2` for one state with N cells:

    L_1 = sum_j |m_jx - m~_jx| + |m_jy - m~_jy| + 10 |m_jz - m~_jz|
    L_2 = sum_j ( |m~_j| - 1 )          (as printed: a signed sum)

As printed, `L_2` is a signed sum that is lowest for the shortest vectors (a reconstruction
of zero vectors would gain -N): a sign or absolute value was evidently lost. We use the
absolute deviation `| |m~_j| - 1 |` (default `penalty="abs"`): it is the L1 analogue of the
reconstruction term, so both terms are in the same units (deviations of unit-vector
components), and its gradient does not vanish close to unit length; `penalty="square"`
gives `(|m~_j| - 1)^2` instead. Normalisation: both sums are divided by the number of cells
N and averaged over the batch,

    loss = mean_batch [ (L_1 + L_2) / N ]

(the paper's per-state sums, up to the constant factor N = 16 384; with Adam-type
optimizers such as Nadam a constant factor changes only the effective epsilon).

Cost (measured with the generic trainer's step): one Nadam step of the default model on
a batch of 16 states took 0.41 to 0.9 s (median 0.76 s over 20 steps) on 2 CPU cores shared
with background jobs (load average about 10), after a first step that compiles for 70 to
120 s; an epoch of 16 000 states is then about 1000 steps, 7 to 13 minutes on such a CPU.
The 2 x 2 stride-2 layers run as einsums (see `_nn`).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from invdesign._validate import is_concrete

from ._nn import DTYPE, _array, _batched, _build, _check_finite, _conv, _conv_transpose, _int_tuple, _positive_int, _rate

__all__ = [
    "Autoencoder",
    "AEEncoder",
    "AEDecoder",
    "encode",
    "decode",
    "reconstruct",
    "autoencoder_loss",
    "autoencoder_loss_terms",
    "layer_output_shapes",
    "compression_ratio",
]

#: The paper's grid in our order (nx, ny): 256 x 64 cells of 1.95 nm.
SP4_GRID = (256, 64)
#: Table 1: output channels of the six stride-2 convolutions.
TABLE1_CHANNELS = (16, 32, 64, 128, 256, 512)


def _check_grid(grid, channels) -> tuple[int, int]:
    grid = _int_tuple("grid", grid, 2, length=2)
    factor = 2 ** len(channels)
    if grid[0] % factor or grid[1] % factor:
        raise ValueError(
            f"grid must be two multiples of 2**len(channels) = {factor} (one halving per convolution), got {grid}"
        )
    return grid


class AEEncoder(eqx.Module):
    """Magnetization state `(nx, ny, 3)` -> latent code `(latent,)`; built by `Autoencoder`."""

    convs: tuple[eqx.nn.Conv2d, ...]
    dropout: eqx.nn.Dropout
    dense: eqx.nn.Linear

    def __init__(self, grid, latent, channels, dropout, *, key: PRNGKeyArray):
        keys = jax.random.split(key, len(channels) + 1)
        convs, c_in = [], 3
        for i, c in enumerate(channels):
            k, p = (4, 1) if i == 0 else (2, 0)
            convs.append(eqx.nn.Conv2d(c_in, c, k, stride=2, padding=p, key=keys[i], dtype=DTYPE))
            c_in = c
        self.convs = tuple(convs)
        f = 2 ** len(channels)
        self.dropout = eqx.nn.Dropout(dropout)
        self.dense = eqx.nn.Linear(channels[-1] * (grid[0] // f) * (grid[1] // f), latent, key=keys[-1], dtype=DTYPE)

    def layers(self, m: Float[Array, "nx ny 3"], *, key: PRNGKeyArray | None = None) -> list:
        """`[(name, output), ...]` of every layer of Table 1's encoder half, channels first."""
        h = jnp.transpose(m.astype(DTYPE), (2, 0, 1))
        out = [("Input", h)]
        for conv in self.convs:
            h = jax.nn.elu(_conv(conv, h))
            out.append(("Conv2D", h))
        h = h.reshape(-1)
        out.append(("Flatten", h))
        h = self.dropout(h, key=key)
        out.append(("Dropout", h))
        out.append(("Dense", jax.nn.elu(self.dense(h))))
        return out

    def __call__(self, m: Float[Array, "nx ny 3"], *, key: PRNGKeyArray | None = None) -> Float[Array, " latent"]:
        return self.layers(m, key=key)[-1][1]


class AEDecoder(eqx.Module):
    """Latent code `(latent,)` -> magnetization state `(nx, ny, 3)` in (-1, 1); built by `Autoencoder`."""

    dense: eqx.nn.Linear
    dropout: eqx.nn.Dropout
    convs: tuple[eqx.nn.ConvTranspose2d, ...]
    bottleneck: tuple[int, int, int] = eqx.field(static=True)

    def __init__(self, grid, latent, channels, dropout, *, key: PRNGKeyArray):
        keys = jax.random.split(key, len(channels) + 1)
        f = 2 ** len(channels)
        self.bottleneck = (channels[-1], grid[0] // f, grid[1] // f)
        self.dense = eqx.nn.Linear(latent, int(np.prod(self.bottleneck)), key=keys[0], dtype=DTYPE)
        self.dropout = eqx.nn.Dropout(dropout)
        outs = tuple(reversed(channels[:-1])) + (3,)
        convs, c_in = [], channels[-1]
        for i, c in enumerate(outs):
            k, p = (4, 1) if i == len(outs) - 1 else (2, 0)
            convs.append(eqx.nn.ConvTranspose2d(c_in, c, k, stride=2, padding=p, key=keys[1 + i], dtype=DTYPE))
            c_in = c
        self.convs = tuple(convs)

    def layers(self, c: Float[Array, " latent"], *, key: PRNGKeyArray | None = None) -> list:
        """`[(name, output), ...]` of every layer of Table 1's decoder half, channels first."""
        h = jax.nn.elu(self.dense(c.astype(DTYPE)))
        out = [("Dense", h)]
        h = self.dropout(h, key=key)
        out.append(("Dropout", h))
        h = h.reshape(self.bottleneck)
        out.append(("Reshape", h))
        for conv in self.convs[:-1]:
            h = jax.nn.elu(_conv_transpose(conv, h))
            out.append(("Conv2DTrans", h))
        h = jnp.tanh(_conv_transpose(self.convs[-1], h))
        out.append(("Conv2DTrans", h))
        return out

    def __call__(self, c: Float[Array, " latent"], *, key: PRNGKeyArray | None = None) -> Float[Array, "nx ny 3"]:
        return jnp.transpose(self.layers(c, key=key)[-1][1], (1, 2, 0))


class Autoencoder(eqx.Module):
    """Convolutional autoencoder of magnetization states after Table 1 (configurable widths).

    **Arguments:**

    - `grid`: `(nx, ny)` cells of the film (default the SP4 grid `(256, 64)`); both
      multiples of `2**len(channels)`.
    - `latent`: units of the latent code (the paper: 16).
    - `channels`: output channels of the stride-2 convolutions, first (4 x 4) to last
      (the paper: `(16, 32, 64, 128, 256, 512)`); the decoder runs them in reverse.
    - `dropout`: rate of the two dropout layers around the latent code (the paper: 0.1).
    - `key`: `jax.random` key of the initial weights (equinox's distribution, drawn with
      NumPy from the key's data when it is concrete: building compiles nothing).

    Calling the model, `model(m, key=key)` maps one state `(nx, ny, 3)` to its
    reconstruction (dropout active with a key, see `eqx.nn.inference_mode`).
    `hyperparameters` holds the constructor arguments as a JSON-ready dict.

    ```python
    >>> ae = Autoencoder(grid=(16, 8), latent=4, channels=(4, 8), key=jax.random.key(0))
    >>> ae.hyperparameters
    {'grid': [16, 8], 'latent': 4, 'channels': [4, 8], 'dropout': 0.1}
    >>> m = np.zeros((5, 16, 8, 3)); m[..., 0] = 1.0
    >>> c = encode(ae, m)
    >>> c.shape, c.dtype, decode(ae, c).shape
    ((5, 4), dtype('float32'), (5, 16, 8, 3))

    ```
    """

    encoder: AEEncoder
    decoder: AEDecoder
    grid: tuple[int, int] = eqx.field(static=True)
    latent: int = eqx.field(static=True)
    channels: tuple[int, ...] = eqx.field(static=True)
    dropout: float = eqx.field(static=True)

    def __init__(
        self,
        grid=SP4_GRID,
        latent: int = 16,
        channels=TABLE1_CHANNELS,
        dropout: float = 0.1,
        *,
        key: PRNGKeyArray,
    ):
        self.channels = _int_tuple("channels", channels)
        self.grid = _check_grid(grid, self.channels)
        self.latent = _positive_int("latent", latent)
        self.dropout = _rate("dropout", dropout)
        k_enc, k_dec = jax.random.split(key)
        layout = (self.grid, self.latent, self.channels, self.dropout)
        self.encoder = _build(AEEncoder, *layout, key=k_enc)
        self.decoder = _build(AEDecoder, *layout, key=k_dec)

    @property
    def hyperparameters(self) -> dict:
        """Constructor arguments (JSON-ready: ints, floats and lists)."""
        return {"grid": list(self.grid), "latent": self.latent, "channels": list(self.channels), "dropout": self.dropout}

    def __call__(self, m: Float[Array, "nx ny 3"], *, key: PRNGKeyArray | None = None) -> Float[Array, "nx ny 3"]:
        k1, k2 = (None, None) if key is None else jax.random.split(key)
        return self.decoder(self.encoder(m, key=k1), key=k2)


# ----------------------------------------------------------------------------- validation


def _check_m(model: Autoencoder, m, name="m"):
    """States `(..., nx, ny, 3)` (or `(..., nx, ny, 1, 3)`) as float32 `(..., nx, ny, 3)`."""
    arr = _array(name, m)
    nx, ny = model.grid
    if arr.ndim >= 4 and tuple(arr.shape[-4:]) == (nx, ny, 1, 3):
        arr = arr[..., 0, :]
    if arr.ndim < 3 or tuple(arr.shape[-3:]) != (nx, ny, 3):
        raise ValueError(
            f"{name} must have shape (..., {nx}, {ny}, 3) (cells along x, cells along y, components; or "
            f"(..., {nx}, {ny}, 1, 3)) to match the model grid, got {tuple(arr.shape)}"
        )
    _check_finite(name, arr)
    if is_concrete(arr) and arr.size:
        big = float(np.max(np.abs(np.asarray(arr))))
        if big > 1.0 + 1e-3:
            raise ValueError(
                f"{name} holds unit magnetization vectors: components must lie in [-1, 1], got max |{name}| = {big:.6g}"
            )
    return jnp.asarray(arr, DTYPE)


def _check_c(model: Autoencoder, c, name="c"):
    arr = _array(name, c)
    if arr.ndim < 1 or arr.shape[-1] != model.latent:
        raise ValueError(f"{name} must have shape (..., {model.latent}) to match the latent size, got {tuple(arr.shape)}")
    _check_finite(name, arr)
    return jnp.asarray(arr, DTYPE)


@eqx.filter_jit
def _encode(model, m):
    return _batched(eqx.nn.inference_mode(model).encoder, m, 3)


@eqx.filter_jit
def _decode(model, c):
    return _batched(eqx.nn.inference_mode(model).decoder, c, 1)


def _chunked(fn, model, x, core_ndim, chunk):
    """`fn(model, x)` over the flattened leading axes in pieces of `chunk` samples (bounded memory)."""
    chunk = _positive_int("chunk", chunk)
    lead = x.shape[: x.ndim - core_ndim]
    n = int(np.prod(lead, dtype=np.int64))
    if isinstance(x, jax.core.Tracer) or n <= chunk:
        return fn(model, x)
    flat = x.reshape((n,) + x.shape[x.ndim - core_ndim :])
    out = jnp.concatenate([fn(model, flat[i : i + chunk]) for i in range(0, n, chunk)])
    return out.reshape(lead + out.shape[1:])


def encode(model: Autoencoder, m: ArrayLike, *, chunk: int = 256) -> Float[Array, "*batch latent"]:
    """Latent codes of magnetization states (inference mode: no dropout).

    **Arguments:**

    - `model`: an `Autoencoder`.
    - `m`: unit magnetization, shape `(..., nx, ny, 3)` (or `(..., nx, ny, 1, 3)` as in
      the dataset), finite, components in [-1, 1]; any leading batch axes (one vmap).
    - `chunk`: states per compiled call (the activations of one 256 x 64 state take about
      1 MB; at most two compilations: full chunks and the rest).

    **Returns:** float32 codes of shape `(..., latent)`.

    **Raises:** `ValueError` naming `m` for a wrong shape, NaN/inf or components outside
    [-1, 1].
    """
    return _chunked(_encode, model, _check_m(model, m), 3, chunk)


def decode(model: Autoencoder, c: ArrayLike, *, chunk: int = 256) -> Float[Array, "*batch nx ny 3"]:
    """Magnetization states (float32, `(..., nx, ny, 3)`, components in (-1, 1)) of latent codes `c` of shape `(..., latent)`.

    Inference mode (no dropout), `chunk` codes per compiled call (as in `encode`); the
    states are not renormalised (see `autoencoder_loss` for the unit-length penalty).
    """
    return _chunked(_decode, model, _check_c(model, c), 1, chunk)


def reconstruct(model: Autoencoder, m: ArrayLike, *, chunk: int = 256) -> Float[Array, "*batch nx ny 3"]:
    """`decode(model, encode(model, m))` of states `(..., nx, ny, 3)`."""
    return _chunked(_decode, model, encode(model, m, chunk=chunk), 1, chunk)


def layer_output_shapes(model: Autoencoder) -> list[tuple[str, tuple[int, ...]]]:
    """`[(Keras layer name, output shape), ...]` of every layer, as the rows of Table 1.

    Shapes are channels last in our axis order `(x, y, channels)`; the paper's
    `64 x 256 x 3` input is our `(256, 64, 3)`. Computed by shape evaluation (no
    arithmetic).

    ```python
    >>> ae = Autoencoder(key=jax.random.key(0))
    >>> shapes = layer_output_shapes(ae)
    >>> shapes[0], shapes[6], shapes[9], shapes[-1]
    (('Input', (256, 64, 3)), ('Conv2D', (4, 1, 512)), ('Dense', (16,)), ('Conv2DTrans', (256, 64, 3)))

    ```
    """

    def run(model, m):
        model = eqx.nn.inference_mode(model)
        enc = model.encoder.layers(m)
        return enc + model.decoder.layers(enc[-1][1])

    m = jax.ShapeDtypeStruct((*model.grid, 3), DTYPE)
    out = eqx.filter_eval_shape(run, model, m)
    return [(name, tuple(x.shape[1:]) + (x.shape[0],) if x.ndim == 3 else tuple(x.shape)) for name, x in out]


# ----------------------------------------------------------------------------- loss


_PENALTIES = ("abs", "square")


def autoencoder_loss_terms(
    model: Autoencoder, batch: dict, key: PRNGKeyArray | None, *, z_weight: float = 10.0, penalty: str = "abs"
) -> dict:
    """The loss and its terms on a minibatch, each a float32 scalar: `{"loss", "l1", "length", "mae"}`.

    - `l1`: `mean_batch sum_j (|dm_x| + |dm_y| + z_weight |dm_z|) / N` (the paper's L_1 / N);
    - `length`: `mean_batch sum_j | |m~_j| - 1 | / N` (`penalty="abs"`, the paper's L_2
      with the absolute value, see the module notes) or `(|m~_j| - 1)^2` (`"square"`);
    - `loss = l1 + length`;
    - `mae`: the plain mean absolute error over cells and all three components (a metric).

    `batch["m"]`: states `(n, nx, ny, 3)` (or `(n, nx, ny, 1, 3)`); `key` drives the
    dropout (one key per state); `None` runs without dropout.
    """
    if not isinstance(batch, dict) or "m" not in batch:
        raise ValueError(
            f"batch must be a dict with the key 'm' (states of shape (n, nx, ny, 3)), got {type(batch).__name__}"
        )
    if penalty not in _PENALTIES:
        raise ValueError(f"penalty must be one of {_PENALTIES}, got {penalty!r}")
    m = _check_m(model, batch["m"], "batch['m']")
    if m.ndim != 4:
        raise ValueError(f"batch['m'] must have shape (n, {model.grid[0]}, {model.grid[1]}, 3), got {tuple(m.shape)}")
    return _ae_terms(model, m, key, jnp.asarray(z_weight, DTYPE), jnp.asarray(penalty == "square"))


@eqx.filter_jit
def _ae_terms(model, m, key, z_weight, square):
    if key is None:
        recon = jax.vmap(eqx.nn.inference_mode(model))(m)
    else:
        recon = jax.vmap(lambda x, k: model(x, key=k))(m, jax.random.split(key, m.shape[0]))
    err = jnp.abs(recon - m)
    w = jnp.stack([jnp.ones((), DTYPE), jnp.ones((), DTYPE), z_weight])
    l1 = jnp.mean(jnp.sum(err * w, axis=-1))
    # the epsilon keeps the gradient of the length finite at a zero vector (bias <= 1e-6)
    dev = jnp.sqrt(jnp.sum(recon**2, axis=-1) + 1e-12) - 1.0
    length = jnp.mean(jnp.where(square, dev**2, jnp.abs(dev)))
    return {"loss": l1 + length, "l1": l1, "length": length, "mae": jnp.mean(err)}


def autoencoder_loss(
    model: Autoencoder, batch: dict, key: PRNGKeyArray | None, *, z_weight: float = 10.0, penalty: str = "abs"
) -> Float[Array, ""]:
    """Training loss `L_ED / N` of a minibatch (float32 scalar), the trainer's `loss(model, batch, key)`.

    The paper's L1 reconstruction error with weight `z_weight` (10) on m_z plus the
    unit-length penalty, per cell and averaged over the batch (see the module notes and
    `autoencoder_loss_terms`). Bind options with `functools.partial`.

    ```python
    >>> ae = Autoencoder(grid=(16, 8), latent=4, channels=(4, 8), key=jax.random.key(0))
    >>> m = np.zeros((2, 16, 8, 3)); m[..., 0] = 1.0
    >>> loss = autoencoder_loss(ae, {"m": m}, jax.random.key(1))
    >>> loss.shape, loss.dtype, bool(loss > 0)
    ((), dtype('float32'), True)

    ```
    """
    return autoencoder_loss_terms(model, batch, key, z_weight=z_weight, penalty=penalty)["loss"]


# ----------------------------------------------------------------------------- compression


def compression_ratio(grid, latent: int, *, values_per_cell: int = 1) -> float:
    """Numbers describing a state over numbers of its latent code, as the paper counts them.

    The paper ignores the small out-of-plane component and counts one magnetization angle
    per cell (`values_per_cell=1`): 64 x 256 cells and 16 latent units give 1024:1.
    `values_per_cell=3` counts the three stored components.

    **Arguments:** `grid`: cells per axis, e.g. `(256, 64)` or `(256, 64, 1)`; `latent`:
    units of the code.

    ```python
    >>> compression_ratio((256, 64), 16)
    1024.0
    >>> compression_ratio((256, 64, 1), 16, values_per_cell=3)
    3072.0

    ```
    """
    grid = _int_tuple("grid", grid)
    latent = _positive_int("latent", latent)
    values_per_cell = _positive_int("values_per_cell", values_per_cell)
    return float(np.prod(grid, dtype=np.int64) * values_per_cell / latent)
