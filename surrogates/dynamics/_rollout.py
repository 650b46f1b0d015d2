"""`rollout(field, m0=None, t_end=1e-9)`: <m>(t) of SP4-like switching from the surrogate.

The surrogate is the autoencoder + stepper pair of a training run
(`python -m invdesign_surrogates.train dynamics`): `weights` is that run's folder (with
`ae.eqx` and `stepper.eqx`) or None for the shipped pair in `dynamics/shipped/` (sha256
pinned in `SHIPPED_SHA256`).

Starting states. As in Kovacs et al., the rollout starts from four solver states at 0.01,
0.02, 0.03 and 0.04 ns after the field is switched on (shape `(4, nx, ny, 3)`, the trained
grid). With `m0=None` they are computed here: the SP4 s-state on the trained grid (the
training data's own, shipped as `s_state.nc`; relaxed here for other grids) is integrated
for 0.04 ns in the given field, with the dataset's solver settings (Bogacki-Shampine,
tolerance 1e-5).

Trained range. The training fields lie in an arc of 44 degrees around -x with
22 mT <= mu0 |H| <= 41 mT (`surrogates.data.dynamics.sample_fields`). A field outside it
gives an `ExtrapolationWarning`, and the result records `extrapolation = 1`.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .._weights import check_sha256, file_sha256, load_model
from ._autoencoder import Autoencoder, decode, encode
from ._stepper import Stepper, rollout_latent

__all__ = ["SHIPPED", "SHIPPED_SHA256", "ExtrapolationWarning", "rollout", "in_trained_range"]

#: Folder of the shipped weights (package data).
SHIPPED = Path(__file__).parent / "shipped"

#: Pinned sha256 of the shipped files (`python -m invdesign_surrogates.train dynamics ... --ship`
#: prints them); `reference.nc` holds the SP4 field 1 and 2 curves the shipped-weights test checks,
#: `s_state.nc` the training data's relaxed s-state.
SHIPPED_SHA256: dict[str, str | None] = {
    "ae.eqx": "10fedbc3f1ba793b055472119b6c00b61e45d29c23c1f8fa1b89f36d41c5409f",
    "stepper.eqx": "b2a9d0867a156e956ee48d64e97aaa3dd05166f93cd003e92c50fe8321209bec",
    "start.eqx": "e23ae91105aad61add5e291833af7e616bb2617337a5a382e75156e8f01fb08a",
    "reference.nc": "4651ceca49d0cd092e23c91029f40038d590f257726ea491163061e3b2853de1",
    "s_state.nc": "0e5edc833d46ce9d41146d1af2d67d94b95ca429f8ba583f59e6c6513783cc8c",
}

DT = 1e-11
"""Time step of the stepper (one stored state every 10 ps)."""
N_PAST = 4
FIRST = 1  # index of the first starting state (0.01 ns)
TRAINED_FIELD_MT = (22.0, 41.0)
TRAINED_HALF_ANGLE_DEG = 22.0


class ExtrapolationWarning(UserWarning):
    """A field outside the range the surrogate was trained on."""


def in_trained_range(field) -> bool:
    """Whether mu0 H (tesla, (2,) or (3,)) lies in the training fields' arc and magnitude range."""
    b = np.asarray(field, dtype=float).reshape(-1)
    mag = math.hypot(b[0], b[1]) * 1e3
    angle = math.degrees(math.atan2(b[1], -b[0]))
    return TRAINED_FIELD_MT[0] - 1e-9 <= mag <= TRAINED_FIELD_MT[1] + 1e-9 and abs(angle) <= TRAINED_HALF_ANGLE_DEG + 1e-9


@functools.lru_cache(maxsize=4)
def _load(folder: str, pinned: bool):
    folder = Path(folder)
    models = {}
    for name, factory in (("ae.eqx", Autoencoder), ("stepper.eqx", Stepper)):
        path = folder / name
        if not path.exists():
            hint = (" (the shipped dynamics weights are missing from the installation: reinstall, or pass "
                    "the folder of a training run, python -m invdesign_surrogates.train dynamics ...)") if pinned else ""
            raise FileNotFoundError(f"weights: {str(path)!r} does not exist{hint}")
        sha = SHIPPED_SHA256.get(name) if pinned else None
        if pinned and sha is None:
            raise FileNotFoundError(f"weights: no sha256 is pinned for the shipped {name}")
        models[name] = load_model(path, lambda h, f=factory: f(**h["hyperparameters"], key=jax.random.key(0)),
                                  sha256=sha)
    (ae, ae_h), (st, st_h) = models["ae.eqx"], models["stepper.eqx"]
    if st.latent != ae.latent:
        raise ValueError(f"weights: stepper latent size {st.latent} differs from the autoencoder's {ae.latent}")
    return ae, st, float(st_h.get("code_scale", 1.0)), tuple(ae_h["grid"]), file_sha256(folder / "ae.eqx")


