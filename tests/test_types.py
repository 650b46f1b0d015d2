"""The public faces of `fields`, `levitation`, `cavity` and `optimize` carry jaxtyping annotations
(`invdesign._types`), and every annotation resolves (annotation only: nothing is checked at
runtime, so these tests are what keeps the annotations from rotting)."""

import inspect
import typing

import jaxtyping
import pytest

import invdesign.cavity
import invdesign.fields
import invdesign.levitation
import invdesign.optimize
from invdesign import _types


def _public(module):
    for name in sorted(dir(module)):
        obj = getattr(module, name)
        if name.startswith("_") or inspect.ismodule(obj):
            continue
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            continue
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield f"{module.__name__}.{name}", obj


def _callables(obj):
    """The function, or a class's __init__ and its public methods/properties defined in it."""
    if inspect.isfunction(obj):
        return [obj]
    out = []
    for name, attr in vars(obj).items():
        if isinstance(attr, property):
            attr = attr.fget
        if inspect.isfunction(attr) and (name == "__init__" or not name.startswith("_")):
            out.append(attr)
    return out


FACES = [item for module in (invdesign.fields, invdesign.levitation, invdesign.cavity, invdesign.optimize)
         for item in _public(module)]


def test_the_faces_are_found():
    names = {name.rsplit(".", 1)[1] for name, _ in FACES}
    assert {"loop_field", "loop_vector_potential", "dipole_field", "Loops", "energy", "force",
            "b_squared", "hessian_b2", "laplacian_b2", "energy_hessian", "trap_modes",
            "equilibrium", "Sphere", "TrapModes", "DesignSpace", "DesignProblem", "total_energy",
            "mechanical_frequencies", "CoaxialCavity", "CavityModel", "MeissnerModel", "Mesh",
            "SphereMagnet", "TiltedCavityDesign"} <= names


@pytest.mark.parametrize("name,obj", FACES, ids=[f[0] for f in FACES])
def test_public_signatures_are_annotated(name, obj):
    for fn in _callables(obj):
        hints = typing.get_type_hints(fn)  # raises if an annotation does not resolve
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        missing = [p.name for p in params if p.name not in hints]
        assert not missing, (fn.__qualname__, missing)
        if fn.__name__ != "__init__":
            assert "return" in hints, fn.__qualname__
    if inspect.isclass(obj) and hasattr(obj, "__dataclass_fields__"):
        hints = typing.get_type_hints(obj)
        assert set(obj.__dataclass_fields__) <= set(hints), name


def test_array_arguments_use_jaxtyping_shapes():
    hints = typing.get_type_hints(invdesign.fields.loop_field)
    assert hints["return"] is _types.Vec3 and hints["points"] == _types.Vec3Like
    assert typing.get_type_hints(invdesign.levitation.energy_hessian)["return"] is _types.Mat3
    assert typing.get_type_hints(invdesign.levitation.energy)["return"] is _types.BatchScalar
    assert _types.Vec3.dim_str == "*batch 3" and _types.Mat3.dim_str == "*batch 3 3"
    assert issubclass(_types.Vec3, jaxtyping.AbstractArray)


def test_optimize_arrays_carry_shapes():
    space = typing.get_type_hints(invdesign.optimize.DesignSpace.from_unit)
    assert space["z"] is not typing.Any and space["return"] == dict[str, _types.BatchScalar]
    assert typing.get_type_hints(invdesign.optimize.DesignSpace.to_unit)["return"].dim_str == "*batch d"
    batch = typing.get_type_hints(invdesign.optimize.DesignProblem.evaluate_batch)
    assert batch["return"] == dict[str, _types.Vector]


def test_cavity_shapes():
    cav = invdesign.cavity
    energy = typing.get_type_hints(cav.total_energy)
    assert energy["return"] is _types.Scalar and energy["position"] == _types.Point3Like
    assert typing.get_type_hints(cav.CavityModel.magnetic_energy)["return"] is _types.Scalar
    assert typing.get_type_hints(cav.CavityModel.response_tensor)["return"] is _types.Mat3
    assert typing.get_origin(typing.get_type_hints(cav.mechanical_frequencies)["return"]) is dict
    clearance = typing.get_type_hints(cav.CoaxialCavity.clearance)
    assert clearance["position"] == _types.Vec3Like and clearance["return"] is _types.BatchScalar
    assert typing.get_type_hints(cav.Mesh)["centre"].dim_str == "n 3"
    assert typing.get_type_hints(cav.MeissnerModel.__init__)["mesh"] is cav.Mesh
