"""Genetic search with pymoo: GA for one objective, NSGA-II for several.

pymoo searches the box-normalised space [0, 1]^d of the `DesignSpace` (log-uniform for
`log=True` parameters). Its `Problem._evaluate` maps the population to parameters and
calls one jitted `vmap` of the problem's `evaluate` over a batch padded to a fixed size
(rows repeat the last individual, then are dropped), so pymoo's varying batch sizes never
trigger a recompile. Problems with an `elementwise` plain-Python function instead run
through a Dask `distributed.Client` (`client.map` / `client.gather`).

Objectives are handed to pymoo as `sign * f / scale` (maximised ones negated) and
constraints as `G = g / scale <= 0`; results report the original values.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jaxtyping import Float
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.core.problem import Problem
from pymoo.core.population import Population
from tqdm.auto import tqdm

from . import _checkpoint as _ckpt
from ._problem import DesignProblem
from ._results import HISTORY_PREFIX, build_dataset

__all__ = ["PymooProblem", "VectorizedEvaluator", "genetic_search"]

UnitPopulation = Float[np.ndarray, "n d"]
"""A population in the box-normalised space [0, 1]^d, one row per individual."""

Column = Float[np.ndarray, " n"]
"""One value per individual."""


class _UnitBatch:
    """Jitted `Z (n, d) -> (P (n, d), OUT (n, k))` over a population, cached per problem.

    Returning two matrices (not dicts) makes one device-to-host transfer each; the output
    names (`self.names`) are recorded while tracing.
    """

    def __init__(self, problem: DesignProblem):
        self.problem = problem
        self.names: list[str] | None = None
        self.fn = jax.jit(jax.vmap(self._one))

    def _one(self, z):
        params = self.problem.space.from_unit(z)
        out = self.problem._traced_evaluate(params)  # ordered: objectives, constraints, extras
        self.names = list(out)
        return self.problem.space.to_vector(params), jnp.stack(list(out.values()))


def _unit_batch(problem: DesignProblem) -> _UnitBatch:
    """The problem's `_UnitBatch`, created once and cached on the problem."""
    batch = problem._jit_cache.get("genetic")
    if batch is None:
        batch = problem._jit_cache["genetic"] = _UnitBatch(problem)
    return batch


class VectorizedEvaluator:
    """Evaluate populations with one jitted vmap over batches padded to `batch_size`.

    The compiled batch function is cached on the problem, so populations of any size (split
    into batches, the last one padded by repeating its last row) never trigger a recompile.

    **Arguments:**

    - `problem`: the `DesignProblem` (with a JAX `evaluate`).
    - `batch_size`: rows per jitted call.

    Calling it with `Z (n, d)` in the box-normalised space `[0, 1]^d` returns
    `(params, outputs)`, dicts of arrays `(n,)` of the physical parameters and of every
    evaluate output.

    **Example:**

    ```python
    params, outputs = VectorizedEvaluator(problem, 64)(np.random.default_rng(0).random((100, d)))
    ```
    """

    def __init__(self, problem: DesignProblem, batch_size: int):
        self.problem = problem
        self.batch_size = int(batch_size)
        self.batch = _unit_batch(problem)

    def __call__(self, Z: UnitPopulation) -> tuple[dict[str, Column], dict[str, Column]]:
        n, b = len(Z), self.batch_size
        Ps, Os = [], []
        for start in range(0, n, b):
            chunk = np.asarray(Z[start : start + b], dtype=float)
            m = len(chunk)
            if m < b:  # pad by repeating the last row: fixed shape, one compile
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], b - m, axis=0)])
            P, O = self.batch.fn(chunk)
            Ps.append(np.asarray(P)[:m])
            Os.append(np.asarray(O)[:m])
        P, O = np.concatenate(Ps), np.concatenate(Os)
        params = {k: P[:, j] for j, k in enumerate(self.problem.space.names)}
        outputs = {k: O[:, j] for j, k in enumerate(self.batch.names)}
        return params, outputs