@functools.lru_cache(maxsize=2)
def _s_state(grid: tuple[int, int]):
    """The SP4 system on `grid` and its relaxed s-state: for the shipped weights' grid the
    training data's own s-state (`shipped/s_state.nc`, pinned), else relaxed here (about
    35 s on 256 x 64 cells, 2 cores)."""
    from invdesign.micromag import sp4_initial_state, sp4_system

    system = sp4_system((grid[0], grid[1], 1))
    path = SHIPPED / "s_state.nc"
    if path.exists():
        with xr.open_dataset(path, engine="h5netcdf") as f:
            if f["m"].shape[:2] == tuple(grid):
                check_sha256(path, SHIPPED_SHA256["s_state.nc"])
                return system, np.asarray(f["m"].values, dtype=np.float64)
    return system, np.asarray(sp4_initial_state(system).m)


def solver_run(field, grid, n_steps: int, observe) -> np.ndarray:
    """`observe(m)` every 10 ps from 0 to `n_steps` x 10 ps after `field` (tesla) is switched
    on, by the solver from the SP4 s-state on `grid` with the dataset's settings
    (Bogacki-Shampine, tolerance 1e-5)."""
    from invdesign.constants import MU0
    from invdesign.micromag import integrate_llg

    system, m_s = _s_state(tuple(int(n) for n in grid))
    b = np.zeros(3)
    b[:2] = np.asarray(field, dtype=float).reshape(-1)[:2]
    t = DT * np.arange(int(n_steps) + 1)
    sol = integrate_llg(system, m_s, b / MU0, t, rtol=1e-5, atol=1e-5, method="bs3", observe=observe)
    if not bool(sol.success):
        raise RuntimeError(f"the solver did not reach {t[-1]:g} s for field {field} T")
    return np.asarray(sol.values)


def solver_start(field, grid) -> np.ndarray:
    """The four solver states at 0.01-0.04 ns in `field` (tesla) from the SP4 s-state on `grid`."""
    states = solver_run(field, grid, FIRST + N_PAST - 1, lambda m: m)
    return states[FIRST:, :, :, 0, :].astype(np.float32)


def rollout_codes(stepper, scale: float, start, field, n_steps: int) -> np.ndarray:
    """The `N_PAST` start codes followed by `n_steps` codes predicted by `stepper` in `field`
    (the stepper works on codes divided by `scale`, its training normalisation)."""
    start = np.asarray(start)
    pred = np.asarray(rollout_latent(stepper, field, start / scale, n_steps)) * scale
    return np.concatenate([start, pred])


def cell_mean(m):
    """<m> of decoded states `(..., nx, ny, 3)`: the cell mean of the unit-normalised vectors."""
    m = m / jnp.maximum(jnp.linalg.norm(m, axis=-1, keepdims=True), 1e-12)
    return jnp.mean(m, axis=(-3, -2))


@eqx.filter_jit
def _decoded_mean(ae, codes):
    return cell_mean(jax.vmap(eqx.nn.inference_mode(ae).decoder)(jnp.asarray(codes, jnp.float32)))


