"""Latent time stepper P (Kovacs et al. 2019, Table 2) and its recursive look-ahead loss L_P.

`P(h, c_{i-3}, c_{i-2}, c_{i-1}, c_i) = c~_{i+1}`: the applied field and the last four
latent states (oldest first) give the next latent state, one step = 10 ps.

Input: the in-plane field mu0 H = (mu0 H_x, mu0 H_y) **in tesla**, scaled inside the model
by `1 / field_scale` with `field_scale = 0.05` T (i.e. the input is the field in mT / 50:
the trained range 22 ... 41 mT becomes |h| = 0.44 ... 0.82, the size of the latent
values), then the 4 x 16 past states flattened: 2 + 64 = 66 inputs.

Layers (Table 2): dense 64, 64 (elu), dropout, dense 32, 32 (elu), dropout, dense 16 (elu),
and the output layer of 16 units. The paper's table gives the output layer an elu, which
matches the encoder's latent layer (also elu): both live in (-1, inf). That is the default
(`output="elu"`). `output="linear"` drops the last activation (needed for codes that are
not bounded below, such as the PCA baseline's), and `residual=True` predicts the increment,
`c~_{i+1} = c_i + P(...)`; the choice between them is the training pipeline's (by
validation). The paper's dropout rate is 0.02. With the defaults the stepper has 12 384
parameters.

Look-ahead loss (`lookahead_loss`): the predictor is applied recursively for 8 steps from
the true states `c_{i-3} ... c_i`; step k uses the last four of (true states, predictions
so far) and is compared with `c_{i+k}`:

    L_P = sum_{k=1}^{8} | c_{i+k} - P(h, window of the 4 states before i+k) |_2^2

The paper's printed 7th and 8th terms repeat the inputs `c~_{i+3..i+6}` and compare them
with `c_{i+7}` and then `c_{i+8}` (its listed sum has nine terms): a typo. Here the 8th term
uses the predicted states `c~_{i+4} ... c~_{i+7}`, which is just the recursion continued.
Normalisation: the sum over the look-ahead steps and the latent components, averaged over
the batch (no other factor).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._nn import DTYPE, _array, _build, _check_field, _check_finite, _int_tuple, _positive_int, _rate
from ._nn import count_parameters  # noqa: F401 (used by the docstring example)

__all__ = ["Stepper", "lookahead_loss", "lookahead_loss_terms", "lookahead_windows", "rollout_latent", "FIELD_SCALE"]

#: Field scale of the stepper input, tesla: the network sees mu0 H / 50 mT.
FIELD_SCALE = 0.05
#: Table 2: widths of the hidden dense layers (the output layer has `latent` units).
TABLE2_HIDDEN = (64, 64, 32, 32, 16)
_OUTPUTS = ("elu", "linear")


class Stepper(eqx.Module):
    """Latent predictor after Table 2: `(field, last n_past latent states) -> next latent state`.

    **Arguments:**

    - `latent`: size of a latent state (16).
    - `n_past`: number of past states in the input (the paper: 4, i.e. n = 3).
    - `hidden`: widths of the hidden dense layers (elu), default Table 2's
      `(64, 64, 32, 32, 16)`; a dropout layer follows every second hidden layer except
      the last (after the 2nd and the 4th, as in Table 2).
    - `dropout`: the dropout rate (the paper: 0.02).
    - `output`: activation of the output layer, `"elu"` (Table 2) or `"linear"`.
    - `residual`: predict the increment `c_{i+1} - c_i` instead of `c_{i+1}`.
    - `field_dim`: number of field components in the input (2: in-plane).
    - `field_scale`: tesla; the network sees `field / field_scale` (default 0.05 T).
    - `key`: `jax.random` key of the initial weights (drawn on the host, compiles nothing).

    `model(field, history, key=None)`: `field` `(field_dim,)` in tesla, `history`
    `(n_past, latent)` oldest first -> `(latent,)`, float32; dropout is active with a key
    outside `eqx.nn.inference_mode`. Use `rollout_latent` for whole trajectories.

    ```python
    >>> p = Stepper(key=jax.random.key(0))
    >>> p.hyperparameters["hidden"], count_parameters(p)
    ([64, 64, 32, 32, 16], 12384)
    >>> c = rollout_latent(p, np.array([-0.0246, 0.0043]), np.zeros((4, 16)), 96)
    >>> c.shape, c.dtype
    ((96, 16), dtype('float32'))

    ```
    """

    layers: tuple[eqx.nn.Linear, ...]
    dropouts: tuple[eqx.nn.Dropout, ...]
    latent: int = eqx.field(static=True)
    n_past: int = eqx.field(static=True)
    hidden: tuple[int, ...] = eqx.field(static=True)
    dropout: float = eqx.field(static=True)
    output: str = eqx.field(static=True)
    residual: bool = eqx.field(static=True)
    field_dim: int = eqx.field(static=True)
    field_scale: float = eqx.field(static=True)

    def __init__(
        self,
        latent: int = 16,
        n_past: int = 4,
        hidden=TABLE2_HIDDEN,
        dropout: float = 0.02,
        output: str = "elu",
        residual: bool = False,
        field_dim: int = 2,
        field_scale: float = FIELD_SCALE,
        *,
        key: PRNGKeyArray,
    ):
        self.latent = _positive_int("latent", latent)
        self.n_past = _positive_int("n_past", n_past)
        self.hidden = _int_tuple("hidden", hidden)
        self.dropout = _rate("dropout", dropout)
        if output not in _OUTPUTS:
            raise ValueError(f"output must be one of {_OUTPUTS}, got {output!r}")
        self.output = output
        if not isinstance(residual, bool):
            raise ValueError(f"residual must be True or False, got {residual!r}")
        self.residual = residual
        self.field_dim = _positive_int("field_dim", field_dim)
        if isinstance(field_scale, bool) or not isinstance(field_scale, (int, float)) or not (0 < field_scale < float("inf")):
            raise ValueError(f"field_scale must be a finite number > 0 (tesla), got {field_scale!r}")
        self.field_scale = float(field_scale)
        widths = (self.field_dim + self.n_past * self.latent, *self.hidden, self.latent)

        def make(*, key):
            keys = jax.random.split(key, len(widths) - 1)
            return tuple(eqx.nn.Linear(a, b, key=k, dtype=DTYPE) for a, b, k in zip(widths[:-1], widths[1:], keys))

        self.layers = _build(make, key=key)
        n_drop = sum(1 for i in range(len(self.hidden) - 1) if i % 2 == 1)
        self.dropouts = tuple(eqx.nn.Dropout(self.dropout) for _ in range(n_drop))

    @property
    def hyperparameters(self) -> dict:
        """Constructor arguments (JSON-ready)."""
        return {
            "latent": self.latent,
            "n_past": self.n_past,
            "hidden": list(self.hidden),
            "dropout": self.dropout,
            "output": self.output,
            "residual": self.residual,
            "field_dim": self.field_dim,
            "field_scale": self.field_scale,
        }

    def __call__(
        self, field: Float[Array, " field_dim"], history: Float[Array, "n_past latent"], *, key: PRNGKeyArray | None = None
    ) -> Float[Array, " latent"]:
        history = history.astype(DTYPE)
        h = jnp.concatenate([field.astype(DTYPE) / self.field_scale, history.reshape(-1)])
        keys = (None,) * len(self.dropouts) if key is None else tuple(jax.random.split(key, max(len(self.dropouts), 1)))
        d = 0
        for i, layer in enumerate(self.layers[:-1]):
            h = jax.nn.elu(layer(h))
            if i % 2 == 1 and i < len(self.hidden) - 1:
                h = self.dropouts[d](h, key=keys[d])
                d += 1
        out = self.layers[-1](h)
        if self.output == "elu":
            out = jax.nn.elu(out)
        return history[-1] + out if self.residual else out


# ----------------------------------------------------------------------------- recursion


def _recurse(model: Stepper, field, history, n_steps: int, keys):
    """Predictions `(n_steps, latent)` of one trajectory by `lax.scan`; `keys` `(n_steps,)` or None."""

    def step(window, k):
        nxt = model(field, window, key=k)
        return jnp.concatenate([window[1:], nxt[None]]), nxt

    _, preds = jax.lax.scan(step, history.astype(DTYPE), keys, length=n_steps)
    return preds


def _check_history(model: Stepper, c, name, min_len):
    arr = _array(name, c)
    if arr.ndim < 2 or arr.shape[-1] != model.latent or arr.shape[-2] < min_len:
        raise ValueError(
            f"{name} must have shape (..., {'>= ' if min_len > model.n_past else ''}{min_len}, {model.latent}) "
            f"(at least {model.n_past} past latent states of size {model.latent}), got {tuple(arr.shape)}"
        )
    _check_finite(name, arr)
    return jnp.asarray(arr, DTYPE)


@eqx.filter_jit
def _rollout(model, field, c0, n_steps):
    model = eqx.nn.inference_mode(model)
    lead = jnp.broadcast_shapes(field.shape[:-1], c0.shape[:-2])
    field = jnp.broadcast_to(field, lead + field.shape[-1:]).reshape(-1, field.shape[-1])
    c0 = jnp.broadcast_to(c0, lead + c0.shape[-2:]).reshape(-1, *c0.shape[-2:])
    out = jax.vmap(lambda f, c: _recurse(model, f, c, n_steps, None))(field, c0)
    return out.reshape(lead + out.shape[1:])


def rollout_latent(model: Stepper, field: ArrayLike, c0: ArrayLike, n_steps: int) -> Float[Array, "*batch n_steps latent"]:
    """Integrate in latent space: `n_steps` predicted states after the `n_past` given ones.

    **Arguments:**

    - `model`: a `Stepper` (run in inference mode: no dropout).
    - `field`: mu0 H in tesla, shape `(..., 2)` (or `(..., 3)` with zero z-component).
    - `c0`: the first `n_past` latent states, oldest first, shape `(..., n_past, latent)`
      (e.g. the encoded solver states at 0.01 ... 0.04 ns); its leading axes broadcast
      with those of `field`, so one `c0` serves many fields in one batched rollout.
    - `n_steps`: number of steps to predict (static: one compilation per value).

    **Returns:** float32 `(..., n_steps, latent)`: `c~_{n_past+1}, ...` (the given states
    are not repeated). One `lax.scan` under `jit` and `vmap`; differentiable with respect
    to `field`, `c0` and the model.

    **Raises:** `ValueError` naming the argument for a wrong shape, NaN/inf, a nonzero
    z-field, fewer than `n_past` initial states or `n_steps < 1`.
    """
    n_steps = _positive_int("n_steps", n_steps)
    field = _check_field("field", field, model.field_dim)
    c0 = _check_history(model, c0, "c0", model.n_past)
    if c0.shape[-2] != model.n_past:
        raise ValueError(f"c0 must hold exactly n_past = {model.n_past} latent states (axis -2), got {c0.shape[-2]}")
    try:
        jnp.broadcast_shapes(field.shape[:-1], c0.shape[:-2])
    except ValueError:
        raise ValueError(
            f"the batch axes of field {tuple(field.shape[:-1])} and c0 {tuple(c0.shape[:-2])} do not broadcast"
        ) from None
    return _rollout(model, field, c0, n_steps)


# ----------------------------------------------------------------------------- loss


def lookahead_loss_terms(model: Stepper, batch: dict, key: PRNGKeyArray | None) -> dict:
    """The look-ahead loss and its first and last terms on a minibatch: `{"loss", "first_step", "last_step"}`.

    `batch["field"]`: `(n, 2)` tesla (or `(n, 3)` with zero z); `batch["c"]`: windows
    `(n, n_past + n_ahead, latent)` of true latent states `c_{i-3} ... c_{i+n_ahead}`
    (the paper: 4 + 8 = 12). `loss` = batch mean of the sum over the `n_ahead` recursive
    steps of the squared error (summed over the latent components); `first_step` and
    `last_step` are the batch means of the first and last term. `key` drives the dropout
    (an independent mask per sample and step); `None` runs without dropout.
    """
    if not isinstance(batch, dict) or "field" not in batch or "c" not in batch:
        raise ValueError(
            "batch must be a dict with the keys 'field' ((n, 2) tesla) and 'c' ((n, n_past + n_ahead, latent) windows "
            f"of latent states), got {type(batch).__name__}"
        )
    c = _check_history(model, batch["c"], "batch['c']", model.n_past + 1)
    field = _check_field("batch['field']", batch["field"], model.field_dim)
    if c.ndim != 3 or field.ndim != 2 or field.shape[0] != c.shape[0]:
        raise ValueError(
            f"batch['field'] must have shape (n, {model.field_dim}) and batch['c'] (n, n_past + n_ahead, "
            f"{model.latent}) with the same n, got {tuple(field.shape)} and {tuple(c.shape)}"
        )
    return _lookahead(model, field, c, key)


@eqx.filter_jit
def _lookahead(model, field, c, key):
    n, n_ahead = c.shape[0], c.shape[1] - model.n_past
    if key is None:
        preds = jax.vmap(lambda f, h: _recurse(eqx.nn.inference_mode(model), f, h, n_ahead, None))(field, c[:, : model.n_past])
    else:
        keys = jax.random.split(key, (n, n_ahead))
        preds = jax.vmap(lambda f, h, k: _recurse(model, f, h, n_ahead, k))(field, c[:, : model.n_past], keys)
    sq = jnp.sum((preds - c[:, model.n_past :]) ** 2, axis=-1)  # (n, n_ahead)
    terms = jnp.mean(sq, axis=0)
    return {"loss": jnp.sum(terms), "first_step": terms[0], "last_step": terms[-1]}


def lookahead_loss(model: Stepper, batch: dict, key: PRNGKeyArray | None) -> Float[Array, ""]:
    """The recursive look-ahead loss `L_P` of a minibatch (float32 scalar), the trainer's `loss(model, batch, key)`.

    See the module notes (8th term with the predicted states `c~_{i+4..i+7}`) and
    `lookahead_loss_terms` for the batch layout.

    ```python
    >>> p = Stepper(key=jax.random.key(0))
    >>> batch = {"field": np.full((3, 2), -0.03), "c": np.zeros((3, 12, 16))}
    >>> loss = lookahead_loss(p, batch, jax.random.key(1))
    >>> loss.shape, loss.dtype, bool(loss > 0)
    ((), dtype('float32'), True)

    ```
    """
    return lookahead_loss_terms(model, batch, key)["loss"]


def lookahead_windows(c: ArrayLike, field: ArrayLike, *, n_past: int = 4, n_ahead: int = 8, stride: int = 1) -> dict:
    """Training windows for `lookahead_loss` from latent trajectories (NumPy, float32).

    **Arguments:**

    - `c`: latent trajectories `(n_traj, n_times, latent)` (encoded states every 10 ps).
    - `field`: the field of each trajectory `(n_traj, k)` (tesla; `k` = 2, or 3 as in the
      dataset's `b_ext`).
    - `n_past`, `n_ahead`: window length `n_past + n_ahead` (the paper: 4 + 8 = 12).
    - `stride`: time steps between the starts of consecutive windows.

    **Returns:** `{"field": (n_windows, k), "c": (n_windows, n_past + n_ahead, latent)}`,
    trajectory by trajectory, windows starting at time index 0, `stride`, ... while they
    fit: `(n_times - n_past - n_ahead) // stride + 1` per trajectory.

    ```python
    >>> c = np.arange(2 * 14 * 1, dtype=float).reshape(2, 14, 1)
    >>> w = lookahead_windows(c, [[-0.03, 0.0], [-0.04, 0.0]], stride=2)
    >>> w["c"].shape, w["field"].shape, w["c"][1, :, 0].tolist()
    ((4, 12, 1), (4, 2), [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0])

    ```
    """
    c = np.asarray(c)
    field = np.asarray(field)
    n_past, n_ahead, stride = (_positive_int(k, v) for k, v in (("n_past", n_past), ("n_ahead", n_ahead), ("stride", stride)))
    length = n_past + n_ahead
    if c.ndim != 3 or c.shape[1] < length:
        raise ValueError(
            f"c must have shape (n_traj, n_times, latent) with n_times >= n_past + n_ahead = {length}, got {c.shape}"
        )
    if field.ndim != 2 or field.shape[0] != c.shape[0]:
        raise ValueError(f"field must have shape (n_traj, k) with the n_traj = {c.shape[0]} of c, got {field.shape}")
    _check_finite("c", c)
    _check_finite("field", field)
    starts = np.arange(0, c.shape[1] - length + 1, stride)
    idx = starts[:, None] + np.arange(length)  # (n_windows_per_traj, length)
    windows = c[:, idx]  # (n_traj, w, length, latent)
    return {
        "field": np.repeat(field, len(starts), axis=0).astype(np.float32),
        "c": windows.reshape(-1, length, c.shape[-1]).astype(np.float32),
    }
