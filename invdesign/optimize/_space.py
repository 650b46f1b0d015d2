"""Design spaces: named parameters with bounds, units and optional log scale.

A `DesignSpace` maps between three representations of a design point:

- the **physical** parameter dict `{name: value}` in SI units (what forward models take);
- the **unconstrained** vector `u` in R^d used by the gradient driver, through the smooth
  reparametrisation `x = lo + (hi - lo) * sigmoid(u)` (in `log x` when `log=True`), so any
  `u` is inside the bounds;
- the **box-normalised** vector `z` in [0, 1]^d used by pymoo, `x = lo + (hi - lo) * z`
  (again in `log x` when `log=True`, so the search samples decades uniformly).

All maps are pure `jax.numpy` functions: they trace under `jit`, `grad` and `vmap`, and
accept batches (a leading batch shape on vectors, arrays of that shape in dicts).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._types import BatchScalar, Scalar, Vector
from .._validate import check_int, is_concrete

__all__ = ["Parameter", "DesignSpace"]

DesignVectors = Float[Array, "*batch d"]
"""Design points as vectors: the last axis holds the ``d`` parameters in space order."""

DesignVectorsLike = Float[ArrayLike, "*batch d"]

_EPS = 1e-12
"""Distance from 0 and 1 at which normalised coordinates are clipped before a logit."""


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One named design parameter with physical bounds.

    **Arguments:**

    - `name`: identifier, unique within a design space (a valid dataset variable name).
    - `lower`, `upper`: finite bounds in SI units, `lower < upper`.
    - `units`: SI units string, e.g. `"m"`, `"A"` (`""` for dimensionless).
    - `long_name`: human-readable description for plots and dataset attrs.
    - `log`: search in `log(x)`; needs `lower > 0`.
    - `initial`: optional starting value for the gradient driver, inside the bounds.

    **Example:**

    ```python
    radius = Parameter("radius", 1e-4, 1e-2, "m", long_name="coil radius", log=True)
    ```
    """

    name: str
    lower: float
    upper: float
    units: str
    long_name: str = ""
    log: bool = False
    initial: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"Parameter name must be a Python identifier string, got {self.name!r}")
        for arg in ("lower", "upper"):
            value = getattr(self, arg)
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"Parameter {self.name!r}: {arg} must be a real number, got {value!r}") from None
            if not math.isfinite(value):
                raise ValueError(f"Parameter {self.name!r}: {arg} must be finite, got {value}")
            object.__setattr__(self, arg, value)
        if not self.lower < self.upper:
            raise ValueError(
                f"Parameter {self.name!r}: lower must be < upper, got lower={self.lower} >= upper={self.upper}"
            )
        if not isinstance(self.units, str):
            raise TypeError(f"Parameter {self.name!r}: units must be a string, got {self.units!r}")
        object.__setattr__(self, "log", bool(self.log))
        if self.log and self.lower <= 0:
            raise ValueError(
                f"Parameter {self.name!r}: log=True needs lower > 0 (allowed range (0, inf)), got lower={self.lower}"
            )
        if self.initial is not None:
            initial = float(self.initial)
            if not (math.isfinite(initial) and self.lower <= initial <= self.upper):
                raise ValueError(
                    f"Parameter {self.name!r}: initial must lie in [lower, upper] = "
                    f"[{self.lower}, {self.upper}], got {initial}"
                )
            object.__setattr__(self, "initial", initial)

    @property
    def center(self) -> float:
        """Midpoint of the box-normalised range (geometric mean when `log=True`)."""
        if self.log:
            return math.sqrt(self.lower * self.upper)
        return 0.5 * (self.lower + self.upper)


