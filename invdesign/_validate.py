"""Input validation that names the offending argument.

Checks run only on concrete values: inside `jit`/`grad` traces the arrays are abstract and
the checks are skipped (validate at the boundary, where users call with numbers). The one
exception is `traced_error_if`, which the field functions (`invdesign.fields`) use to keep
their few cheap checks (loop radius > 0, finite currents, a nonzero normal) under `jit`:
there `equinox.error_if` raises at run time with the same message.
"""

from __future__ import annotations

import jax
import numpy as np


def is_concrete(*values) -> bool:
    """True when none of the values is a JAX tracer."""
    return not any(isinstance(v, jax.core.Tracer) for v in jax.tree_util.tree_leaves(values))


def _arr(value, name: str = "value", asarray=np.asarray):
    """`asarray(value, dtype=float)`; TypeError naming `name` if `value` is not numeric."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real number or an array of them, got {value!r}")
    try:
        return asarray(value, dtype=float)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be a real number or an array of them, got {value!r} ({e})") from None


def as_float(name: str, value):
    """`value` as a float64 JAX array; TypeError naming `name` if it is not numeric."""
    import jax.numpy as jnp

    if isinstance(value, jax.core.Tracer):
        return jnp.asarray(value, dtype=float)
    return _arr(value, name, jnp.asarray)


def check_int(name: str, value, minimum: int | None = None) -> int:
    """`value` as a Python int: TypeError unless an integer (bools and 2.5 refused), ValueError below `minimum`."""
    import numbers

    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def traced_error_if(x, pred, message: str):
    """`equinox.error_if(x, pred, message)` when `pred` is traced (under `jit`), else `x` unchanged.

    For concrete inputs the eager checks above have already raised; this keeps the same check
    alive inside a compiled function (a run-time error naming the argument instead of a
    silently wrong result).
    """
    if is_concrete(pred):
        return x
    import equinox as eqx

    return eqx.error_if(x, pred, message)


def check_finite(name: str, value) -> None:
    """Raise ValueError if `value` has NaN or inf entries."""
    if not is_concrete(value):
        return
    a = _arr(value, name)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got {a if a.size < 8 else 'an array with NaN/inf entries'}")


def check_positive(name: str, value) -> None:
    """Raise ValueError unless every entry of `value` is finite and > 0."""
    if not is_concrete(value):
        return
    check_finite(name, value)
    a = _arr(value, name)
    if np.any(a <= 0):
        raise ValueError(f"{name} must be > 0, got {a if a.size < 8 else a.min()} (allowed range: (0, inf))")


def check_vectors(name: str, value) -> None:
    """Raise ValueError unless `value` has a trailing axis of length 3 and is finite."""
    shape = np.shape(value)
    if len(shape) == 0 or shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., 3), got shape {shape}")
    check_finite(name, value)


def check_nonzero_vectors(name: str, value) -> None:
    """Raise ValueError unless every 3-vector in `value` has nonzero length."""
    check_vectors(name, value)
    if not is_concrete(value):
        return
    if np.any(np.linalg.norm(_arr(value, name), axis=-1) == 0):
        raise ValueError(f"{name} must be nonzero vectors (a direction), got a zero vector")


def broadcast_shapes(**named_shapes) -> tuple:
    """np.broadcast_shapes with an error naming the arguments that do not match."""
    try:
        return np.broadcast_shapes(*named_shapes.values())
    except ValueError:
        desc = ", ".join(f"{k} {v}" for k, v in named_shapes.items())
        raise ValueError(f"shapes do not broadcast: {desc}") from None


def check_shape(value, n: int, name: str = "shape") -> tuple:
    """`value` as a tuple of `n` positive ints (bools and non-integers refused)."""
    import numbers

    labels = ("nx", "ny", "nz")[:n]
    want = f"{n} positive integers ({', '.join(labels)})"
    try:
        items = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be {want}, got {value!r}") from None
    if len(items) != n or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) and v >= 1 for v in items
    ):
        raise ValueError(f"{name} must be {want}, got {value!r}")
    return tuple(int(v) for v in items)


def check_cell(value, n: int, name: str = "cell", allow_extra: bool = False) -> tuple:
    """`value` as a tuple of `n` finite cell sizes > 0 in metres (one more ignored if `allow_extra`)."""
    labels = ("dx", "dy", "dz")[:n]
    want = f"{n} cell sizes ({', '.join(labels)}) in metres"
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {want}, got {value!r}") from None
    sizes = (n, n + 1) if allow_extra else (n,)
    if arr.ndim != 1 or arr.size not in sizes:
        raise ValueError(f"{name} must be {want}, got {value!r}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} sizes must be finite and > 0 (metres), got {value!r} (allowed range: (0, inf))")
    return tuple(float(v) for v in arr[:n])
