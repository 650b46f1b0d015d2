"""Magnetization-dynamics surrogate models: the autoencoder (Table 1), the latent stepper
(Table 2) with the recursive look-ahead loss, and the PCA / lookup baselines. Checked
against the paper's layer shapes and the closed-form parameter counts, hand computations
of the losses (the paper's 10x weight on m_z; the 8 look-ahead terms written out, with the
corrected 8th), a Python-loop rollout, SVD optimality (Eckart-Young) and the layers' own
convolutions. Tiny models throughout (each test a few seconds on 2 cores)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from invdesign_surrogates import dynamics as dy
from invdesign_surrogates._training import train
from invdesign_surrogates._weights import load_model, save_model
from invdesign_surrogates.dynamics._nn import _conv, _conv_transpose

# tiny models and few steps: compile-bound, so XLA's cheaper optimisation level (tests/conftest.py)
FULL_XLA_OPTIMIZATION = False

TINY = dict(grid=(16, 8), latent=4, channels=(4, 8))


def _states(n, grid=(16, 8), seed=0):
    """Smooth unit-vector textures: an in-plane angle linear in x and y, a small m_z."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.linspace(0, 1, grid[0]), np.linspace(0, 1, grid[1]), indexing="ij")
    a, b, p = rng.uniform(-2, 2, (3, n, 1, 1))
    phi = a * x + b * y + p
    mz = 0.1 * np.sin(np.pi * x) * rng.uniform(-1, 1, (n, 1, 1))
    v = np.stack([np.cos(phi), np.sin(phi), mz], axis=-1)
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_ae():
    return dy.Autoencoder(**TINY, key=jax.random.key(0))


@pytest.fixture(scope="module")
def tiny_stepper():
    return dy.Stepper(latent=3, hidden=(8, 8, 6), dropout=0.2, key=jax.random.key(2))


# ----------------------------------------------------------------------------- autoencoder


