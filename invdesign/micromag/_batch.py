"""Many demagnetization curves at once: one jitted loop, every structure on its own schedule.

`demagnetization_curve` relaxes one structure at one field at a time from Python.
`demagnetization_curves` runs all the curves of a list of structures that share a grid
(and so the demag kernel) inside one `lax.while_loop`:

- `lanes` structures advance together, vmapped. Every iteration applies one step of the
  same curvilinear steepest descent as `minimize` to every lane: Cayley update, alternating
  Barzilai-Borwein steps, the largest rotation capped at `max_angle`, and non-monotone
  energy acceptance.
- The lanes do not wait for each other. A lane whose torque falls below `tol` records its
  magnetization and steps on to its own next field; the effective field of that start
  state is that iteration's one field evaluation.
- A lane that has finished its curve (past `stop_below`, or at the last field) hands its
  results over and takes the next structure. So the lanes stay busy until the work runs
  out, and a batch costs about the total work divided by the lanes, not the slowest curve
  times the number of batches.
- In-plane easy axes and field on one layer keep m exactly in the plane (every torque is
  along z), so then the z-transforms of the demag convolution are skipped (`planar`).

A structure whose descent hits the iteration cap (or produces a non-finite state) at some
field is flagged. Its whole curve is then recomputed with the one-at-a-time
`demagnetization_curve`, which falls back to damped LLG relaxation. So the answers do not
depend on the batching; the tests check them against the one-at-a-time path.

On a CPU one lane is about as fast per structure as several, because XLA:CPU gains little
from the vectorisation. On a GPU many lanes fill the device.
`dtype="float32"` runs the descent in single precision (energies are summed in float64, and
the acceptance test allows for float32 rounding). Its anchors agree with float64 to about
1e-5 of Ms and H_A, but it needs about a quarter more iterations, so float64 is the default.
`studies/benchmarks/bench_hysteresis_batch.py` measures the rates.
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
from ._terms import System, cross3, dot3, effective_field

__all__ = ["demagnetization_curves"]


def _sum(x, axis=None):
    # XLA's CPU backend runs a reduction fused with its elementwise producer ~10-40x slower
    # than a reduction of a materialised array (measured); the barrier keeps them apart
    return jnp.sum(jax.lax.optimization_barrier(x), axis=axis)


def _max(x):
    return jnp.max(jax.lax.optimization_barrier(x))


def _cast(tree, dtype):
    def f(a):
        if eqx.is_array(a) and jnp.issubdtype(a.dtype, jnp.floating):
            return a.astype(dtype)
        return a

    return jax.tree_util.tree_map(f, tree)


@eqx.filter_jit
def _run_batch(template: System, materials, fields, axis, tol, max_iter, max_angle, stop_below, use_stop, planar, lanes):
    """The batched loop. `materials`: a `Material` with a leading axis over all structures.

    `lanes` structures advance together (vmapped). Each iteration evaluates the effective
    field (one FFT convolution) exactly once per lane: at the descent's trial state, or, for
    a lane that has just converged at its field, at its state for the next field. A lane
    whose curve is finished hands its results over and takes the next structure, so lanes
    never idle while work is left.
    """
    dtype = fields.dtype
    n_field = fields.shape[0]
    shape = template.grid.shape
    n_struct = jax.tree_util.tree_leaves(materials)[0].shape[0]
    tau_min, tau_max = 1e-12, 1e6
    n_memory = 8
    tan_half = jnp.tan(0.5 * max_angle).astype(dtype)
    # float32 energy sums: accept within a few rounding units of the reference energy
    slack = 1e-13 if dtype == jnp.float64 else 64.0 * float(jnp.finfo(jnp.float32).eps)
    axis64 = axis.astype(jnp.float64)

    def lane_system(mat):
        return eqx.tree_at(lambda s: s.material, template, mat)

    def consts(system):
        mask = system.mask[..., None]
        ms_max = jnp.max(system.material.Ms)
        weight = (system.material.Ms / ms_max)[..., None]
        return mask, ms_max, weight

    def applied(system, k_field):
        mask, ms_max, _ = consts(system)
        return jnp.where(mask, (fields[k_field] / ms_max) * axis, 0.0).astype(dtype)

    def field(system, m, h_app):
        _, ms_max, _ = consts(system)
        return (effective_field(system, m, jnp.zeros(3, dtype), planar=planar) / ms_max).astype(dtype) + h_app

    def energy(system, m, h, h_app):
        _, _, weight = consts(system)
        return -0.5 * _sum((weight * m * (h + h_app)).astype(jnp.float64))

    def grad(system, m, h):
        return jnp.where(system.mask[..., None], cross3(m, cross3(m, h)), 0.0)

    def torque(system, m, h):
        mxh = cross3(m, h)
        t = jnp.where(system.mask, jnp.sqrt(dot3(mxh, mxh)), 0.0)
        return _max(t)

    def first_tau(h):
        return jnp.clip(1e-2 / jnp.maximum(_max(jnp.abs(h)), 1e-30), tau_min, tau_max).astype(dtype)

    def lane_init(mat, m):
        system = lane_system(mat)
        h_app = applied(system, 0)
        h = field(system, m, h_app)
        e = energy(system, m, h, h_app)
        return dict(
            m=m, h=h, h_app=h_app, g=grad(system, m, h), tau=first_tau(h), tq=torque(system, m, h),
            e_hist=jnp.full((n_memory,), e), k=jnp.asarray(0), ok=jnp.asarray(True),
            i=jnp.asarray(0), done=jnp.asarray(False),
            M=jnp.full((n_field,), jnp.nan, jnp.float64), avg=jnp.full((n_field, 3), jnp.nan, jnp.float64),
            conv=jnp.zeros((n_field,), jnp.int8), iters=jnp.zeros((n_field,), jnp.int32),
        )

    def lane_body(mat, s):
        system = lane_system(mat)
        mask = system.mask[..., None]
        m, h, g, tau, tq, e_hist, k, i = s["m"], s["h"], s["g"], s["tau"], s["tq"], s["e_hist"], s["k"], s["i"]
        finished = (tq <= tol) | (k >= max_iter) | ~s["ok"]
        # --- record a finished field step (cheap) ---
        avg = (_sum(jnp.where(mask, m, 0.0), axis=(0, 1, 2)) / jnp.sum(system.mask)).astype(jnp.float64)
        M_now = avg @ axis64
        stop = finished & ((i >= n_field - 1) | (use_stop & (fields[i] < 0) & (M_now < stop_below)))
        converged = (tq <= tol) & s["ok"]
        i_next = jnp.minimum(i + 1, n_field - 1)
        # --- one trial state, one field evaluation ---
        tau_eff = jnp.minimum(tau, 2.0 * tan_half / jnp.maximum(tq, 1e-30).astype(dtype))
        m_desc = jnp.where(mask, _cayley(m, h, tau_eff), 0.0)
        m_c = jnp.where(finished, m, m_desc)
        h_app_c = jnp.where(finished, applied(system, i_next), s["h_app"])
        h_c = field(system, m_c, h_app_c)
        e_c = energy(system, m_c, h_c, h_app_c)
        g_c = grad(system, m_c, h_c)
        tq_c = torque(system, m_c, h_c)
        # --- descent bookkeeping (used when not finished) ---
        e_ref = jnp.max(e_hist)
        accept = e_c <= e_ref + slack * jnp.abs(e_ref) + 1e-300
        finite = jnp.all(jnp.isfinite(m_c)) & jnp.isfinite(e_c)
        sv = m_c - m
        yv = g_c - g
        ss, sy, yy = _sum(sv * sv), _sum(sv * yv), _sum(yv * yv)
        bb1 = ss / jnp.where(sy != 0, sy, 1.0)
        bb2 = sy / jnp.where(yy != 0, yy, 1.0)
        tau_bb = jnp.where(k % 2 == 0, bb1, bb2)
        tau_bb = jnp.where((sy > 0) & jnp.isfinite(tau_bb), tau_bb, tau_eff * 2.0)
        tau_bb = jnp.clip(tau_bb, tau_min, tau_max).astype(dtype)
        take = accept & finite
        stepped = {
            **s,
            "k": k + 1,
            "m": jnp.where(take, m_c, m),
            "h": jnp.where(take, h_c, h),
            "g": jnp.where(take, g_c, g),
            "tau": jnp.where(take, tau_bb, jnp.maximum(0.25 * tau_eff, tau_min).astype(dtype)),
            "tq": jnp.where(take, tq_c, tq),
            "e_hist": jnp.where(take, e_hist.at[k % n_memory].set(e_c), e_hist),
            "ok": finite | ~accept,
        }
        recorded = {
            **s,
            "M": s["M"].at[i].set(M_now),
            "avg": s["avg"].at[i].set(avg),
            "conv": s["conv"].at[i].set(converged.astype(jnp.int8)),
            "iters": s["iters"].at[i].set(k.astype(jnp.int32)),
            "done": stop,
        }
        restarted = {
            **recorded,
            "i": i_next, "m": m_c, "h": h_c, "h_app": h_app_c, "g": g_c, "tq": tq_c,
            "e_hist": jnp.full((n_memory,), e_c), "tau": first_tau(h_c), "k": jnp.asarray(0), "ok": jnp.asarray(True),
        }
        advanced = jax.tree_util.tree_map(lambda a, b: jnp.where(stop, a, b), recorded, restarted)
        new = jax.tree_util.tree_map(lambda a, b: jnp.where(finished, a, b), advanced, stepped)
        return jax.tree_util.tree_map(lambda a, b: jnp.where(s["done"], a, b), s, new)

    def start_state(mat):
        return jnp.where(mat.Ms[..., None] > 0, jnp.broadcast_to(axis, shape + (3,)), 0.0).astype(dtype)

    def take(sid):
        return jax.tree_util.tree_map(lambda a: a[jnp.clip(sid, 0, n_struct - 1)], materials)

    sid0 = jnp.arange(lanes)
    lane_mats = take(sid0)
    state = jax.vmap(lambda mat: lane_init(mat, start_state(mat)))(lane_mats)
    state["sid"] = jnp.where(sid0 < n_struct, sid0, -1)
    keys = ("M", "avg", "conv", "iters")
    outs = {k: jnp.zeros((n_struct,) + state[k].shape[1:], state[k].dtype) for k in keys}

    def select(cond, a, b):
        return jax.tree_util.tree_map(lambda x, y: jnp.where(cond.reshape(cond.shape + (1,) * (x.ndim - 1)), x, y), a, b)

    def handover(carry):
        """Store the curves of finished lanes and give those lanes the next structures."""
        n, nxt, mats, s, outs = carry
        fin = s["done"] & (s["sid"] >= 0)
        row = jnp.where(fin, s["sid"], n_struct)  # out of range: dropped
        outs = {k: outs[k].at[row].set(s[k], mode="drop") for k in keys}
        new_sid = jnp.where(fin, nxt + jnp.cumsum(fin) - 1, s["sid"])
        refill = fin & (new_sid < n_struct)
        new_sid = jnp.where(fin & ~refill, -1, new_sid)
        mats = select(refill, take(new_sid), mats)
        fresh = jax.vmap(lambda mat: lane_init(mat, start_state(mat)))(mats)
        fresh["sid"] = new_sid
        s = select(refill, fresh, s)
        s["sid"] = new_sid
        return n, nxt + jnp.sum(fin), mats, s, outs

    def pending(s):
        return jnp.any(s["done"] & (s["sid"] >= 0))

    def inner_cond(carry):
        n, mats, s = carry
        return ~pending(s) & ~jnp.all(s["done"])

    def inner_body(carry):
        n, mats, s = carry
        sid = s["sid"]
        s = jax.vmap(lane_body)(mats, s)
        s["sid"] = sid
        return n + 1, mats, s

    def cond(carry):
        n, nxt, mats, s, outs = carry
        return ~jnp.all(s["done"] & (s["sid"] < 0))

    def body(carry):
        # run until some lane has finished its curve, then hand over
        n, nxt, mats, s, outs = carry
        n, mats, s = jax.lax.while_loop(inner_cond, inner_body, (n, mats, s))
        return handover((n, nxt, mats, s, outs))

    carry = (jnp.asarray(0), jnp.asarray(min(lanes, n_struct)), lane_mats, state, outs)
    n, _, _, _, outs = jax.lax.while_loop(cond, body, carry)
    return outs["M"], outs["avg"], outs["conv"], outs["iters"], n


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
    lanes: int | None = None,
    fallback: bool = True,
) -> xr.Dataset:
    """Descending branches M(H) of many structures on one grid, batched (see module docs).

    The arguments mean what they mean in `demagnetization_curve`; in addition:

    - `systems`: a sequence of `System`s on the same grid with the same demag setting,
      differing only in their materials (e.g. `grain_system` of different structures).
    - `dtype`: `"float64"` (default) or `"float32"` for the descent.
    - `lanes`: structures advanced together (vmapped); a lane that finishes its curve takes
      the next structure. Default: all structures at once. On a CPU one or two lanes are
      fastest (the vectorisation gains little there); on a GPU take many.
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
    n_lanes = len(systems) if lanes is None else int(lanes)
    if not (1 <= n_lanes):
        raise ValueError(f"lanes must be a positive integer, got {lanes}")
    n_lanes = min(n_lanes, len(systems))
    n = int(round(2.0 / step))
    fields = h_max * (1.0 - step * np.arange(n + 1))
    jdt = jnp.float64 if dtype == "float64" else jnp.float32
    materials = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *[s.material for s in systems])
    template = _cast(first, jdt)
    materials = _cast(materials, jdt)
    # in-plane easy axes, field and start state on one layer: m stays in the plane exactly
    # (every torque term is then along z), so the demag z-transforms can be skipped
    planar = bool(
        first.grid.shape[2] == 1 and first.kernel is not None and axis[2] == 0
        and all(np.all(np.asarray(s.material.easy_axis)[..., 2] == 0) for s in systems)
    )
    t0 = time.perf_counter()
    M, avg, conv, iters, n_loop = _run_batch(
        template, materials, jnp.asarray(fields, jdt), jnp.asarray(axis, jdt), float(tol), int(max_iter),
        float(max_angle), float(stop_below if stop_below is not None else 0.0), stop_below is not None, planar, n_lanes,
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
                     "dtype": dtype, "loop_iterations": n_loop, "planar": int(planar), "lanes": n_lanes})
    return ds