def _check_field(field) -> np.ndarray:
    try:
        b = np.asarray(field, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"field must be mu0 H in tesla, shape (2,) or (3,), got {field!r}") from None
    if b.shape not in ((2,), (3,)):
        raise ValueError(f"field must have shape (2,) or (3,) (mu0 H_x, mu0 H_y[, 0]) in tesla, got shape {b.shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError(f"field must be finite, got {b.tolist()}")
    if b.shape == (3,) and b[2] != 0.0:
        raise ValueError(f"field must be in-plane (z component 0), got {b.tolist()}")
    return b[:2].astype(np.float32)


def rollout(field, m0=None, t_end: float = 1e-9, *, states: bool = False,
            weights: str | os.PathLike | None = None) -> xr.Dataset:
    """<m>(t) every 10 ps after the field is switched on, from the surrogate.

    **Arguments:**

    - `field`: mu0 H in tesla, `(mu0 H_x, mu0 H_y)` (or with a zero z component).
    - `m0`: the solver's states at 0.01-0.04 ns, shape `(4, nx, ny, 3)` (or
      `(4, nx, ny, 1, 3)`) on the trained grid; None computes them (see the module notes).
    - `t_end`: last time (s), a multiple of 10 ps in (0.04 ns, 10 ns].
    - `states`: also return the decoded states `m` (time, x, y, component).
    - `weights`: a training run's folder; None for the shipped weights.

    **Returns:** a Dataset with `m_avg` (time, component) from 0.01 ns to `t_end` (the first
    four entries are the decoded starting states), attrs `field_T`, `extrapolation` (0/1),
    `weights_sha256` (of `ae.eqx`).

    **Raises:** ValueError naming the argument for a bad field, `m0` with fewer than 4
    states or another grid, a bad `t_end`; FileNotFoundError / ValueError for missing or
    corrupt weights.
    """
    b = _check_field(field)
    t_end = float(t_end)
    n_steps = round(t_end / DT)
    if not (math.isfinite(t_end) and abs(n_steps * DT - t_end) <= 1e-3 * DT and FIRST + N_PAST - 1 < n_steps <= 1000):
        raise ValueError(f"t_end must be a multiple of 10 ps in (0.04 ns, 10 ns], got {t_end!r}")
    folder = SHIPPED if weights is None else Path(weights)
    ae, st, scale, grid, sha = _load(str(folder), weights is None)
    extrapolation = not in_trained_range(b)
    if extrapolation:
        warnings.warn(f"field {b.tolist()} T lies outside the trained range ({TRAINED_FIELD_MT[0]:g}-"
                      f"{TRAINED_FIELD_MT[1]:g} mT within {TRAINED_HALF_ANGLE_DEG:g} deg of -x): extrapolating",
                      ExtrapolationWarning, stacklevel=2)
    if m0 is None:
        start = solver_start(b, grid)
    else:
        start = np.asarray(m0, dtype=np.float32)
        if start.ndim == 5 and start.shape[3] == 1:
            start = start[:, :, :, 0, :]
        if start.ndim != 4 or start.shape[0] < N_PAST or start.shape[1:] != (*grid, 3):
            raise ValueError(f"m0 must hold {N_PAST} states of shape ({grid[0]}, {grid[1]}, 3) (the trained grid), "
                             f"got shape {start.shape}")
        if start.shape[0] != N_PAST:
            raise ValueError(f"m0 must hold exactly {N_PAST} states (0.01-0.04 ns), got {start.shape[0]}")
        if not np.all(np.isfinite(start)):
            raise ValueError("m0 must be finite")
    codes = rollout_codes(st, scale, encode(ae, start), b, n_steps - (FIRST + N_PAST - 1))
    if states:
        m = np.asarray(decode(ae, codes), dtype=np.float64)
        m /= np.maximum(np.linalg.norm(m, axis=-1, keepdims=True), 1e-12)
        m_avg = m.mean(axis=(1, 2))
    else:  # only <m>: decoded, normalised and averaged in one compiled call per 256 states
        m_avg = np.concatenate([np.asarray(_decoded_mean(ae, codes[i:i + 256]), dtype=np.float64)
                                for i in range(0, len(codes), 256)])
    times = DT * np.arange(FIRST, n_steps + 1)
    ds = xr.Dataset(
        {"m_avg": (("time", "component"), m_avg, {"units": "1", "long_name": "average magnetization <m>"})},
        coords={"time": ("time", times, {"units": "s"}), "component": ["x", "y", "z"]},
        attrs={"field_T": b.astype(float).tolist(), "extrapolation": int(extrapolation), "weights_sha256": sha,
               "source": "surrogate rollout (autoencoder + latent stepper)"},
    )
    if states:
        ds["m"] = (("time", "x", "y", "component"), m.astype(np.float32), {"units": "1", "long_name": "decoded state"})
    return ds
