"""Optimization engine: design spaces, design problems, gradient and genetic searches,
result datasets and the problem registry.

```python
from invdesign.optimize import DesignProblem, DesignSpace, Objective, Parameter, gradient_search
```

Every search returns an `xarray.Dataset` (`save`, `load`, `final`, `history` and
`summary_table` work on it). Schema:

- one variable per parameter, objective, constraint and extra evaluate output, each with
  `units`, `long_name` and `role` (`parameter`, `objective`, `constraint`, `output`) attrs;
- gradient search: dim `iteration`, plus the diagnostics (role `diagnostic`)
  `lagrangian`, `scalarized_objective`, `grad_norm`, `max_violation`, `outer`, `penalty`
  (and `multiplier` on dims `iteration, constraint`);
- genetic search: the final answer on dim `solution` (Pareto set for NSGA-II, best
  individual for GA) under the bare names with `cv`, and the per-generation population
  under `history_<name>` on dims `generation, individual`, with `n_evals`;
- dataset attrs: `problem`, `description`, `algorithm`, `settings` (JSON), `seed`,
  `versions` (JSON), `created_utc` (ISO 8601), `parameters`, `objectives`, `constraints`,
  `outputs` (JSON lists of names), `senses` (JSON), `converged` (0/1), `message`, and
  `problem_options` (JSON: the options that rebuild the problem, `DesignProblem.options`)
  when the problem has them.

Attrs hold only strings and numbers (no dicts or bools), so files written with
`engine="h5netcdf"` round-trip exactly.

Design problems outside the library register a `ProblemEntry` under the
``invdesign.problems`` entry-point group; `available_problems()` loads them.
"""

from ._checkpoint import SearchInterrupted as SearchInterrupted
from ._checkpoint import checkpointing as checkpointing
from ._elementwise import JittedPoint as JittedPoint
from ._genetic import PymooProblem as PymooProblem
from ._genetic import VectorizedEvaluator as VectorizedEvaluator
from ._genetic import genetic_search as genetic_search
from ._gradient import gradient_search as gradient_search
from ._hybrid import hybrid_search as hybrid_search
from ._problem import Constraint as Constraint
from ._problem import DesignProblem as DesignProblem
from ._problem import NonFiniteOutputError as NonFiniteOutputError
from ._problem import Objective as Objective
from ._registry import ProblemEntry as ProblemEntry
from ._registry import available_problems as available_problems
from ._results import final as final
from ._results import history as history
from ._results import load as load
from ._results import save as save
from ._space import DesignSpace as DesignSpace
from ._space import Parameter as Parameter
from ._summary import summary_table as summary_table

__all__ = [
    "Constraint",
    "DesignProblem",
    "DesignSpace",
    "JittedPoint",
    "NonFiniteOutputError",
    "Objective",
    "Parameter",
    "ProblemEntry",
    "PymooProblem",
    "SearchInterrupted",
    "VectorizedEvaluator",
    "available_problems",
    "checkpointing",
    "final",
    "genetic_search",
    "gradient_search",
    "history",
    "hybrid_search",
    "load",
    "save",
    "summary_table",
]