def test_autoencoder_shapes_dtypes_batching_and_z_axis(tiny_ae):
    assert tiny_ae.hyperparameters == {"grid": [16, 8], "latent": 4, "channels": [4, 8], "dropout": 0.1}
    m = _states(6).reshape(2, 3, 16, 8, 3).astype(np.float64)  # float64 in, float32 out
    c = dy.encode(tiny_ae, m)
    assert c.shape == (2, 3, 4) and c.dtype == jnp.float32
    assert float(jnp.min(c)) > -1.0  # elu latent
    np.testing.assert_allclose(dy.encode(tiny_ae, m[1, 2]), c[1, 2], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(dy.encode(tiny_ae, m[:, :, :, :, None, :]), c)  # the dataset's (x, y, z=1, 3)
    np.testing.assert_allclose(dy.encode(tiny_ae, m, chunk=4), c, rtol=1e-5, atol=1e-6)  # pieces of 4 and 2
    out = dy.decode(tiny_ae, c)
    assert out.shape == (2, 3, 16, 8, 3) and out.dtype == jnp.float32
    assert float(jnp.max(jnp.abs(out))) < 1.0  # tanh
    np.testing.assert_allclose(dy.reconstruct(tiny_ae, m), out, rtol=1e-5, atol=1e-6)
    leaves = jax.tree_util.tree_leaves(eqx.filter(tiny_ae, eqx.is_array))
    assert leaves and all(leaf.dtype == jnp.float32 for leaf in leaves)
    # encode/decode are deterministic (inference mode); calling with a key drops out
    r1 = tiny_ae(jnp.asarray(m[0, 0]), key=jax.random.key(5))
    r2 = eqx.nn.inference_mode(tiny_ae)(jnp.asarray(m[0, 0]))
    np.testing.assert_allclose(r2, out[0, 0], rtol=1e-5, atol=1e-6)
    assert float(jnp.max(jnp.abs(r1 - r2))) > 1e-4


def test_autoencoder_bad_input_names_the_argument(tiny_ae):
    good = _states(2)
    with pytest.raises(ValueError, match=r"m must have shape \(\.\.\., 16, 8, 3\)"):
        dy.encode(tiny_ae, good[:, :8])
    with pytest.raises(ValueError, match="m must be finite"):
        dy.encode(tiny_ae, np.where(np.arange(3) == 1, np.nan, good))
    with pytest.raises(ValueError, match=r"components must lie in \[-1, 1\]"):
        dy.encode(tiny_ae, 2 * good)
    with pytest.raises(ValueError, match=r"c must have shape \(\.\.\., 4\)"):
        dy.decode(tiny_ae, np.zeros((2, 5)))
    with pytest.raises(ValueError, match="c must be finite"):
        dy.decode(tiny_ae, np.full((4,), np.inf))
    with pytest.raises(ValueError, match="key 'm'"):
        dy.autoencoder_loss(tiny_ae, {"x": good}, None)
    with pytest.raises(ValueError, match=r"batch\['m'\] must have shape \(n, 16, 8, 3\)"):
        dy.autoencoder_loss(tiny_ae, {"m": good[0]}, None)
    with pytest.raises(ValueError, match="penalty"):
        dy.autoencoder_loss(tiny_ae, {"m": good}, None, penalty="signed")
    with pytest.raises(ValueError, match="grid must be two multiples of 2\\*\\*len\\(channels\\) = 4"):
        dy.Autoencoder(grid=(18, 8), latent=4, channels=(4, 8), key=jax.random.key(0))
    with pytest.raises(ValueError, match="dropout must be a dropout rate"):
        dy.Autoencoder(**TINY, dropout=1.0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="latent must be an int >= 1"):
        dy.Autoencoder(grid=(16, 8), latent=0, channels=(4, 8), key=jax.random.key(0))


def test_table1_layer_output_shapes_for_the_paper_grid():
    # Table 1 in the paper's order (rows = y: 64 x 256); ours is (x, y, channels)
    table = [
        ("Input", (64, 256, 3)), ("Conv2D", (32, 128, 16)), ("Conv2D", (16, 64, 32)), ("Conv2D", (8, 32, 64)),
        ("Conv2D", (4, 16, 128)), ("Conv2D", (2, 8, 256)), ("Conv2D", (1, 4, 512)), ("Flatten", (2048,)),
        ("Dropout", (2048,)), ("Dense", (16,)), ("Dense", (2048,)), ("Dropout", (2048,)), ("Reshape", (1, 4, 512)),
        ("Conv2DTrans", (2, 8, 256)), ("Conv2DTrans", (4, 16, 128)), ("Conv2DTrans", (8, 32, 64)),
        ("Conv2DTrans", (16, 64, 32)), ("Conv2DTrans", (32, 128, 16)), ("Conv2DTrans", (64, 256, 3)),
    ]
    swap = [(name, (s[1], s[0], s[2]) if len(s) == 3 else s) for name, s in table]
    ae = dy.Autoencoder(key=jax.random.key(0))  # the defaults are the paper's layout
    assert ae.hyperparameters == {"grid": [256, 64], "latent": 16, "channels": [16, 32, 64, 128, 256, 512], "dropout": 0.1}
    assert dy.layer_output_shapes(ae) == swap
    kernels = [conv.weight.shape[-1] for conv in ae.encoder.convs + ae.decoder.convs]
    assert kernels == [4, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 4]
    assert all(conv.stride == (2, 2) for conv in ae.encoder.convs + ae.decoder.convs)


def test_parameter_counts_of_the_paper_layouts():
    ae = eqx.filter_eval_shape(lambda k: dy.Autoencoder(key=k), jax.random.key(0))
    chans = [3, 16, 32, 64, 128, 256, 512]
    ksize = [4, 2, 2, 2, 2, 2]
    convs = sum(a * b * k * k + b for a, b, k in zip(chans[:-1], chans[1:], ksize))
    tconvs = sum(b * a * k * k + a for a, b, k in zip(chans[:-1], chans[1:], ksize))
    assert convs == 700_144 and tconvs == 699_635
    assert dy.count_parameters(ae.encoder) == convs + 2048 * 16 + 16 == 732_928
    assert dy.count_parameters(ae.decoder) == 16 * 2048 + 2048 + tconvs == 734_451
    assert dy.count_parameters(ae) == 1_467_379
    widths = [66, 64, 64, 32, 32, 16, 16]  # Table 2
    p = dy.Stepper(key=jax.random.key(0))
    assert [layer.weight.shape[1] for layer in p.layers] + [p.layers[-1].weight.shape[0]] == widths
    assert len(p.dropouts) == 2 and all(d.p == 0.02 for d in p.dropouts)
    assert dy.count_parameters(p) == sum(a * b + b for a, b in zip(widths[:-1], widths[1:])) == 12_384


def test_patchwise_convolutions_equal_the_equinox_layers():
    key = jax.random.key(3)
    conv = eqx.nn.Conv2d(3, 5, 2, stride=2, key=key, dtype=jnp.float32)
    tconv = eqx.nn.ConvTranspose2d(5, 3, 2, stride=2, key=key, dtype=jnp.float32)
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(3, 8, 4)).astype(np.float32), rng.normal(size=(5, 4, 2)).astype(np.float32)
    ours, theirs = eqx.filter_jit(lambda a, b, x, y: ((_conv(a, x), _conv_transpose(b, y)), (a(x), b(y))))(conv, tconv, x, y)
    assert ours[0].shape == (5, 4, 2) and ours[1].shape == (3, 8, 4)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_subpixel_transposed_convolution_equals_the_equinox_layer():
    # the decoder's last layer (4 x 4, stride 2, padding 1) as a 3 x 3 convolution over phases;
    # equinox's own layer is the reference, on non-square inputs, with and without vmap
    from invdesign_surrogates.dynamics._nn import _subpixel

    tconv = eqx.nn.ConvTranspose2d(5, 3, 4, stride=2, padding=1, key=jax.random.key(4), dtype=jnp.float32)
    assert _subpixel(tconv)
    y = np.random.default_rng(4).normal(size=(2, 5, 6, 3)).astype(np.float32)
    ours, theirs = eqx.filter_jit(lambda b, y: (jax.vmap(lambda v: _conv_transpose(b, v))(y), jax.vmap(b)(y)))(tconv, y)
    assert ours.shape == theirs.shape == (2, 3, 12, 6)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_conv_transpose(tconv, y[0]), theirs[0], rtol=1e-5, atol=1e-5)
    # and its gradient w.r.t. the weight (what training uses)
    loss = lambda f: lambda w: jnp.sum(jnp.sin(f(eqx.tree_at(lambda l: l.weight, tconv, w), y[0])))  # noqa: E731
    g_ours = jax.grad(loss(_conv_transpose))(tconv.weight)
    g_theirs = jax.grad(loss(lambda l, v: l(v)))(tconv.weight)
    np.testing.assert_allclose(g_ours, g_theirs, rtol=1e-4, atol=1e-4)


