"""Many demagnetization curves at once: one jitted loop, every structure on its own schedule.

`demagnetization_curve` relaxes one structure at one field at a time from Python. Here a
batch of structures that share a grid (and so the demag kernel) advances inside a single
`lax.while_loop`. Every iteration applies one step of the same curvilinear steepest
descent as `minimize` (Cayley update, alternating Barzilai-Borwein steps, the largest
rotation capped at `max_angle`, non-monotone energy acceptance) to every structure that
is still running, vmapped over the batch. The structures do not wait for each other:

- a structure whose torque falls below `tol` at its field records its magnetization
  and steps on to its next field by itself. Its effective field is updated without
  another FFT, because the applied field enters linearly;
- a structure that has passed its stop condition (or the last field) stops changing;
- the loop ends when every structure has stopped.

So a batch costs about as many iterations as its slowest curve, not the sum over fields
of the slowest structure at each field.

A structure whose descent hits the iteration cap (or produces a non-finite state) at some
field is flagged. `demagnetization_curves` then recomputes the whole curve with the
one-at-a-time `demagnetization_curve`, which falls back to damped LLG relaxation. The
answers do not depend on the batch.

`dtype="float32"` runs the descent in single precision (fields, FFTs, states). Energies
are summed in float64, and the acceptance test allows for float32 rounding. Anchor
points then agree with the float64 path to about 1e-3 of Ms and H_A (checked in the tests
and measured by `studies/benchmarks/bench_hysteresis_batch.py`).
"""

from __future__ import annotations

import time
from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ._anchors import ANCHOR_NAMES, anchor_points
from ._hysteresis import anisotropy_field_strength, demagnetization_curve
from ._minimize import _cayley
from ._terms import System, effective_field

__all__ = ["demagnetization_curves"]


def _cast(tree, dtype):
    def f(a):
        if eqx.is_array(a) and jnp.issubdtype(a.dtype, jnp.floating):
            return a.astype(dtype)
        return a

    return jax.tree_util.tree_map(f, tree)


