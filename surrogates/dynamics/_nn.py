"""Shared pieces of the dynamics models: float32, host-side initialisation, patchwise
stride-2 convolutions as einsums, argument checks, parameter counts.

The same ideas as in `invdesign_surrogates.hysteresis._vae` (kept here so that the two
surrogate packages do not import each other's private modules):

- `eqx.nn` layers default to float64 once `import invdesign` has enabled x64, so every
  layer is built with `dtype=float32` explicitly;
- `_build` draws the initial weights with NumPy from the key's data (equinox's own
  distribution, uniform in +-1/sqrt(fan_in)): eager initialisation would compile one
  random kernel per layer shape;
- 2 x 2 stride-2 (transposed) convolutions run as a reshape and one einsum: XLA's CPU
  backward pass of strided convolutions is several times slower.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from invdesign._validate import is_concrete

DTYPE = jnp.float32


def _positive_int(name, value, minimum=1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _int_tuple(name, value, minimum=1, length=None) -> tuple[int, ...]:
    try:
        items = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be a non-empty sequence of ints >= {minimum}, got {value!r}") from None
    if not items or (length is not None and len(items) != length):
        what = f"{length} ints" if length is not None else "a non-empty sequence of ints"
        raise ValueError(f"{name} must be {what} >= {minimum}, got {value!r}")
    return tuple(_positive_int(name, v, minimum) for v in items)


def _rate(name, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not (0 <= value < 1):
        raise ValueError(f"{name} must be a dropout rate in [0, 1), got {value!r}")
    return float(value)


def _host_rng(key):
    """A NumPy generator seeded by the data of a concrete `jax.random` key; None under a trace."""
    if isinstance(key, jax.core.Tracer):
        return None
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.random.default_rng([int(v) for v in np.asarray(data).ravel()])


def _is_layer(x) -> bool:
    return isinstance(x, (eqx.nn.Linear, eqx.nn.Conv, eqx.nn.ConvTranspose))


def _build(fn, *args, key, **kwargs):
    """`fn(*args, key=key, **kwargs)` with the layer weights drawn by NumPy when `key` is concrete.

    Weights and biases uniform in +-1/sqrt(fan_in) (equinox's initialiser), drawn from
    `_host_rng(key)` in the order of the layers. Under a trace equinox's own initialiser
    runs.
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


def _stride2(layer, kernel: int, padding: int) -> bool:
    """A `kernel` x `kernel` stride-2 layer padded by `padding` (no dilation, groups or output padding)."""
    return (
        layer.kernel_size == (kernel, kernel)
        and layer.stride == (2, 2)
        and layer.padding == ((padding, padding), (padding, padding))
        and getattr(layer, "output_padding", (0, 0)) == (0, 0)
        and layer.dilation == (1, 1)
        and layer.groups == 1
    )


def _patchwise(layer) -> bool:
    """A 2 x 2 kernel with stride 2 and no padding: the windows tile the image (no overlap)."""
    return _stride2(layer, 2, 0)


def _conv(layer: eqx.nn.Conv2d, x):
    """`layer(x)` for `x` of shape `(c, n, m)`; a 2 x 2 stride-2 kernel as a reshape and one einsum."""
    if _patchwise(layer):
        c, n, m = x.shape
        patches = x.reshape(c, n // 2, 2, m // 2, 2)
        y = jnp.einsum("ciajb,ocab->oij", patches, layer.weight)
        return y if layer.bias is None else y + layer.bias
    return layer(x)


def _subpixel(layer) -> bool:
    """A 4 x 4 transposed kernel with stride 2 and padding 1 (the decoder's last layer)."""
    return _stride2(layer, 4, 1)


# Output phase a (row 2m + a) of a 4 x 4 stride-2 padding-1 transposed convolution reads
# input rows m - 1 + d for (d, t) below, with tap t of the flipped kernel: row 2m gets
# x[m-1] w[3] + x[m] w[1], row 2m + 1 gets x[m] w[2] + x[m+1] w[0] (d counts from m - 1).
_PHASE_TAPS = {0: ((0, 3), (1, 1)), 1: ((1, 2), (2, 0))}


def _subpixel_kernel(weight):
    """The `(4 c_out, c_in, 3, 3)` kernel of the ordinary 3 x 3 convolution whose output
    channels are the four output phases (a, b) of the transposed layer's `weight`."""
    wf = weight[:, :, ::-1, ::-1]
    k = jnp.zeros((2, 2, *wf.shape[:2], 3, 3), wf.dtype)
    for a, rows in _PHASE_TAPS.items():
        for b, cols in _PHASE_TAPS.items():
            for dr, tr in rows:
                for dc, tc in cols:
                    k = k.at[a, b, :, :, dr, dc].set(wf[:, :, tr, tc])
    return k.reshape(4 * wf.shape[0], wf.shape[1], 3, 3)


def _conv_transpose(layer: eqx.nn.ConvTranspose2d, x):
    """`layer(x)` for `x` of shape `(c, n, m)` (equinox flips the kernel).

    A 2 x 2 stride-2 kernel (no overlap) runs as one einsum; a 4 x 4 stride-2 padding-1
    kernel as one ordinary 3 x 3 convolution with the four output phases as channels, then
    interleaved (sub-pixel form): the same sums, 2.5x faster than XLA's transposed
    convolution on the CPU for the decoder's last layer."""
    if _patchwise(layer):
        c_out, _, k, _ = layer.weight.shape
        w = layer.weight[:, :, ::-1, ::-1]
        y = jnp.einsum("cij,ocab->oiajb", x, w).reshape(c_out, x.shape[1] * k, x.shape[2] * k)
        return y if layer.bias is None else y + layer.bias
    if _subpixel(layer):
        c_out = layer.weight.shape[0]
        _, n, m = x.shape
        y = jax.lax.conv_general_dilated(x[None], _subpixel_kernel(layer.weight), (1, 1), ((1, 1), (1, 1)),
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))[0]
        y = y.reshape(2, 2, c_out, n, m).transpose(2, 3, 0, 4, 1).reshape(c_out, 2 * n, 2 * m)
        return y if layer.bias is None else y + layer.bias
    return layer(x)


def count_parameters(model) -> int:
    """Number of trained scalars of a model: the sizes of its floating array leaves.

    Works on a model and on an `eqx.filter_eval_shape` skeleton. Dropout rates (Python
    floats) are not counted.

    ```python
    >>> import jax
    >>> count_parameters(eqx.filter_eval_shape(eqx.nn.Linear, 66, 64, key=jax.random.key(0)))  # 66 * 64 + 64
    4288

    ```
    """
    leaves = jax.tree_util.tree_leaves(model)
    return int(
        sum(
            np.prod(x.shape, dtype=np.int64)
            for x in leaves
            if isinstance(x, (jax.Array, np.ndarray, jax.ShapeDtypeStruct)) and jnp.issubdtype(x.dtype, jnp.floating)
        )
    )


# ----------------------------------------------------------------------------- checks


def _array(name, value):
    """`value` as an array (a tracer passes through); real dtype checked on concrete input."""
    if isinstance(value, jax.core.Tracer):
        return value
    arr = np.asarray(value) if not isinstance(value, jax.Array) else value
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be a real array, got dtype {arr.dtype}")
    return arr


def _check_finite(name, arr):
    if is_concrete(arr) and not bool(np.all(np.isfinite(np.asarray(arr, dtype=np.float64)))):
        raise ValueError(f"{name} must be finite (it has NaN or inf entries)")


def _check_field(name, field, field_dim):
    """In-plane field `(..., field_dim)` in tesla; `(..., 3)` is accepted when `field_dim == 2` and its z-component is 0."""
    arr = _array(name, field)
    if arr.ndim < 1 or arr.shape[-1] not in (field_dim, 3):
        raise ValueError(
            f"{name} must have shape (..., {field_dim}) (mu0 H in tesla) or (..., 3) with a zero z-component, "
            f"got {tuple(arr.shape)}"
        )
    _check_finite(name, arr)
    if arr.shape[-1] == 3 and field_dim == 2:
        if is_concrete(arr) and bool(np.any(np.asarray(arr)[..., 2] != 0)):
            raise ValueError(f"{name} must be in-plane: the model has no input for a z-component, got nonzero mu0 H_z")
        arr = arr[..., :2]
    elif arr.shape[-1] != field_dim:
        raise ValueError(f"{name} must have shape (..., {field_dim}) (mu0 H in tesla), got {tuple(arr.shape)}")
    return jnp.asarray(arr, DTYPE)


def _batched(fn, x, core_ndim):
    """Apply the one-sample `fn` over every leading axis of `x` (flattened, one vmap)."""
    lead = x.shape[: x.ndim - core_ndim]
    flat = x.reshape((-1,) + x.shape[x.ndim - core_ndim :])
    out = jax.vmap(fn)(flat)
    return jax.tree_util.tree_map(lambda o: o.reshape(lead + o.shape[1:]), out)
