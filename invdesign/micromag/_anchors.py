"""The six anchor points of a demagnetization curve (Kovacs et al., section 2.2).

From a descending branch ``M(H)`` sampled at fields ``H`` (A/m, along the field axis):

1. ``M1 = M(H_A)`` with ``H_A = 2 K1 / (mu0 Ms)``,
2. ``Mr = M(0)``,
3. ``Hk90``: ``M(Hk90) = 0.9 Mr``,
4. ``Hk80``: ``M(Hk80) = 0.8 Mr``,
5. ``Hk70``: ``M(Hk70) = 0.7 Mr``,
6. ``Hc``: ``M(Hc) = 0``.

Values between samples come from linear interpolation. The fields are the *values of H*
at which the levels are met, so on a normal curve ``Hk90``, ``Hk80``, ``Hk70`` and ``Hc``
are negative (second quadrant); their magnitudes (the usual "coercivity" figures) are
``-Hc`` etc. Nothing is ever extrapolated: a level that the sampled curve does not reach
gives NaN, and the `complete` flag is False.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = ["ANCHOR_NAMES", "AnchorPoints", "anchor_points"]

#: Names of the six anchor points in the paper's order.
ANCHOR_NAMES = ("M1", "Mr", "Hk90", "Hk80", "Hk70", "Hc")

# h[0] may fall short of h_anisotropy by this relative amount (rounding in the caller's
# field list); M1 is then the first sample.
_H_A_RTOL = 1e-9


class AnchorPoints(NamedTuple):
    """Result of `anchor_points`.

    - `M1`: ``M(H_A)``, in the units of the input `m` (reduced ``M/Ms`` by convention).
    - `Mr`: ``M(0)``, same units.
    - `Hk90`, `Hk80`, `Hk70`: fields (A/m, signed values of H) where ``M`` first drops to
      0.9, 0.8 and 0.7 ``Mr``; NaN if not reached (or if ``Mr <= 0``).
    - `Hc`: field (A/m, signed) where ``M`` first drops to zero; NaN if not reached.
    - `complete`: True when all six values are finite.
    """

    M1: float
    Mr: float
    Hk90: float
    Hk80: float
    Hk70: float
    Hc: float
    complete: bool

    def as_array(self) -> np.ndarray:
        """The six values ``(M1, Mr, Hk90, Hk80, Hk70, Hc)`` as a float64 array."""
        return np.array([self.M1, self.Mr, self.Hk90, self.Hk80, self.Hk70, self.Hc], dtype=float)


def _as_curve(name, value):
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 1-D array of real numbers") from None
    if arr.ndim != 1 or arr.size < 2:
        raise ValueError(f"{name} must be a 1-D array with at least 2 samples, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN/inf samples)")
    return arr


def _first_drop(h, m, level) -> float:
    """Field where ``m`` first reaches ``level`` from above, or NaN (no extrapolation)."""
    below = np.flatnonzero(m <= level)
    if below.size == 0:
        return math.nan
    i = int(below[0])
    if i == 0:  # starts at or below the level: the crossing is not inside the samples
        return float(h[0]) if m[0] == level else math.nan
    m0, m1 = m[i - 1], m[i]  # m0 > level >= m1
    return float(h[i - 1] + (level - m0) * (h[i] - h[i - 1]) / (m1 - m0))


def anchor_points(h, m, *, h_anisotropy) -> AnchorPoints:
    """The paper's six anchor points of a descending demagnetization curve.

    `M1` and `Mr` are linearly interpolated at ``H_A`` and ``0``. The knee fields and the
    coercive field are located sweeping down from the first sample: the first pair of
    consecutive samples with ``m[i-1] > level >= m[i]``, linearly interpolated (so noise
    that dips below a level and recovers still counts: the first crossing is taken).
    A level not reached by the samples gives NaN (curve stopped early, never switched, or
    starting below the level); knee fields are NaN when ``Mr <= 0``.

    **Arguments:**

    - `h`: applied field along the field axis, A/m, 1-D, strictly decreasing; it must start
      at or above `h_anisotropy` (up to a relative 1e-9) and end at or below 0.
    - `m`: magnetization projected on the field axis, same length as `h`, reduced
      ``M / Ms`` (any unit works: `M1` and `Mr` come back in the units of `m`).
    - `h_anisotropy`: anisotropy field ``H_A = 2 K1 / (mu0 Ms)`` in A/m (> 0).

    **Returns:** `AnchorPoints` ``(M1, Mr, Hk90, Hk80, Hk70, Hc, complete)``; fields in A/m
    as signed values of H (negative in the second quadrant: use ``-a.Hc`` for the
    magnitude).

    ```python
    >>> H_A = 1e6
    >>> h = np.linspace(1.0, -1.0, 201) * H_A
    >>> m = np.clip(0.8 + 1.6 * h / H_A, -1.0, 1.0)
    >>> a = anchor_points(h, m, h_anisotropy=H_A)
    >>> print(f"{a.M1:.3f} {a.Mr:.3f} {a.Hk90 / H_A:.4f} {a.Hk70 / H_A:.4f} {a.Hc / H_A:.4f} {a.complete}")
    1.000 0.800 -0.0500 -0.1500 -0.5000 True
    ```
    """
    h = _as_curve("h", h)
    m = _as_curve("m", m)
    if m.shape != h.shape:
        raise ValueError(f"m must have the same length as h ({h.size}), got {m.size}")
    if np.any(np.diff(h) >= 0.0):
        raise ValueError("h must be strictly decreasing (a descending field sweep)")
    try:
        h_a = float(h_anisotropy)
    except (TypeError, ValueError):
        raise ValueError(f"h_anisotropy must be a positive number (A/m), got {h_anisotropy!r}") from None
    if not (math.isfinite(h_a) and h_a > 0.0):
        raise ValueError(f"h_anisotropy must be finite and > 0 (A/m), got {h_anisotropy!r}")
    if h[0] < h_a * (1.0 - _H_A_RTOL):
        raise ValueError(f"h must start at or above h_anisotropy = {h_a:g} A/m, got h[0] = {h[0]:g}")
    if h[-1] > 0.0:
        raise ValueError(f"h must reach zero field (the remanence), got h[-1] = {h[-1]:g} > 0")

    hr, mr_ = h[::-1], m[::-1]  # increasing, for np.interp
    m1 = float(np.interp(min(h_a, h[0]), hr, mr_))
    mr = float(np.interp(0.0, hr, mr_))
    if mr > 0.0:
        knees = [_first_drop(h, m, p * mr) for p in (0.9, 0.8, 0.7)]
    else:
        knees = [math.nan] * 3
    hc = _first_drop(h, m, 0.0)
    values = [m1, mr, *knees, hc]
    return AnchorPoints(*values, complete=bool(np.all(np.isfinite(values))))
