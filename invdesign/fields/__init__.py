"""Magnetic fields of sources in SI units: circular current loops and point dipoles."""

from ._dipole import dipole_field as dipole_field
from ._loop import Loops as Loops
from ._loop import loop_field as loop_field
from ._loop import loop_vector_potential as loop_vector_potential
