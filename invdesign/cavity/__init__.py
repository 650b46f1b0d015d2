"""A permanent magnet levitated in a superconducting coaxial stub cavity.

The cavity wing of invdesign (Miller et al., *An N-loop potential energy model for levitated
mm-scale magnets in cm-scale superconducting coaxial microwave resonators*):

- geometry: `CoaxialCavity` (radius, height, stub radius and height) with its exact wall
  distance; meshes of circular surface elements (`Mesh`, `axisymmetric_mesh`, `cavity_mesh`,
  plates and spheres), differentiable in the geometry at a fixed `MeshLayout`;
- quadrature rules on the elements (`element_rule`) and the boundary-element assembly of the
  Meissner model (`near_pairs`);
- magnets: `SphereMagnet` (exact point dipole) and `DiskMagnet` (solenoid current sheet),
  the paper's grades and angles, gravity along a cavity tilt;
- four response models behind one abstract interface, `CavityModel`: `ImageModel` (paper
  eqs. 1-3), `TwoLoopModel` (paper II.2), `NLoopModel` (the paper's N-loop model) and the
  default `MeissnerModel` (the ideal Meissner state as a boundary-element method), with the
  factories `nloop_model` and `meissner_model`;
- one `total_energy` (``response * U_mag + m g (up . x)``), energy `landscape`s and their
  wells, `axis_height`, `mechanical_frequencies` (signed, `signed_frequency`), and
  `calibrate_response`, which fits an effective response factor to measured heights;
- `TiltedCavityDesign`: the figures of merit of a tilted cavity (global minimum with
  implicit derivatives, well depth, frequencies) as one differentiable function of the
  geometry, for design searches.

SI units throughout: metres, tesla, joules, kilograms, hertz.

Bad input: called with concrete values, `magnetic_energy` (every model), `total_energy`,
`landscape`, `refine_minima`, `axis_height` and `mechanical_frequencies` raise ValueError
naming the argument: `position` for a magnet that does not fit (inside a wall or the stub,
below the floor or a plate, touching a surface), `direction` unless a finite nonzero
3-vector, `tilt` unless finite, `response` unless finite and > 0, a reversed `z_lo`/`z_hi`
bracket; TypeError naming `magnet` for anything but a magnet. Inside `jit`/`grad`/`vmap`
traces these checks are skipped by design: the solvers evaluate trial points beyond a
wall and reject them by `clearance`, so compiled code that needs the guarantee tests
``clearance(...) >= 0`` itself (the loop-field checks underneath still run, see
`invdesign.fields`).
"""

from .._mechanics import signed_frequency as signed_frequency
from ._bem import assemble as assemble
from ._bem import MID_FACTOR as MID_FACTOR
from ._bem import NEAR_FACTOR as NEAR_FACTOR
from ._bem import near_pairs as near_pairs
from ._calibration import calibrate_response as calibrate_response
from ._calibration import HeightDatum as HeightDatum
from ._design import box_corners as box_corners
from ._design import CAVITY_GEOMETRY as CAVITY_GEOMETRY
from ._design import TiltedCavityDesign as TiltedCavityDesign
from ._design import union_pairs as union_pairs
from ._design import well_depth as well_depth
from ._energy import total_energy as total_energy
from ._frequencies import frequency_summary as frequency_summary
from ._frequencies import mechanical_frequencies as mechanical_frequencies
from ._geometry import CoaxialCavity as CoaxialCavity
from ._image import image_height as image_height
from ._image import ImageModel as ImageModel
from ._landscape import axis_height as axis_height
from ._landscape import find_wells as find_wells
from ._landscape import grid_minima as grid_minima
from ._landscape import landscape as landscape
from ._landscape import refine_minima as refine_minima
from ._landscape import refine_minimum as refine_minimum
from ._landscape import Well as Well
from ._magnets import DiskMagnet as DiskMagnet
from ._magnets import GRADES as GRADES
from ._magnets import gravity_energy as gravity_energy
from ._magnets import moment_direction as moment_direction
from ._magnets import PAPER_DISK as PAPER_DISK
from ._magnets import PAPER_SPHERE as PAPER_SPHERE
from ._magnets import SphereMagnet as SphereMagnet
from ._magnets import up_vector as up_vector
from ._meissner import meissner_model as meissner_model
from ._meissner import MEISSNER_SPACING as MEISSNER_SPACING
from ._meissner import MeissnerModel as MeissnerModel
from ._mesh import axisymmetric_mesh as axisymmetric_mesh
from ._mesh import cavity_layout as cavity_layout
from ._mesh import cavity_mesh as cavity_mesh
from ._mesh import cavity_size as cavity_size
from ._mesh import GradedSize as GradedSize
from ._mesh import Mesh as Mesh
from ._mesh import mesh_layout as mesh_layout
from ._mesh import MeshLayout as MeshLayout
from ._mesh import parallel_plates_mesh as parallel_plates_mesh
from ._mesh import plate_mesh as plate_mesh
from ._mesh import sphere_mesh as sphere_mesh
from ._mesh import UniformSize as UniformSize
from ._model import CavityModel as CavityModel
from ._model import check_position as check_position
from ._model import clearance as clearance
from ._nloop import nloop_model as nloop_model
from ._nloop import NLoopModel as NLoopModel
from ._nloop import PAPER_NLOOP_SPACING as PAPER_NLOOP_SPACING
from ._quadrature import element_rule as element_rule
from ._quadrature import FAR_ORDER as FAR_ORDER
from ._quadrature import NEAR_ORDER as NEAR_ORDER
from ._quadrature import TARGET_ORDER as TARGET_ORDER
from ._two_loop import TwoLoopModel as TwoLoopModel

__all__ = [
    "assemble",
    "axis_height",
    "axisymmetric_mesh",
    "box_corners",
    "calibrate_response",
    "CAVITY_GEOMETRY",
    "cavity_layout",
    "cavity_mesh",
    "cavity_size",
    "CavityModel",
    "check_position",
    "clearance",
    "CoaxialCavity",
    "DiskMagnet",
    "element_rule",
    "FAR_ORDER",
    "find_wells",
    "frequency_summary",
    "GradedSize",
    "GRADES",
    "gravity_energy",
    "grid_minima",
    "HeightDatum",
    "image_height",
    "ImageModel",
    "landscape",
    "mechanical_frequencies",
    "meissner_model",
    "MEISSNER_SPACING",
    "MeissnerModel",
    "Mesh",
    "mesh_layout",
    "MeshLayout",
    "MID_FACTOR",
    "moment_direction",
    "NEAR_FACTOR",
    "NEAR_ORDER",
    "near_pairs",
    "nloop_model",
    "NLoopModel",
    "PAPER_DISK",
    "PAPER_NLOOP_SPACING",
    "PAPER_SPHERE",
    "parallel_plates_mesh",
    "plate_mesh",
    "refine_minima",
    "refine_minimum",
    "signed_frequency",
    "sphere_mesh",
    "SphereMagnet",
    "TARGET_ORDER",
    "TiltedCavityDesign",
    "total_energy",
    "TwoLoopModel",
    "UniformSize",
    "union_pairs",
    "up_vector",
    "Well",
    "well_depth",
]
