"""The problem registry: runnable design problems found through entry points.

Design problems live outside the core library (folder `problems/`, import name `invdesign_problems`, or any installed
distribution) and register a `ProblemEntry` under the ``invdesign.problems`` entry-point
group, for example in `pyproject.toml`:

```toml
[project.entry-points."invdesign.problems"]
coil-trap = "invdesign_problems.coil_trap:COIL_TRAP"
```

The `invdesign` command (and anything else) lists and runs them through
`available_problems()`, so the library never imports the problems themselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from importlib.metadata import entry_points

from ._summary import summary_table

__all__ = ["ENTRY_POINT_GROUP", "ProblemEntry", "available_problems"]

ENTRY_POINT_GROUP = "invdesign.problems"
"""The entry-point group every `ProblemEntry` is registered under."""

METHODS = ("gradient", "genetic", "hybrid")
"""The search methods a `ProblemEntry` may offer."""


@dataclasses.dataclass(frozen=True)
class ProblemEntry:
    """A runnable design problem for the command line.

    **Arguments:**

    - `name`: command-line name (``invdesign run NAME``).
    - `description`: one line for ``invdesign list``.
    - `methods`: supported search methods (`"gradient"`, `"genetic"`), the first is the default.
    - `run`: ``run(method, seed, quick, progress) -> xarray.Dataset``.
    - `plot`: ``plot(dataset, out_dir) -> list of written PNG paths``.
    - `summary`: ``summary(dataset) -> str``, a table printed after the run (default
      `summary_table`, the generic final-design table).
    - `verifies`: the problem's search runs on a surrogate and `run` takes ``verify=N``:
      re-check the best N designs with the full solver (``invdesign run NAME --verify N``).
    - `refines`: `run` also takes ``refine=N``: up to N more solver runs that correct the
      surrogate where the solver disagrees and search again (``invdesign run NAME --refine N``).

    **Example:**

    ```python
    ProblemEntry("sphere", "minimise |x|^2", ("gradient",), run=run, plot=plot)
    ```
    """

    name: str
    description: str
    methods: tuple[str, ...]
    run: Callable
    plot: Callable
    summary: Callable = summary_table
    verifies: bool = False
    refines: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or any(c.isspace() for c in self.name):
            raise ValueError(f"ProblemEntry name must be a non-empty string without spaces, got {self.name!r}")
        methods = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods)
        if not methods or any(m not in METHODS for m in methods):
            raise ValueError(
                f"ProblemEntry {self.name!r}: methods must be a non-empty sequence of {list(METHODS)}, "
                f"got {self.methods!r}"
            )
        object.__setattr__(self, "methods", methods)
        for field in ("run", "plot", "summary"):
            if not callable(getattr(self, field)):
                raise TypeError(f"ProblemEntry {self.name!r}: {field} must be callable, got {getattr(self, field)!r}")


def available_problems() -> dict[str, ProblemEntry]:
    """All registered problems by name, sorted (loaded from the ``invdesign.problems`` entry points).

    **Raises:** `TypeError` naming the entry point if it does not load to a `ProblemEntry`.
    """
    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        entry = ep.load()
        if not isinstance(entry, ProblemEntry):
            raise TypeError(
                f"entry point {ep.name!r} ({ep.value}) in group {ENTRY_POINT_GROUP!r} must name a "
                f"ProblemEntry, got {type(entry).__name__}"
            )
        found[entry.name] = entry
    return dict(sorted(found.items()))
