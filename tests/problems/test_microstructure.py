"""Latent-space microstructure design: constraints, searches, decoded structures, solver re-check.

A small stand-in surrogate (a linear map of the latent code with a known spread and a
fixed decoder) checks the plumbing; the shipped surrogate is exercised by the CLI test.
"""

import json

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from invdesign.optimize import genetic_search
from invdesign_problems import microstructure as ms
from invdesign_surrogates.hysteresis import grains_from_map


class LinearSurrogate:
    """Anchors linear in z, spread growing with |z|, decoder = a fixed smooth map of z,
    statistics distance = 2 |z| (so its training quantile is the prior's radius)."""

    latent = 3
    grid = 12

    def __init__(self):
        rng = np.random.default_rng(0)
        self.train_codes = 0.5 * rng.normal(size=(200, self.latent))  # the prior ball fits in the +-2 box
        self.base = np.array([0.95, 0.7, -0.2, -0.25, -0.28, -0.3])
        self.W = rng.normal(scale=0.05, size=(6, self.latent))
        x = np.linspace(-1, 1, self.grid)
        self.modes = np.stack([np.outer(np.sin(np.pi * (k + 1) * x), np.cos(np.pi * x / 2)) for k in range(self.latent)])
        self.train_stats_distance = 2.0 * np.linalg.norm(self.train_codes, axis=1)

    def predict_latent(self, z):
        mean = jnp.asarray(self.base) + jnp.asarray(self.W) @ z
        spread = 0.01 * (1.0 + 0.1 * jnp.sum(z**2)) * jnp.ones(6)
        return mean, spread

    def predict_latent_full(self, z):
        mean, spread = self.predict_latent(z)
        return mean, spread, 2.0 * jnp.sqrt(jnp.sum(z**2))

    def predict_latent_batch(self, codes):
        codes = np.asarray(codes)
        mean = self.base + codes @ self.W.T
        spread = 0.01 * (1.0 + 0.1 * np.sum(codes**2, axis=1, keepdims=True)) * np.ones((1, 6))
        return mean, spread

    def decode(self, codes):
        return np.tanh(np.einsum("nk,kxy->nxy", np.asarray(codes, float), self.modes))

    def structure(self, codes):
        return grains_from_map(self.decode(codes))[0]


@pytest.fixture(scope="module")
def surrogate():
    return LinearSurrogate()


def test_constraints_keep_codes_in_distribution(surrogate):
    problem = ms.weighted_problem(surrogate, weights=(1.0, 0.5, 0.5))
    max_nll = json.loads(problem.options)["max_nll"]
    q99 = np.quantile(0.5 * np.sum(surrogate.train_codes**2, axis=1), 0.99)
    assert max_nll == pytest.approx(q99)
    zero = problem.evaluate({f"z{i:02d}": 0.0 for i in range(3)})
    assert float(zero["prior_excess"]) == pytest.approx(-q99)
    # the target is the weighted coercivity, remanence and knee field of the surrogate
    mean, _ = surrogate.predict_latent(jnp.zeros(3))
    assert float(zero["target"]) == pytest.approx(float(-mean[5] + 0.5 * mean[1] - 0.5 * mean[2]))
    assert float(zero["stats_excess"]) == pytest.approx(-1.0)
    far = problem.evaluate({f"z{i:02d}": 3.9 for i in range(3)})
    assert float(far["prior_excess"]) > 0 and float(far["spread_excess"]) > 0 and float(far["stats_excess"]) > 0
    r99 = np.quantile(2.0 * np.linalg.norm(surrogate.train_codes, axis=1), 0.99)
    assert float(far["stats_excess"]) == pytest.approx(2.0 * np.sqrt(3 * 3.9**2) / r99 - 1.0)
    with pytest.raises(ValueError, match="weights"):
        ms.weighted_problem(surrogate, weights=(1.0, -1.0, 0.0))
    with pytest.raises(ValueError, match="prior_quantile"):
        ms.pareto_problem(surrogate, prior_quantile=0.0)


