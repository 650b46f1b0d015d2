"""Design problems: a design space, named objectives and named inequality constraints.

A `DesignProblem` is where forward models and optimizers meet. Its `evaluate` is a pure
JAX function of the parameter dict returning a dict of scalars that contains every
objective and constraint (and optionally extra diagnostics, kept in the results).
Constraints mean `g(x) <= 0`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float

from .._types import Scalar, Vector
from ._space import DesignSpace

__all__ = ["Objective", "Constraint", "DesignProblem", "NonFiniteOutputError"]

Params = Mapping[str, Any]
EvaluateFn = Callable[[dict[str, jax.Array]], Mapping[str, Any]]
ElementwiseFn = Callable[[dict[str, float]], Mapping[str, float]]
Population = Mapping[str, Float[ArrayLike, " n"]] | Float[ArrayLike, "n d"]
"""A population: ``{name: (n,)}`` or an ``(n, d)`` array in parameter order."""
Matrix = Float[ArrayLike, "*batch k"]
"""Outputs stacked on the last axis (NumPy in, NumPy out; JAX in, JAX out)."""


RESERVED_NAMES = frozenset(
    {
        "lagrangian", "scalarized_objective", "grad_norm", "max_violation", "outer", "penalty",
        "multiplier", "constraint", "iteration", "cv", "n_evals", "generation", "individual", "solution",
    }
)
"""Variable and dimension names the search results use for their own diagnostics."""

RESERVED_PREFIX = "history_"


class NonFiniteOutputError(ValueError):
    """An evaluation returned NaN or inf; the message names the output and the parameters."""


def _check_scale(kind: str, name: str, scale: Any) -> float:
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        raise TypeError(f"{kind} {name!r}: scale must be a positive real number, got {scale!r}") from None
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"{kind} {name!r}: scale must be finite and > 0 (allowed range (0, inf)), got {scale}")
    return scale


def _check_name(kind: str, name: Any) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{kind} name must be a Python identifier string, got {name!r}")


@dataclasses.dataclass(frozen=True)
class Objective:
    """A named objective to minimise or maximise.

    **Arguments:**

    - `name`: key of the objective in the `evaluate` output.
    - `sense`: `"min"` or `"max"`.
    - `units`: SI units of the value.
    - `long_name`: description for plots and dataset attrs.
    - `scale`: typical magnitude; optimizers work with `value / scale`.

    **Example:** `Objective("stiffness", sense="max", units="N/m", scale=1e-3)`
    """

    name: str
    sense: str = "min"
    units: str = ""
    long_name: str = ""
    scale: float = 1.0

    def __post_init__(self) -> None:
        _check_name("Objective", self.name)
        if self.sense not in ("min", "max"):
            raise ValueError(f"Objective {self.name!r}: sense must be 'min' or 'max', got {self.sense!r}")
        object.__setattr__(self, "scale", _check_scale("Objective", self.name, self.scale))

    @property
    def sign(self) -> float:
        """+1 for `min`, -1 for `max`: `sign * value` is always minimised."""
        return 1.0 if self.sense == "min" else -1.0


@dataclasses.dataclass(frozen=True)
class Constraint:
    """A named inequality constraint `g(x) <= 0`.

    **Arguments:**

    - `name`: key of `g` in the `evaluate` output.
    - `units`, `long_name`: as for `Objective`.
    - `scale`: typical magnitude; optimizers work with `g / scale`.

    **Example:** `Constraint("gap", units="m", scale=1e-6)` for `gap = d_min - d <= 0`.
    """

    name: str
    units: str = ""
    long_name: str = ""
    scale: float = 1.0

    def __post_init__(self) -> None:
        _check_name("Constraint", self.name)
        object.__setattr__(self, "scale", _check_scale("Constraint", self.name, self.scale))


def _check_options(options: Any) -> None:
    if not isinstance(options, str):
        raise TypeError(f"options must be a JSON string (\"\" for none), got {type(options).__name__}")
    if options:
        try:
            json.loads(options)
        except json.JSONDecodeError as err:
            raise ValueError(f"options must be a valid JSON string, got {options[:80]!r}: {err}") from None


def _as_objective(item: Objective | str) -> Objective:
    return Objective(item) if isinstance(item, str) else item


def _as_constraint(item: Constraint | str) -> Constraint:
    return Constraint(item) if isinstance(item, str) else item


class DesignProblem:
    """A design space plus objectives and constraints computed by one evaluate function.

    **Arguments:**

    - `name`: problem identifier (stored in results).
    - `space`: the `DesignSpace`.
    - `evaluate`: pure JAX function `dict[str, scalar] -> dict[str, scalar]` returning at
      least every objective and constraint name; extra keys are kept as diagnostics. May be
      `None` when `elementwise` is given (the problem then supports genetic search only).
    - `objectives`: sequence of `Objective` (or names, meaning `Objective(name)`).
    - `constraints`: sequence of `Constraint` (or names), each meaning `g <= 0`.
    - `elementwise`: optional plain-Python function `dict[str, float] -> dict[str, float]`
      for expensive non-JAX evaluations; the genetic driver runs it through Dask.
    - `description`: free text.
    - `outputs`: optional `{name: (units, long_name)}` for the extra (diagnostic) outputs of
      `evaluate`, used for the attrs of their result variables.
    - `model`: optional forward model the problem is built on (any object, for example a
      design evaluator whose parts plots and reports reuse); the drivers never call it.
    - `options`: JSON string of the options that rebuild the problem (default `""`: none);
      search results store it in the dataset attr `problem_options`.

    **Example:**

    ```python
    space = DesignSpace([Parameter("x", -3.0, 3.0, "m"), Parameter("y", -3.0, 3.0, "m")])
    problem = DesignProblem(
        "disk", space,
        lambda p: {"f": (p["x"] - 2) ** 2 + (p["y"] - 1) ** 2, "g": p["x"] + p["y"] - 2},
        objectives=[Objective("f", units="m^2")], constraints=[Constraint("g", units="m")],
    )
    problem.evaluate_batch(np.zeros((4, 2)))["f"]   # array of shape (4,)
    ```
    """

    def __init__(
        self,
        name: str,
        space: DesignSpace,
        evaluate: EvaluateFn | None,
        objectives: Sequence[Objective | str],
        constraints: Sequence[Constraint | str] = (),
        elementwise: ElementwiseFn | None = None,
        description: str = "",
        outputs: Mapping[str, tuple[str, str]] | None = None,
        model: Any = None,
        options: str = "",
    ):
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        if not isinstance(space, DesignSpace):
            raise TypeError(f"space must be a DesignSpace, got {type(space).__name__}")
        if evaluate is None and elementwise is None:
            raise ValueError("evaluate and elementwise are both None: give at least one evaluation function")
        if evaluate is not None and not callable(evaluate):
            raise TypeError(f"evaluate must be callable, got {type(evaluate).__name__}")
        if elementwise is not None and not callable(elementwise):
            raise TypeError(f"elementwise must be callable, got {type(elementwise).__name__}")
        _check_options(options)
        if isinstance(objectives, (str, Objective)):
            objectives = [objectives]
        if isinstance(constraints, (str, Constraint)):
            constraints = [constraints]
        objectives = tuple(_as_objective(o) for o in objectives)
        constraints = tuple(_as_constraint(c) for c in constraints)
        if not objectives:
            raise ValueError("objectives must contain at least one Objective")
        for o in objectives:
            if not isinstance(o, Objective):
                raise TypeError(f"objectives must be Objective instances or names, got {o!r}")
        for c in constraints:
            if not isinstance(c, Constraint):
                raise TypeError(f"constraints must be Constraint instances or names, got {c!r}")
        names = [o.name for o in objectives] + [c.name for c in constraints]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"objectives/constraints: duplicate names {dupes}")
        clash = sorted(set(names) & set(space.names))
        if clash:
            raise ValueError(f"objectives/constraints: names {clash} are also parameter names")
        self.check_reserved(names, "objectives/constraints")
        self.check_reserved(space.names, "parameters")
        self.name = name
        self.space = space
        self.evaluate = evaluate
        self.objectives: tuple[Objective, ...] = objectives
        self.constraints: tuple[Constraint, ...] = constraints
        self.elementwise = elementwise
        self.description = description
        self.outputs: dict[str, tuple[str, str]] = {}
        for key, meta in dict(outputs or {}).items():
            if not (isinstance(meta, tuple) and len(meta) == 2 and all(isinstance(t, str) for t in meta)):
                raise ValueError(f"outputs[{key!r}] must be a (units, long_name) pair of strings, got {meta!r}")
            self.outputs[key] = meta
        self.model = model
        self.options: str = options
        self._jit_cache: dict[Any, Any] = {}
        """Compiled search kernels keyed by the driver (lives and dies with the problem)."""

    def __repr__(self) -> str:
        return (
            f"DesignProblem({self.name!r}, parameters={list(self.space.names)}, "
            f"objectives={self.objective_names}, constraints={self.constraint_names})"
        )

    def __getstate__(self) -> dict[str, Any]:
        # Jitted callables cached on the instance do not pickle (Dask ships problems to workers).
        state = dict(self.__dict__)
        state.pop("evaluate_one", None)
        state.pop("_batch_fn", None)
        state["_jit_cache"] = {}
        return state

    # -- names -------------------------------------------------------------------------
    @property
    def objective_names(self) -> list[str]:
        return [o.name for o in self.objectives]

    @property
    def constraint_names(self) -> list[str]:
        return [c.name for c in self.constraints]

    @property
    def required_outputs(self) -> list[str]:
        """Objective then constraint names: what every evaluation must return."""
        return self.objective_names + self.constraint_names

    # -- construction helpers ------------------------------------------------------------
    @classmethod
    def from_functions(
        cls,
        name: str,
        space: DesignSpace,
        objectives: Mapping[str, Callable | tuple[Callable, Objective | str]],
        constraints: Mapping[str, Callable | tuple[Callable, Constraint]] | None = None,
        extras: Mapping[str, Callable] | None = None,
        description: str = "",
        model: Any = None,
        options: str = "",
    ) -> "DesignProblem":
        """Build a problem from one JAX function per objective / constraint.

        **Arguments:**

        - `objectives`: `{name: fn}`, `{name: (fn, "max")}` or `{name: (fn, Objective(...))}`;
          each `fn(params) -> scalar`. An `Objective`'s name is replaced by the key.
        - `constraints`: `{name: fn}` or `{name: (fn, Constraint(...))}` with `fn <= 0` feasible.
        - `extras`: `{name: fn}` diagnostics recorded alongside.
        - `description`, `model`, `options`: as for `DesignProblem`.

        **Returns:** a `DesignProblem`.

        **Example:**

        ```python
        DesignProblem.from_functions("sphere", space, {"f": lambda p: p["x"] ** 2})
        ```
        """
        fns: dict[str, Callable] = {}
        objs: list[Objective] = []
        cons: list[Constraint] = []
        for key, item in objectives.items():
            fn, spec = item if isinstance(item, tuple) else (item, Objective(key))
            if isinstance(spec, str):
                spec = Objective(key, sense=spec)
            objs.append(dataclasses.replace(spec, name=key))
            fns[key] = fn
        for key, item in (constraints or {}).items():
            fn, spec = item if isinstance(item, tuple) else (item, Constraint(key))
            cons.append(dataclasses.replace(spec, name=key))
            fns[key] = fn
        for key, fn in (extras or {}).items():
            fns[key] = fn
        for key, fn in fns.items():
            if not callable(fn):
                raise TypeError(f"function for {key!r} must be callable, got {type(fn).__name__}")

        def evaluate(params):
            return {key: fn(params) for key, fn in fns.items()}

        return cls(name, space, evaluate, objs, cons, description=description, model=model, options=options)

    # -- checked evaluation --------------------------------------------------------------
    def _check_output(self, out: Any, where: str) -> dict[str, Any]:
        if not isinstance(out, Mapping):
            raise TypeError(f"{where} must return a dict of scalars, got {type(out).__name__}")
        missing = [n for n in self.required_outputs if n not in out]
        if missing:
            kinds = ["objective" if n in self.objective_names else "constraint" for n in missing]
            desc = ", ".join(f"{k} {n!r}" for k, n in zip(kinds, missing))
            raise ValueError(f"{where} output is missing {desc}; it returned {sorted(out)}")
        bad = [k for k in out if not (isinstance(k, str) and k.isidentifier())]
        if bad:
            raise ValueError(f"{where} output names must be identifier strings, got {bad}")
        clash = sorted(set(out) & set(self.space.names))
        if clash:
            raise ValueError(f"{where} output names {clash} are also parameter names")
        self.check_reserved(out, where)
        return dict(out)

    def check_reserved(self, names: Any, where: str = "evaluate") -> None:
        """Raise ValueError if an output name is reserved for search diagnostics."""
        bad = sorted(n for n in names if n in RESERVED_NAMES or n.startswith(RESERVED_PREFIX))
        if bad:
            raise ValueError(
                f"{where} output names {bad} are reserved for search diagnostics "
                f"(reserved: {sorted(RESERVED_NAMES)} and the prefix {RESERVED_PREFIX!r})"
            )

    def _traced_evaluate(self, params: dict[str, jax.Array]) -> dict[str, jax.Array]:
        if self.evaluate is None:
            raise ValueError(
                f"problem {self.name!r} has no JAX evaluate function (only elementwise); "
                "use genetic_search, which runs it through Dask"
            )
        out = self._check_output(self.evaluate(params), "evaluate")
        result = {}
        for key in sorted(out, key=self._output_order):
            value = jnp.asarray(out[key], dtype=float)
            if value.shape != ():
                raise ValueError(f"evaluate output {key!r} must be a scalar, got shape {value.shape}")
            result[key] = value
        return result

    def _output_order(self, key: str) -> tuple[int, str]:
        req = self.required_outputs
        return (req.index(key), "") if key in req else (len(req), key)

    def order_outputs(self, names: Sequence[str]) -> list[str]:
        """Objectives first, then constraints, then extra outputs sorted by name."""
        return sorted(names, key=self._output_order)

    @functools.cached_property
    def evaluate_one(self) -> Callable[[Params], dict[str, Scalar]]:
        """Jitted single-point `evaluate` with output checks (no finiteness check)."""
        return jax.jit(self._traced_evaluate)

    @functools.cached_property
    def _batch_fn(self) -> Callable:
        return jax.jit(jax.vmap(self._traced_evaluate))

    def as_batch(self, X: Population, argument: str = "X") -> dict[str, Vector]:
        """Convert a population (dict of arrays or 2-D array in parameter order) to a dict of 1-D arrays."""
        if isinstance(X, Mapping):
            self.space.check_names(X, argument)
            batch = {n: jnp.atleast_1d(jnp.asarray(X[n], dtype=float)) for n in self.space.names}
            shapes = {n: v.shape for n, v in batch.items()}
            if len({s for s in shapes.values()}) != 1 or len(next(iter(shapes.values()))) != 1:
                raise ValueError(f"{argument}: every parameter must be a 1-D array of the same length, got {shapes}")
            return batch
        X = jnp.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != len(self.space):
            raise ValueError(
                f"{argument} must have shape (n, {len(self.space)}) in parameter order "
                f"{list(self.space.names)}, got {X.shape}"
            )
        return self.space.from_vector(X)

    def evaluate_batch(self, X: Population, check: bool = True) -> dict[str, Vector]:
        """Evaluate a population with one jitted `vmap`.

        **Arguments:**

        - `X`: dict `{name: array (n,)}` or array `(n, d)` in parameter order.
        - `check`: raise `NonFiniteOutputError` naming the output if any value is NaN/inf.

        **Returns:** dict `{output name: array (n,)}`.

        **Example:** `problem.evaluate_batch(problem.space.sample(0, 128))["f"]`
        """
        params = self.as_batch(X)
        out = self._batch_fn(params)
        out = {k: out[k] for k in self.order_outputs(list(out))}  # jit returns sorted keys
        if check:
            self.check_finite({k: np.asarray(v) for k, v in out.items()}, {k: np.asarray(v) for k, v in params.items()})
        return out

    def check_finite(self, outputs: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> None:
        """Raise `NonFiniteOutputError` naming the first output with NaN/inf (batched or scalar)."""
        for key in self.order_outputs(list(outputs)):
            value = np.asarray(outputs[key], dtype=float)
            bad = ~np.isfinite(value)
            if np.any(bad):
                where = ""
                if params is not None:
                    idx = np.unravel_index(np.argmax(bad), bad.shape) if bad.ndim else ()
                    point = {
                        n: float(np.asarray(v, dtype=float)[idx]) if np.ndim(v) else float(v)
                        for n, v in params.items()
                    }
                    where = f" at parameters {point}"
                raise NonFiniteOutputError(
                    f"problem {self.name!r}: output {key!r} is not finite "
                    f"({np.asarray(value)[bad].flat[0]}){where}"
                )

    def call_elementwise(self, params: Mapping[str, float]) -> dict[str, float]:
        """Call `elementwise` (or the jitted `evaluate`) on one point with output checks."""
        if self.elementwise is not None:
            out = self._check_output(self.elementwise(dict(params)), "elementwise")
            return {k: float(v) for k, v in out.items()}
        return {k: float(v) for k, v in self.evaluate_one(dict(params)).items()}

    # -- minimisation form ---------------------------------------------------------------
    def objective_matrix(self, outputs: Mapping[str, ArrayLike]) -> Matrix:
        """`sign * f / scale` for each objective, stacked on the last axis (to minimise).

        NumPy in, NumPy out (no JAX dispatch on the host); JAX arrays or tracers give JAX.
        """
        xp = _array_module(outputs)
        return xp.stack([o.sign * xp.asarray(outputs[o.name]) / o.scale for o in self.objectives], axis=-1)

    def constraint_matrix(self, outputs: Mapping[str, ArrayLike]) -> Matrix:
        """`g / scale` for each constraint, stacked on the last axis (feasible when <= 0)."""
        xp = _array_module(outputs)
        if not self.constraints:
            return xp.zeros(xp.shape(outputs[self.objectives[0].name]) + (0,))
        return xp.stack([xp.asarray(outputs[c.name]) / c.scale for c in self.constraints], axis=-1)


def _array_module(outputs: Mapping[str, Any]) -> Any:
    return jnp if any(isinstance(v, jax.Array) for v in outputs.values()) else np
