"""Mechanics shared by the levitation wings (`invdesign.levitation`, `invdesign.cavity`)."""

from __future__ import annotations

import math

import jax.numpy as jnp

from ._types import BatchScalar, BatchScalarLike

__all__ = ["signed_frequency"]


def signed_frequency(eigenvalue: BatchScalarLike, mass: BatchScalarLike) -> BatchScalar:
    """``sign(k) sqrt(|k| / m) / (2 pi)`` in Hz for stiffness `eigenvalue` ``k`` (N/m), `mass` ``m`` (kg).

    The frequency of a small oscillation along a direction of stiffness ``k``. A **negative**
    value marks an unstable direction: there ``2 pi |f|`` is the exponential growth rate
    (1/s) of a displacement. Broadcasts; differentiable away from ``k = 0``.

    ```python
    >>> k = 4.0 * math.pi**2  # N/m: 1 Hz for 1 kg
    >>> [round(float(f), 12) for f in signed_frequency(jnp.array([k, -k, 4.0 * k]), 1.0)]
    [1.0, -1.0, 2.0]
    ```
    """
    return jnp.sign(eigenvalue) * jnp.sqrt(jnp.abs(eigenvalue) / mass) / (2.0 * math.pi)