def _call_elementwise(problem: DesignProblem, row: dict[str, float]) -> dict[str, float]:
    """Runs on a Dask worker: one elementwise (or jitted single-point) evaluation."""
    return problem.call_elementwise(row)


class _DaskEvaluator:
    """Evaluate populations one individual per Dask task (`client.map` + `client.gather`)."""

    def __init__(self, problem: DesignProblem, client: Any):
        self.problem = problem
        self.client = client
        self.to_params = jax.jit(problem.space.from_unit)

    def __call__(self, Z: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        params = {k: np.asarray(v) for k, v in jax.device_get(self.to_params(jnp.asarray(Z))).items()}
        rows = [{k: float(v[i]) for k, v in params.items()} for i in range(len(Z))]
        fn = self.problem.elementwise
        if fn is None:  # JAX evaluate run per individual on the workers
            fn = functools.partial(_call_elementwise, self.problem)
        futures = self.client.map(fn, rows, pure=False)
        results = self.client.gather(futures)
        names = list(results[0])
        for i, res in enumerate(results):
            self.problem._check_output(res, "elementwise")
            if set(res) != set(names):
                raise ValueError(
                    f"elementwise returned different output names for different individuals: "
                    f"{sorted(names)} vs {sorted(res)} at parameters {rows[i]}"
                )
        outputs = {k: np.array([float(res[k]) for res in results]) for k in names}
        return params, outputs


class PymooProblem(Problem):
    """A vectorized pymoo `Problem` over the box-normalised design space.

    **Arguments:**

    - `problem`: the `DesignProblem`.
    - `evaluator`: callable `Z (n, d) -> (params, outputs)` dicts of arrays `(n,)`.

    Besides `F` (and `G`), `_evaluate` sets `P` (physical parameters) and `OUT` (every
    evaluate output, in `self.output_names` order) on each individual for the history.
    """

    def __init__(self, problem: DesignProblem, evaluator: Callable):
        super().__init__(
            n_var=len(problem.space),
            n_obj=len(problem.objectives),
            n_ieq_constr=len(problem.constraints),
            xl=0.0,
            xu=1.0,
        )
        self.design = problem
        self.evaluator = evaluator
        self.output_names: list[str] | None = None

    def _evaluate(self, x, out, *args, **kwargs):
        params, outputs = self.evaluator(np.asarray(x, dtype=float))
        self.design.check_finite(outputs, params)
        names = self.design.order_outputs(list(outputs))
        if self.output_names is None:
            self.output_names = names
        elif names != self.output_names:
            raise ValueError(f"evaluate output names changed between batches: {self.output_names} vs {names}")
        out["F"] = np.asarray(self.design.objective_matrix(outputs))
        if self.design.constraints:
            out["G"] = np.asarray(self.design.constraint_matrix(outputs))
        out["P"] = np.column_stack([params[n] for n in self.design.space.names])
        out["OUT"] = np.column_stack([outputs[n] for n in names])


def _algorithm(name: str, problem: DesignProblem, pop_size: int):
    n_obj = len(problem.objectives)
    if name == "auto":
        name = "ga" if n_obj == 1 else "nsga2"
    if name == "ga":
        if n_obj != 1:
            raise ValueError(f"algorithm 'ga' needs exactly one objective, problem has {problem.objective_names}")
        return "ga", GA(pop_size=pop_size, eliminate_duplicates=True)
    if name == "nsga2":
        return "nsga2", NSGA2(pop_size=pop_size, eliminate_duplicates=True)
    raise ValueError(f"algorithm must be 'auto', 'ga' or 'nsga2', got {name!r}")


@contextlib.contextmanager
def _dask_client(client: Any, scheduler_address: str | None, cluster_kwargs: Mapping[str, Any] | None) -> Iterator[Any]:
    """Yield the given client, one connected to `scheduler_address`, or a LocalCluster's."""
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster

    if scheduler_address is not None:
        with Client(scheduler_address) as own:
            yield own
        return
    with LocalCluster(**dict(cluster_kwargs or {})) as cluster, Client(cluster) as own:
        yield own


def genetic_search(
    problem: DesignProblem,
    algorithm: str = "auto",
    pop_size: int = 100,
    n_gen: int = 100,
    seed: int = 0,
    batch_size: int | None = None,
    backend: str = "auto",
    client: Any = None,
    scheduler_address: str | None = None,
    cluster_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
) -> xr.Dataset:
    """Search a `DesignProblem` with pymoo's GA (one objective) or NSGA-II (several).

    **Arguments:**

    - `problem`: the `DesignProblem`.
    - `algorithm`: `"auto"` (GA for one objective, NSGA-II otherwise), `"ga"`, `"nsga2"`.
    - `pop_size`: population size; `n_gen`: number of generations (the first is the
      random initial population).
    - `seed`: pymoo seed; equal seeds give identical results.
    - `batch_size`: rows per jitted evaluation (default `pop_size`); batches are padded to
      it, larger populations are split.
    - `backend`: `"auto"` (Dask when the problem has `elementwise` or a client/scheduler is
      given, else vectorized), `"vectorized"` or `"dask"`.
    - `client`: a `distributed.Client` to use; else `scheduler_address` to connect to; else
      a `LocalCluster(**cluster_kwargs)` is started and closed by this function.
    - `progress`: tqdm bar over generations (shown when the search runs longer than 2 s).
    - `checkpoint`: a file (``.npz``) to write every evaluated generation to, atomically
      (default: the enclosing `invdesign.optimize.checkpointing` block's, else none).
    - `resume`: continue from `checkpoint` when it exists (same problem, seed and settings,
      else ValueError): pymoo is replayed from the seed with the stored evaluations, then
      continues; the result equals the uninterrupted run's.

    Ctrl-C raises `SearchInterrupted` (a `KeyboardInterrupt`) whose `partial` is the
    dataset of the finished generations, marked ``status = "interrupted"``.

    **Returns:** an `xarray.Dataset`: the answer on dim `solution` (Pareto set sorted by the
    first objective, or the best individual) under the bare names with `cv` (pymoo's
    constraint violation); the populations under `history_<name>` on dims
    `generation, individual`, with `history_cv` and `n_evals`.

    **Example:**

    ```python
    ds = genetic_search(problem, pop_size=100, n_gen=200, seed=1)
    ds["f1"], ds["f2"]          # Pareto front
    ```
    """
    if not isinstance(problem, DesignProblem):
        raise TypeError(f"problem must be a DesignProblem, got {type(problem).__name__}")
    for arg, val in (("pop_size", pop_size), ("n_gen", n_gen)):
        if not (isinstance(val, (int, np.integer)) and val >= 1):
            raise ValueError(f"{arg} must be an integer >= 1, got {val!r}")
    if int(pop_size) < 2:
        raise ValueError(f"pop_size must be >= 2, got {pop_size}")
    batch_size = int(pop_size) if batch_size is None else batch_size
    if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if backend not in ("auto", "vectorized", "dask"):
        raise ValueError(f"backend must be 'auto', 'vectorized' or 'dask', got {backend!r}")
    if backend == "auto":
        wants_dask = problem.elementwise is not None or client is not None or scheduler_address is not None
        backend = "dask" if wants_dask or problem.evaluate is None else "vectorized"
    if backend == "vectorized" and problem.evaluate is None:
        raise ValueError(f"backend 'vectorized' needs a JAX evaluate; problem {problem.name!r} has only elementwise")
    algo_name, algo = _algorithm(algorithm, problem, int(pop_size))

    settings = {
        "algorithm": algo_name,
        "pop_size": int(pop_size),
        "n_gen": int(n_gen),
        "batch_size": int(batch_size),
        "backend": backend,
        "scheduler_address": scheduler_address,
        "crossover": "SBX",
        "mutation": "PM",
        "eliminate_duplicates": 1,
    }
    ckpt_path, resume = _ckpt.resolve(checkpoint, resume)
    # the backend does not change the numbers: a run may resume on another backend
    ident = _ckpt.identity(problem, algo_name, seed, {k: v for k, v in settings.items()
                                                        if k not in ("backend", "scheduler_address", "batch_size")})
    saved = _ckpt.load_for_resume(ckpt_path, resume, ident)
    replay = _Replay(problem, saved, ckpt_path)
    with contextlib.ExitStack() as stack:
        if replay.exhausts_run(int(n_gen)):
            evaluator: Callable = _no_evaluations
        elif backend == "dask":
            dask_client = stack.enter_context(_dask_client(client, scheduler_address, cluster_kwargs))
            evaluator = _DaskEvaluator(problem, dask_client)
        else:
            evaluator = VectorizedEvaluator(problem, int(batch_size))
        replay.evaluator = evaluator
        pm_problem = PymooProblem(problem, replay)
        algo.setup(pm_problem, termination=("n_gen", int(n_gen)), seed=int(seed), verbose=False)
        records = []
        bar = stack.enter_context(
            tqdm(
                total=int(n_gen),
                desc=f"{algo_name} {problem.name}",
                unit="gen",
                disable=not progress,
                delay=2.0,
                leave=False,
            )
        )
        try:
            while algo.has_next():
                infills = algo.ask()
                algo.evaluator.eval(pm_problem, infills)
                algo.tell(infills=infills)
                records.append(_snapshot(algo.pop, algo.evaluator.n_eval))
                bar.update(1)
                replay.save(ident, len(records), done=not algo.has_next())
        except KeyboardInterrupt:
            partial = None
            if records:
                partial = _ckpt.mark_interrupted(
                    _dataset(problem, pm_problem.output_names, records, _best(algo), algo_name, settings, seed,
                             int(pop_size)),
                    f"{len(records)} generations",
                )
            raise _ckpt.SearchInterrupted(partial, ckpt_path) from None
        opt = _best(algo)
    return _dataset(problem, pm_problem.output_names, records, opt, algo_name, settings, seed, int(pop_size))


def _best(algo):
    opt = algo.result().opt if algo.n_gen else None
    if opt is None or len(opt) == 0:
        # no feasible individual: report the least infeasible one (converged = 0)
        cv = np.asarray(algo.pop.get("CV"), dtype=float).reshape(-1)
        opt = algo.pop[[int(np.argmin(cv))]]
    return opt


def _no_evaluations(Z):
    raise RuntimeError("a finished search was replayed from its checkpoint but asked for a new evaluation")


class _Replay:
    """The evaluator pymoo sees: stored batches first (checked against pymoo's request), then
    the real `evaluator`; every batch is kept for the checkpoint."""

    def __init__(self, problem: DesignProblem, saved, path):
        self.problem, self.path, self.evaluator = problem, path, None
        self.batches: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.stored: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.names: list[str] | None = None
        self.stored_generations = 0
        if saved is not None:
            meta, arrays = saved
            self.names = meta["output_names"]
            self.stored_generations = int(meta["generations"])
            sizes = np.cumsum(arrays["batch_sizes"])[:-1]
            self.stored = list(zip(*(np.split(arrays[k], sizes) for k in ("Z", "P", "OUT"))))

    def exhausts_run(self, n_gen: int) -> bool:
        return bool(self.stored) and self.stored_generations >= n_gen

    def __call__(self, Z):
        Z = np.asarray(Z, dtype=float)
        k = len(self.batches)
        if k < len(self.stored):
            z, P, O = self.stored[k]
            if z.shape != Z.shape or not np.array_equal(z, Z):
                raise ValueError(
                    f"checkpoint {str(self.path)!r}: generation {k + 1} of the replay asks for another "
                    "population than the stored run (different pymoo version or settings?); delete it to start over"
                )
        else:
            params, outputs = self.evaluator(Z)
            names = list(outputs)
            P = np.column_stack([np.asarray(params[n], dtype=float) for n in self.problem.space.names])
            O = np.column_stack([np.asarray(outputs[n], dtype=float) for n in names])
            if self.names is None:  # (PymooProblem checks that the names stay the same)
                self.names = names
        self.batches.append((Z, P, O))
        params = {n: P[:, j] for j, n in enumerate(self.problem.space.names)}
        return params, {n: O[:, j] for j, n in enumerate(self.names)}

    def save(self, ident, generations: int, done: bool) -> None:
        if self.path is None or generations <= self.stored_generations:
            return
        _ckpt.write_checkpoint(self.path, {
            "identity": ident, "output_names": self.names, "generations": generations, "done": done,
        }, {
            "Z": np.concatenate([b[0] for b in self.batches]),
            "P": np.concatenate([b[1] for b in self.batches]),
            "OUT": np.concatenate([b[2] for b in self.batches]),
            "batch_sizes": np.array([len(b[0]) for b in self.batches], dtype=np.int64),
        })


def _snapshot(pop: Population, n_eval: int) -> dict[str, np.ndarray]:
    P, OUT, CV = pop.get("P", "OUT", "CV")
    return {
        "P": np.asarray(P, dtype=float),
        "OUT": np.asarray(OUT, dtype=float),
        "CV": np.asarray(CV, dtype=float).reshape(-1),
        "n_eval": n_eval,
    }


def _pad(a: np.ndarray, n: int) -> np.ndarray:
    if len(a) >= n:
        return a[:n]
    fill = np.full((n - len(a),) + a.shape[1:], np.nan)
    return np.concatenate([a, fill])


def _dataset(problem, output_names, records, opt, algo_name, settings, seed, pop_size) -> xr.Dataset:
    names = list(problem.space.names)
    P, OUT, CV, F = opt.get("P", "OUT", "CV", "F")
    order = np.lexsort(np.asarray(F, dtype=float).T[::-1])  # sort the front by objective 1, 2, ...
    P, OUT, CV = np.asarray(P, float)[order], np.asarray(OUT, float)[order], np.asarray(CV, float).reshape(-1)[order]
    variables: dict[str, tuple] = {}
    for j, n in enumerate(names):
        variables[n] = (("solution",), P[:, j])
    for j, n in enumerate(output_names):
        variables[n] = (("solution",), OUT[:, j])
    variables["cv"] = (("solution",), CV)
    hist_dims = ("generation", "individual")
    HP = np.stack([_pad(r["P"], pop_size) for r in records])
    HO = np.stack([_pad(r["OUT"], pop_size) for r in records])
    HC = np.stack([_pad(r["CV"], pop_size) for r in records])
    for j, n in enumerate(names):
        variables[HISTORY_PREFIX + n] = (hist_dims, HP[:, :, j])
    for j, n in enumerate(output_names):
        variables[HISTORY_PREFIX + n] = (hist_dims, HO[:, :, j])
    variables[HISTORY_PREFIX + "cv"] = (hist_dims, HC)
    variables["n_evals"] = (("generation",), np.array([r["n_eval"] for r in records], dtype=np.int64))
    feasible = bool(np.all(CV <= 0.0))
    n_evals = records[-1]["n_eval"]
    message = (
        f"{len(records)} generations, {n_evals} evaluations; {len(CV)} "
        f"{'Pareto-optimal solutions' if algo_name == 'nsga2' else 'best solution'}"
        + ("" if feasible else f"; infeasible (least constraint violation {CV.min():.3g})")
    )
    cv_attrs = {"units": "", "long_name": "pymoo constraint violation sum_j max(0, g_j / scale_j)", "role": "diagnostic"}
    return build_dataset(
        problem,
        variables,
        coords={
            "solution": np.arange(len(CV)),
            "generation": np.arange(1, len(records) + 1),
            "individual": np.arange(pop_size),
        },
        algorithm=algo_name,
        settings=settings,
        seed=seed,
        converged=feasible,
        message=message,
        outputs=output_names,
        attrs={
            "cv": cv_attrs,
            HISTORY_PREFIX + "cv": {**cv_attrs, "long_name": cv_attrs["long_name"] + " (population history)"},
            "n_evals": {"units": "", "long_name": "cumulative number of evaluations", "role": "diagnostic"},
        },
    )
