"""SI prefixes for display: the one place plots and tables turn SI values into readable units."""

from __future__ import annotations

import numpy as np

__all__ = ["display_scale"]

_PREFIXES = [(1e-18, "a"), (1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "u"), (1e-3, "m"), (1.0, ""), (1e3, "k"), (1e6, "M")]


def display_scale(values, units: str) -> tuple[float, str]:
    """A (factor, label) pair that shows SI `values` with a readable prefix (m -> um, A -> mA).

    Compound units (with a space, `/` or `^`) and unitless values are left as they are.

    **Arguments:**

    - `values`: SI values (any array-like; non-finite entries are ignored).
    - `units`: their SI units.

    **Returns:** `(factor, label)`: show `value * factor` with the unit `label`.

    **Example:**

    ```python
    >>> display_scale([0.038, 0.02], "A")[1]
    'mA'
    >>> display_scale([3.0], "N/m")
    (1.0, 'N/m')
    ```
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if units in ("", None) or v.size == 0 or " " in units or "/" in units or "^" in units:
        return 1.0, units or ""
    mag = float(np.max(np.abs(v))) if v.size else 1.0
    factor, prefix = 1.0, ""
    for f, p in _PREFIXES:
        if mag >= f:
            factor, prefix = f, p
    return 1.0 / factor, prefix + units
