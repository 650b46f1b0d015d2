"""Calibration of a model's response factor against measured levitation heights.

The model energy is ``chi * U_mag + m g (up . x)`` (`total_energy` with ``response = chi``);
`calibrate_response` fits ``chi`` by gradient descent, with the derivative of every height
from the implicit-function theorem at its equilibrium.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm
import xarray as xr

from .. import _validate as v
from .._newton import newton_minimize
from .._types import Point3Like
from ._energy import _magnetic_grad, _magnetic_hess, total_energy
from ._landscape import axis_height, refine_minimum
from ._magnets import Magnet
from ._model import CavityModel

__all__ = ["HeightDatum", "calibrate_response"]


@dataclasses.dataclass(frozen=True)
class HeightDatum:
    """A measured levitation height to calibrate a model's response factor against.

    **Fields:** `label`; `model` and `magnet`; `direction` of the moment; `kind` ``"axis"``
    (equilibrium on the vertical line through `xy`, searched in ``[z_lo, z_hi]``) or
    ``"well"`` (the minimum in the y-z plane started from ``(y0, z0)``); `height` (m, the
    measured value, as the cavity-frame ``z`` of the magnet centre minus `reference`);
    `reference` (m); `source` (where the number comes from).
    """

    label: str
    model: CavityModel
    magnet: Magnet
    direction: Point3Like
    height: float
    kind: str = "axis"
    xy: tuple[float, float] = (0.0, 0.0)
    z_lo: float = 0.0
    z_hi: float = 0.0
    y0: float = 0.0
    z0: float = 0.0
    reference: float = 0.0
    source: str = ""


@eqx.filter_jit
def _axis_solve(model, magnet, xy, z0, direction, response, max_iter):
    def val(z):
        return total_energy(model, magnet, jnp.concatenate([xy, z]), direction, response=response)

    z, info = newton_minimize(jax.grad(val), z0, max_iter=max_iter, xtol=1e-11, trust_radius=2e-4)
    return z[0], info.converged & info.positive_definite


def _axis_newton(d: HeightDatum, response: float, z0: float, dd, max_iter: int = 12):
    """Newton on dU/dz = 0 along the vertical line from a nearby start; None if it fails."""
    z, ok = _axis_solve(d.model, d.magnet, jnp.asarray(d.xy, dtype=float), jnp.asarray([float(z0)]), dd,
                        jnp.asarray(response, dtype=float), max_iter)
    return float(z) if bool(ok) else None


def _height_and_slope(d: HeightDatum, response: float, start=None):
    """Model height (m) at `response`, its derivative d height / d response and the position.

    `start`: the position found at a nearby response (warm start: Newton instead of a scan).
    """
    dd = jnp.asarray(d.direction, dtype=float)
    if d.kind == "axis":
        z = _axis_newton(d, response, start, dd) if start is not None else None
        if z is None:
            z = axis_height(d.model, d.magnet, d.direction, d.z_lo, d.z_hi, xy=d.xy, response=response)
        x = jnp.array([d.xy[0], d.xy[1], z])
        g = _magnetic_grad(d.model, d.magnet, x, dd)
        h = _magnetic_hess(d.model, d.magnet, x, dd)
        # dU/dz = response * dUm/dz + m g = 0  =>  dz/dresp = -dUm/dz / (resp * d2Um/dz2)
        slope = -float(g[2]) / (response * float(h[2, 2]))
        return z - d.reference, slope, z
    if d.kind == "well":
        y0, z0 = start if start is not None else (d.y0, d.z0)
        w = refine_minimum(d.model, d.magnet, y0, z0, d.direction, response=response)
        if not w.converged:
            raise RuntimeError(
                f"calibration datum {d.label!r}: no well near (y, z) = ({y0:g}, {z0:g}) m at response {response:g} "
                "(the well may not exist there: start the fit from another `initial`)"
            )
        x = jnp.array([0.0, w.y, w.z])
        g = np.asarray(_magnetic_grad(d.model, d.magnet, x, dd))[1:]
        h = np.asarray(_magnetic_hess(d.model, d.magnet, x, dd))[1:, 1:]
        # grad U = response grad Um + m g e_z = 0  =>  d(y, z)/dresp = -(response H_m)^-1 grad Um
        dp = -np.linalg.solve(response * h, g)
        return w.z - d.reference, float(dp[1]), (w.y, w.z)
    raise ValueError(f"kind must be 'axis' or 'well', got {d.kind!r}")


def calibrate_response(
    data: Sequence[HeightDatum],
    *,
    initial: float = 1.0,
    steps: int = 60,
    learning_rate: float = 0.1,
    name: str = "response",
    progress: bool = False,
) -> xr.Dataset:
    """Fit one effective response factor to measured heights by gradient descent.

    The model energy is ``chi * U_mag + m g (up . x)``; ``chi = 1`` is the ideal response of
    the model. The loss is the mean squared relative height error; ``log chi`` is updated by
    Adam (optax), with gradients of each height from the implicit-function theorem at the
    equilibrium (exact, no finite differences). Between steps every height is re-solved by
    Newton's method from the previous equilibrium. `progress` shows a tqdm bar.

    **Returns:** a Dataset with the fitted value (attr and variable `response`), the history
    (`loss`, `response_history` over `iteration`) and, per datum, the measured and model
    heights and the relative residuals.
    """
    if len(data) == 0:
        raise ValueError("data is empty: give at least one HeightDatum")
    v.check_positive("initial", initial)
    meas = np.array([d.height for d in data])
    v.check_positive("height", meas)
    opt = optax.adam(learning_rate)
    theta = jnp.asarray(math.log(initial))
    state = opt.init(theta)
    hist_chi, hist_loss = [], []
    starts = [None] * len(data)
    bar = tqdm.tqdm(range(int(steps)), desc=f"calibrating {name}", disable=not progress)
    for _ in bar:
        chi = float(jnp.exp(theta))
        hs, slopes, starts = zip(*(_height_and_slope(d, chi, s) for d, s in zip(data, starts)))
        rel = (np.array(hs) - meas) / meas
        loss = float(np.mean(rel**2))
        dloss_dchi = float(np.mean(2.0 * rel * np.array(slopes) / meas))
        hist_chi.append(chi)
        hist_loss.append(loss)
        bar.set_postfix(chi=f"{chi:.4g}", loss=f"{loss:.3g}")
        updates, state = opt.update(jnp.asarray(dloss_dchi * chi), state)
        theta = optax.apply_updates(theta, updates)
    chi = float(jnp.exp(theta))
    hs = np.array([_height_and_slope(d, chi, s)[0] for d, s in zip(data, starts)])
    rel = (hs - meas) / meas
    return xr.Dataset(
        {
            "response": ((), chi, dict(units="1", long_name=f"fitted {name} factor")),
            "response_history": (("iteration",), np.array(hist_chi), dict(units="1", long_name=f"{name} factor")),
            "loss": (("iteration",), np.array(hist_loss), dict(units="1", long_name="mean squared relative height error")),
            "measured_height": (("datum",), meas, dict(units="m", long_name="measured levitation height")),
            "model_height": (("datum",), hs, dict(units="m", long_name="model levitation height at the fitted factor")),
            "relative_residual": (("datum",), rel, dict(units="1", long_name="(model - measured) / measured")),
            "source": (("datum",), np.array([d.source for d in data], dtype=object), dict(long_name="where the datum comes from")),
        },
        coords={"datum": ("datum", np.array([d.label for d in data], dtype=object)), "iteration": np.arange(len(hist_chi))},
        attrs=dict(
            fitted_response=chi,
            rms_relative_residual=float(np.sqrt(np.mean(rel**2))),
            optimizer="adam",
            learning_rate=float(learning_rate),
            steps=int(steps),
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        ),
    )
