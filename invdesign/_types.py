"""Shared jaxtyping aliases for the public signatures (annotation only: nothing is checked
at runtime, so they cost nothing and change no behaviour).

Shapes follow jaxtyping's notation: ``*batch`` is any number of leading axes, a ``#``
marks axes that only need to broadcast against the others (``*#batch 3`` accepts ``(3,)``
for a batch of points), ``""`` is a 0-d value. ``...Like`` aliases are inputs: anything
`jnp.asarray` accepts (arrays, NumPy arrays, Python floats, nested lists); the others are
what the functions return (JAX arrays).

```python
>>> Vec3.dim_str, Mat3.dim_str
('*batch 3', '*batch 3 3')
```
"""

from __future__ import annotations

from jaxtyping import Array, ArrayLike, Bool, Float, Int

__all__ = [
    "Array",
    "ArrayLike",
    "Scalar",
    "ScalarLike",
    "BatchScalar",
    "BatchScalarLike",
    "BatchBool",
    "BatchInt",
    "ScalarBool",
    "Vec3",
    "Vec3Like",
    "Point3Like",
    "Mat3",
    "Vector",
    "VectorLike",
]

Scalar = Float[Array, ""]
"""A 0-d float array (an energy, a frequency, a loss)."""

ScalarLike = Float[ArrayLike, ""]
"""A float input: Python float, 0-d NumPy or JAX array."""

BatchScalar = Float[Array, "*batch"]
"""One float per point of a batch (energies, |B|^2, Laplacians at points ``(*batch, 3)``)."""

BatchScalarLike = Float[ArrayLike, "*#batch"]
"""Float inputs that broadcast against a batch (radii, currents, heights)."""

BatchBool = Bool[Array, "*batch"]
"""One flag per point of a batch."""

BatchInt = Int[Array, "*batch"]
"""One integer per point of a batch (iteration counts)."""

ScalarBool = Bool[Array, ""]
"""A 0-d flag (found, converged)."""

Vec3 = Float[Array, "*batch 3"]
"""Cartesian 3-vectors, last axis ``(x, y, z)``: points, B, A, forces (SI units)."""

Vec3Like = Float[ArrayLike, "*#batch 3"]
"""3-vector inputs that broadcast against a batch of points (``(3,)`` for one)."""

Point3Like = Float[ArrayLike, "3"]
"""One 3-vector input with no batch axes: a magnet's position or moment direction (the cavity
response models take one pose at a time)."""

Mat3 = Float[Array, "*batch 3 3"]
"""3 x 3 matrices per point: Hessians, stiffness matrices, mode bases."""

Vector = Float[Array, " n"]
"""A flat parameter vector (the optimizers' view of a design)."""

VectorLike = Float[ArrayLike, " n"]
"""A flat parameter vector as input."""
