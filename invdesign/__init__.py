"""invdesign: inverse design of magnetic levitation experiments and magnetic materials.

Importing the package enables float64 in JAX: every physics computation runs in double
precision (neural surrogates cast to float32 at their own boundary). It also asks XLA's CPU
compiler for its classic kernel emitters, which compile about twice as fast, unless
`XLA_FLAGS` already chooses (`invdesign._xla`; import invdesign before running anything in
JAX for it to apply).
"""

from ._xla import set_compile_flags as _set_compile_flags

_set_compile_flags()  # before JAX starts its CPU client (see invdesign._xla)

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
