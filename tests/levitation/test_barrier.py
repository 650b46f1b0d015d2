"""Trap depth by minimax flooding vs Dijkstra and a 1-D formula."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import invdesign  # noqa: F401
from invdesign.levitation import (
    anti_helmholtz_sphere,
    anti_helmholtz_trap,
    concentric_sphere,
    concentric_trap,
    energy,
    escape_barrier,
    minimax_escape_levels,
)
from invdesign.reference.levitation import dijkstra_minimax


def box_exits(shape):
    exits = np.zeros(shape, dtype=bool)
    exits[:, -1] = exits[0, :] = exits[-1, :] = True
    return exits


def test_flood_matches_dijkstra_on_random_grids():
    rng = np.random.default_rng(0)
    flood = jax.jit(minimax_escape_levels)
    for _ in range(4):
        u = rng.normal(size=(17, 13))
        u[rng.random(u.shape) < 0.15] = np.inf  # walls
        exits = box_exits(u.shape)
        np.testing.assert_array_equal(np.asarray(flood(u, exits)), dijkstra_minimax(u, exits))


def test_flood_one_dimensional_formula():
    """A single column with exits at both ends: level_i = min(max u[:i+1], max u[i:])."""
    rng = np.random.default_rng(1)
    u = rng.normal(size=(25, 1))
    exits = np.zeros_like(u, dtype=bool)
    exits[0] = exits[-1] = True
    ref = [min(u[: i + 1].max(), u[i:].max()) for i in range(25)]
    np.testing.assert_array_equal(np.asarray(minimax_escape_levels(u, exits))[:, 0], ref)
    # a wall cuts the column: the cells above it escape only upwards
    u[10] = np.inf
    lev = np.asarray(minimax_escape_levels(u, exits))[:, 0]
    np.testing.assert_array_equal(lev[11:], [u[i:].max() for i in range(11, 25)])
    np.testing.assert_array_equal(lev[:10], [u[: i + 1].max() for i in range(10)])


@pytest.mark.parametrize("trap", ["anti_helmholtz", "concentric"])
def test_escape_barrier_matches_dijkstra_on_the_energy_grid(trap):
    if trap == "anti_helmholtz":
        loops, sphere, z_eq, box = anti_helmholtz_trap(), anti_helmholtz_sphere(), -1.0078e-10, (3e-6, -3e-6, 3e-6)
    else:
        loops, sphere, z_eq, box = concentric_trap(), concentric_sphere(), 3.714e-6, (15e-6, -3e-6, 20e-6)
    n = 40
    r_max, z_min, z_max = box
    depth = float(escape_barrier(loops, sphere, z_eq, r_max, z_min, z_max, n=n))
    rs, zs = np.linspace(0, r_max, n), np.linspace(z_min, z_max, n)
    rr, zz = np.meshgrid(rs, zs)
    pts = np.stack([rr, np.zeros_like(rr), zz], axis=-1)
    blocked = np.asarray(loops.distance_to_wire(pts)) < float(sphere.radius)
    u = np.where(blocked, np.inf, np.asarray(energy(np.where(blocked[..., None], 0.0, pts), loops, sphere)))
    level = dijkstra_minimax(u, box_exits(u.shape))[np.argmin(np.abs(zs - z_eq)), 0]
    u_eq = float(energy(jnp.array([0.0, 0.0, z_eq]), loops, sphere))
    assert depth == pytest.approx(level - u_eq, rel=1e-12)
    assert depth > 0


def test_escape_barrier_vmap_and_gradient():
    sphere = concentric_sphere()

    def depth(current):
        return escape_barrier(concentric_trap(current=current), sphere, 3.714e-6, 15e-6, -3e-6, 20e-6, n=24)

    currents = jnp.array([0.034, 0.038])
    batched = jax.jit(jax.vmap(depth))(currents)
    np.testing.assert_allclose(batched, [float(depth(c)) for c in currents], rtol=1e-13)
    # U_mag ~ I^2 and the bottleneck cell is fixed: d depth / dI by central differences
    h = 1e-6 * 0.038
    fd = (float(depth(0.038 + h)) - float(depth(0.038 - h))) / (2 * h)
    assert float(jax.grad(depth)(0.038)) == pytest.approx(fd, rel=1e-6)


def test_escape_barrier_bad_input():
    loops, sphere = anti_helmholtz_trap(), anti_helmholtz_sphere()
    with pytest.raises(ValueError, match="z_eq must lie in"):
        escape_barrier(loops, sphere, 5e-6, 3e-6, -3e-6, 3e-6)
    with pytest.raises(ValueError, match="r_max must be > 0"):
        escape_barrier(loops, sphere, 0.0, -3e-6, -3e-6, 3e-6)
    with pytest.raises(ValueError, match="z_eq must be finite"):
        escape_barrier(loops, sphere, float("nan"), 3e-6, -3e-6, 3e-6)
