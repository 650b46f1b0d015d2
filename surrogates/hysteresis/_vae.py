"""Convolutional variational autoencoder of grain structures (Kovacs et al., Table 1).

The input is the x-component of the easy axis per cell, `kx` in [-1, 1], on a square grid
(the field is along y). The encoder is a stack of stride-2 convolutions (the first one
4 x 4, the others 2 x 2, elu), a flatten, one dense layer (elu) and two linear dense
layers giving the mean and the log-variance of the latent code. The decoder mirrors it:
two dense layers (elu), a reshape and stride-2 transposed convolutions (2 x 2, elu; the
last one 4 x 4 with tanh, so reconstructions lie in [-1, 1]).

With `grid=160, latent=512, channels=(16, 32, 64, 128, 256), dense=2048` the layers are
exactly those of Table 1 (15 382 256 encoder and 14 338 801 decoder parameters). The
defaults here are sized for the 64 x 64 grid of the shipped data: the same five
convolutions (a 2 x 2 x 256 bottleneck: each bottleneck cell sees 32 x 32 input cells, as
the paper's 5 x 5 bottleneck does at 160 x 160), a dense layer of 1024 and a latent size
of 32 (to be chosen by validation among 16 ... 128).

Loss (`vae_loss`). The paper names the two terms (MSE reconstruction, KL regularisation)
but not their weights; we take the plain sum of the Keras VAE example (Keras being the
paper's framework), `beta = 1`:

    loss = mean over the batch of [ sum over cells (x_hat - x)^2  +  beta * KL ]
    KL   = -1/2 sum over latent dims (1 + logvar - mean^2 - exp(logvar))

i.e. the reconstruction term is the per-structure MSE times the number of cells
(`grid^2`); `beta = 1 / grid^2` gives "pixel-mean MSE + KL / grid^2".

Models, inputs and outputs are float32 (inputs are cast at the boundary). Cost: one
Nadam step on a minibatch of 64 at the defaults (2.5 M parameters, latent 32) took 0.13 to
0.23 s on 2 CPU cores shared with a background job, so one epoch over 100 000 structures
takes 4 to 6 minutes. The 2 x 2 stride-2 layers run as einsums (`_conv`,
`_conv_transpose`): XLA's CPU backward pass of strided convolutions made the step 2 to 3
times slower through the equinox layers' own calls.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from invdesign._validate import is_concrete

__all__ = ["VAE", "Encoder", "Decoder", "encode", "decode", "reconstruct", "kl_divergence", "vae_loss", "vae_loss_terms"]

DTYPE = jnp.float32


def _positive_int(name, value, minimum=1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _channels(value) -> tuple[int, ...]:
    try:
        chans = tuple(value)
    except TypeError:
        raise ValueError(f"channels must be a non-empty sequence of ints >= 1, got {value!r}") from None
    if not chans:
        raise ValueError("channels must be a non-empty sequence of ints >= 1, got an empty sequence")
    return tuple(_positive_int("channels", c) for c in chans)


def _check_grid(grid, channels) -> int:
    grid = _positive_int("grid", grid, 4)
    factor = 2 ** len(channels)
    if grid % factor:
        raise ValueError(
            f"grid must be a multiple of 2**len(channels) = {factor} (one halving per convolution), got {grid}"
        )
    return grid


def _host_rng(key):
    """A NumPy generator seeded by the data of a concrete `jax.random` key; None under a trace."""
    if isinstance(key, jax.core.Tracer):
        return None
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.random.default_rng([int(v) for v in np.asarray(data).ravel()])


def _is_layer(x) -> bool:
    return isinstance(x, (eqx.nn.Linear, eqx.nn.Conv, eqx.nn.ConvTranspose))


def _build(fn, *args, key, **kwargs):
    """`fn(*args, key=key, **kwargs)` (a layer container or a function returning layers) with the weights drawn by NumPy when `key` is concrete.

    Same distribution as equinox's initialiser (weights and biases uniform in
    +-1/sqrt(fan_in)), drawn from `_host_rng(key)` in the order of the layers: this needs
    no XLA compilation (eager initialisation compiles one random kernel per layer shape,
    tens of seconds on a small CPU). Under a trace (vmap, eval_shape) equinox's own
    initialiser runs.
    """
    rng = _host_rng(key)
    if rng is None:
        return fn(*args, key=key, **kwargs)
    skeleton = eqx.filter_eval_shape(fn, *args, key=key, **kwargs)

    def fill(layer):
        if not _is_layer(layer):
            return layer
        lim = 1.0 / np.sqrt(np.prod(layer.weight.shape[1:]))
        new = [jnp.asarray(rng.uniform(-lim, lim, leaf.shape).astype(leaf.dtype)) for leaf in (layer.weight, layer.bias)]
        return eqx.tree_at(lambda l: (l.weight, l.bias), layer, new)

    model = jax.tree_util.tree_map(fill, skeleton, is_leaf=_is_layer)
    if any(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree_util.tree_leaves(model)):
        raise RuntimeError(f"{fn.__name__} has arrays outside its Linear/Conv layers: cannot initialise them on the host")
    return model


class Encoder(eqx.Module):
    """Grain structure `(grid, grid)` -> mean and log-variance of the latent code, each `(latent,)`.

    Built by `VAE`; see there for the arguments.
    """

    convs: tuple[eqx.nn.Conv2d, ...]
    dense: eqx.nn.Linear
    mean: eqx.nn.Linear
    logvar: eqx.nn.Linear

    def __init__(self, grid: int, latent: int, channels: tuple[int, ...], dense: int, *, key: PRNGKeyArray):
        keys = jax.random.split(key, len(channels) + 3)
        convs = []
        c_in = 1
        for i, c in enumerate(channels):
            k, p = (4, 1) if i == 0 else (2, 0)
            convs.append(eqx.nn.Conv2d(c_in, c, k, stride=2, padding=p, key=keys[i], dtype=DTYPE))
            c_in = c
        self.convs = tuple(convs)
        side = grid // 2 ** len(channels)
        self.dense = eqx.nn.Linear(channels[-1] * side * side, dense, key=keys[-3], dtype=DTYPE)
        self.mean = eqx.nn.Linear(dense, latent, key=keys[-2], dtype=DTYPE)
        self.logvar = eqx.nn.Linear(dense, latent, key=keys[-1], dtype=DTYPE)

    def __call__(self, kx: Float[Array, "grid grid"]) -> tuple[Float[Array, " latent"], Float[Array, " latent"]]:
        h = kx[None].astype(DTYPE)
        for conv in self.convs:
            h = jax.nn.elu(_conv(conv, h))
        h = jax.nn.elu(self.dense(h.reshape(-1)))
        return self.mean(h), self.logvar(h)


def _patchwise(layer) -> bool:
    """A 2 x 2 kernel with stride 2 and no padding: the windows tile the image (no overlap)."""
    return (
        layer.kernel_size == layer.stride == (2, 2)
        and layer.padding == ((0, 0), (0, 0))
        and getattr(layer, "output_padding", (0, 0)) == (0, 0)
        and layer.dilation == (1, 1)
        and layer.groups == 1
    )


def _conv(layer: eqx.nn.Conv2d, x):
    """`layer(x)`; for a 2 x 2 kernel with stride 2 as a reshape and one einsum.

    Same result as the layer's own call, but the backward pass of a strided convolution
    (a dilated convolution) is slow in XLA on the CPU; with the einsums here (and in
    `_conv_transpose`) a training step of the default VAE is about 3x faster.
    """
    if _patchwise(layer):
        c, n, m = x.shape
        patches = x.reshape(c, n // 2, 2, m // 2, 2)
        y = jnp.einsum("ciajb,ocab->oij", patches, layer.weight)
        return y if layer.bias is None else y + layer.bias
    return layer(x)


def _conv_transpose(layer: eqx.nn.ConvTranspose2d, x):
    """`layer(x)`; for a 2 x 2 kernel with stride 2 (no overlap) as one einsum.

    Same result as the layer's own call (equinox flips the kernel); see `_conv`.
    """
    if _patchwise(layer):
        c_out, _, k, _ = layer.weight.shape
        w = layer.weight[:, :, ::-1, ::-1]
        y = jnp.einsum("cij,ocab->oiajb", x, w).reshape(c_out, x.shape[1] * k, x.shape[2] * k)
        return y if layer.bias is None else y + layer.bias
    return layer(x)


class Decoder(eqx.Module):
    """Latent code `(latent,)` -> grain structure `(grid, grid)` in [-1, 1].

    Built by `VAE`; see there for the arguments.
    """

    dense1: eqx.nn.Linear
    dense2: eqx.nn.Linear
    convs: tuple[eqx.nn.ConvTranspose2d, ...]
    side: int = eqx.field(static=True)
    bottleneck: int = eqx.field(static=True)

    def __init__(self, grid: int, latent: int, channels: tuple[int, ...], dense: int, *, key: PRNGKeyArray):
        keys = jax.random.split(key, len(channels) + 2)
        self.side = grid // 2 ** len(channels)
        self.bottleneck = channels[-1]
        self.dense1 = eqx.nn.Linear(latent, dense, key=keys[0], dtype=DTYPE)
        self.dense2 = eqx.nn.Linear(dense, channels[-1] * self.side**2, key=keys[1], dtype=DTYPE)
        outs = tuple(reversed(channels[:-1])) + (1,)
        convs = []
        c_in = channels[-1]
        for i, c in enumerate(outs):
            k, p = (4, 1) if i == len(outs) - 1 else (2, 0)
            convs.append(eqx.nn.ConvTranspose2d(c_in, c, k, stride=2, padding=p, key=keys[2 + i], dtype=DTYPE))
            c_in = c
        self.convs = tuple(convs)

    def __call__(self, z: Float[Array, " latent"]) -> Float[Array, "grid grid"]:
        h = jax.nn.elu(self.dense1(z.astype(DTYPE)))
        h = jax.nn.elu(self.dense2(h)).reshape(self.bottleneck, self.side, self.side)
        for conv in self.convs[:-1]:
            h = jax.nn.elu(_conv_transpose(conv, h))
        return jnp.tanh(_conv_transpose(self.convs[-1], h))[0]


class VAE(eqx.Module):
    """Variational autoencoder of easy-axis maps `kx` (Table 1, configurable widths).

    **Arguments:**

    - `grid`: side of the square input in cells (the shipped data: 64); a multiple of
      `2**len(channels)`.
    - `latent`: size of the latent code (mean and log-variance each); the paper: 512.
    - `channels`: output channels of the stride-2 convolutions, first (4 x 4) to last;
      the decoder uses them in reverse. Default `(16, 32, 64, 128, 256)` as in Table 1.
    - `dense`: width of the dense layer after the flatten (and of the decoder's first
      dense layer); the paper: 2048, default 1024.
    - `key`: a `jax.random` key for the initial weights (equinox's distribution, uniform
      in +-1/sqrt(fan_in); drawn with NumPy from the key's data when it is concrete, so
      that building a model compiles nothing).

    `hyperparameters` holds the four constructor arguments as a JSON-ready dict:
    `VAE(**vae.hyperparameters, key=...)` rebuilds the same skeleton.

    ```python
    >>> vae = VAE(grid=16, latent=4, channels=(4, 8), dense=16, key=jax.random.key(0))
    >>> vae.hyperparameters
    {'grid': 16, 'latent': 4, 'channels': [4, 8], 'dense': 16}
    >>> mean, logvar = encode(vae, np.zeros((3, 16, 16)))
    >>> mean.shape, mean.dtype, decode(vae, mean).shape
    ((3, 4), dtype('float32'), (3, 16, 16))

    ```
    """

    encoder: Encoder
    decoder: Decoder
    grid: int = eqx.field(static=True)
    latent: int = eqx.field(static=True)
    channels: tuple[int, ...] = eqx.field(static=True)
    dense: int = eqx.field(static=True)

    def __init__(
        self,
        grid: int = 64,
        latent: int = 32,
        channels=(16, 32, 64, 128, 256),
        dense: int = 1024,
        *,
        key: PRNGKeyArray,
    ):
        self.channels = _channels(channels)
        self.grid = _check_grid(grid, self.channels)
        self.latent = _positive_int("latent", latent)
        self.dense = _positive_int("dense", dense)
        k_enc, k_dec = jax.random.split(key)  # the seeds of the two halves
        layout = (self.grid, self.latent, self.channels, self.dense)
        self.encoder = _build(Encoder, *layout, key=k_enc)
        self.decoder = _build(Decoder, *layout, key=k_dec)

    @property
    def hyperparameters(self) -> dict:
        """Constructor arguments (JSON-ready: ints and lists)."""
        return {"grid": self.grid, "latent": self.latent, "channels": list(self.channels), "dense": self.dense}

    def encode(self, kx: Float[Array, "grid grid"]) -> tuple[Float[Array, " latent"], Float[Array, " latent"]]:
        """One structure -> `(mean, logvar)` (no validation, no batching: see `encode`)."""
        return self.encoder(kx)

    def decode(self, z: Float[Array, " latent"]) -> Float[Array, "grid grid"]:
        """One latent code -> structure (no validation, no batching: see `decode`)."""
        return self.decoder(z)

    def __call__(self, kx: Float[Array, "grid grid"], key: PRNGKeyArray):
        """One structure -> `(reconstruction, mean, logvar)`, decoding `z = mean + exp(logvar/2) eps`."""
        mean, logvar = self.encoder(kx)
        eps = jax.random.normal(key, mean.shape, DTYPE)
        return self.decoder(mean + jnp.exp(0.5 * logvar) * eps), mean, logvar


# ----------------------------------------------------------------------------- validation


def _check_kx(model: VAE, kx, name="kx"):
    if isinstance(kx, jax.core.Tracer):
        arr = kx
    else:
        arr = np.asarray(kx)
        if arr.dtype.kind not in "fiu":
            raise ValueError(f"{name} must be a real array, got dtype {arr.dtype}")
    g = model.grid
    if arr.ndim < 2 or tuple(arr.shape[-2:]) != (g, g):
        raise ValueError(f"{name} must have shape (..., {g}, {g}) to match the model grid, got {tuple(arr.shape)}")
    if is_concrete(arr):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite (it has NaN or inf entries)")
        if arr.size and np.max(np.abs(arr)) > 1 + 1e-6:
            raise ValueError(f"{name} is an easy-axis component: values must lie in [-1, 1], got max |{name}| = {np.max(np.abs(arr)):.6g}")
    return jnp.asarray(arr, DTYPE)


def _check_z(model: VAE, z, name="z"):
    arr = z if isinstance(z, jax.core.Tracer) else np.asarray(z)
    if arr.ndim < 1 or arr.shape[-1] != model.latent:
        raise ValueError(f"{name} must have shape (..., {model.latent}) to match the latent size, got {tuple(arr.shape)}")
    if is_concrete(arr) and not np.all(np.isfinite(np.asarray(arr, dtype=float))):
        raise ValueError(f"{name} must be finite (it has NaN or inf entries)")
    return jnp.asarray(arr, DTYPE)


def _batched(fn, x, core_ndim):
    """Apply the one-sample `fn` over every leading axis of `x` (flattened, one vmap)."""
    lead = x.shape[: x.ndim - core_ndim]
    flat = x.reshape((-1,) + x.shape[x.ndim - core_ndim :])
    out = jax.vmap(fn)(flat)
    return jax.tree_util.tree_map(lambda o: o.reshape(lead + o.shape[1:]), out)


@eqx.filter_jit
def _encode(model, kx):
    return _batched(model.encoder, kx, 2)


@eqx.filter_jit
def _decode(model, z):
    return _batched(model.decoder, z, 1)


def encode(model: VAE, kx: ArrayLike) -> tuple[Float[Array, "*batch latent"], Float[Array, "*batch latent"]]:
    """Mean and log-variance of the latent code of each structure.

    **Arguments:**

    - `model`: a `VAE`.
    - `kx`: easy-axis x-components, shape `(..., grid, grid)`, finite, in [-1, 1]; any
      number of leading batch axes (one vmap).

    **Returns:** `(mean, logvar)`, each float32 of shape `(..., latent)`. Use `mean` as the
    structure's code (the paper's regressor input).
    """
    return _encode(model, _check_kx(model, kx))


def decode(model: VAE, z: ArrayLike) -> Float[Array, "*batch grid grid"]:
    """Structures (kx in [-1, 1], float32, shape `(..., grid, grid)`) from latent codes `z` of shape `(..., latent)`."""
    return _decode(model, _check_z(model, z))


def reconstruct(model: VAE, kx: ArrayLike) -> Float[Array, "*batch grid grid"]:
    """Deterministic reconstruction `decode(encode(kx).mean)` of structures `(..., grid, grid)`."""
    mean, _ = encode(model, kx)
    return _decode(model, mean)


# ----------------------------------------------------------------------------- loss


def kl_divergence(mean: ArrayLike, logvar: ArrayLike) -> Float[Array, "*batch"]:
    """KL(N(mean, exp(logvar)) || N(0, I)) summed over the last (latent) axis.

    `-1/2 sum(1 + logvar - mean^2 - exp(logvar))`, the closed form for diagonal Gaussians.

    ```python
    >>> float(kl_divergence(jnp.array([1.0, 0.0]), jnp.log(jnp.array([1.0, 4.0]))))  # 0.5 + (4 - 1 - ln 4)/2
    1.306852...

    ```
    """
    mean = jnp.asarray(mean, DTYPE)
    logvar = jnp.asarray(logvar, DTYPE)
    return -0.5 * jnp.sum(1.0 + logvar - mean**2 - jnp.exp(logvar), axis=-1)


def vae_loss_terms(model: VAE, batch: dict, key: PRNGKeyArray, *, beta: float = 1.0) -> dict:
    """Batch means of the loss and its two terms: `{"loss", "reconstruction", "kl", "mse"}`.

    `reconstruction` is the per-structure sum of squared errors over the `grid^2` cells,
    `mse` the same divided by `grid^2`, `kl` the `kl_divergence` of the encoder's
    distribution; `loss = reconstruction + beta * kl`. The latent code is sampled once per
    structure with `key` (reparametrisation trick). `batch["kx"]`: shape `(n, grid, grid)`.
    """
    if not isinstance(batch, dict) or "kx" not in batch:
        raise ValueError(f"batch must be a dict with the key 'kx' (structures of shape (n, grid, grid)), got {type(batch).__name__}")
    kx = _check_kx(model, batch["kx"], "batch['kx']")
    if kx.ndim != 3:
        raise ValueError(f"batch['kx'] must have shape (n, {model.grid}, {model.grid}), got {tuple(kx.shape)}")
    mean, logvar = jax.vmap(model.encoder)(kx)
    eps = jax.random.normal(key, mean.shape, DTYPE)
    recon = jax.vmap(model.decoder)(mean + jnp.exp(0.5 * logvar) * eps)
    sse = jnp.sum((recon - kx) ** 2, axis=(-2, -1))
    kl = kl_divergence(mean, logvar)
    rec = jnp.mean(sse)
    kl_mean = jnp.mean(kl)
    return {
        "loss": rec + jnp.asarray(beta, DTYPE) * kl_mean,
        "reconstruction": rec,
        "kl": kl_mean,
        "mse": rec / model.grid**2,
    }


def vae_loss(model: VAE, batch: dict, key: PRNGKeyArray, *, beta: float = 1.0) -> Float[Array, ""]:
    """Training loss of a minibatch: `mean_batch[sum_cells (x_hat - x)^2 + beta KL]` (float32 scalar).

    The signature `loss(model, batch, key)` of the generic trainer; bind `beta` with
    `functools.partial(vae_loss, beta=...)`. See `vae_loss_terms` for the terms.

    ```python
    >>> vae = VAE(grid=16, latent=4, channels=(4, 8), dense=16, key=jax.random.key(0))
    >>> loss = vae_loss(vae, {"kx": np.zeros((2, 16, 16))}, jax.random.key(1))
    >>> loss.shape, loss.dtype, bool(loss > 0)
    ((), dtype('float32'), True)

    ```
    """
    return vae_loss_terms(model, batch, key, beta=beta)["loss"]
