"""Effective fields equal -1/(mu0 Ms V) dE/dm of their energies; demag energies vs known factors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from invdesign.constants import MU0
from invdesign.reference.newell import aharoni_dz
from invdesign.micromag import (
    Grid,
    Material,
    System,
    anisotropy_energy,
    anisotropy_field,
    demag_energy,
    demagnetizing_field,
    effective_field,
    exchange_energy,
    exchange_field,
    normalize,
    total_energy,
    zeeman_energy,
    zeeman_field,
)

# small grids: compile-bound, so XLA's cheaper optimisation level (tests/conftest.py)
FULL_XLA_OPTIMIZATION = False


def _random_system(shape=(6, 5, 3), cell=(2e-9, 3e-9, 4e-9), demag=True, holes=True):
    grid = Grid(shape, cell)
    k = jax.random.split(jax.random.PRNGKey(7), 6)
    Ms = 2e5 + 1e6 * jax.random.uniform(k[0], shape)
    mask = None
    if holes:
        mask = np.ones(shape, bool)
        mask[0, 0, :] = False
        mask[3, 2, 1] = False
    mat = Material.uniform(
        grid,
        Ms=Ms,
        A=1e-11 * (0.5 + jax.random.uniform(k[1], shape)),
        K1=1e5 * jax.random.normal(k[2], shape),
        easy_axis=jax.random.normal(k[3], shape + (3,)),
        mask=mask,
        coupling=(0.3 + jax.random.uniform(k[4], (shape[0] - 1, shape[1], shape[2])), None or 1.0, 1.0),
    )
    system = System(grid, mat, demag=demag)
    m = normalize(system, jax.random.normal(k[5], shape + (3,)))
    return system, m


def _field_from_energy(system, energy_fn, m):
    g = jax.grad(energy_fn)(m)
    Ms = system.material.Ms[..., None]
    return jnp.where(Ms > 0, -g / (MU0 * jnp.where(Ms > 0, Ms, 1.0) * system.grid.cell_volume), 0.0)


@pytest.mark.parametrize(
    "field_fn,energy_fn",
    [
        (exchange_field, exchange_energy),
        (anisotropy_field, anisotropy_energy),
        (demagnetizing_field, demag_energy),
    ],
    ids=["exchange", "anisotropy", "demag"],
)
def test_field_is_variational_derivative(field_fn, energy_fn):
    system, m = _random_system()
    H = field_fn(system, m)
    H_ref = _field_from_energy(system, lambda x: energy_fn(system, x), m)
    scale = float(jnp.max(jnp.abs(H_ref)))
    assert scale > 0
    assert float(jnp.max(jnp.abs(H - H_ref))) < 1e-10 * scale


def test_zeeman_and_total_field_are_variational_derivatives():
    system, m = _random_system()
    h = jnp.array([1e4, -3e4, 2e4])
    Hz = zeeman_field(system, h)
    ref = _field_from_energy(system, lambda x: zeeman_energy(system, x, h), m)
    assert float(jnp.max(jnp.abs(Hz - ref))) < 1e-10 * 3e4
    H = effective_field(system, m, h)
    ref = _field_from_energy(system, lambda x: total_energy(system, x, h), m)
    assert float(jnp.max(jnp.abs(H - ref))) < 1e-10 * float(jnp.max(jnp.abs(ref)))


def test_exchange_of_uniform_state_vanishes_and_neumann_boundaries():
    system, _ = _random_system(holes=False)
    m = normalize(system, jnp.ones(system.grid.shape + (3,)))
    assert float(jnp.max(jnp.abs(exchange_field(system, m)))) < 1e-6
    assert abs(float(exchange_energy(system, m))) < 1e-35


def test_exchange_energy_of_a_spiral_matches_continuum():
    # m rotating about z with wavevector q along x: E = A q^2 V_total (continuum);
    # the finite-difference energy is A (2 - 2 cos(q d)) / d^2 per cell link
    n, d, A = 40, 1e-9, 1.3e-11
    grid = Grid((n, 1, 1), (d, d, d))
    system = System(grid, Material.uniform(grid, Ms=8e5, A=A), demag=False)
    q = 2 * np.pi / (n * d) * 3
    x = (np.arange(n) + 0.5) * d
    m = jnp.asarray(np.stack([np.cos(q * x), np.sin(q * x), 0 * x], -1)[:, None, None, :])
    E = float(exchange_energy(system, m))
    E_fd = (n - 1) * d**3 * A * (2 - 2 * np.cos(q * d)) / d**2
    assert E == pytest.approx(E_fd, rel=1e-12)
    E_cont = A * q**2 * (n - 1) * d**3
    assert E == pytest.approx(E_cont, rel=2e-2)  # O((q d)^2) discretisation error


def test_uniaxial_anisotropy_energy_density():
    grid = Grid((2, 2, 1), (1e-9, 1e-9, 1e-9))
    axis = np.array([0.0, 0.6, 0.8])
    system = System(grid, Material.uniform(grid, Ms=1e6, A=0.0, K1=4e6, easy_axis=axis * 5.0), demag=False)
    theta = 0.3
    m_dir = np.cos(theta) * axis + np.sin(theta) * np.array([1.0, 0.0, 0.0])
    m = jnp.broadcast_to(jnp.asarray(m_dir), (2, 2, 1, 3))
    E = float(anisotropy_energy(system, m))
    assert E == pytest.approx(-4e6 * np.cos(theta) ** 2 * 4e-27, rel=1e-13)


def test_demag_energy_of_uniform_cube_is_one_third():
    n = 8
    grid = Grid((n, n, n), (2e-9, 2e-9, 2e-9))
    Ms = 8e5
    system = System(grid, Material.uniform(grid, Ms=Ms, A=0.0))
    for direction in ([1.0, 0, 0], [0, 0, 1.0], [1.0, 1.0, 1.0]):
        u = np.asarray(direction) / np.linalg.norm(direction)
        m = jnp.broadcast_to(jnp.asarray(u), grid.shape + (3,))
        E = float(demag_energy(system, m))
        V = (n * 2e-9) ** 3
        assert E == pytest.approx(0.5 * MU0 * Ms**2 * V / 3.0, rel=1e-9)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_demag_energy_of_uniform_film_matches_aharoni(axis):
    shape, cell = (32, 16, 1), (4e-9, 4e-9, 3e-9)
    grid = Grid(shape, cell)
    Ms = 8e5
    system = System(grid, Material.uniform(grid, Ms=Ms, A=0.0))
    u = np.zeros(3)
    u[axis] = 1.0
    m = jnp.broadcast_to(jnp.asarray(u), grid.shape + (3,))
    E = float(demag_energy(system, m))
    half = [n * d / 2 for n, d in zip(shape, cell)]
    # Aharoni's Dz for the axis: permute so the field axis is the third argument
    others = [half[i] for i in range(3) if i != axis]
    N = aharoni_dz(2 * others[0], 2 * others[1], 2 * half[axis])
    V = np.prod([2 * h for h in half])
    assert E == pytest.approx(0.5 * MU0 * Ms**2 * V * N, rel=1e-9)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="cell"):
        Grid((4, 4, 1), (1e-9, -1e-9, 1e-9))
    with pytest.raises(ValueError, match="cell"):
        Grid((4, 4, 1), (1e-9, 0.0, 1e-9))
    with pytest.raises(ValueError, match="shape"):
        Grid((4, 0, 1), (1e-9, 1e-9, 1e-9))
    with pytest.raises(ValueError, match="shape"):
        Grid((4.5, 4, 1), (1e-9, 1e-9, 1e-9))
    with pytest.raises(ValueError, match="cell"):
        Grid((4, 4, 1), (1e-9, np.nan, 1e-9))
    grid = Grid((4, 4, 1), (1e-9, 1e-9, 1e-9))
    with pytest.raises(ValueError, match="Ms"):
        Material.uniform(grid, Ms=-8e5, A=1e-11)
    with pytest.raises(ValueError, match="Ms"):
        Material.uniform(grid, Ms=np.nan, A=1e-11)
    with pytest.raises(ValueError, match="Ms"):
        Material.uniform(grid, Ms=0.0, A=1e-11)
    with pytest.raises(ValueError, match="Ms"):
        Material.uniform(grid, Ms=np.ones((3, 3, 1)), A=1e-11)
    with pytest.raises(ValueError, match="easy_axis"):
        Material.uniform(grid, Ms=8e5, A=1e-11, K1=1e5, easy_axis=(0, 0, 0))
