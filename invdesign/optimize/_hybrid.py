"""Hybrid search: a short genetic search finds the basin, the gradient driver polishes.

Genetic searches explore the whole box but converge slowly onto thin feasible sets (the
coil trap's +-20 nm height band); gradient searches converge fast but only to the optimum
of the basin they start in. `hybrid_search` runs both in turn: GA (one objective) or
NSGA-II (several) for a few generations, then `gradient_search` from the best design it
found (for several objectives: the Pareto member with the lowest scalarised objective, the
same weighted sum the gradient stage minimises).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from ._genetic import genetic_search
from ._gradient import _weights, gradient_search
from ._problem import DesignProblem
from ._results import final, to_json

__all__ = ["hybrid_search"]


def _best_start(problem: DesignProblem, ga: xr.Dataset, weights) -> tuple[dict[str, float], int]:
    """The genetic stage's best design: lowest scalarised objective among the least violating."""
    sol = final(ga)
    cv = np.asarray(sol["cv"].values, dtype=float) if "cv" in sol else np.zeros(sol.sizes["solution"])
    outs = {name: np.asarray(sol[name].values, dtype=float) for name in problem.objective_names}
    f = np.asarray(problem.objective_matrix(outs), dtype=float)  # sign * f / scale, lower is better
    score = f @ _weights(problem, weights)
    candidates = np.flatnonzero(cv <= cv.min())
    i = int(candidates[np.argmin(score[candidates])])
    return {name: float(sol[name].values[i]) for name in problem.space.names}, i


def hybrid_search(
    problem: DesignProblem,
    *,
    algorithm: str = "auto",
    pop_size: int = 40,
    n_gen: int = 20,
    method: str = "lbfgs",
    seed: int = 0,
    progress: bool = True,
    weights: Mapping[str, float] | None = None,
    genetic_kwargs: Mapping[str, Any] | None = None,
    gradient_kwargs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Genetic search for the basin, then a gradient search from its best design.

    **Arguments:**

    - `problem`: a `DesignProblem` with a JAX `evaluate` (the gradient stage needs it).
    - `algorithm`, `pop_size`, `n_gen`: the genetic stage (`genetic_search`); short runs
      are the point (the default 40 x 20 is 800 evaluations).
    - `method`: the gradient stage's optimizer, `"lbfgs"` or `"adam"`.
    - `seed`: seeds the genetic stage; recorded.
    - `weights`: objective weights of the gradient stage's scalarisation, also used to pick
      the start among several Pareto members.
    - `genetic_kwargs`, `gradient_kwargs`: further arguments of each stage (e.g.
      `backend=`, `max_iter=`, `learning_rate=`).

    Inside an `invdesign.optimize.checkpointing` block both stages checkpoint and resume.

    **Returns:** the gradient stage's dataset (dim `iteration`, starting at the genetic
    stage's best design), with ``algorithm = "hybrid-<ga|nsga2>+gradient-<method>"``,
    both stages' settings in `settings`, and the genetic stage's summary as the JSON attr
    `genetic_stage` (`parameters`, `objectives`, `cv` of the start design, `n_evals`,
    `message`).
    """
    if not isinstance(problem, DesignProblem):
        raise TypeError(f"problem must be a DesignProblem, got {type(problem).__name__}")
    if problem.evaluate is None:
        raise ValueError(f"problem {problem.name!r} has no JAX evaluate function: the gradient stage needs one")
    gk = dict(gradient_kwargs or {})
    for key in ("x0", "method", "seed", "progress", "weights"):
        if key in gk:
            raise ValueError(f"gradient_kwargs must not set {key!r}: hybrid_search sets it")
    genk = dict(genetic_kwargs or {})
    for key in ("algorithm", "pop_size", "n_gen", "seed", "progress"):
        if key in genk:
            raise ValueError(f"genetic_kwargs must not set {key!r}: pass it to hybrid_search")
    _weights(problem, weights)  # validate before the genetic stage runs

    ga = genetic_search(problem, algorithm=algorithm, pop_size=pop_size, n_gen=n_gen, seed=seed,
                        progress=progress, **genk)
    start, i = _best_start(problem, ga, weights)
    ds = gradient_search(problem, method=method, x0=start, seed=seed, progress=progress, weights=weights, **gk)

    sol = final(ga)
    stage = {
        "algorithm": ga.attrs["algorithm"],
        "parameters": start,
        "objectives": {name: float(sol[name].values[i]) for name in problem.objective_names},
        "cv": float(sol["cv"].values[i]),
        "n_evals": int(ga["n_evals"].values[-1]),
        "message": ga.attrs["message"],
    }
    ds = ds.copy()
    ds.attrs["algorithm"] = f"hybrid-{ga.attrs['algorithm']}+{ds.attrs['algorithm']}"
    ds.attrs["settings"] = to_json({"genetic": json.loads(ga.attrs["settings"]),
                                    "gradient": json.loads(ds.attrs["settings"])})
    ds.attrs["genetic_stage"] = to_json(stage)
    ds.attrs["message"] = f"genetic stage: {ga.attrs['message']}; gradient stage: {ds.attrs['message']}"
    return ds
