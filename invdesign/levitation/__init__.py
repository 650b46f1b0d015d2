"""Levitation of a perfectly diamagnetic sphere in the field of current loops.

Energy ``U = m g z + k V |B|^2 / (2 mu0)`` (``k = 1`` perfect diamagnet, ``k = 3/2``
superconducting sphere), forces, stiffness and trap frequencies, equilibria (Newton with
implicit differentiation), stability maps and trap depths, and the paper's chip traps.

This is the diamagnet wing; a permanent magnet in a superconducting cavity is
`invdesign.cavity`. `signed_frequency` is shared by both wings.
"""

from .._mechanics import signed_frequency as signed_frequency
from ._axial import axial_equilibrium as axial_equilibrium
from ._axial import axis_stiffness as axis_stiffness
from ._barrier import escape_barrier as escape_barrier
from ._barrier import minimax_escape_levels as minimax_escape_levels
from ._energy import b_squared as b_squared
from ._energy import energy as energy
from ._energy import energy_hessian as energy_hessian
from ._energy import force as force
from ._energy import hessian_b2 as hessian_b2
from ._energy import laplacian_b2 as laplacian_b2
from ._equilibria import EquilibriumError as EquilibriumError
from ._equilibria import EquilibriumInfo as EquilibriumInfo
from ._equilibria import equilibrium as equilibrium
from ._equilibria import find_equilibria as find_equilibria
from ._maps import CRITERIA as CRITERIA
from ._maps import classify_stability as classify_stability
from ._maps import stability_map as stability_map
from ._modes import TrapModes as TrapModes
from ._modes import trap_modes as trap_modes
from ._sphere import Sphere as Sphere
from ._traps import anti_helmholtz_sphere as anti_helmholtz_sphere
from ._traps import anti_helmholtz_trap as anti_helmholtz_trap
from ._traps import concentric_sphere as concentric_sphere
from ._traps import concentric_trap as concentric_trap
