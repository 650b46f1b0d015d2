"""invdesign: inverse design of magnetic levitation experiments and magnetic materials.

Importing the package enables float64 in JAX: every physics computation runs in double
precision (neural surrogates cast to float32 at their own boundary).
"""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

from . import constants as constants  # noqa: E402
from . import special as special  # noqa: E402
from . import fields as fields  # noqa: E402
from . import levitation as levitation  # noqa: E402
from . import cavity as cavity  # noqa: E402
from . import micromag as micromag  # noqa: E402
from ._io import atomic_write as atomic_write  # noqa: E402

__version__ = "0.1.0"
