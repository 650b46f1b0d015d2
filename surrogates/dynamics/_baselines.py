"""Baselines the dynamics surrogate must beat: a linear compression (PCA / POD) and a lookup.

(a) **PCA / POD with 16 modes** (`fit_pca`, `pca_encode`, `pca_decode`): the flattened
states `x` (length D = nx * ny * 3) of the training split are centred on their mean and the
leading right singular vectors of the centred snapshot matrix are the modes (the proper
orthogonal decomposition; Eckart-Young: no other linear map to `n_modes` numbers and back
reconstructs the training states with a smaller sum of squared errors). The codes are the
mode amplitudes divided by their standard deviation over the training states (each code
has unit variance on the training split, the size the stepper's dense layers expect):

    c = (x - mean) @ modes.T / scale,     x~ = mean + (c * scale) @ modes

Fitted in float64 (an exact SVD for small problems, else a randomized range finder with
power iterations that reads the states in row chunks, so the 20 000 x 49 152 training
matrix is never copied), stored and applied in float32. PCA codes are unbounded, so the
stepper that integrates them needs `output="linear"` (and possibly `residual=True`); the
`Stepper` class and `lookahead_loss` are otherwise the same.

(b) **Lookup** (`fit_lookup`, `lookup_predict`): <m>(t) of a new field is the inverse-
distance weighted mean of the curves of the `k` nearest training fields (default 4,
weights `1 / d^2`), `d` the Euclidean distance in the (mu0 H_x, mu0 H_y) plane. At a
training field (d < 1 nT) it returns that field's curve exactly. Inverse-distance
weighting rather than linear interpolation on a triangulation: it is defined everywhere
(also outside the convex hull of the training fields, where the held-out SP4 fields may
fall), and it is a differentiable JAX function of the field.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._nn import DTYPE, _array, _check_field, _check_finite, _positive_int

__all__ = ["PCA", "fit_pca", "pca_encode", "pca_decode", "Lookup", "fit_lookup", "lookup_predict"]

_METHODS = ("auto", "exact", "randomized")
#: Largest min(n, D) fitted by the exact SVD with method="auto".
_EXACT_LIMIT = 1024


class PCA(eqx.Module):
    """Linear compression of states of shape `shape` to `n_modes` codes (see the module notes).

    `PCA(shape, n_modes)` is a zero skeleton (for `load_model`); `fit_pca` fits one.
    Arrays (float32): `mean` `(D,)`, `modes` `(n_modes, D)` (orthonormal rows),
    `variance` `(n_modes,)` (variance of each mode's amplitude over the training states),
    `total_variance` `()` (sum over all D directions), `scale` `(n_modes,)` (the code unit:
    `sqrt(variance)`, 1 for modes of zero variance). `explained` is the fraction
    `sum(variance) / total_variance`.
    """

    mean: Float[Array, " D"]
    modes: Float[Array, "n_modes D"]
    variance: Float[Array, " n_modes"]
    total_variance: Float[Array, ""]
    scale: Float[Array, " n_modes"]
    shape: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, shape, n_modes: int, *, mean=None, modes=None, variance=None, total_variance=None):
        self.shape = tuple(_positive_int("shape", s) for s in shape)
        k = _positive_int("n_modes", n_modes)
        d = int(np.prod(self.shape))
        self.mean = jnp.zeros(d, DTYPE) if mean is None else jnp.asarray(mean, DTYPE)
        self.modes = jnp.zeros((k, d), DTYPE) if modes is None else jnp.asarray(modes, DTYPE)
        var = np.zeros(k) if variance is None else np.asarray(variance, np.float64)
        self.variance = jnp.asarray(var, DTYPE)
        self.total_variance = jnp.asarray(0.0 if total_variance is None else total_variance, DTYPE)
        tiny = 1e-12 * max(float(np.max(var, initial=0.0)), 1e-300)
        self.scale = jnp.asarray(np.where(var > tiny, np.sqrt(np.maximum(var, 0.0)), 1.0), DTYPE)
        if self.mean.shape != (d,) or self.modes.shape != (k, d) or self.variance.shape != (k,):
            raise ValueError(
                f"PCA arrays must have shapes mean ({d},), modes ({k}, {d}), variance ({k},), got "
                f"{self.mean.shape}, {self.modes.shape}, {self.variance.shape}"
            )

    @property
    def n_modes(self) -> int:
        """Number of modes (codes per state)."""
        return self.modes.shape[0]

    @property
    def hyperparameters(self) -> dict:
        """`{"shape": [...], "n_modes": k}`: `PCA(**hyperparameters)` is a skeleton of the same structure."""
        return {"shape": list(self.shape), "n_modes": self.n_modes}

    @property
    def explained(self) -> float:
        """Fraction of the training states' variance captured by the modes."""
        return float(jnp.sum(self.variance) / self.total_variance)


def _rows(states, n, chunk):
    for start in range(0, n, chunk):
        block = np.asarray(states[start : start + chunk], dtype=np.float64).reshape(min(chunk, n - start), -1)
        if not np.all(np.isfinite(block)):
            raise ValueError(f"states must be finite (NaN or inf in rows {start} ... {start + len(block) - 1})")
        yield start, block


def _orient(vt):
    """Fix the sign of each row: its entry of largest magnitude is positive."""
    idx = np.argmax(np.abs(vt), axis=1)
    signs = np.sign(vt[np.arange(len(vt)), idx])
    return vt * np.where(signs == 0, 1.0, signs)[:, None]


def fit_pca(
    states: ArrayLike,
    n_modes: int = 16,
    *,
    method: str = "auto",
    power_iterations: int = 3,
    oversample: int = 10,
    seed: int = 0,
    chunk: int = 512,
) -> PCA:
    """Fit a PCA / POD of `states` (training split only) with `n_modes` modes.

    **Arguments:**

    - `states`: shape `(n, *shape)`, `n >= 2`, e.g. the training states `(n, 256, 64, 3)`;
      any array-like that can be sliced along the first axis (NumPy, memmap, xarray).
    - `n_modes`: number of modes, `1 <= n_modes <= min(n, D)`, `D = prod(shape)`.
    - `method`: `"exact"` (SVD of the whole centred matrix in float64), `"randomized"`
      (range finder with `power_iterations` power iterations and `oversample` extra
      directions, seeded by `seed`, reading `chunk` rows at a time) or `"auto"` (exact
      when `min(n, D) <= 1024`).

    **Returns:** a `PCA` (float32 arrays).

    **Raises:** `ValueError` naming the argument for a wrong shape, NaN/inf or a bad
    setting.

    ```python
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(50, 4, 2, 3)) @ np.diag([3.0, 1.0, 0.1])  # 24 numbers a state
    >>> pca = fit_pca(x, 24)
    >>> float(np.max(np.abs(pca_decode(pca, pca_encode(pca, x)) - x))) < 1e-5  # full rank: exact
    True
    >>> pca2 = fit_pca(x, 8)
    >>> pca_encode(pca2, x).shape, round(pca2.explained, 2)
    ((50, 8), 0.92)

    ```
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    shape = np.shape(states)
    if len(shape) < 2 or shape[0] < 2:
        raise ValueError(f"states must have shape (n, *state_shape) with n >= 2 states, got {tuple(shape)}")
    n, d = int(shape[0]), int(np.prod(shape[1:]))
    k = _positive_int("n_modes", n_modes)
    if k > min(n, d):
        raise ValueError(f"n_modes must be <= min(number of states, state size) = {min(n, d)}, got {k}")
    chunk = _positive_int("chunk", chunk)
    power_iterations = _positive_int("power_iterations", power_iterations, 0)
    oversample = _positive_int("oversample", oversample, 0)
    if method == "exact" or (method == "auto" and min(n, d) <= _EXACT_LIMIT):
        x = np.concatenate([b for _, b in _rows(states, n, chunk)])
        mean = x.mean(axis=0)
        x -= mean
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        total = float(np.sum(s**2))
        s, vt = s[:k], vt[:k]
    else:
        mean = np.zeros(d)
        for _, b in _rows(states, n, chunk):
            mean += b.sum(axis=0)
        mean /= n
        width = min(k + oversample, n, d)
        rng = np.random.default_rng(seed)

        def times(v):  # (x - mean) @ v, (n, width)
            out = np.empty((n, v.shape[1]))
            for start, b in _rows(states, n, chunk):
                out[start : start + len(b)] = (b - mean) @ v
            return out

        def times_t(u):  # (x - mean).T @ u, (D, width)
            out = np.zeros((d, u.shape[1]))
            for start, b in _rows(states, n, chunk):
                out += (b - mean).T @ u[start : start + len(b)]
            return out

        q = np.linalg.qr(times(rng.standard_normal((d, width))))[0]
        for _ in range(power_iterations):
            z = np.linalg.qr(times_t(q))[0]
            q = np.linalg.qr(times(z))[0]
        b_small = times_t(q).T  # q.T @ (x - mean), (width, D)
        _, s, vt = np.linalg.svd(b_small, full_matrices=False)
        s, vt = s[:k], vt[:k]
        total = 0.0
        for _, b in _rows(states, n, chunk):
            total += float(np.sum((b - mean) ** 2))
    return PCA(shape[1:], k, mean=mean, modes=_orient(vt), variance=s**2 / (n - 1), total_variance=total / (n - 1))


def _check_states(pca: PCA, x, name):
    arr = _array(name, x)
    nd = len(pca.shape)
    if arr.ndim < nd or tuple(arr.shape[arr.ndim - nd :]) != pca.shape:
        raise ValueError(f"{name} must have shape (..., {', '.join(map(str, pca.shape))}), got {tuple(arr.shape)}")
    _check_finite(name, arr)
    return jnp.asarray(arr, DTYPE)


@jax.jit
def _pca_encode(pca, x):
    flat = x.reshape(x.shape[: x.ndim - len(pca.shape)] + (-1,))
    return ((flat - pca.mean) @ pca.modes.T) / pca.scale


@jax.jit
def _pca_decode(pca, c):
    flat = pca.mean + (c * pca.scale) @ pca.modes
    return flat.reshape(c.shape[:-1] + pca.shape)


def pca_encode(pca: PCA, m: ArrayLike) -> Float[Array, "*batch n_modes"]:
    """Codes `(..., n_modes)` (float32, unit variance over the training states) of states `m` `(..., *pca.shape)`."""
    return _pca_encode(pca, _check_states(pca, m, "m"))


def pca_decode(pca: PCA, c: ArrayLike) -> Float[Array, "*batch ..."]:
    """States `(..., *pca.shape)` (float32; the projection of the original onto the modes) of codes `c` `(..., n_modes)`."""
    arr = _array("c", c)
    if arr.ndim < 1 or arr.shape[-1] != pca.n_modes:
        raise ValueError(f"c must have shape (..., {pca.n_modes}) to match the number of modes, got {tuple(arr.shape)}")
    _check_finite("c", arr)
    return _pca_decode(pca, jnp.asarray(arr, DTYPE))


# ----------------------------------------------------------------------------- lookup


class Lookup(eqx.Module):
    """Training fields `(n, 2)` (tesla) and their curves `(n, *curve)` (float32) for `lookup_predict`; built by `fit_lookup`."""

    fields: Float[Array, "n 2"]
    curves: Float[Array, "n ..."]
    k: int = eqx.field(static=True)
    power: float = eqx.field(static=True)


#: Distance (tesla) below which a field counts as the training field itself.
_SAME_FIELD = 1e-9


def fit_lookup(fields: ArrayLike, curves: ArrayLike, *, k: int = 4, power: float = 2.0) -> Lookup:
    """The lookup baseline: training fields and their <m>(t) curves (see the module notes).

    **Arguments:**

    - `fields`: mu0 H of the training trajectories in tesla, `(n, 2)` or `(n, 3)` with zero
      z-component (the dataset's `b_ext`).
    - `curves`: what to interpolate, `(n, ...)`, e.g. <m>(t) `(n, n_times, 3)` (`m_avg`).
    - `k`: number of nearest training fields averaged, `1 <= k <= n`.
    - `power`: exponent of the inverse-distance weights `d^-power`, > 0.

    **Returns:** a `Lookup`.

    ```python
    >>> fields = np.array([[-0.03, 0.0], [-0.03, 0.01], [-0.04, 0.0]])
    >>> curves = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    >>> look = fit_lookup(fields, curves, k=3)
    >>> lookup_predict(look, fields[1]).tolist()  # a training field: its own curve
    [2.0, 3.0]
    >>> print(np.asarray(lookup_predict(look, [-0.035, 0.0])).round(4))  # equidistant from 1st and 3rd
    [2. 3.]

    ```
    """
    f = _check_field("fields", fields, 2)
    c = _array("curves", curves)
    if f.ndim != 2:
        raise ValueError(f"fields must have shape (n, 2) (or (n, 3) with zero z), got {tuple(np.shape(fields))}")
    if c.ndim < 1 or c.shape[0] != f.shape[0]:
        raise ValueError(f"curves must have shape (n, ...) with the n = {f.shape[0]} fields first, got {tuple(c.shape)}")
    _check_finite("curves", c)
    k = _positive_int("k", k)
    if k > f.shape[0]:
        raise ValueError(f"k must be <= the number of training fields {f.shape[0]}, got {k}")
    if isinstance(power, bool) or not isinstance(power, (int, float)) or not (0 < power < np.inf):
        raise ValueError(f"power must be a finite number > 0, got {power!r}")
    return Lookup(fields=f, curves=jnp.asarray(c, DTYPE), k=k, power=float(power))


@jax.jit
def _lookup_one(look: Lookup, field):
    d2 = jnp.sum((look.fields - field) ** 2, axis=-1)
    neg, idx = jax.lax.top_k(-d2, look.k)
    d2k = -neg
    exact = d2k[0] <= _SAME_FIELD**2
    w = jnp.where(exact, 1.0, d2k) ** (-0.5 * look.power)
    w = jnp.where(exact, jnp.zeros_like(w).at[0].set(1.0), w / jnp.sum(w))
    return jnp.tensordot(w.astype(DTYPE), look.curves[idx], axes=1)


def lookup_predict(look: Lookup, field: ArrayLike) -> Float[Array, "*batch ..."]:
    """Curves of new fields `(..., 2)` (tesla; or `(..., 3)` with zero z) by inverse-distance weighting, `(..., *curve)` float32."""
    f = _check_field("field", field, 2)
    out = jax.vmap(_lookup_one, in_axes=(None, 0))(look, f.reshape(-1, 2))
    return out.reshape(f.shape[:-1] + out.shape[1:])