def test_autoencoder_loss_weights_mz_by_10_and_penalises_length(tiny_ae):
    m = _states(3, seed=1)
    recon = np.asarray(dy.reconstruct(tiny_ae, m), dtype=np.float64)  # what the loss compares without a key
    cells = 16 * 8
    l1 = length = sq = 0.0
    for s in range(3):  # the paper's sums over cells j, per state, written out
        l1_s = len_s = sq_s = 0.0
        for i in range(16):
            for j in range(8):
                d = np.abs(m[s, i, j] - recon[s, i, j])
                l1_s += d[0] + d[1] + 10 * d[2]
                dev = np.sqrt(np.sum(recon[s, i, j] ** 2)) - 1
                len_s += abs(dev)
                sq_s += dev**2
        l1, length, sq = l1 + l1_s / cells / 3, length + len_s / cells / 3, sq + sq_s / cells / 3
    terms = dy.autoencoder_loss_terms(tiny_ae, {"m": m}, None)
    assert all(v.dtype == jnp.float32 and v.shape == () for v in terms.values())
    np.testing.assert_allclose(float(terms["l1"]), l1, rtol=1e-5)
    np.testing.assert_allclose(float(terms["length"]), length, rtol=1e-5)
    np.testing.assert_allclose(float(terms["loss"]), l1 + length, rtol=1e-5)
    np.testing.assert_allclose(float(terms["mae"]), np.mean(np.abs(m - recon)), rtol=1e-5)
    np.testing.assert_allclose(float(dy.autoencoder_loss(tiny_ae, {"m": m}, None, penalty="square")), l1 + sq, rtol=1e-5)
    # the z weight enters linearly: l1(w) = mean(|dm_x| + |dm_y|) + w mean(|dm_z|)
    l1_of = {w: float(dy.autoencoder_loss_terms(tiny_ae, {"m": m}, None, z_weight=w)["l1"]) for w in (0.0, 1.0)}
    np.testing.assert_allclose(l1_of[1.0] - l1_of[0.0], np.mean(np.abs(m[..., 2] - recon[..., 2])), rtol=1e-4)
    np.testing.assert_allclose(l1_of[0.0] + 10 * (l1_of[1.0] - l1_of[0.0]), l1, rtol=1e-4)
    # dropout: the same key gives the same loss, another key another
    k = jax.random.key(7)
    a, b = dy.autoencoder_loss(tiny_ae, {"m": m}, k), dy.autoencoder_loss(tiny_ae, {"m": m}, k)
    assert float(a) == float(b) != float(dy.autoencoder_loss(tiny_ae, {"m": m}, jax.random.key(8)))