def test_smoothed_gradient_design_sits_on_the_prior_bound(surrogate):
    # a linear target over a ball: the optimum is on the boundary along the target gradient;
    # the smoothed target's optimum lies a little inside (perturbations of scale sigma that
    # cross the boundary pay the penalty)
    problem = ms.weighted_problem(surrogate, weights=(1.0, 0.0, 0.0), spread_factor=100.0)
    ds = ms.smoothed_gradient_search(problem, iterations=300, samples=8, sigma=0.1, learning_rate=0.1,
                                     penalty=1.0, progress=False)
    assert ds.sizes["iteration"] == 300 and ds.attrs["algorithm"] == "smoothed-gradient-adam"
    z = np.array([float(ds[f"z{i:02d}"][-1]) for i in range(3)])
    g = -surrogate.W[5]  # gradient of the coercivity -Hc
    r = np.sqrt(2 * json.loads(problem.options)["max_nll"])
    assert z @ g / (np.linalg.norm(z) * np.linalg.norm(g)) > 0.99
    assert 0.9 * r < np.linalg.norm(z) < 1.02 * r
    assert float(ds["target"][-1]) > float(ds["target"][0]) + 0.5 * r * np.linalg.norm(g)
    out = ms.decoded_structures(ds, surrogate)
    assert out["kx"].dims == ("design", "x", "y") and out["kx"].shape == (1, 12, 12)
    np.testing.assert_allclose(out["kx_decoded"].values[0], surrogate.decode(z[None])[0], atol=1e-6)
    np.testing.assert_allclose(out["kx"].values[0], grains_from_map(surrogate.decode(z[None]))[0][0], atol=1e-6)
    with pytest.raises(ValueError, match="sigma"):
        ms.smoothed_gradient_search(problem, sigma=0.0)
    with pytest.raises(ValueError, match="one objective"):
        ms.smoothed_gradient_search(ms.pareto_problem(surrogate))


def test_pareto_designs_are_feasible_and_decoded(surrogate, tmp_path):
    problem = ms.pareto_problem(surrogate)
    ds = genetic_search(problem, pop_size=24, n_gen=5, seed=1, progress=False)
    assert np.all(ds["prior_excess"].values <= 1e-9) and np.all(ds["spread_excess"].values <= 1e-9)
    assert np.all(ds["stats_excess"].values <= 1e-9)
    ds = ms.decoded_structures(ds, surrogate)
    assert ds["kx"].dims == ("solution", "x", "y")
    assert np.all(np.abs(ds["kx"].values) <= 1)
    path = ms.plot_designs(ds, tmp_path / "designs.png")
    assert path.stat().st_size > 1000


def test_anchor_curve_points():
    h, m = ms.anchor_curve([0.95, 0.7, -0.2, -0.25, -0.28, -0.3])
    np.testing.assert_allclose(h, [1.0, 0.0, -0.2, -0.25, -0.28, -0.3])
    np.testing.assert_allclose(m, [0.95, 0.7, 0.63, 0.56, 0.49, 0.0])


def test_cli_runs_on_the_shipped_weights(tmp_path, capsys):
    # `invdesign run microstructure` on the shipped surrogate: designs with their grain
    # structures and a picture (the solver re-check is behind --verify and not run here)
    from invdesign import cli
    from invdesign.optimize import available_problems
    from invdesign_surrogates.hysteresis._shipped import SHIPPED

    if not all((SHIPPED / n).exists() for n in ("vae.eqx", "anchors.eqx", "test_slice.nc")):
        pytest.skip("hysteresis surrogate weights are not shipped")
    assert "microstructure" in available_problems()
    out = tmp_path / "run"
    assert cli.main(["run", "microstructure", "--quick", "--out", str(out), "--no-progress"]) == 0
    files = sorted(p.name for p in out.iterdir())
    nc = [f for f in files if f.endswith(".nc")]
    assert nc and any(f.endswith(".png") for f in files)
    ds = xr.open_dataset(out / nc[0], engine="h5netcdf").load()
    assert ds["kx"].dims[1:] == ("x", "y") and ds["kx"].shape[1:] == (64, 64)
    assert np.all(np.abs(ds["kx"].values) <= 1)
    for name in ("Hc", "Mr", "spread_Hc", "stats_distance"):
        assert name in ds
    assert np.all(ds["prior_excess"].values <= 1e-9) and np.all(ds["stats_excess"].values <= 1e-9)
    assert cli.main(["run", "microstructure", "--verify", "-1"]) == 2
    assert "--verify" in capsys.readouterr().err
