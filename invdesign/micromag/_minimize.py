"""Energy minimisation: curvilinear steepest descent with Barzilai-Borwein steps.

Exl, Bance, Reichel, Schrefl, Stimming, Mauser, "LaBonte's method revisited: An effective
steepest descent method for micromagnetic energy minimization", J. Appl. Phys. 115,
17D118 (2014). The update is the Cayley transform

    m(tau) = [(1 - tau^2 |m x h|^2 / 4) m - tau m x (m x h)] / (1 + tau^2 |m x h|^2 / 4),

which keeps |m| = 1 exactly, with h = H_eff / Ms_max and the two Barzilai-Borwein step
lengths used alternately. Iteration stops when the maximum torque |m x h| falls below `tol`.
If it stalls (iteration limit) or produces a non-finite state, the minimiser falls back to
damped LLG relaxation (pure damping, alpha = 1) and then resumes the descent.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._validate import check_finite
from ._llg import integrate_llg
from ._terms import System, cross3, dot3, effective_field, normalize, total_energy


class MinimizeResult(eqx.Module):
    """Result of `minimize`.

    - `m`: the relaxed unit magnetization.
    - `converged`: max torque below `tol`.
    - `max_torque`: final max |m x H_eff| / Ms_max (dimensionless).
    - `n_iter`: descent iterations in total; `n_fallback`: damped-LLG relaxations used.
    - `energy`: total energy (J) of the final state.
    """

    m: jnp.ndarray
    converged: bool
    max_torque: float
    n_iter: int
    n_fallback: int
    energy: float


def _cayley(m, h, tau):
    mxh = cross3(m, h)
    a2 = dot3(mxh, mxh)[..., None]
    q = 0.25 * tau**2 * a2
    return ((1.0 - q) * m - tau * cross3(m, mxh)) / (1.0 + q)


@eqx.filter_jit
def _descent(system: System, m, h_ext, tol, max_iter, tau_min, tau_max, max_angle):
    mask = system.mask[..., None]
    ms_max = jnp.max(system.material.Ms)
    weight = (system.material.Ms / ms_max)[..., None]
    h_app = jnp.where(mask, jnp.broadcast_to(h_ext / ms_max, m.shape), 0.0)
    n_memory = 8

    def field(m):
        return effective_field(system, m, h_ext) / ms_max

    def energy(m, h):
        # every term is linear (Zeeman) or quadratic in m, so E = -mu0 V sum Ms m.(H + H_ext)/2
        return -0.5 * jnp.sum(weight * m * (h + h_app))

    def grad(m, h):
        return jnp.where(mask, cross3(m, cross3(m, h)), 0.0)

    def torque_norms(m, h):
        mxh = cross3(m, h)
        return jnp.where(mask, jnp.sqrt(dot3(mxh, mxh))[..., None], 0.0)

    h0 = field(m)
    g0 = grad(m, h0)
    a0 = torque_norms(m, h0)
    t0 = jnp.max(a0)
    e0 = energy(m, h0)
    tau0 = jnp.clip(1e-2 / jnp.maximum(jnp.max(jnp.abs(h0)), 1e-30), tau_min, tau_max)
    tan_half = jnp.tan(0.5 * max_angle)

    def cond(state):
        k, m, h, g, tau, tq, e_hist, ok = state
        return (tq > tol) & (k < max_iter) & ok

    def body(state):
        k, m, h, g, tau, tq, e_hist, ok = state
        # limit the largest rotation per iteration to max_angle (Cayley angle 2 atan(tau a / 2)):
        # keeps the descent inside the current energy valley instead of hopping barriers
        tau_eff = jnp.minimum(tau, 2.0 * tan_half / jnp.maximum(tq, 1e-300))
        m_new = jnp.where(mask, _cayley(m, h, tau_eff), 0.0)
        h_new = field(m_new)
        e_new = energy(m_new, h_new)
        # non-monotone acceptance (Grippo-Lampariello-Lucidi): no worse than the last 8 energies
        e_ref = jnp.max(e_hist)
        accept = e_new <= e_ref + 1e-13 * jnp.abs(e_ref) + 1e-300
        finite = jnp.all(jnp.isfinite(m_new)) & jnp.isfinite(e_new)
        g_new = grad(m_new, h_new)
        s = m_new - m
        y = g_new - g
        ss, sy, yy = jnp.sum(s * s), jnp.sum(s * y), jnp.sum(y * y)
        bb1 = ss / jnp.where(sy != 0, sy, 1.0)
        bb2 = sy / jnp.where(yy != 0, yy, 1.0)
        tau_bb = jnp.where(k % 2 == 0, bb1, bb2)
        tau_bb = jnp.where((sy > 0) & jnp.isfinite(tau_bb), tau_bb, tau_eff * 2.0)
        tau_bb = jnp.clip(tau_bb, tau_min, tau_max)
        take = accept & finite
        tq_new = jnp.max(torque_norms(m_new, h_new))
        return (
            k + 1,
            jnp.where(take, m_new, m),
            jnp.where(take, h_new, h),
            jnp.where(take, g_new, g),
            jnp.where(take, tau_bb, jnp.maximum(0.25 * tau_eff, tau_min)),
            jnp.where(take, tq_new, tq),
            jnp.where(take, e_hist.at[k % n_memory].set(e_new), e_hist),
            finite | ~accept,
        )

    e_hist = jnp.full((n_memory,), e0)
    state = (jnp.asarray(0), m, h0, g0, tau0, t0, e_hist, jnp.asarray(True))
    k, m, h, g, tau, tq, e_hist, ok = jax.lax.while_loop(cond, body, state)
    return m, tq, k, ok


def _no_output(m):
    return jnp.zeros(())


def minimize(
    system: System,
    m0,
    h_ext=(0.0, 0.0, 0.0),
    *,
    tol: float = 1e-6,
    max_iter: int = 20_000,
    max_fallback: int = 5,
    relax_time: float = 1e-10,
    max_angle: float = 0.2,
) -> MinimizeResult:
    """Relax `m0` to a local minimum of the Gibbs free energy in the applied field `h_ext`.

    **Arguments:**

    - `system`: the `System`.
    - `m0`: starting unit magnetization `(nx, ny, nz, 3)`.
    - `h_ext`: uniform applied field (A/m), shape `(3,)` (or per cell).
    - `tol`: stop when max |m x H_eff| / Ms_max < tol.
    - `max_iter`: descent iterations per attempt before falling back to damped LLG.
    - `max_angle`: largest rotation of any cell in one iteration (radians). Together with
      the non-monotone energy test this keeps the descent in the energy valley it starts
      in, which quasi-static hysteresis needs (no hopping over barriers).
    - `max_fallback`: number of damped-LLG relaxations (each `relax_time` seconds at
      alpha = 1 without precession) allowed before giving up with `converged=False`.

    **Returns:** `MinimizeResult`; the state is always unit length and finite.

    ```python
    >>> from invdesign.micromag import Grid, Material, System
    >>> g = Grid((1, 1, 1), (2e-9, 2e-9, 2e-9))  # a macrospin with easy axis z, field along x
    >>> mat = Material.uniform(g, Ms=8e5, A=0.0, K1=1e5, easy_axis=(0, 0, 1))
    >>> sys = System(g, mat, demag=False)
    >>> HA = 2 * 1e5 / (4e-7 * jnp.pi * 8e5)
    >>> m0 = jnp.zeros((1, 1, 1, 3)).at[..., 2].set(1.0)
    >>> res = minimize(sys, m0, jnp.array([0.5 * HA, 0.0, 0.0]), tol=1e-10)
    >>> print(res.converged, f"{float(res.m[0, 0, 0, 0]):.6f}")  # Stoner-Wohlfarth: m_x = H / H_A
    True 0.500000

    ```
    """
    m0 = jnp.asarray(m0, dtype=jnp.float64)
    if tuple(m0.shape) != system.grid.shape + (3,):
        raise ValueError(f"m0 must have shape {system.grid.shape + (3,)}, got {tuple(m0.shape)}")
    check_finite("m0", m0)
    h_ext = jnp.asarray(h_ext, dtype=jnp.float64)
    check_finite("h_ext", h_ext)
    if not (tol > 0):
        raise ValueError(f"tol must be > 0, got {tol}")
    norms = np.linalg.norm(np.asarray(m0), axis=-1)[np.asarray(system.mask)]
    if np.any(norms == 0):
        raise ValueError("m0 must be nonzero in every magnetic cell")
    m = normalize(system, m0)
    n_iter = 0
    n_fallback = 0
    tau_min, tau_max = 1e-12, 1e6
    while True:
        m, tq, k, ok = _descent(system, m, h_ext, tol, max_iter, tau_min, tau_max, max_angle)
        n_iter += int(k)
        tq = float(tq)
        if tq <= tol and bool(ok):
            break
        if n_fallback >= max_fallback:
            break
        n_fallback += 1
        sol = integrate_llg(
            system, m, h_ext, jnp.array([relax_time]), alpha=1.0, precession=False,
            observe=_no_output, rtol=1e-6, atol=1e-6, max_steps=200_000,
        )
        m = normalize(system, sol.m_final)
    m = normalize(system, m)
    return MinimizeResult(
        m=m,
        converged=bool(tq <= tol),
        max_torque=tq,
        n_iter=n_iter,
        n_fallback=n_fallback,
        energy=float(total_energy(system, m, h_ext)),
    )