def test_compression_ratio_as_the_paper():
    assert dy.compression_ratio((256, 64), 16) == 1024.0  # "64 x 256 ... 1024:1"
    assert dy.compression_ratio((64, 256, 1), 16, values_per_cell=3) == 3072.0
    with pytest.raises(ValueError, match="latent must be an int >= 1"):
        dy.compression_ratio((256, 64), 0)


# ----------------------------------------------------------------------------- stepper


def test_lookahead_loss_equals_the_eight_terms_written_out(tiny_stepper):
    rng = np.random.default_rng(4)
    field = np.array([[-0.0246, 0.0043], [-0.0355, -0.0063]])
    c = rng.normal(size=(2, 12, 3)).astype(np.float32)  # windows c_{i-3} ... c_{i+8}
    P = eqx.filter_jit(eqx.nn.inference_mode(tiny_stepper))  # one compilation for the 18 calls below
    terms = []
    for s in range(2):
        h = jnp.asarray(field[s])

        def sq(k, *window):  # |c_{i+k} - P(h, window)|^2 and the prediction
            pred = P(h, jnp.stack(window))
            return float(np.sum((c[s, 3 + k] - np.asarray(pred, np.float64)) ** 2)), pred

        cm3, cm2, cm1, c0 = (jnp.asarray(c[s, j]) for j in range(4))
        e1, p1 = sq(1, cm3, cm2, cm1, c0)
        e2, p2 = sq(2, cm2, cm1, c0, p1)
        e3, p3 = sq(3, cm1, c0, p1, p2)
        e4, p4 = sq(4, c0, p1, p2, p3)
        e5, p5 = sq(5, p1, p2, p3, p4)
        e6, p6 = sq(6, p2, p3, p4, p5)
        e7, p7 = sq(7, p3, p4, p5, p6)
        e8, _ = sq(8, p4, p5, p6, p7)  # corrected: the paper prints p3 ... p6 again
        typo, _ = sq(8, p3, p4, p5, p6)
        assert abs(typo - e8) > 1e-6  # the correction changes the value
        terms.append([e1, e2, e3, e4, e5, e6, e7, e8])
    terms = np.asarray(terms)
    out = dy.lookahead_loss_terms(tiny_stepper, {"field": field, "c": c}, None)
    np.testing.assert_allclose(float(out["loss"]), terms.sum(axis=1).mean(), rtol=1e-5)
    np.testing.assert_allclose(float(out["first_step"]), terms[:, 0].mean(), rtol=1e-5)
    np.testing.assert_allclose(float(out["last_step"]), terms[:, 7].mean(), rtol=1e-5)
    assert out["loss"].dtype == jnp.float32
    # a (n, 3) field with zero z is the same; dropout: same key same loss, another key another
    field3 = np.concatenate([field, np.zeros((2, 1))], axis=1)
    np.testing.assert_allclose(float(dy.lookahead_loss(tiny_stepper, {"field": field3, "c": c}, None)), float(out["loss"]), rtol=1e-6)
    k = jax.random.key(1)
    a = dy.lookahead_loss(tiny_stepper, {"field": field, "c": c}, k)
    assert float(a) == float(dy.lookahead_loss(tiny_stepper, {"field": field, "c": c}, k))
    assert float(a) != float(dy.lookahead_loss(tiny_stepper, {"field": field, "c": c}, jax.random.key(2)))


