"""A JAX evaluate function as a plain-Python single-point function (for Dask workers)."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

__all__ = ["JittedPoint"]


class JittedPoint:
    """One design point through a jit-compiled `evaluate`: ``dict[str, float] -> dict[str, float]``.

    Pass it as `DesignProblem(elementwise=...)` when a population should be evaluated one
    individual at a time (through Dask) rather than by one batched `vmap`. The compiled
    function is built on first use and dropped when pickled, so each Dask worker compiles
    its own.

    ```python
    >>> point = JittedPoint(lambda p: {"f": p["x"] ** 2 + p["y"]})
    >>> point({"x": 3.0, "y": 1.0})
    {'f': 10.0}
    ```
    """

    def __init__(self, evaluate: Callable):
        if not callable(evaluate):
            raise TypeError(f"evaluate must be callable, got {type(evaluate).__name__}")
        self.evaluate = evaluate
        self._fn = None

    def __call__(self, row: dict) -> dict:
        if self._fn is None:
            self._fn = jax.jit(self.evaluate)
        out = self._fn({k: jnp.asarray(v, dtype=float) for k, v in row.items()})
        return {k: float(v) for k, v in out.items()}

    def __getstate__(self):
        return {"evaluate": self.evaluate, "_fn": None}
