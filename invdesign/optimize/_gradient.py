"""Gradient-based search with optax (Adam or L-BFGS) and an augmented Lagrangian.

Bounds are handled by the smooth reparametrisation of `DesignSpace.from_unconstrained`
(the optimizer works on `u` in R^d). Several objectives are scalarised as
`F = sum_i w_i * sign_i * f_i / scale_i` (sign -1 for `sense="max"`). Inequality
constraints `c_j = g_j / scale_j <= 0` enter through the Powell-Hestenes-Rockafellar
augmented Lagrangian

    L(u; lam, mu) = F + 1 / (2 mu) * sum_j (max(0, lam_j + mu c_j)^2 - lam_j^2),

minimised in an inner loop; the outer loop updates `lam_j <- max(0, lam_j + mu c_j)` and
multiplies `mu` by 10 when the feasibility violation did not drop below a quarter of its
previous value. The search stops when the inner loop converged (gradient norm <= `tol` or
relative change of `L` <= `rtol`) and the complementarity measure
`max_j |max(c_j, -lam_j / mu)|` is <= `tol`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr
from tqdm.auto import tqdm

from . import _checkpoint as _ckpt
from ._problem import DesignProblem, NonFiniteOutputError
from ._results import build_dataset

__all__ = ["gradient_search"]

CHUNK_SIZE = 64
"""Default inner iterations per jitted `lax.scan` call (history comes back to the host per chunk)."""


def _weights(problem: DesignProblem, weights: Mapping[str, float] | Sequence[float] | None) -> np.ndarray:
    n = len(problem.objectives)
    if weights is None:
        return np.ones(n)
    if isinstance(weights, Mapping):
        unknown = [k for k in weights if k not in problem.objective_names]
        if unknown:
            raise ValueError(f"weights: unknown objective names {unknown}; objectives are {problem.objective_names}")
        w = np.array([float(weights.get(name, 0.0)) for name in problem.objective_names])
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (n,):
            raise ValueError(f"weights must have one entry per objective ({n}), got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise ValueError(f"weights must be finite, >= 0 and not all zero, got {w.tolist()}")
    return w


def _start(problem: DesignProblem, x0: Any, seed: int) -> dict[str, Any]:
    space = problem.space
    if x0 is None:
        return space.initial()
    if isinstance(x0, str):
        if x0 != "random":
            raise ValueError(f"x0 must be None, 'random' or a dict of parameter values, got {x0!r}")
        return {k: v[0] for k, v in space.sample(seed, 1).items()}
    space.check_bounds(x0, "x0")
    start = space.initial()
    start.update({k: jnp.asarray(v, dtype=float) for k, v in x0.items()})
    return start


def _check_learning_rate(learning_rate: Any) -> None:
    """ValueError/TypeError naming `learning_rate` unless None, a finite number > 0, or an optax schedule.

    A schedule (a callable of the step count) is passed through unchecked: its values are
    only known inside the compiled loop.
    """
    if learning_rate is None or callable(learning_rate):
        return
    want = "a finite number > 0, an optax schedule or None"
    if isinstance(learning_rate, (bool, np.bool_, str, bytes)):
        raise TypeError(f"learning_rate must be {want}, got {type(learning_rate).__name__}: {learning_rate!r}")
    try:
        rate = np.asarray(learning_rate, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"learning_rate must be {want}, got {type(learning_rate).__name__}: {learning_rate!r}") from None
    if rate.ndim != 0:
        raise ValueError(f"learning_rate must be a scalar, got shape {rate.shape}")
    if not (math.isfinite(float(rate)) and float(rate) > 0):
        raise ValueError(
            f"learning_rate must be finite and > 0, got {learning_rate!r} (allowed range: (0, inf); "
            "a negative rate would climb the objective)"
        )


def _optimizer(method: str, learning_rate: Any) -> optax.GradientTransformationExtraArgs:
    if method not in ("adam", "lbfgs"):
        raise ValueError(f"method must be 'adam' or 'lbfgs', got {method!r}")
    _check_learning_rate(learning_rate)
    if method == "adam":
        return optax.adam(0.05 if learning_rate is None else learning_rate)
    return optax.lbfgs(learning_rate=learning_rate)


def _chunk_runner(problem: DesignProblem, method: str, learning_rate: Any, chunk_size: int):
    """The jitted chunk runner for (problem, method, learning_rate, chunk_size), cached per problem."""
    per_problem = problem._jit_cache.setdefault("gradient", {})
    try:
        key = (method, learning_rate, chunk_size)
        hash(key)
    except TypeError:
        return _make_chunk(problem, method, _optimizer(method, learning_rate), chunk_size)
    if key not in per_problem:
        per_problem[key] = _make_chunk(problem, method, _optimizer(method, learning_rate), chunk_size)
    return per_problem[key]


def _make_chunk(problem: DesignProblem, method: str, opt, chunk_size: int):
    """Build the jitted chunk runner: `lax.scan` of one optimizer step, freezing once done."""
    space = problem.space
    signs = np.array([o.sign for o in problem.objectives])
    oscale = np.array([o.scale for o in problem.objectives])

    def lagrangian(u, lam, mu, weights):
        params = space.from_unconstrained(u)
        out = problem._traced_evaluate(params)
        f = jnp.stack([out[o.name] for o in problem.objectives])
        objective = jnp.sum(weights * signs * f / oscale)
        c = problem.constraint_matrix(out)
        aug = 0.5 / mu * jnp.sum(jnp.maximum(0.0, lam + mu * c) ** 2 - lam**2)
        return objective + aug, (params, out, objective)

    def value(u, lam, mu, weights):
        return lagrangian(u, lam, mu, weights)[0]

    value_and_grad_state = optax.value_and_grad_from_state(value)

    def step(carry, _, lam, mu, weights, tol, rtol):
        u, state, prev, done, k = carry
        if method == "lbfgs":
            L, grad = value_and_grad_state(u, lam, mu, weights, state=state)
            _, (params, out, objective) = lagrangian(u, lam, mu, weights)
            updates, new_state = opt.update(
                grad, state, u, value=L, grad=grad, value_fn=lambda v: value(v, lam, mu, weights)
            )
        else:
            (L, (params, out, objective)), grad = jax.value_and_grad(lagrangian, has_aux=True)(u, lam, mu, weights)
            updates, new_state = opt.update(grad, state, u)
        gnorm = jnp.linalg.norm(grad)
        change = jnp.abs(L - prev) <= rtol * jnp.maximum(jnp.maximum(jnp.abs(L), jnp.abs(prev)), 1e-300)
        conv = (gnorm <= tol) | ((k > 0) & change)
        finite = jnp.isfinite(L) & jnp.all(jnp.isfinite(grad))
        new_done = done | conv | ~finite
        new_u = jnp.where(new_done, u, optax.apply_updates(u, updates))
        new_state = jax.tree_util.tree_map(lambda a, b: jnp.where(new_done, a, b), state, new_state)
        record = {
            "active": ~done,
            "conv": conv,
            "finite": finite,
            "u": u,
            "params": params,
            "out": out,
            "lagrangian": L,
            "scalarized_objective": objective,
            "grad_norm": gnorm,
        }
        return (new_u, new_state, L, new_done, k + 1), record

    @jax.jit
    def run_chunk(u, state, prev, k, lam, mu, weights, tol, rtol):
        carry = (u, state, prev, jnp.asarray(False), k)
        step_fn = lambda c, x: step(c, x, lam, mu, weights, tol, rtol)  # noqa: E731
        carry, records = jax.lax.scan(step_fn, carry, None, length=chunk_size)
        return carry, records

    return run_chunk


def gradient_search(
    problem: DesignProblem,
    method: str = "lbfgs",
    x0: Mapping[str, float] | str | None = None,
    max_iter: int = 1000,
    learning_rate: float | optax.Schedule | None = None,
    tol: float = 1e-8,
    rtol: float = 1e-14,
    weights: Mapping[str, float] | Sequence[float] | None = None,
    penalty: float = 10.0,
    outer_iters: int = 20,
    seed: int = 0,
    progress: bool = True,
    chunk_size: int = CHUNK_SIZE,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
) -> xr.Dataset:
    """Minimise a `DesignProblem` by gradient descent in the unconstrained parametrisation.

    **Arguments:**

    - `problem`: a `DesignProblem` with a JAX `evaluate`.
    - `method`: `"lbfgs"` (optax L-BFGS with zoom line search) or `"adam"`.
    - `x0`: starting parameters (a dict, missing entries from `Parameter.initial` or the
      centre), `"random"` (drawn with `seed`), or `None` (initial / centre values).
    - `max_iter`: maximum inner iterations per outer (augmented-Lagrangian) iteration.
    - `learning_rate`: Adam step size in `u` (default 0.05, or an optax schedule); for
      L-BFGS a fixed scale instead of the line search (default `None`: line search). A
      number must be finite and > 0 (ValueError naming `learning_rate` otherwise).
    - `tol`: tolerance on the gradient norm in `u` and on the scaled constraint violation.
    - `rtol`: inner loop also stops when `|L_k - L_{k-1}| <= rtol * |L_k|`.
    - `weights`: per-objective weights (dict by name or sequence), default all 1.
    - `penalty`: initial augmented-Lagrangian penalty `mu` (> 0).
    - `outer_iters`: maximum outer iterations (1 when there are no constraints).
    - `seed`: seed for `x0="random"`; recorded in the results.
    - `progress`: show a tqdm bar (it appears only when the search runs longer than 2 s):
      the iteration count and rate, without a total (`max_iter * outer_iters` is only a
      cap), and as postfix the current convergence measures: the outer iteration and the
      largest scaled constraint violation `viol` (with constraints), the gradient norm
      `grad` against `tol`, and the Lagrangian `L`. `False` prints nothing.
    - `chunk_size`: inner iterations per compiled `lax.scan` call (default 64); the history
      comes back to the host once per chunk. The iterates do not depend on it; a small value
      saves work when `max_iter` is small and each step is costly.
    - `checkpoint`: a file (``.npz``) to write the search state to after every chunk,
      atomically (see `invdesign.optimize.checkpointing`; default: the enclosing
      `checkpointing` block's, else none).
    - `resume`: continue from `checkpoint` when it exists (same problem and settings, else
      ValueError); the continued run computes the same iterates as an uninterrupted one.

    Ctrl-C raises `SearchInterrupted` (a `KeyboardInterrupt`) whose `partial` is the
    dataset of the finished iterations, marked ``status = "interrupted"``.

    **Returns:** an `xarray.Dataset` on dim `iteration` with every parameter and output,
    `lagrangian`, `scalarized_objective`, `grad_norm`, `max_violation`, `outer`, `penalty`
    and `multiplier` (dims `iteration, constraint`); attrs `converged` (0/1) and `message`.

    **Example:**

    ```python
    ds = gradient_search(problem, method="lbfgs")
    best = {name: float(ds[name][-1]) for name in problem.space.names}
    ```
    """
    if not isinstance(problem, DesignProblem):
        raise TypeError(f"problem must be a DesignProblem, got {type(problem).__name__}")
    if problem.evaluate is None:
        raise ValueError(f"problem {problem.name!r} has no JAX evaluate function: gradient_search needs one")
    opt = _optimizer(method, learning_rate)
    for arg, val in (("max_iter", max_iter), ("outer_iters", outer_iters), ("chunk_size", chunk_size)):
        if not (isinstance(val, (int, np.integer)) and val >= 1):
            raise ValueError(f"{arg} must be an integer >= 1, got {val!r}")
    for arg, val in (("tol", tol), ("rtol", rtol), ("penalty", penalty)):
        if not (math.isfinite(float(val)) and float(val) > 0):
            raise ValueError(f"{arg} must be finite and > 0, got {val!r}")
    w = _weights(problem, weights)
    space = problem.space
    n_con = len(problem.constraints)
    if n_con == 0:
        outer_iters = 1

    settings = {
        "method": method,
        "x0": None if x0 is None else (x0 if isinstance(x0, str) else {k: float(v) for k, v in x0.items()}),
        "max_iter": int(max_iter),
        "learning_rate": (
            learning_rate if learning_rate is None or isinstance(learning_rate, (int, float)) else repr(learning_rate)
        ),
        "tol": float(tol),
        "rtol": float(rtol),
        "weights": dict(zip(problem.objective_names, w.tolist())),
        "penalty": float(penalty),
        "outer_iters": int(outer_iters),
    }
    ckpt_path, resume = _ckpt.resolve(checkpoint, resume)
    ident = _ckpt.identity(problem, f"gradient-{method}", seed, {**settings, "chunk_size": int(chunk_size)})
    saved = _ckpt.load_for_resume(ckpt_path, resume, ident)

    run_chunk = _chunk_runner(problem, method, learning_rate, int(chunk_size))
    w_arr, tol_arr, rtol_arr = jnp.asarray(w), jnp.asarray(float(tol)), jnp.asarray(float(rtol))
    u = space.to_unconstrained(_start(problem, x0, seed))
    lam = jnp.zeros(n_con)
    mu = float(penalty)
    prev_violation = math.inf
    chunks: list[dict[str, np.ndarray]] = []
    extra: dict[str, list] = {"outer": [], "penalty": [], "multiplier": []}
    converged, message = False, ""
    iteration = 0
    first_outer, resume_inner = 0, None
    if saved is not None:
        meta, arrays = saved
        pos = meta["position"]
        history = _unpack_history(problem, arrays, n_con)
        if history is not None:
            chunks, extra = [history[0]], history[1]
        iteration = int(pos["iteration"])
        if pos["done"]:
            return _dataset(problem, chunks, extra, method, bool(pos["converged"]), pos["message"], seed, settings)
        u = jnp.asarray(arrays["u"])
        lam = jnp.asarray(arrays["lam"])
        mu = float(pos["mu"])
        prev_violation = float(pos["prev_violation"])
        first_outer = int(pos["outer"])
        if pos["inner"]:
            like = opt.init(u)
            leaves = [jnp.asarray(arrays[f"state_{i}"]) for i in range(len(jax.tree_util.tree_leaves(like)))]
            resume_inner = (jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(like), leaves),
                            jnp.asarray(arrays["prev"]), int(pos["k"]))

    def save_state(outer, inner, k=0, state=None, prev=None, done=False):
        if ckpt_path is None:
            return
        arrays = {"u": np.asarray(u), "lam": np.asarray(lam)}
        if inner:
            arrays["prev"] = np.asarray(prev)
            arrays.update({f"state_{i}": np.asarray(leaf) for i, leaf in enumerate(jax.tree_util.tree_leaves(state))})
        arrays.update(_pack_history(problem, chunks, extra))
        _ckpt.write_checkpoint(ckpt_path, {"identity": ident, "position": {
            "outer": outer, "inner": inner, "k": k, "iteration": iteration, "mu": mu,
            "prev_violation": prev_violation, "done": done, "converged": converged, "message": message,
        }}, arrays)

    # No total: max_iter * outer_iters is only a cap (runs usually stop far earlier), and a
    # bar towards it would show a meaningless percentage and ETA. The postfix shows what
    # decides convergence instead: the gradient norm (stop at `tol`) and, with constraints,
    # the largest scaled violation.
    bar = tqdm(total=None, initial=iteration, desc=f"{method} {problem.name}", unit="it", disable=not progress,
               delay=2.0, leave=False)
    try:
        for outer in range(first_outer, int(outer_iters)):
            if resume_inner is not None:
                state, prev, k = resume_inner
                resume_inner = None
            else:
                state = opt.init(u)
                prev, k = jnp.asarray(jnp.inf), 0
            inner_converged = False
            last = None
            while k < max_iter:
                carry, rec = run_chunk(u, state, prev, jnp.asarray(k), lam, jnp.asarray(mu), w_arr, tol_arr, rtol_arr)
                rec = jax.device_get(rec)
                n_active = int(np.sum(rec["active"]))
                n_keep = min(n_active, int(max_iter) - k)
                rec = jax.tree_util.tree_map(lambda a: a[:n_keep], rec)
                bad = np.flatnonzero(~rec["finite"])
                if bad.size:
                    _raise_nonfinite(problem, rec, int(bad[0]))
                chunks.append(rec)
                extra["outer"].append(np.full(n_keep, outer))
                extra["penalty"].append(np.full(n_keep, mu))
                extra["multiplier"].append(np.tile(np.asarray(lam), (n_keep, 1)))
                k += n_keep
                iteration += n_keep
                bar.update(n_keep)
                last = jax.tree_util.tree_map(lambda a: a[-1], rec)
                if not bar.disable:
                    bar.set_postfix(_progress_postfix(problem, last, outer, int(outer_iters), tol), refresh=False)
                if bool(last["conv"]):
                    inner_converged = True
                    break
                u, state, prev = carry[0], carry[1], carry[2]
                if k < max_iter:
                    save_state(outer, True, k, state, prev)
            u = jnp.asarray(last["u"])
            c = np.asarray(problem.constraint_matrix(last["out"]))
            violation = float(max(0.0, np.max(c))) if n_con else 0.0
            lam_np = np.asarray(lam)
            complementarity = float(np.max(np.abs(np.maximum(c, -lam_np / mu)))) if n_con else 0.0
            if inner_converged and complementarity <= tol:
                converged = True
                message = (
                    f"converged after {outer + 1} outer / {iteration} iterations: grad_norm="
                    f"{float(last['grad_norm']):.3g}, max_violation={violation:.3g}"
                )
                break
            if n_con == 0:
                break
            lam = jnp.maximum(0.0, lam + mu * c)
            if violation > 0.25 * prev_violation:
                mu *= 10.0
            prev_violation = violation
            if outer + 1 < int(outer_iters):
                save_state(outer + 1, False)
        if not converged:
            message = (
                f"not converged after {iteration} iterations (max_iter={max_iter} per outer, "
                f"outer_iters={outer_iters}): grad_norm={float(last['grad_norm']):.3g}, "
                f"max_violation={violation:.3g}, complementarity={complementarity:.3g}"
            )
        save_state(None, False, done=True)
    except KeyboardInterrupt:
        partial = None
        if chunks:
            partial = _ckpt.mark_interrupted(
                _dataset(problem, chunks, extra, method, False, "", seed, settings), f"{iteration} iterations")
        raise _ckpt.SearchInterrupted(partial, ckpt_path) from None
    finally:
        bar.close()

    return _dataset(problem, chunks, extra, method, converged, message, seed, settings)


_HISTORY_KEYS = ("lagrangian", "scalarized_objective", "grad_norm")


def _pack_history(problem: DesignProblem, chunks: list[dict], extra: dict) -> dict[str, np.ndarray]:
    """The history so far as flat arrays (`h/...`), what `_dataset` needs to rebuild it."""
    if not chunks:
        return {}
    out = {f"h/{k}": np.concatenate([c[k] for c in chunks]) for k in _HISTORY_KEYS}
    out.update({f"h/params/{n}": np.concatenate([c["params"][n] for c in chunks]) for n in problem.space.names})
    out.update({f"h/out/{n}": np.concatenate([c["out"][n] for c in chunks]) for n in chunks[0]["out"]})
    out.update({f"h/extra/{k}": np.concatenate(v) for k, v in extra.items()})
    return out


def _unpack_history(problem: DesignProblem, arrays: dict, n_con: int):
    if "h/lagrangian" not in arrays:
        return None
    chunk = {k: arrays[f"h/{k}"] for k in _HISTORY_KEYS}
    chunk["params"] = {n: arrays[f"h/params/{n}"] for n in problem.space.names}
    chunk["out"] = {k[len("h/out/"):]: v for k, v in arrays.items() if k.startswith("h/out/")}
    extra = {k: [arrays[f"h/extra/{k}"]] for k in ("outer", "penalty", "multiplier")}
    return chunk, extra


def _progress_postfix(problem: DesignProblem, last: dict, outer: int, outer_iters: int, tol: float) -> dict[str, str]:
    """The progress-bar postfix: convergence measures of the latest iterate against `tol`."""
    post = {}
    if problem.constraints:
        c = np.asarray(problem.constraint_matrix(last["out"]))
        post["outer"] = f"{outer + 1}/{outer_iters}"
        post["viol"] = f"{float(max(0.0, np.max(c))):.2g}"
    post["grad"] = f"{float(last['grad_norm']):.2g}"
    post["tol"] = f"{float(tol):.0e}"
    post["L"] = f"{float(last['lagrangian']):.6g}"
    return post


def _raise_nonfinite(problem: DesignProblem, rec: dict, i: int) -> None:
    params = {k: float(v[i]) for k, v in rec["params"].items()}
    out = {k: v[i] for k, v in rec["out"].items()}
    problem.check_finite(out, params)  # raises naming the output if one is NaN/inf
    raise NonFiniteOutputError(
        f"problem {problem.name!r}: the gradient of the augmented Lagrangian is not finite at parameters {params}"
    )


def _dataset(problem, chunks, extra, method, converged, message, seed, settings) -> xr.Dataset:
    rec = {key: np.concatenate([c[key] for c in chunks]) for key in ("lagrangian", "scalarized_objective", "grad_norm")}
    params = {n: np.concatenate([c["params"][n] for c in chunks]) for n in problem.space.names}
    out_names = problem.order_outputs(list(chunks[0]["out"]))
    outs = {n: np.concatenate([c["out"][n] for c in chunks]) for n in out_names}
    n_iter = len(rec["lagrangian"])
    dims = ("iteration",)
    variables = {n: (dims, v) for n, v in params.items()}
    variables.update({n: (dims, v) for n, v in outs.items()})
    cmat = np.asarray(problem.constraint_matrix(outs))
    variables["max_violation"] = (dims, np.maximum(0.0, cmat.max(axis=-1)) if cmat.shape[-1] else np.zeros(n_iter))
    for key in ("lagrangian", "scalarized_objective", "grad_norm"):
        variables[key] = (dims, rec[key])
    variables["outer"] = (dims, np.concatenate(extra["outer"]).astype(np.int64))
    variables["penalty"] = (dims, np.concatenate(extra["penalty"]))
    coords: dict[str, Any] = {"iteration": np.arange(n_iter)}
    long_names = {
        "max_violation": "max(0, max_j g_j / scale_j)",
        "lagrangian": "augmented Lagrangian (scaled)",
        "scalarized_objective": "scalarised objective sum_i w_i sign_i f_i / scale_i",
        "grad_norm": "norm of the Lagrangian gradient in unconstrained coordinates",
        "outer": "augmented-Lagrangian outer iteration",
        "penalty": "augmented-Lagrangian penalty mu",
        "multiplier": "Lagrange multiplier estimate of the scaled constraint",
    }
    attrs = {k: {"units": "", "long_name": v, "role": "diagnostic"} for k, v in long_names.items()}
    if problem.constraints:
        variables["multiplier"] = (("iteration", "constraint"), np.concatenate(extra["multiplier"]))
        coords["constraint"] = np.array(problem.constraint_names, dtype=object)
    return build_dataset(
        problem,
        variables,
        coords=coords,
        algorithm=f"gradient-{method}",
        settings=settings,
        seed=seed,
        converged=converged,
        message=message,
        outputs=out_names,
        attrs={k: v for k, v in attrs.items() if k in variables},
    )