def test_lookahead_windows_slice_the_trajectories():
    c = np.random.default_rng(8).normal(size=(3, 101, 16))
    field = np.random.default_rng(9).normal(size=(3, 3))
    w = dy.lookahead_windows(c, field)
    assert w["c"].shape == (3 * 90, 12, 16) and w["field"].shape == (270, 3) and w["c"].dtype == np.float32
    np.testing.assert_array_equal(w["c"][90 + 17], c[1, 17:29].astype(np.float32))
    np.testing.assert_array_equal(w["field"][90 + 17], field[1].astype(np.float32))
    assert dy.lookahead_windows(c, field, stride=4)["c"].shape == (3 * 23, 12, 16)
    with pytest.raises(ValueError, match="n_times >= n_past \\+ n_ahead = 12"):
        dy.lookahead_windows(c[:, :11], field)
    with pytest.raises(ValueError, match="field must have shape \\(n_traj, k\\) with the n_traj = 3"):
        dy.lookahead_windows(c, field[:2])


def test_rollout_scan_equals_a_python_loop_and_batches_over_fields(tiny_stepper):
    rng = np.random.default_rng(5)
    c0 = rng.normal(size=(4, 3)).astype(np.float32)
    fields = np.array([[-0.03, 0.0], [-0.025, 0.004], [-0.04, -0.007]])
    out = dy.rollout_latent(tiny_stepper, fields, c0, 12)  # one c0 for three fields
    assert out.shape == (3, 12, 3) and out.dtype == jnp.float32
    P = eqx.filter_jit(eqx.nn.inference_mode(tiny_stepper))
    for f in range(3):
        window = [jnp.asarray(x) for x in c0]
        for t in range(12):
            nxt = P(jnp.asarray(fields[f], jnp.float32), jnp.stack(window[-4:]))
            window.append(nxt)
            np.testing.assert_allclose(out[f, t], nxt, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dy.rollout_latent(tiny_stepper, fields[1], c0, 12), out[1], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dy.rollout_latent(tiny_stepper, fields, np.broadcast_to(c0, (3, 4, 3)), 12), out, rtol=1e-6)
    # differentiable with respect to the field, under jit
    g = jax.jit(jax.grad(lambda f: jnp.sum(dy.rollout_latent(tiny_stepper, f, c0, 5)[-1])))(jnp.asarray(fields[0]))
    assert g.shape == (2,) and bool(jnp.all(jnp.isfinite(g))) and float(jnp.max(jnp.abs(g))) > 0


def test_stepper_variants_and_bad_input(tiny_stepper):
    c0 = np.zeros((4, 3))
    res = dy.Stepper(latent=3, hidden=(8, 8, 6), output="linear", residual=True, key=jax.random.key(2))
    hist = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)), jnp.float32)
    h = jnp.asarray([-0.03, 0.01], jnp.float32)

    @eqx.filter_jit
    def by_hand(model, h, hist):
        x = jnp.concatenate([h / 0.05, hist.reshape(-1)])  # the documented input: field / 50 mT
        for layer in model.layers[:-1]:
            x = jax.nn.elu(layer(x))
        return hist[-1] + model.layers[-1](x)  # linear output, residual

    got = eqx.filter_jit(lambda m, h, c: eqx.nn.inference_mode(m)(h, c))(res, h, hist)
    np.testing.assert_allclose(got, by_hand(res, h, hist), rtol=1e-5, atol=1e-6)
    assert res.hyperparameters["output"] == "linear" and res.hyperparameters["residual"] is True
    with pytest.raises(ValueError, match="c0 must have shape"):
        dy.rollout_latent(tiny_stepper, [-0.03, 0.0], np.zeros((3, 3)), 5)  # fewer than 4 states
    with pytest.raises(ValueError, match="c0 must hold exactly n_past = 4"):
        dy.rollout_latent(tiny_stepper, [-0.03, 0.0], np.zeros((5, 3)), 5)
    with pytest.raises(ValueError, match="field must be in-plane"):
        dy.rollout_latent(tiny_stepper, [-0.03, 0.0, 0.01], c0, 5)
    with pytest.raises(ValueError, match=r"field must have shape \(\.\.\., 2\)"):
        dy.rollout_latent(tiny_stepper, [-0.03], c0, 5)
    with pytest.raises(ValueError, match="field must be finite"):
        dy.rollout_latent(tiny_stepper, [np.nan, 0.0], c0, 5)
    with pytest.raises(ValueError, match="n_steps must be an int >= 1"):
        dy.rollout_latent(tiny_stepper, [-0.03, 0.0], c0, 0)
    with pytest.raises(ValueError, match="do not broadcast"):
        dy.rollout_latent(tiny_stepper, np.zeros((3, 2)), np.zeros((2, 4, 3)), 5)
    with pytest.raises(ValueError, match="keys 'field'"):
        dy.lookahead_loss(tiny_stepper, {"c": np.zeros((2, 12, 3))}, None)
    with pytest.raises(ValueError, match="same n"):
        dy.lookahead_loss(tiny_stepper, {"field": np.zeros((3, 2)), "c": np.zeros((2, 12, 3))}, None)
    with pytest.raises(ValueError, match=r"batch\['c'\] must have shape"):
        dy.lookahead_loss(tiny_stepper, {"field": np.zeros((2, 2)), "c": np.zeros((2, 4, 3))}, None)
    with pytest.raises(ValueError, match="output must be one of"):
        dy.Stepper(output="tanh", key=jax.random.key(0))
    with pytest.raises(ValueError, match="field_scale must be a finite number > 0"):
        dy.Stepper(field_scale=0.0, key=jax.random.key(0))


