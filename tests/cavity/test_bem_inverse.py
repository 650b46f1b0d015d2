"""The explicit BEM inverse (`solver="inverse"`) that lets populations of cavity designs run
under `vmap`.

- `bem_inverse` against `numpy.linalg.inv`, its gradient and Hessian against central
  differences, its `vmap` against a loop;
- the Meissner model with `solver="inverse"` gives the LU model's charges (a dipole over a
  plate, and arbitrary right-hand sides);
- the reason it exists: traced under `vmap`, `bem_inverse` contains no batched LU
  factorisation or triangular solve (the batched kernels deadlocked jaxlib 0.10.2's CPU
  thread pool), while `jnp.linalg.inv` does. The same check on the whole `cavity-pareto`
  population evaluation is in `tests/problems/test_cavity_problem.py`.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import invdesign  # noqa: F401
from invdesign.cavity import MeissnerModel, SphereMagnet, plate_mesh
from invdesign.cavity._bem import bem_inverse


def _matrices(n=5, batch=3, seed=0):
    rng = np.random.default_rng(seed)
    return 0.5 * np.eye(n) + 0.1 * rng.standard_normal((batch, n, n))


def test_inverse_matches_numpy_and_vmap_matches_a_loop():
    a = _matrices()
    got = jax.jit(jax.vmap(bem_inverse))(a)
    for k in range(len(a)):
        np.testing.assert_allclose(got[k], np.linalg.inv(a[k]), rtol=1e-12, atol=1e-13)
        np.testing.assert_array_equal(got[k], jax.jit(bem_inverse)(a[k]))


def test_derivatives_match_central_differences():
    a0, da = _matrices(batch=2, seed=1)
    b = np.arange(1.0, 6.0)

    def f(s):
        return jnp.sum((bem_inverse(a0 + s * da) @ b) ** 2)

    h = 1e-5
    fd = (f(h) - f(-h)) / (2 * h)
    assert float(jax.grad(f)(0.0)) == pytest.approx(float(fd), rel=1e-7)
    fd2 = (jax.grad(f)(h) - jax.grad(f)(-h)) / (2 * h)
    assert float(jax.hessian(f)(0.0)) == pytest.approx(float(fd2), rel=1e-6)
    # and under vmap (gradient per batch member)
    s = jnp.asarray([0.0, 0.1])
    np.testing.assert_allclose(jax.vmap(jax.grad(f))(s), [jax.grad(f)(x) for x in s], rtol=1e-12)


def test_vmap_of_the_inverse_has_no_batched_factorisation(batched_linalg):
    a = _matrices()
    assert batched_linalg(jax.make_jaxpr(jax.vmap(bem_inverse))(a)) == []
    lu = batched_linalg(jax.make_jaxpr(jax.vmap(jnp.linalg.inv))(a))  # the check can see them
    assert ("lu", (3, 5, 5)) in lu


def test_meissner_inverse_solver_gives_the_lu_charges():
    mesh = plate_mesh(radius=5e-3, spacing=0.8e-3)
    m = SphereMagnet(remanence=1.47)
    pos, d = jnp.array([0.0, 0.0, 1.5e-3]), jnp.array([0.3, 0.0, 0.95])
    lu, inv = MeissnerModel(mesh), MeissnerModel(mesh, solver="inverse")
    assert inv.piv is None
    s_lu, s_inv = lu.charges(m, pos, d), inv.charges(m, pos, d)
    np.testing.assert_allclose(s_inv, s_lu, rtol=1e-10, atol=1e-12 * float(jnp.max(jnp.abs(s_lu))))
    # any right-hand sides (the energies are linear functionals of the charges)
    rhs = np.random.default_rng(2).standard_normal((mesh.size, 3))
    np.testing.assert_allclose(inv.solve(rhs), lu.solve(rhs), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="solver"):
        MeissnerModel(mesh, solver="qr")
