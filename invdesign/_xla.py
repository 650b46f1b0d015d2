"""XLA flags that make the micromagnetic loops fast on CPU, for the jaxlib in use.

jaxlib 0.10's CPU backend hands reductions (sums, maxima) to YNNPACK fusions. For the array
sizes of our field loops these are 10-40x slower than XLA's own loop fusions (measured on
the energy minimiser: 0.58 -> 0.28 ms per iteration without the demag FFT). The flag below
turns them off. XLA reads `XLA_FLAGS` once, when the CPU backend starts, and aborts on a flag
it does not know. So the flag is only offered for jaxlib versions known to take it, and only
set in processes that we start ourselves (data-generation workers, benchmarks).
`studies/benchmarks/bench_hysteresis_batch.py` measures what it buys.
"""

from __future__ import annotations

import os

__all__ = ["cpu_flags", "environment_with_cpu_flags"]

_NO_YNN = "--xla_cpu_experimental_ynn_fusion_type="


def cpu_flags() -> str:
    """The recommended extra `XLA_FLAGS` for this jaxlib ("" where none is known to apply)."""
    import jaxlib

    try:
        major, minor = (int(v) for v in jaxlib.__version__.split(".")[:2])
    except ValueError:  # pragma: no cover - unusual version strings
        return ""
    return _NO_YNN if (major, minor) == (0, 10) else ""


def environment_with_cpu_flags(env: dict | None = None) -> dict:
    """A copy of `env` (default `os.environ`) with `cpu_flags()` added to `XLA_FLAGS`.

    Flags the caller has already set for the same option are kept as they are.
    """
    env = dict(os.environ if env is None else env)
    extra = cpu_flags()
    current = env.get("XLA_FLAGS", "")
    if extra and extra.split("=")[0] not in current:
        env["XLA_FLAGS"] = (current + " " + extra).strip()
    return env
