"""Optimization engine: design spaces, design problems, gradient and genetic searches.

Every search returns an `xarray.Dataset` (see `invdesign.optimize.results`).

```python
from invdesign.optimize import DesignProblem, DesignSpace, Objective, Parameter, gradient_search
```
"""

from .space import DesignSpace as DesignSpace
from .space import Parameter as Parameter
from .problem import Constraint as Constraint
from .problem import DesignProblem as DesignProblem
from .problem import NonFiniteOutputError as NonFiniteOutputError
from .problem import Objective as Objective
from .gradient import gradient_search as gradient_search
from .genetic import genetic_search as genetic_search
from .results import final as final
from .results import history as history
from .results import load as load
from .results import save as save

__all__ = [
    "Constraint",
    "DesignProblem",
    "DesignSpace",
    "NonFiniteOutputError",
    "Objective",
    "Parameter",
    "final",
    "genetic_search",
    "gradient_search",
    "history",
    "load",
    "save",
]
