"""Finite-difference micromagnetics in JAX.

Regular grids with per-cell materials, exchange / anisotropy / Zeeman / demagnetizing
(Newell tensor, FFT) fields with matching energies, adaptive Dormand-Prince LLG dynamics,
Barzilai-Borwein energy minimisation, Voronoi grain structures and demagnetization curves.
All quantities in SI units (A/m, J, s, m), float64.
"""

from ._grid import Grid as Grid
from ._grid import Material as Material
from ._grid import exchange_length as exchange_length
from ._terms import System as System
from ._terms import anisotropy_energy as anisotropy_energy
from ._terms import anisotropy_field as anisotropy_field
from ._terms import average_magnetization as average_magnetization
from ._terms import demag_energy as demag_energy
from ._terms import demagnetizing_field as demagnetizing_field
from ._terms import effective_field as effective_field
from ._terms import energies as energies
from ._terms import exchange_energy as exchange_energy
from ._terms import exchange_field as exchange_field
from ._terms import normalize as normalize
from ._terms import total_energy as total_energy
from ._terms import zeeman_energy as zeeman_energy
from ._terms import zeeman_field as zeeman_field
from ._llg import LLGSolution as LLGSolution
from ._llg import integrate_llg as integrate_llg
from ._llg import llg_rhs as llg_rhs
from ._minimize import MinimizeResult as MinimizeResult
from ._minimize import minimize as minimize
from ._sp4 import first_zero_crossing as first_zero_crossing
from ._sp4 import sp4_dynamics as sp4_dynamics
from ._sp4 import sp4_field as sp4_field
from ._sp4 import sp4_initial_state as sp4_initial_state
from ._sp4 import sp4_system as sp4_system
from ._grains import GrainStructure as GrainStructure
from ._grains import grain_boundary_faces as grain_boundary_faces
from ._grains import sample_grain_parameters as sample_grain_parameters
from ._grains import voronoi_grains as voronoi_grains
from ._anchors import AnchorPoints as AnchorPoints
from ._anchors import anchor_points as anchor_points
from ._stoner_wohlfarth import sw_branch as sw_branch
from ._stoner_wohlfarth import sw_ensemble_2d as sw_ensemble_2d
from ._stoner_wohlfarth import sw_ensemble_2d_angles as sw_ensemble_2d_angles
from ._stoner_wohlfarth import sw_ensemble_2d_figures as sw_ensemble_2d_figures
from ._stoner_wohlfarth import sw_switching_field as sw_switching_field
from ._hysteresis import ND2FE14B as ND2FE14B
from ._hysteresis import anisotropy_field_strength as anisotropy_field_strength
from ._hysteresis import demagnetization_curve as demagnetization_curve
from ._hysteresis import grain_system as grain_system
from ._batch import demagnetization_curves as demagnetization_curves