class DesignSpace:
    """An ordered set of `Parameter`s and the maps between parameter representations.

    **Arguments:**

    - `parameters`: sequence of `Parameter` with unique names; the order fixes the vector
      layout used by `to_vector`, `to_unit`, `to_unconstrained`.

    **Example:**

    ```python
    space = DesignSpace([Parameter("x", -1.0, 1.0, "m"), Parameter("I", 1.0, 100.0, "A", log=True)])
    u = space.to_unconstrained({"x": 0.5, "I": 10.0})   # shape (2,)
    space.from_unconstrained(u)                         # {"x": 0.5, "I": 10.0}
    ```
    """

    def __init__(self, parameters: Sequence[Parameter]):
        parameters = tuple(parameters)
        if len(parameters) == 0:
            raise ValueError("parameters must contain at least one Parameter")
        for p in parameters:
            if not isinstance(p, Parameter):
                raise TypeError(f"parameters must be Parameter instances, got {type(p).__name__}: {p!r}")
        names = [p.name for p in parameters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"parameters: duplicate parameter names {dupes}")
        self.parameters: tuple[Parameter, ...] = parameters
        self.names: tuple[str, ...] = tuple(names)
        self.lower = np.array([p.lower for p in parameters])
        self.upper = np.array([p.upper for p in parameters])
        self.log = np.array([p.log for p in parameters])
        # Bounds of the coordinate actually searched: x or log(x).
        self._lo = np.where(self.log, np.log(np.where(self.log, self.lower, 1.0)), self.lower)
        self._hi = np.where(self.log, np.log(np.where(self.log, self.upper, 1.0)), self.upper)

    # -- container protocol -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self.parameters)

    def __getitem__(self, name: str) -> Parameter:
        try:
            return self.parameters[self.names.index(name)]
        except ValueError:
            raise KeyError(f"unknown parameter {name!r}; parameters are {list(self.names)}") from None

    def __repr__(self) -> str:
        return f"DesignSpace({list(self.parameters)!r})"

    # -- validation ---------------------------------------------------------------------
    def check_names(self, params: Mapping[str, Any], argument: str = "params", partial: bool = False) -> None:
        """Raise ValueError if `params` has unknown keys or (unless `partial`) misses one."""
        if not isinstance(params, Mapping):
            raise TypeError(f"{argument} must be a dict of parameter values, got {type(params).__name__}")
        unknown = [k for k in params if k not in self.names]
        if unknown:
            raise ValueError(f"{argument}: unknown parameter names {unknown}; parameters are {list(self.names)}")
        if not partial:
            missing = [n for n in self.names if n not in params]
            if missing:
                raise ValueError(f"{argument}: missing parameters {missing}")

    def check_bounds(self, params: Mapping[str, Any], argument: str = "params") -> None:
        """Raise ValueError naming the parameter if a concrete value is NaN or out of bounds."""
        self.check_names(params, argument, partial=True)
        for name, value in params.items():
            if not is_concrete(value):
                continue
            p = self[name]
            v = np.asarray(value, dtype=float)
            if not np.all(np.isfinite(v)):
                raise ValueError(f"{argument}[{name!r}] must be finite, got {value}")
            if np.any(v < p.lower) or np.any(v > p.upper):
                raise ValueError(
                    f"{argument}[{name!r}] must lie in [{p.lower}, {p.upper}] {p.units}, got {value}"
                )

    # -- physical vector ------------------------------------------------------------------
    def to_vector(self, params: Mapping[str, Any]) -> DesignVectors:
        """Stack a parameter dict into a vector of shape `(..., d)` in parameter order."""
        self.check_names(params)
        return jnp.stack([jnp.asarray(params[n], dtype=float) for n in self.names], axis=-1)

    def from_vector(self, x: DesignVectorsLike) -> dict[str, BatchScalar]:
        """Split a vector `(..., d)` in parameter order into a parameter dict."""
        x = jnp.asarray(x, dtype=float)
        if x.ndim == 0 or x.shape[-1] != len(self):
            raise ValueError(f"x must have shape (..., {len(self)}) in parameter order {list(self.names)}, got {x.shape}")
        return {n: x[..., i] for i, n in enumerate(self.names)}

    def _searched(self, params: Mapping[str, Any]) -> jax.Array:
        x = self.to_vector(params)
        return jnp.where(self.log, jnp.log(jnp.where(self.log, x, 1.0)), x)

    def _physical(self, s: jax.Array) -> dict[str, jax.Array]:
        return self.from_vector(jnp.where(self.log, jnp.exp(s), s))

    # -- box-normalised [0, 1]^d ----------------------------------------------------------
    def to_unit(self, params: Mapping[str, Any]) -> DesignVectors:
        """Box-normalise parameters to `z` in [0, 1]^d (log-uniform for `log=True`)."""
        return (self._searched(params) - self._lo) / (self._hi - self._lo)

    def from_unit(self, z: DesignVectorsLike) -> dict[str, BatchScalar]:
        """Map box-normalised `z` of shape `(..., d)` back to physical parameters."""
        z = jnp.asarray(z, dtype=float)
        if z.ndim == 0 or z.shape[-1] != len(self):
            raise ValueError(f"z must have shape (..., {len(self)}), got {z.shape}")
        params = self._physical(self._lo + (self._hi - self._lo) * z)
        # exp(log(x)) can leave the box by one ulp: clip so bounds hold exactly.
        return {n: jnp.clip(v, self.lower[i], self.upper[i]) for i, (n, v) in enumerate(params.items())}

    # -- unconstrained R^d ------------------------------------------------------------
    def to_unconstrained(self, params: Mapping[str, Any]) -> DesignVectors:
        """Map parameters to `u = logit(z)`; values on a bound are moved 1e-12 inside."""
        z = jnp.clip(self.to_unit(params), _EPS, 1.0 - _EPS)
        return jnp.log(z) - jnp.log1p(-z)

    def from_unconstrained(self, u: DesignVectorsLike) -> dict[str, BatchScalar]:
        """Map any `u` of shape `(..., d)` to parameters strictly inside the bounds (smooth)."""
        u = jnp.asarray(u, dtype=float)
        if u.ndim == 0 or u.shape[-1] != len(self):
            raise ValueError(f"u must have shape (..., {len(self)}), got {u.shape}")
        return self.from_unit(jax.nn.sigmoid(u))

    # -- special points ---------------------------------------------------------------
    def center(self) -> dict[str, Scalar]:
        """The centre of the box-normalised space (geometric mean for `log=True`)."""
        return {p.name: jnp.asarray(p.center) for p in self.parameters}

    def initial(self) -> dict[str, Scalar]:
        """Each parameter's `initial` value, or its `center` when none was given."""
        return {p.name: jnp.asarray(p.center if p.initial is None else p.initial) for p in self.parameters}

    def sample(self, key_or_seed: int | Array, n: int) -> dict[str, Vector]:
        """Draw `n` points uniformly in the box-normalised space.

        **Arguments:**

        - `key_or_seed`: a `jax.random` key or an integer seed.
        - `n`: number of points, an integer >= 1.

        **Returns:** a dict of arrays of shape `(n,)`.

        Raises TypeError/ValueError naming `n` or `key_or_seed` for a count that is not a
        positive integer or a seed that is neither an integer nor a key.
        """
        n = check_int("n", n, 1)
        if isinstance(key_or_seed, (bool, np.bool_)):
            raise TypeError(f"key_or_seed must be an integer seed or a jax.random key, got {key_or_seed!r}")
        if isinstance(key_or_seed, (int, np.integer)):
            try:
                key = jax.random.PRNGKey(key_or_seed)
            except (OverflowError, ValueError, TypeError) as e:
                raise ValueError(f"key_or_seed: integer seed {key_or_seed} is out of range ({e})") from None
        else:
            key = key_or_seed
            shape = getattr(key, "shape", None)
            dtype = getattr(key, "dtype", None)
            is_typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
            if not (is_typed or (shape == (2,) and dtype == jnp.uint32)):
                raise TypeError(
                    f"key_or_seed must be an integer seed or a jax.random key, got {type(key_or_seed).__name__}: "
                    f"{key_or_seed!r}"
                )
        z = jax.random.uniform(key, (n, len(self)), dtype=float)
        return self.from_unit(z)
