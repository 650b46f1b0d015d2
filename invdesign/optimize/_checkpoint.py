"""Checkpoints of running searches, resume, and interrupted searches.

A search given a checkpoint path (`gradient_search(..., checkpoint=PATH)`,
`genetic_search(..., checkpoint=PATH)`, or every search inside a `checkpointing(...)`
block) writes its state there after every chunk of iterations / every generation: one
`.npz` file of plain arrays plus a JSON header (no pickle), written atomically
(`invdesign.atomic_write`: temporary file, fsync, rename), so a killed run leaves the last
complete checkpoint. With `resume=True` the search continues from it:

- gradient searches store the iterate, the optimizer state (its leaves, in the order of
  `jax.tree_util`), the augmented-Lagrangian multipliers and penalty, the position in the
  outer / inner loops and the history so far; the continued run computes exactly the
  iterations the uninterrupted one would have;
- genetic searches store every evaluated batch (the population in the unit box, its
  parameters and outputs). On resume pymoo is replayed from the seed, with the stored
  evaluations answering instead of the problem (each replayed population is checked
  against the stored one), until the stored generations are used up; the RNG of pymoo
  therefore ends in the same state without being serialised, and the continued run equals
  the uninterrupted one of the same seed.

A checkpoint records what the search was (problem, method, seed, settings, names of
parameters, objectives and constraints); resuming another search from it is a ValueError.

Ctrl-C during a search raises `SearchInterrupted` (a `KeyboardInterrupt`) that carries the
result so far as `partial`: a valid dataset with attrs ``status = "interrupted"`` and
``converged = 0`` (the CLI saves it as ``TAG.partial.nc``).
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._io import atomic_write
from ._results import to_json

__all__ = ["SearchInterrupted", "checkpointing", "read_checkpoint", "write_checkpoint"]

FORMAT = "invdesign-search-checkpoint/1"
_META = "__meta__"


class SearchInterrupted(KeyboardInterrupt):
    """A search stopped by Ctrl-C (or SIGTERM in the CLI).

    `partial` is the dataset of the iterations / generations finished so far (attrs
    ``status = "interrupted"``, ``converged = 0``), or None when none finished;
    `checkpoint` the checkpoint path to resume from, or None.
    """

    def __init__(self, partial: xr.Dataset | None, checkpoint: Path | None = None):
        super().__init__("search interrupted")
        self.partial = partial
        self.checkpoint = checkpoint


def mark_interrupted(ds: xr.Dataset, done: str) -> xr.Dataset:
    """`ds` marked as an interrupted search's partial result (`done`: what was finished)."""
    ds = ds.copy()
    ds.attrs["status"] = "interrupted"
    ds.attrs["converged"] = 0
    ds.attrs["message"] = f"interrupted after {done}; this is a partial result"
    return ds


def write_checkpoint(path: str | os.PathLike, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Write one checkpoint atomically: `arrays` and the JSON `meta` in an `.npz` file."""
    if _META in arrays:
        raise ValueError(f"array name {_META!r} is reserved")
    header = json.dumps({"format": FORMAT, **meta}, default=_json_default, sort_keys=True, allow_nan=True)
    buf = io.BytesIO()
    np.savez(buf, **{_META: np.array(header)}, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write(path, buf.getvalue())


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """`(meta, arrays)` of a checkpoint; ValueError naming the file if it is not one."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"checkpoint {str(path)!r} cannot be read ({exc}); delete it to start over") from None
    try:
        meta = json.loads(str(arrays.pop(_META)))
    except (KeyError, json.JSONDecodeError):
        meta = {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"checkpoint {str(path)!r} is not an invdesign search checkpoint ({FORMAT})")
    return meta, arrays


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return repr(obj)


def identity(problem, algorithm: str, seed: int, settings: Mapping[str, Any]) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: problem, algorithm, seed, settings, names."""
    return json.loads(to_json({
        "problem": problem.name,
        "algorithm": algorithm,
        "seed": int(seed),
        "settings": dict(settings),
        "parameters": list(problem.space.names),
        "objectives": list(problem.objective_names),
        "constraints": list(problem.constraint_names),
    }))


def check_identity(path: Path, meta: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    saved = meta.get("identity")
    if saved != expected:
        diff = sorted(k for k in set(expected) | set(saved or {}) if (saved or {}).get(k) != expected.get(k))
        raise ValueError(
            f"checkpoint {str(path)!r} was written by a different search (differs in {diff}); "
            "resume it with the same problem, method, seed and settings, or delete it to start over"
        )


# ----------------------------------------------------------------------------- context

_CONTEXT: contextvars.ContextVar[dict | None] = contextvars.ContextVar("invdesign_checkpointing", default=None)


@contextlib.contextmanager
def checkpointing(prefix: str | os.PathLike, *, resume: bool = False) -> Iterator[None]:
    """Checkpoint every search started inside the block (unless it is given its own path).

    The n-th search (counting from 0) writes ``PREFIX.checkpoint-n.npz``; with `resume`,
    each continues from its file when that exists (a finished search is then rebuilt from
    its checkpoint without computing). This is how ``invdesign run ... --resume`` works
    for problems whose run makes several searches.
    """
    token = _CONTEXT.set({"prefix": str(prefix), "resume": bool(resume), "count": 0})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def checkpoint_files(prefix: str | os.PathLike) -> list[Path]:
    """The checkpoint files a `checkpointing(prefix)` block writes, as they exist now."""
    prefix = Path(prefix)
    return sorted(prefix.parent.glob(prefix.name + ".checkpoint-*.npz"))


def resolve(checkpoint: str | os.PathLike | None, resume: bool) -> tuple[Path | None, bool]:
    """The checkpoint path and resume flag of one search call (explicit, or from the context)."""
    if checkpoint is not None:
        return Path(checkpoint), bool(resume)
    if resume:
        raise ValueError("resume=True needs a checkpoint path (checkpoint=...) or a checkpointing() block")
    ctx = _CONTEXT.get()
    if ctx is None:
        return None, False
    n = ctx["count"]
    ctx["count"] = n + 1
    return Path(f"{ctx['prefix']}.checkpoint-{n}.npz"), ctx["resume"]


def load_for_resume(path: Path | None, resume: bool, expected: Mapping[str, Any]):
    """`(meta, arrays)` to continue from, or None for a fresh start."""
    if path is None or not resume or not path.exists():
        return None
    meta, arrays = read_checkpoint(path)
    check_identity(path, meta, expected)
    return meta, arrays

