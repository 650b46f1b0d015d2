"""One damped Newton solver for every minimiser of the library, and its implicit derivatives.

`newton_minimize` finds a stationary point of an energy from its gradient: the Hessian (one
forward-mode pass over the gradient) is inverted through its eigen-decomposition, either as
it is (plain Newton: converges to any stationary point, saddles included) or with the
absolute values of its eigenvalues (*saddle-free* Newton: descends along directions of
negative curvature, so it heads for minima). Eigenvalues below ``eig_floor`` times the
largest are floored. Every step is capped at a trust radius (a length, or a function of the
position, e.g. half the distance to the nearest wire) and, with a line search, halved until
the energy decreases enough (Armijo) at a feasible point (e.g. the magnet clear of every
wall). The whole iteration is a `jax.lax.while_loop`: it works under `jit` and `vmap`.

`implicit_stationary_point` wraps the solve in `jax.lax.custom_root`, so derivatives of the
returned point with respect to anything the gradient closes over (geometry, currents,
response factors) follow from the implicit-function theorem on ``grad U(x*; p) = 0``,
``dx*/dp = -H^-1 d(grad U)/dp``, not from unrolling the iteration.
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

__all__ = ["NewtonInfo", "newton_minimize", "implicit_stationary_point"]


class NewtonInfo(eqx.Module):
    """Diagnostics of `newton_minimize`.

    - `converged`: a stopping test was met (gradient norm <= `gtol`, or the Newton step <=
      `xtol` times the length scale) and the line search never stalled.
    - `stalled`: the line search found no acceptable point (the iterate stayed put).
    - `positive_definite`: the Hessian at the last evaluated point is positive definite.
    - `iterations`: Newton iterations taken.
    - `step`: the last undamped Newton step divided by the length scale.
    - `grad_norm`: the gradient norm at the last evaluated point.
    """

    converged: Bool[Array, ""]
    stalled: Bool[Array, ""]
    positive_definite: Bool[Array, ""]
    iterations: Int[Array, ""]
    step: Float[Array, ""]
    grad_norm: Float[Array, ""]


def _as_fn(value, name):
    if callable(value):
        return value
    if value is None:
        raise ValueError(f"{name} must be a length (float) or a function of the position, got None")
    return lambda x: jnp.asarray(value, dtype=float)


def newton_minimize(
    grad_fn: Callable,
    x0: Float[Array, " n"],
    *,
    value_fn: Callable | None = None,
    max_iter: int = 50,
    gtol: float = 0.0,
    xtol: float = 0.0,
    length_scale: Callable | float = 1.0,
    trust_radius: Callable | float = jnp.inf,
    saddle_free: bool | Bool[Array, ""] = True,
    eig_floor: float = 1e-12,
    eig_floor_abs: float | None = None,
    line_search: bool = False,
    max_halvings: int = 14,
    armijo: float = 1e-4,
    accept_below: float = 0.0,
    feasible: Callable | None = None,
) -> tuple[Float[Array, " n"], NewtonInfo]:
    """Damped (saddle-free) Newton iteration on ``grad_fn(x) = 0`` from `x0`.

    **Arguments:**

    - `grad_fn`: gradient of the energy, ``(n,) -> (n,)`` (a JAX function).
    - `x0`: starting point ``(n,)``.
    - `value_fn`: the energy ``(n,) -> ()``; needed only with `line_search`.
    - `max_iter`: most iterations. With ``gtol = xtol = 0`` exactly `max_iter` run.
    - `gtol`: stop when ``|grad| <= gtol`` (before stepping).
    - `xtol`: stop after a step whose undamped length is ``<= xtol * length_scale(x)``.
    - `length_scale`: a length or ``x -> length`` for `xtol` (default 1).
    - `trust_radius`: a length or ``x -> length``: the most any step may move.
    - `saddle_free`: absolute Hessian eigenvalues (heads for minima) or plain Newton; may
      be a traced boolean.
    - `eig_floor`, `eig_floor_abs`: eigenvalues are floored at ``eig_floor * max |lambda|
      + eig_floor_abs`` (default the smallest normal float).
    - `line_search`: halve the step (at most `max_halvings` trials: 1, 1/2, 1/4, ...) until
      the point is `feasible` and ``U <= U0 + armijo t grad . step + 8 eps |U0|`` (the last
      term: a rise within the energy's rounding passes, so that steps near the minimum,
      whose decrease drowns in rounding, are not refused); a (capped) step shorter than
      `accept_below` is accepted without the decrease test. No acceptable trial: the iterate
      stays and the solve stops (`stalled`).
    - `feasible`: ``x -> bool``, points the line search may take (default all).

    **Returns:** ``(x, info)`` with `NewtonInfo`.
    """
    x0 = jnp.asarray(x0, dtype=float)
    if line_search and value_fn is None:
        raise ValueError("value_fn is required when line_search=True")
    if isinstance(max_iter, (int, float)) and max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    if line_search and int(max_halvings) < 1:
        raise ValueError(f"max_halvings must be an integer >= 1, got {max_halvings!r}")
    scale_fn = _as_fn(length_scale, "length_scale")
    trust_fn = _as_fn(trust_radius, "trust_radius")
    floor_abs = jnp.finfo(x0.dtype).tiny if eig_floor_abs is None else eig_floor_abs
    # one forward-mode pass gives the Hessian and (as aux) the gradient
    hess_and_grad = jax.jacfwd(lambda x: (grad_fn(x), grad_fn(x)), has_aux=True)

    def search(x, step, g):
        f0 = value_fn(x)
        slope = jnp.dot(g, step)
        rounding = 8.0 * jnp.finfo(x.dtype).eps * jnp.abs(f0)
        short = jnp.linalg.norm(step) < accept_below

        def trial(k):
            t = 0.5 ** k.astype(x.dtype)
            cand = x + t * step
            f = value_fn(cand)
            ok = jnp.isfinite(f) & ((f <= f0 + armijo * t * slope + rounding) | short)
            if feasible is not None:
                ok = ok & feasible(cand)
            return cand, ok

        def cond(s):
            k, _, ok = s
            return (k < max_halvings) & ~ok

        def body(s):
            k, _, _ = s
            cand, ok = trial(k)
            return k + 1, jnp.where(ok, cand, x), ok

        _, x_new, ok = jax.lax.while_loop(cond, body, (jnp.asarray(0), x, jnp.asarray(False)))
        return x_new, ok

    def body(state):
        x, i, _, _, _, _, _ = state
        h, g = hess_and_grad(x)
        lam, vecs = jnp.linalg.eigh(0.5 * (h + h.T))
        pos_def = jnp.all(lam > 0)
        gnorm = jnp.linalg.norm(g)
        floor = eig_floor * jnp.max(jnp.abs(lam)) + floor_abs
        lam_eff = jnp.where(saddle_free, jnp.maximum(jnp.abs(lam), floor),
                            jnp.where(jnp.abs(lam) >= floor, lam, floor))
        dx = -vecs @ ((vecs.T @ g) / lam_eff)
        n = jnp.linalg.norm(dx)
        damp = jnp.minimum(1.0, trust_fn(x) / jnp.where(n > 0, n, 1.0))
        step = damp * dx
        if line_search:
            x_new, ok = search(x, step, g)
        else:
            x_new, ok = x + step, jnp.asarray(True)
        small_grad = gnorm <= gtol
        x_new = jnp.where(small_grad, x, x_new)
        rel = n / scale_fn(x)
        stalled = ~small_grad & ~ok
        converged = small_grad | (ok & (rel <= xtol))
        return x_new, i + 1, rel, gnorm, converged, stalled, pos_def

    def cond(state):
        _, i, _, _, converged, stalled, _ = state
        return (i < max_iter) & ~converged & ~stalled

    f0, b0 = jnp.asarray(jnp.inf, dtype=x0.dtype), jnp.asarray(False)
    init = (x0, jnp.asarray(0), f0, f0, b0, b0, b0)
    x, i, rel, gnorm, converged, stalled, pos_def = jax.lax.while_loop(cond, body, init)
    converged = converged & ~stalled & jnp.all(jnp.isfinite(x))
    return x, NewtonInfo(converged=converged, stalled=stalled, positive_definite=pos_def, iterations=i,
                         step=rel, grad_norm=gnorm)


def _tangent_solve(lin, y):
    return jnp.linalg.solve(jax.jacfwd(lin)(y), y)


def implicit_stationary_point(grad_fn: Callable, x0: Float[Array, " n"], **newton_options
                              ) -> tuple[Float[Array, " n"], NewtonInfo]:
    """`newton_minimize` with derivatives from the implicit-function theorem.

    The returned point is differentiable (forward and reverse mode) with respect to every
    traced value `grad_fn` (and `value_fn`, `feasible`, ...) close over, through
    ``dx*/dp = -H^-1 d(grad U)/dp`` at the solution; the start `x0` gets no derivative and
    `info` none. **Arguments** and **Returns** as in `newton_minimize`.

    ```python
    >>> import jax, jax.numpy as jnp
    >>> import invdesign  # float64
    >>> from invdesign._newton import implicit_stationary_point
    >>> def position(k):  # minimum of (x - 1)^2 k / 2 + x^4 / 4
    ...     grad = jax.grad(lambda x: 0.5 * k * (x[0] - 1.0) ** 2 + 0.25 * x[0] ** 4)
    ...     x, info = implicit_stationary_point(grad, jnp.zeros(1), gtol=1e-14, max_iter=50)
    ...     return x[0]
    >>> round(float(position(2.0)), 12), round(float(jax.grad(position)(2.0)), 12)
    (0.770916997059, 0.060556884467)
    ```
    """
    def solve(f, x_init):
        x, info = newton_minimize(f, x_init, **newton_options)
        # custom_root's auxiliary output must be floating point: pack, unpack below
        return x, jnp.stack([info.converged, info.stalled, info.positive_definite, info.iterations, info.step,
                             info.grad_norm]).astype(float)

    x, aux = jax.lax.custom_root(grad_fn, jax.lax.stop_gradient(jnp.asarray(x0, dtype=float)), solve,
                                 _tangent_solve, has_aux=True)
    aux = jax.lax.stop_gradient(aux)
    info = NewtonInfo(converged=aux[0] > 0.5, stalled=aux[1] > 0.5, positive_definite=aux[2] > 0.5,
                      iterations=aux[3].astype(int), step=aux[4], grad_norm=aux[5])
    return x, info
