"""The latent-space view of the hysteresis surrogate used by the microstructure problem."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from invdesign_surrogates.hysteresis._anchors import AnchorModel
from invdesign_surrogates.hysteresis._design import LatentSurrogate
from invdesign_surrogates.hysteresis._anchors import predict_anchors
from invdesign_surrogates.hysteresis._vae import VAE, _decode


@pytest.fixture(scope="module", params=["latent", "latent_stats"])
def surrogate(request):
    vae = VAE(grid=16, latent=4, channels=(4, 8), dense=16, key=jax.random.key(0))
    model = AnchorModel(4, feature_set=request.param, n_members=3, key=jax.random.key(1), shared_widths=(8,), head_widths=(4,))
    train = np.random.default_rng(0).uniform(-1, 1, (6, 16, 16))
    return LatentSurrogate(vae, model, train)


def test_a_design_is_predicted_as_its_decoded_structure(surrogate):
    z = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    mean, spread = surrogate.predict_latent_batch(z)
    kx = np.asarray(_decode(surrogate.vae, jnp.asarray(z)))
    want_mean, want_spread = predict_anchors(surrogate.vae, surrogate.model, kx)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(spread, want_spread, rtol=1e-4, atol=1e-6)
    assert surrogate.train_codes.shape == (6, 4)
    np.testing.assert_allclose(surrogate.decode(z), kx, atol=1e-6)


def test_gradients_through_the_decoder_match_differences(surrogate):
    f = jax.jit(lambda z: surrogate.predict_latent(z)[0][1])
    z = jnp.asarray(np.random.default_rng(2).normal(size=4), jnp.float32)
    g = np.asarray(jax.grad(f)(z))
    assert np.all(np.isfinite(g))
    if not surrogate.model.uses_statistics:  # statistics are host-computed constants
        h = 1e-2
        fd = np.array([(f(z.at[i].add(h)) - f(z.at[i].add(-h))) / (2 * h) for i in range(4)])
        np.testing.assert_allclose(g, fd, rtol=0.05, atol=2e-4)


def test_bad_training_structures(surrogate):
    with pytest.raises(ValueError, match="train_kx"):
        LatentSurrogate(surrogate.vae, surrogate.model, np.zeros((2, 8, 8)))