# ----------------------------------------------------------------------------- baselines


def test_pca_exact_at_full_rank_and_optimal_with_16_modes():
    rng = np.random.default_rng(6)
    n, shape = 40, (8, 4, 3)
    d = int(np.prod(shape))
    # correlated synthetic states: a decaying spectrum in random directions
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
    x = (rng.normal(size=(n, d)) * np.exp(-np.arange(d) / 6.0)) @ basis.T + rng.normal(size=d)
    x = x.reshape(n, *shape)
    full = dy.fit_pca(x, n)
    np.testing.assert_allclose(dy.pca_decode(full, dy.pca_encode(full, x)), x, atol=2e-5)
    pca = dy.fit_pca(x, 16)
    c = dy.pca_encode(pca, x)
    assert c.shape == (n, 16) and c.dtype == jnp.float32
    np.testing.assert_allclose(np.var(np.asarray(c, np.float64), axis=0, ddof=1), 1.0, rtol=1e-4)  # unit-variance codes
    np.testing.assert_allclose(np.asarray(pca.modes) @ np.asarray(pca.modes).T, np.eye(16), atol=1e-5)
    flat = x.reshape(n, d)
    err = np.sum((np.asarray(dy.pca_decode(pca, c), np.float64).reshape(n, d) - flat) ** 2)
    s = np.linalg.svd(flat - flat.mean(0), compute_uv=False)
    np.testing.assert_allclose(err, np.sum(s[16:] ** 2), rtol=1e-4)  # Eckart-Young
    np.testing.assert_allclose(pca.explained, np.sum(s[:16] ** 2) / np.sum(s**2), rtol=1e-5)
    for seed in range(5):  # any other 16-dimensional basis reconstructs worse
        q = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, 16)))[0]
        xc = flat - flat.mean(0)
        assert np.sum((xc @ q @ q.T - xc) ** 2) > 1.5 * err
    # the randomized fit finds the same subspace and variances
    rnd = dy.fit_pca(x, 16, method="randomized", chunk=7, power_iterations=4)
    proj = np.asarray(rnd.modes, np.float64) @ np.asarray(pca.modes, np.float64).T
    np.testing.assert_allclose(np.linalg.svd(proj, compute_uv=False)[:12], 1.0, atol=1e-3)
    np.testing.assert_allclose(rnd.variance[:8], pca.variance[:8], rtol=1e-3)
    # the same stepper integrates PCA codes (a linear output: the codes are unbounded)
    p = dy.Stepper(latent=16, output="linear", residual=True, key=jax.random.key(0))
    assert dy.rollout_latent(p, [-0.03, 0.0], c[:4], 3).shape == (3, 16)
    with pytest.raises(ValueError, match="n_modes must be <= min"):
        dy.fit_pca(x, n + 1)
    with pytest.raises(ValueError, match="states must be finite"):
        dy.fit_pca(np.where(np.arange(3) == 0, np.nan, x), 4)
    with pytest.raises(ValueError, match=r"m must have shape \(\.\.\., 8, 4, 3\)"):
        dy.pca_encode(pca, x[:, :4])
    with pytest.raises(ValueError, match="method must be one of"):
        dy.fit_pca(x, 4, method="svd")


