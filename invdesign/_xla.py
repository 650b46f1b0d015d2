"""XLA CPU flags for the jaxlib in use: faster compilation everywhere, and fast
micromagnetic loops in the processes that we start ourselves.

Two flags, both offered only for jaxlib 0.10 (XLA reads `XLA_FLAGS` once, when the CPU
backend starts, and aborts on a flag it does not know, so a flag is only set for versions
known to take it):

- `--xla_cpu_use_fusion_emitters=false` (`compile_flags`): XLA's CPU compiler builds every
  fused kernel through its MLIR fusion emitters by default; the classic elemental emitters
  compile the same programs about twice as fast (the cavity design evaluation: 3.2 s instead
  of 7.3 s, its gradient 8.8 s instead of 16.6 s) and ran standard problem 4 no slower (4.2 s
  against 6.0 s for the 1 ns run on 2 loaded cores). `import invdesign` sets it before JAX
  starts its CPU client, unless `XLA_FLAGS` already chooses the option; child processes
  inherit it. It does nothing on GPUs.
- `--xla_cpu_experimental_ynn_fusion_type=` (in `cpu_flags` only): jaxlib 0.10's CPU backend
  hands reductions (sums, maxima) to YNNPACK fusions. For the array sizes of our field loops
  these are 10-40x slower than XLA's own loop fusions (measured on the energy minimiser:
  0.58 -> 0.28 ms per iteration without the demag FFT). It is set only in processes that we
  start ourselves (data-generation workers, benchmarks);
  `studies/benchmarks/bench_hysteresis_batch.py` measures what it buys.
"""

from __future__ import annotations

import os

__all__ = ["compile_flags", "cpu_flags", "environment_with_cpu_flags", "set_compile_flags"]

_NO_YNN = "--xla_cpu_experimental_ynn_fusion_type="
_CLASSIC_EMITTERS = "--xla_cpu_use_fusion_emitters=false"


def _jaxlib_minor() -> tuple[int, int] | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        major, minor = (int(v) for v in version("jaxlib").split(".")[:2])
    except (PackageNotFoundError, ValueError):  # pragma: no cover - unusual installs
        return None
    return major, minor


def compile_flags() -> str:
    """The `XLA_FLAGS` that `import invdesign` adds ("" where none is known to apply)."""
    return _CLASSIC_EMITTERS if _jaxlib_minor() == (0, 10) else ""


def cpu_flags() -> str:
    """The recommended extra `XLA_FLAGS` for our own worker processes ("" where none applies)."""
    return " ".join([_NO_YNN, _CLASSIC_EMITTERS]) if _jaxlib_minor() == (0, 10) else ""


def _add(current: str, extra: str) -> str:
    """`current` with each flag of `extra` whose option it does not already set."""
    for flag in extra.split():
        if flag.split("=")[0] not in current:
            current = (current + " " + flag).strip()
    return current


def set_compile_flags() -> None:
    """Add `compile_flags()` to `os.environ["XLA_FLAGS"]` (no effect once JAX's CPU client runs)."""
    flags = _add(os.environ.get("XLA_FLAGS", ""), compile_flags())
    if flags:
        os.environ["XLA_FLAGS"] = flags


def environment_with_cpu_flags(env: dict | None = None) -> dict:
    """A copy of `env` (default `os.environ`) with `cpu_flags()` added to `XLA_FLAGS`.

    Flags the caller has already set for the same option are kept as they are.
    """
    env = dict(os.environ if env is None else env)
    flags = _add(env.get("XLA_FLAGS", ""), cpu_flags())
    if flags:
        env["XLA_FLAGS"] = flags
    return env
