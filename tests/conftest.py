"""Test-session set-up: float64, and JAX's persistent compilation cache.

Most of the suite's time is XLA compilation. Compiled executables are cached on disk,
keyed by their HLO, in ``$INVDESIGN_JAX_CACHE`` (default: the user cache directory,
``$XDG_CACHE_HOME/invdesign/jax`` or ``~/.cache/invdesign/jax``): identical computations
built by different tests (or pytest-xdist workers) compile once, and a second run of the
suite reuses the first run's work. The suite passes with an empty cache; set
``INVDESIGN_JAX_CACHE=off`` to disable it.
"""

import os
from pathlib import Path

import invdesign  # noqa: F401  (first: it sets XLA_FLAGS before JAX starts its CPU client)
import jax
import pytest

jax.config.update("jax_enable_x64", True)


def _cache_dir():
    env = os.environ.get("INVDESIGN_JAX_CACHE")
    if env is not None:
        return None if env.lower() in ("", "0", "off", "none") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "invdesign" / "jax"


_CACHE = _cache_dir()
if _CACHE is not None:
    try:
        _CACHE.mkdir(parents=True, exist_ok=True)
    except OSError:  # an unwritable home: run without the cache
        _CACHE = None
if _CACHE is not None:
    jax.config.update("jax_compilation_cache_dir", str(_CACHE))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.05)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)



# pytest-xdist hands whole files to the two workers in collection order
# (`--no-loadscope-reorder`): the longest first, so that the last file to start is a short
# one and both workers finish together. The weights are measured seconds per file
# (tests/file_weights.json, refreshed by `.ci/test_weights.py`); a file not listed there
# counts as a median one. The order of tests inside a file is kept.
_WEIGHTS = Path(__file__).with_name("file_weights.json")


def pytest_collection_modifyitems(config, items):
    import json
    import statistics

    try:
        weights = json.loads(_WEIGHTS.read_text())
    except (OSError, ValueError):
        return
    default = statistics.median(weights.values()) if weights else 0.0
    root = Path(str(config.rootpath))

    def weight(item):
        try:
            rel = Path(str(item.path)).relative_to(root).as_posix()
        except ValueError:
            return default
        return weights.get(rel, default)

    items.sort(key=lambda item: -weight(item))  # stable: a file's tests stay in order


# Most tests compile far more than they run (one BEM gradient compiles for 30 s and runs in
# milliseconds). For them XLA's cheaper optimisation level saves about a third of the
# compile time; the numerics are the same operations (the references' tolerances do not
# depend on it). The tests of the micromagnetic and surrogate folders mostly run long loops
# (solvers, training) and keep XLA's full optimisation, unless their module sets
# `FULL_XLA_OPTIMIZATION = False` (tiny pipelines that only compile). The flag is read at
# compile time, so it is switched per test module.
_RUNTIME_HEAVY = ("micromag", "surrogates")


@pytest.fixture(autouse=True, scope="module")
def _compile_effort(request):
    path = Path(str(request.node.path))
    heavy = getattr(request.module, "FULL_XLA_OPTIMIZATION", any(part in _RUNTIME_HEAVY for part in path.parts))
    if os.environ.get("INVDESIGN_TEST_XLA_OPT") in ("full", "reduced"):  # for measuring the choice
        heavy = os.environ["INVDESIGN_TEST_XLA_OPT"] == "full"
    old = jax.config.values.get("jax_disable_most_optimizations", False)
    jax.config.update("jax_disable_most_optimizations", not heavy)
    yield
    jax.config.update("jax_disable_most_optimizations", old)


@pytest.fixture(scope="session")
def check_png():
    """`check_png(path, min_colours=50)`: assert `path` is a drawn picture (over 300 x 300 pixels,
    more than `min_colours` distinct colours, not one flat background)."""
    import matplotlib.image as mpimg
    import numpy as np

    def check(path, min_colours=50):
        img = mpimg.imread(path)
        assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 300
        rgb = np.round(img[..., :3].reshape(-1, 3) * 255).astype(np.int64)
        # a drawn picture: many distinct colours and not one flat background
        assert np.unique(rgb @ np.array([65536, 256, 1])).size > min_colours
        assert (rgb / 255).std() > 0.05

    return check


@pytest.fixture(scope="session")
def batched_linalg():
    """`batched_linalg(closed_jaxpr)`: (primitive, operand shape) of every LU factorisation or
    triangular solve with a batch axis (operand of more than 2 dims), sub-jaxprs included.
    jaxlib 0.10.2's batched CPU kernels for these deadlocked its thread pool."""
    import jax.extend

    def find(closed):
        found = []

        def walk(jp):
            for eqn in jp.eqns:
                if eqn.primitive.name in ("lu", "triangular_solve"):
                    shape = tuple(eqn.invars[0].aval.shape)
                    if len(shape) > 2:
                        found.append((eqn.primitive.name, shape))
                for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                    walk(sub)

        walk(closed.jaxpr)
        return found

    return find
