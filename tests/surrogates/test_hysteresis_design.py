"""The latent-space view of the hysteresis surrogate used by the microstructure problem."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from invdesign_surrogates.hysteresis._anchors import AnchorModel
from invdesign_surrogates.hysteresis._design import LatentSurrogate
from invdesign_surrogates.hysteresis._anchors import predict_anchors
from invdesign_surrogates.hysteresis._vae import VAE, _decode
from invdesign_surrogates.hysteresis import grains_from_map, image_statistics

# small models: compile-bound, so XLA's cheaper optimisation level (tests/conftest.py)
FULL_XLA_OPTIMIZATION = False

TRAIN = np.random.default_rng(0).uniform(-1, 1, (6, 16, 16))


def surrogate_train():
    return TRAIN


@pytest.fixture(scope="module", params=["latent", "latent_stats"])
def surrogate(request):
    vae = VAE(grid=16, latent=4, channels=(4, 8), dense=16, key=jax.random.key(0))
    model = AnchorModel(4, feature_set=request.param, n_members=3, key=jax.random.key(1), shared_widths=(8,), head_widths=(4,))
    return LatentSurrogate(vae, model, TRAIN)


def test_a_design_is_predicted_as_its_grain_structure(surrogate):
    z = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    mean, spread = surrogate.predict_latent_batch(z)
    smooth = np.asarray(_decode(surrogate.vae, jnp.asarray(z)))
    np.testing.assert_allclose(surrogate.decode(z), smooth, atol=1e-6)
    kx = surrogate.structure(z)
    np.testing.assert_allclose(kx, grains_from_map(surrogate.calibration(smooth))[0], atol=1e-6)
    want_mean, want_spread = predict_anchors(surrogate.vae, surrogate.model, kx)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(spread, want_spread, rtol=1e-4, atol=1e-6)
    assert surrogate.train_codes.shape == (6, 4)
    # the statistics distance: Mahalanobis distance from the statistics of the grain
    # structures the decoder gives for the training codes
    stats, _ = image_statistics(kx.astype(np.float64))
    ref = surrogate.structure(surrogate.train_codes)
    train_stats, _ = image_statistics(np.asarray(ref, np.float64))
    d = np.array([float(surrogate.predict_latent_full(jnp.asarray(zi))[2]) for zi in z])
    mu, sd = train_stats.mean(0), np.where(train_stats.std(0) > 0, train_stats.std(0), 1.0)
    cov = np.cov((train_stats - mu) / sd, rowvar=False) + 1e-2 * np.eye(stats.shape[1])
    u = (stats - mu) / sd
    np.testing.assert_allclose(d, np.sqrt(np.einsum("ni,ij,nj->n", u, np.linalg.inv(cov), u)), rtol=2e-2)


def test_gradients_pass_the_grain_projection_straight_through(surrogate):
    z = jnp.asarray(np.random.default_rng(2).normal(size=4), jnp.float32)
    g = np.asarray(jax.grad(lambda z: surrogate.predict_latent(z)[0][1])(z))
    assert np.all(np.isfinite(g))
    # the same as differentiating with the projection's offset (at z) held fixed
    smooth = surrogate.vae.decoder(z)
    offset = jnp.asarray(grains_from_map(surrogate.calibration(np.asarray(smooth)))[0][0], jnp.float32) - smooth
    stats = jnp.asarray(image_statistics(np.asarray(smooth + offset, np.float64))[0][0], jnp.float32)

    def fixed(z):
        return surrogate.model(surrogate.vae.encoder(surrogate.vae.decoder(z) + offset)[0], stats)[0][1]

    np.testing.assert_allclose(g, np.asarray(jax.grad(fixed)(z)), rtol=1e-4, atol=1e-6)
    if not surrogate.model.uses_statistics:
        assert np.any(g != 0)


def test_bad_training_structures(surrogate):
    with pytest.raises(ValueError, match="train_kx"):
        LatentSurrogate(surrogate.vae, surrogate.model, np.zeros((2, 8, 8)))


def test_grain_projection():
    # two grains 40 degrees apart, each at least min_area cells: unchanged
    k = np.zeros((12, 12))
    k[:, 6:] = np.sin(np.radians(40.0))
    g, ids = grains_from_map(k)
    np.testing.assert_allclose(g[0], k, atol=1e-12)
    assert ids.shape == (1, 12, 12) and len(np.unique(ids)) == 2
    # a smooth ramp within +-4 degrees of 0 becomes one grain at its mean angle
    psi = np.radians(np.linspace(-4.0, 4.0, 144).reshape(12, 12) + 1.0)
    g, ids = grains_from_map(np.sin(psi))
    assert len(np.unique(ids)) == 1
    np.testing.assert_allclose(g[0], np.sin(psi.mean()), atol=1e-12)
    # a 2 x 2 island (4 cells < min_area 8) joins the grain around it; every grain is >= 8 cells
    k = np.zeros((12, 12))
    k[5:7, 5:7] = 0.9
    g, ids = grains_from_map(k)
    assert len(np.unique(ids)) == 1 and np.all(np.abs(g - np.sin(np.arcsin(0.9) * 4 / 144)) < 1e-12)
    noisy, ids = grains_from_map(np.random.default_rng(0).uniform(-1, 1, (2, 16, 16)))
    assert min(np.bincount(i.ravel()).min() for i in ids) >= 8
    assert np.all(np.abs(noisy) <= 1)
    for kw, name in (({"step_deg": 0.0}, "step_deg"), ({"min_area": 0}, "min_area")):
        with pytest.raises(ValueError, match=name):
            grains_from_map(k, **kw)
    with pytest.raises(ValueError, match="kx"):
        grains_from_map(np.full((4, 4), 1.5))


def test_angle_calibration_maps_decoded_angles_onto_the_data():
    from invdesign_surrogates.hysteresis import AngleCalibration

    rng = np.random.default_rng(3)
    psi = rng.uniform(-np.pi / 2, np.pi / 2, (20, 16, 16))
    real = np.sin(psi)
    # the same distribution: the identity (to the quantile grid's interpolation)
    same = AngleCalibration(real, real)
    np.testing.assert_allclose(same(real), real, atol=2e-3)
    # a decoder that halves every axis angle: the calibration undoes it, sign kept
    shrunk = np.sin(0.5 * psi)
    cal = AngleCalibration(real, shrunk)
    np.testing.assert_allclose(np.arcsin(cal(shrunk)), psi, atol=2e-2)
    assert np.all(np.sign(cal(shrunk)) == np.sign(shrunk))
    # monotone in |psi| and odd
    grid = np.sin(np.linspace(-1.5, 1.5, 301))
    out = cal(grid)
    assert np.all(np.diff(out) >= 0) and np.allclose(out, -cal(-grid), atol=1e-12)
    for args, name in (((np.full((2, 4, 4), 2.0), real), "real_kx"), ((real, np.full((2, 4, 4), np.nan)), "decoded_kx")):
        with pytest.raises(ValueError, match=name):
            AngleCalibration(*args)
    with pytest.raises(ValueError, match="n_quantiles"):
        AngleCalibration(real, real, n_quantiles=1)


def test_design_structures_are_calibrated_before_the_projection(surrogate):
    z = surrogate.train_codes[:4].astype(np.float32)
    decoded = np.clip(surrogate.decode(z).astype(np.float64), -1, 1)
    np.testing.assert_array_equal(surrogate.structure(z), grains_from_map(surrogate.calibration(decoded))[0].astype(np.float32))
    plain = LatentSurrogate(surrogate.vae, surrogate.model, TRAIN, calibrate=False)
    assert plain.calibration is None
    np.testing.assert_array_equal(plain.structure(z), grains_from_map(decoded)[0].astype(np.float32))
    # the calibrated reconstructions' axis angles are distributed like the training data's
    mean_abs = lambda k: float(np.mean(np.abs(np.arcsin(np.clip(k, -1, 1)))))  # noqa: E731
    real = mean_abs(TRAIN[:4])
    assert abs(mean_abs(surrogate.calibration(decoded)) - real) < abs(mean_abs(decoded) - real)