@eqx.filter_jit
def _run_batch(template: System, materials, fields, axis, tol, max_iter, max_angle, stop_below, use_stop):
    """The batched loop. `materials`: a `Material` with a leading batch axis on every array."""
    dtype = fields.dtype
    n_field = fields.shape[0]
    shape = template.grid.shape
    batch = jax.tree_util.tree_leaves(materials)[0].shape[0]
    tau_min, tau_max = 1e-12, 1e6
    n_memory = 8
    tan_half = jnp.tan(0.5 * max_angle).astype(dtype)
    # float32 energy sums: accept within a few rounding units of the reference energy
    slack = 1e-13 if dtype == jnp.float64 else 64.0 * float(jnp.finfo(jnp.float32).eps)

    def lane_system(mat):
        return eqx.tree_at(lambda s: s.material, template, mat)

    def lane_setup(system, m, k_field):
        """State at the start of field index k_field for magnetization m."""
        mask = system.mask[..., None]
        ms_max = jnp.max(system.material.Ms)
        h_app = jnp.where(mask, (fields[k_field] / ms_max) * axis, 0.0).astype(dtype)
        h = (effective_field(system, m, jnp.zeros(3, dtype)) / ms_max).astype(dtype) + h_app
        return h, h_app

    def energy(system, m, h, h_app):
        ms_max = jnp.max(system.material.Ms)
        weight = (system.material.Ms / ms_max)[..., None]
        return -0.5 * jnp.sum((weight * m * (h + h_app)).astype(jnp.float64))

    def grad(system, m, h):
        return jnp.where(system.mask[..., None], jnp.cross(m, jnp.cross(m, h)), 0.0)

    def torque(system, m, h):
        t = jnp.where(system.mask[..., None], jnp.linalg.norm(jnp.cross(m, h), axis=-1, keepdims=True), 0.0)
        return jnp.max(t)

    def restart(system, m, h, h_app):
        g = grad(system, m, h)
        tq = torque(system, m, h)
        e = energy(system, m, h, h_app)
        tau = jnp.clip(1e-2 / jnp.maximum(jnp.max(jnp.abs(h)), 1e-30), tau_min, tau_max).astype(dtype)
        return g, tq, jnp.full((n_memory,), e), tau

    def lane_init(mat, m):
        system = lane_system(mat)
        h, h_app = lane_setup(system, m, 0)
        g, tq, e_hist, tau = restart(system, m, h, h_app)
        return dict(
            m=m, h=h, h_app=h_app, g=g, tau=tau, tq=tq, e_hist=e_hist, k=jnp.asarray(0), ok=jnp.asarray(True),
            i=jnp.asarray(0), done=jnp.asarray(False),
            M=jnp.full((n_field,), jnp.nan, jnp.float64), avg=jnp.full((n_field, 3), jnp.nan, jnp.float64),
            conv=jnp.zeros((n_field,), jnp.int8), iters=jnp.zeros((n_field,), jnp.int32),
        )

    def descent_step(system, s):
        mask = system.mask[..., None]
        m, h, g, tau, tq, e_hist, k = s["m"], s["h"], s["g"], s["tau"], s["tq"], s["e_hist"], s["k"]
        tau_eff = jnp.minimum(tau, 2.0 * tan_half / jnp.maximum(tq, 1e-30).astype(dtype))
        m_new = jnp.where(mask, _cayley(m, h, tau_eff), 0.0)
        ms_max = jnp.max(system.material.Ms)
        h_new = (effective_field(system, m_new, jnp.zeros(3, dtype)) / ms_max).astype(dtype) + s["h_app"]
        e_new = energy(system, m_new, h_new, s["h_app"])
        e_ref = jnp.max(e_hist)
        accept = e_new <= e_ref + slack * jnp.abs(e_ref) + 1e-300
        finite = jnp.all(jnp.isfinite(m_new)) & jnp.isfinite(e_new)
        g_new = grad(system, m_new, h_new)
        sv = m_new - m
        yv = g_new - g
        ss, sy, yy = jnp.sum(sv * sv), jnp.sum(sv * yv), jnp.sum(yv * yv)
        bb1 = ss / jnp.where(sy != 0, sy, 1.0)
        bb2 = sy / jnp.where(yy != 0, yy, 1.0)
        tau_bb = jnp.where(k % 2 == 0, bb1, bb2)
        tau_bb = jnp.where((sy > 0) & jnp.isfinite(tau_bb), tau_bb, tau_eff * 2.0)
        tau_bb = jnp.clip(tau_bb, tau_min, tau_max).astype(dtype)
        take = accept & finite
        tq_new = torque(system, m_new, h_new)
        return {
            **s,
            "k": k + 1,
            "m": jnp.where(take, m_new, m),
            "h": jnp.where(take, h_new, h),
            "g": jnp.where(take, g_new, g),
            "tau": jnp.where(take, tau_bb, jnp.maximum(0.25 * tau_eff, tau_min).astype(dtype)),
            "tq": jnp.where(take, tq_new, tq),
            "e_hist": jnp.where(take, e_hist.at[k % n_memory].set(e_new), e_hist),
            "ok": finite | ~accept,
        }

    def advance(system, s):
        """Record the finished field step and set up the next field (no new FFT)."""
        mask = system.mask[..., None]
        i = s["i"]
        m = s["m"]
        avg = (jnp.sum(jnp.where(mask, m, 0.0), axis=(0, 1, 2)) / jnp.sum(system.mask)).astype(jnp.float64)
        M_now = avg @ axis.astype(jnp.float64)
        converged = (s["tq"] <= tol) & s["ok"]
        stop = (i >= n_field - 1) | (use_stop & (fields[i] < 0) & (M_now < stop_below))
        i_next = jnp.minimum(i + 1, n_field - 1)
        ms_max = jnp.max(system.material.Ms)
        h_app_new = jnp.where(mask, (fields[i_next] / ms_max) * axis, 0.0).astype(dtype)
        h_new = s["h"] - s["h_app"] + h_app_new
        g, tq, e_hist, tau = restart(system, m, h_new, h_app_new)
        out = {
            **s,
            "M": s["M"].at[i].set(M_now),
            "avg": s["avg"].at[i].set(avg),
            "conv": s["conv"].at[i].set(converged.astype(jnp.int8)),
            "iters": s["iters"].at[i].set(s["k"].astype(jnp.int32)),
            "done": stop,
        }
        nxt = {**out, "i": i_next, "h": h_new, "h_app": h_app_new, "g": g, "tq": tq, "e_hist": e_hist,
               "tau": tau, "k": jnp.asarray(0), "ok": jnp.asarray(True)}
        return jax.tree_util.tree_map(lambda a, b: jnp.where(stop, a, b), out, nxt)

    def lane_body(mat, s):
        system = lane_system(mat)
        finished = (s["tq"] <= tol) | (s["k"] >= max_iter) | ~s["ok"]
        stepped = descent_step(system, s)
        advanced = advance(system, s)
        new = jax.tree_util.tree_map(lambda a, b: jnp.where(finished, a, b), advanced, stepped)
        return jax.tree_util.tree_map(lambda a, b: jnp.where(s["done"], a, b), s, new)

    m0 = jnp.broadcast_to(axis, (batch,) + shape + (3,)).astype(dtype)
    m0 = jnp.where(materials.Ms[..., None] > 0, m0, 0.0)
    state = jax.vmap(lane_init)(materials, m0)

    def cond(carry):
        n, s = carry
        return ~jnp.all(s["done"])

    def body(carry):
        n, s = carry
        return n + 1, jax.vmap(lane_body)(materials, s)

    n, state = jax.lax.while_loop(cond, body, (jnp.asarray(0), state))
    return state["M"], state["avg"], state["conv"], state["iters"], n


