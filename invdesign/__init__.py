"""invdesign: inverse design of magnetic levitation experiments and magnetic materials.

Importing the package enables float64 in JAX: every physics computation runs in double
precision (neural surrogates cast to float32 at their own boundary).
"""

import os as _os

# XLA's CPU compiler builds every fused kernel through its MLIR fusion emitters by default;
# the classic elemental emitters compile the same programs about twice as fast (the cavity
# design evaluation: 3.2 s instead of 7.3 s; its gradient 8.8 s instead of 16.6 s) and ran
# the micromagnetic solver no slower when measured (standard problem 4: 4.2 s vs 6.0 s).
# Set here, before JAX starts its CPU client, unless the user's XLA_FLAGS choose otherwise;
# child processes (Dask workers, the CLI under tests) inherit it. No effect on GPUs.
_flags = _os.environ.get("XLA_FLAGS", "")
if "xla_cpu_use_fusion_emitters" not in _flags:
    _os.environ["XLA_FLAGS"] = (_flags + " --xla_cpu_use_fusion_emitters=false").strip()

import jax as _jax  # noqa: E402

_jax.config.update("jax_enable_x64", True)

from . import constants as constants  # noqa: E402
from . import special as special  # noqa: E402
from . import fields as fields  # noqa: E402
from . import levitation as levitation  # noqa: E402
from . import cavity as cavity  # noqa: E402
from . import micromag as micromag  # noqa: E402
from ._io import atomic_write as atomic_write  # noqa: E402

__version__ = "0.1.0"
