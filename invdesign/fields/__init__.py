"""Magnetic fields of sources in SI units: circular current loops and point dipoles.

Bad input and `jit`: called with concrete values, every function checks its arguments
and raises ValueError/TypeError naming the argument (a non-numeric value, a wrong shape,
NaN/inf, a loop radius <= 0, a zero normal). Inside `jit`/`grad`/`vmap` traces those eager
checks cannot run. The loop functions (`loop_field`, `loop_vector_potential`, `Loops`)
keep their cheap per-loop checks there through `equinox.error_if`: a radius that is not
finite and > 0 (which would otherwise give a finite, wrong field), a non-finite current or
center, or a zero / non-finite normal raises at run time with the same message ("loop radius must
be finite and > 0 ..."): a `JaxRuntimeError` under `jax.jit`, an `EquinoxRuntimeError`
under `equinox.filter_jit` (both `RuntimeError`s), a `ValueError` from some transformed
programs (`jit` of `grad`). `EQX_ON_ERROR=nan` turns these into NaN outputs instead. Observation points are not checked under `jit` (NaN points give NaN,
a point on a wire gives inf, as documented); `dipole_field` has no traced checks (its bad
inputs give inf or NaN, never a finite wrong value).
"""

from ._dipole import dipole_field as dipole_field
from ._loop import Loops as Loops
from ._loop import loop_field as loop_field
from ._loop import loop_vector_potential as loop_vector_potential