def test_models_round_trip_through_the_weights_file(tmp_path, tiny_ae, tiny_stepper):
    x = _states(12)
    pca = dy.fit_pca(x, 5)
    for model, cls in ((tiny_ae, dy.Autoencoder), (tiny_stepper, dy.Stepper), (pca, dy.PCA)):
        path = tmp_path / f"{cls.__name__}.eqx"
        sha = save_model(path, model, {"hyperparameters": model.hyperparameters})
        make = (lambda h, cls=cls: cls(**h["hyperparameters"])) if cls is dy.PCA else (
            lambda h, cls=cls: cls(**h["hyperparameters"], key=jax.random.key(9)))
        loaded, _ = load_model(path, make, sha256=sha)
        for a, b in zip(jax.tree_util.tree_leaves(model), jax.tree_util.tree_leaves(loaded)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_lookup_exact_at_training_fields_and_inverse_distance_between():
    rng = np.random.default_rng(7)
    fields = np.stack([-rng.uniform(0.022, 0.041, 9), rng.uniform(-0.01, 0.01, 9), np.zeros(9)], axis=1)
    curves = rng.normal(size=(9, 101, 3)).astype(np.float32)
    look = dy.fit_lookup(fields, curves)
    np.testing.assert_array_equal(dy.lookup_predict(look, fields[3]), curves[3])
    np.testing.assert_array_equal(dy.lookup_predict(look, fields[:, :2]), curves)
    f = np.array([-0.03, 0.002])
    d = np.linalg.norm(np.asarray(fields[:, :2], np.float32) - np.float32(f), axis=1)
    near = np.argsort(d)[:4]
    w = d[near] ** -2.0
    want = np.tensordot(w / w.sum(), curves[near], axes=1)
    np.testing.assert_allclose(dy.lookup_predict(look, f), want, rtol=1e-4, atol=1e-6)
    g = jax.grad(lambda h: jnp.sum(dy.lookup_predict(look, h)[50]))(jnp.asarray(f))
    assert bool(jnp.all(jnp.isfinite(g)))
    with pytest.raises(ValueError, match="k must be <= the number of training fields 9"):
        dy.fit_lookup(fields, curves, k=10)
    with pytest.raises(ValueError, match=r"curves must have shape \(n, \.\.\.\) with the n = 9"):
        dy.fit_lookup(fields, curves[:5])
    with pytest.raises(ValueError, match="fields must be in-plane"):
        dy.fit_lookup(fields + [0, 0, 0.001], curves)


# ----------------------------------------------------------------------------- training


def test_losses_decrease_with_the_generic_trainer(tiny_ae):
    m = _states(32, seed=2)
    r = train(tiny_ae, dy.autoencoder_loss, optax.nadam(1e-2), {"m": m[:24]}, val_data={"m": m[24:]},
              epochs=10, batch_size=8, seed=0, key_needed=True, progress=False)
    h = r.history  # measured: 2.77 -> 1.79 (train), 2.37 -> 1.57 (validation)
    assert h["train_loss"][-1] < 0.8 * h["train_loss"][0] and h["val_loss"][-1] < 0.8 * h["val_loss"][0]
    # the stepper on synthetic latent trajectories: damped rotations driven by the field
    rng = np.random.default_rng(3)
    fields = np.stack([-rng.uniform(0.022, 0.041, 16), rng.uniform(-0.01, 0.01, 16)], axis=1)
    t = np.arange(12)[None, :, None]
    c = 0.5 * np.exp(-0.05 * t) * np.cos(20 * fields[:, None, :1] * t + np.arange(3))
    p = dy.Stepper(latent=3, hidden=(16, 16, 8), dropout=0.0, key=jax.random.key(0))
    r = train(p, dy.lookahead_loss, optax.nadam(1e-2), {"field": fields, "c": c.astype(np.float32)},
              epochs=15, batch_size=8, seed=0, key_needed=True, progress=False)
    assert r.history["train_loss"][-1] < 0.5 * r.history["train_loss"][0]