def demagnetization_curves(
    systems: Sequence[System],
    *,
    field_axis=(0.0, 1.0, 0.0),
    h_max: float | None = None,
    step: float = 0.01,
    stop_below: float | None = None,
    tol: float = 1e-5,
    max_iter: int = 20_000,
    max_angle: float = 0.2,
    dtype: str = "float64",
    fallback: bool = True,
) -> xr.Dataset:
    """Descending branches M(H) of many structures on one grid, batched (see module docs).

    The arguments mean what they mean in `demagnetization_curve`; in addition:

    - `systems`: a sequence of `System`s on the same grid with the same demag setting,
      differing only in their materials (e.g. `grain_system` of different structures).
    - `dtype`: `"float64"` (default) or `"float32"` for the descent.
    - `fallback`: recompute a curve with `demagnetization_curve` (float64, with its LLG
      fallback) when the batched descent did not converge at some field.

    **Returns:** `xr.Dataset` with dims `sample`, `field`, `anchor`: `M` (M/Ms along the
    field axis; NaN after an early stop), `m_avg`, `anchors` (M1, Mr in Ms; Hk90, Hk80,
    Hk70, Hc in A/m, signed), `complete`, `converged`, `iterations` (per structure),
    `recomputed` (1 where the fallback replaced the batched curve); coordinate `H`; attrs
    `H_A`, `wall_time_s`, `loop_iterations` (iterations of the batched loop).
    """
    systems = list(systems)
    if not systems:
        raise ValueError("systems must be a non-empty sequence of System")
    for k, s in enumerate(systems):
        if not isinstance(s, System):
            raise TypeError(f"systems[{k}] must be a System, got {type(s).__name__}")
    first = systems[0]
    for k, s in enumerate(systems[1:], start=1):
        if s.grid != first.grid or (s.kernel is None) != (first.kernel is None):
            raise ValueError(f"systems[{k}] has another grid or demag setting than systems[0]; batch only structures on one grid")
        if (s.has_exchange, s.has_anisotropy, s.all_magnetic) != (first.has_exchange, first.has_anisotropy, first.all_magnetic):
            raise ValueError(f"systems[{k}] has other active terms or empty cells than systems[0]")
        if (s.material.coupling is None) != (first.material.coupling is None):
            raise ValueError(f"systems[{k}] must have exchange coupling factors like systems[0] (all or none)")
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    axis = np.asarray(field_axis, dtype=float)
    if axis.shape != (3,) or not np.all(np.isfinite(axis)) or np.linalg.norm(axis) == 0:
        raise ValueError(f"field_axis must be a finite nonzero 3-vector, got {field_axis!r}")
    axis = axis / np.linalg.norm(axis)
    mask = np.asarray(first.mask)
    H_A = anisotropy_field_strength(float(np.asarray(first.material.K1)[mask][0]), float(np.asarray(first.material.Ms)[mask][0]))
    if h_max is None:
        h_max = H_A
    if not (np.isfinite(h_max) and h_max > 0):
        raise ValueError(f"h_max must be finite and > 0 (A/m), got {h_max}")
    if not (0 < step <= 1):
        raise ValueError(f"step must be in (0, 1] (fraction of h_max), got {step}")
    if not (tol > 0):
        raise ValueError(f"tol must be > 0, got {tol}")
    if not (int(max_iter) >= 1):
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    n = int(round(2.0 / step))
    fields = h_max * (1.0 - step * np.arange(n + 1))
    jdt = jnp.float64 if dtype == "float64" else jnp.float32
    materials = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *[s.material for s in systems])
    template = _cast(first, jdt)
    materials = _cast(materials, jdt)
    t0 = time.perf_counter()
    M, avg, conv, iters, n_loop = _run_batch(
        template, materials, jnp.asarray(fields, jdt), jnp.asarray(axis, jdt), float(tol), int(max_iter),
        float(max_angle), float(stop_below if stop_below is not None else 0.0), stop_below is not None,
    )
    M = np.array(M)
    avg = np.array(avg)
    conv = np.array(conv)
    iters = np.array(iters)
    n_loop = int(n_loop)
    recomputed = np.zeros(len(systems), np.int8)
    reached = np.isfinite(M)
    converged = np.array([bool(np.all(conv[k][reached[k]] == 1)) for k in range(len(systems))])
    if fallback:
        for k in np.flatnonzero(~converged):
            curve = demagnetization_curve(systems[k], field_axis=axis, h_max=h_max, step=step, stop_below=stop_below, tol=tol, max_iter=max_iter)
            nk = curve.sizes["field"]
            M[k] = np.nan
            avg[k] = np.nan
            M[k, :nk] = curve["M"].values
            avg[k, :nk] = curve["m_avg"].values
            iters[k] = 0
            iters[k, :nk] = curve["iterations"].values
            converged[k] = bool(np.all(curve["converged"].values == 1))
            recomputed[k] = 1
    wall = time.perf_counter() - t0
    anchors = np.full((len(systems), len(ANCHOR_NAMES)), np.nan)
    for k in range(len(systems)):
        ok = np.isfinite(M[k])
        anchors[k] = anchor_points(fields[ok], M[k][ok], h_anisotropy=H_A).as_array()
    ds = xr.Dataset(
        {
            "M": (("sample", "field"), M, {"units": "1", "long_name": "M/Ms along the field axis (NaN after an early stop)"}),
            "m_avg": (("sample", "field", "component"), avg, {"units": "1", "long_name": "average unit magnetization"}),
            "anchors": (("sample", "anchor"), anchors, {"long_name": "M1, Mr (M/Ms) and Hk90, Hk80, Hk70, Hc (A/m, signed)"}),
            "complete": ("sample", np.all(np.isfinite(anchors), axis=1).astype(np.int8), {"long_name": "all six anchor points reached (1/0)"}),
            "converged": ("sample", converged.astype(np.int8), {"long_name": "every field step converged (1/0)"}),
            "iterations": ("sample", iters.sum(axis=1), {"long_name": "descent iterations of the curve"}),
            "recomputed": ("sample", recomputed, {"long_name": "curve recomputed one at a time after a non-converged batched step (1/0)"}),
        },
        coords={
            "H": ("field", fields, {"units": "A/m", "long_name": "applied field along the field axis"}),
            "component": ["x", "y", "z"],
            "anchor": list(ANCHOR_NAMES),
        },
    )
    ds.attrs.update({"H_A": H_A, "field_axis": axis.tolist(), "wall_time_s": wall, "tol": tol, "step": step,
                     "dtype": dtype, "loop_iterations": n_loop})
    return ds
