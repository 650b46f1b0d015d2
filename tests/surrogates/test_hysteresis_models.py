"""Hysteresis surrogate models: the VAE (Table 1), the regressor (Table 2) and its ensembles,
and the image-statistics + ridge baseline. Checked against the paper's parameter counts,
closed forms (Gaussian KL, ridge normal equations, Stoner-Wohlfarth switching field) and
the layers' reference implementations."""

import json
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import xarray as xr

import invdesign_surrogates
from invdesign_surrogates import hysteresis as hy
from invdesign_surrogates.hysteresis._vae import _build, _conv, _conv_transpose

# tiny models and few steps: compile-bound, so XLA's cheaper optimisation level (tests/conftest.py)
FULL_XLA_OPTIMIZATION = False

SHIPPED = Path(invdesign_surrogates.__file__).parent / "data" / "shipped" / "hysteresis_labeled_64x64.nc"
SMALL = dict(grid=16, latent=4, channels=(4, 8), dense=16)


@pytest.fixture(scope="module")
def shipped():
    with xr.open_dataset(SHIPPED, engine="h5netcdf") as ds:
        return ds.load()


@pytest.fixture(scope="module")
def small_vae():
    return hy.VAE(**SMALL, key=jax.random.key(0))


@pytest.fixture(scope="module")
def small_kx(shipped):
    """Eight real structures, every 4th cell (16 x 16), from the training split."""
    return shipped.kx.values[:8, ::4, ::4].astype(np.float32)


def _linear_count(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


# ----------------------------------------------------------------------------- VAE


def test_vae_default_shapes_dtypes_and_roundtrip_of_hyperparameters():
    vae = hy.VAE(key=jax.random.key(0))
    assert vae.hyperparameters == {"grid": 64, "latent": 32, "channels": [16, 32, 64, 128, 256], "dense": 1024}
    kx = np.random.default_rng(0).uniform(-1, 1, (2, 3, 64, 64))  # float64 in, float32 out
    mean, logvar = hy.vae_encode(vae, kx)
    assert mean.shape == logvar.shape == (2, 3, 32) and mean.dtype == logvar.dtype == jnp.float32
    one, _ = hy.vae_encode(vae, kx[1, 2])
    np.testing.assert_allclose(one, mean[1, 2], rtol=1e-5, atol=1e-6)
    x = hy.vae_decode(vae, mean)
    assert x.shape == (2, 3, 64, 64) and x.dtype == jnp.float32
    assert float(jnp.max(jnp.abs(x))) < 1.0  # tanh output
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(eqx.filter(vae, eqx.is_array)))
    # same key -> same weights; the JSON header rebuilds the same skeleton
    again = hy.VAE(**json.loads(json.dumps(vae.hyperparameters)), key=jax.random.key(0))
    for a, b in zip(jax.tree_util.tree_leaves(vae), jax.tree_util.tree_leaves(again)):
        assert np.array_equal(a, b)
    # the default layout: 64 -> 2 x 2 x 256 bottleneck, widths as stated in the docs
    assert hy.count_parameters(vae.encoder) == (272 + 2080 + 8256 + 32896 + 131328) + _linear_count([1024, 1024]) + 2 * _linear_count([1024, 32])
    assert hy.count_parameters(vae.decoder) == _linear_count([32, 1024, 1024]) + (131200 + 32832 + 8224 + 2064 + 257)


def test_vae_parameter_counts_of_table_1():
    layout = dict(grid=160, latent=512, channels=(16, 32, 64, 128, 256), dense=2048)
    paper = eqx.filter_eval_shape(hy.VAE, **layout, key=jax.random.key(0))  # shapes only
    assert hy.count_parameters(paper.encoder) == 15_382_256
    assert hy.count_parameters(paper.decoder) == 14_338_801
    # layer by layer, as in the table
    assert [hy.count_parameters(c) for c in paper.encoder.convs] == [272, 2080, 8256, 32896, 131328]
    assert [hy.count_parameters(c) for c in paper.decoder.convs] == [131200, 32832, 8224, 2064, 257]
    assert hy.count_parameters(paper.encoder.dense) == 13_109_248
    assert hy.count_parameters(paper.decoder.dense2) == 13_113_600
    out = eqx.filter_eval_shape(lambda k: hy.VAE(**layout, key=k)(jnp.zeros((160, 160)), k), jax.random.key(0))
    assert [o.shape for o in out] == [(160, 160), (512,), (512,)]


def test_patchwise_convolutions_match_the_equinox_layers():
    k1, k2, k3 = jax.random.split(jax.random.key(3), 3)
    x = jax.random.normal(k3, (6, 8, 10), jnp.float32)
    conv = _build(eqx.nn.Conv2d, 6, 5, 2, stride=2, key=k1, dtype=jnp.float32)
    np.testing.assert_allclose(_conv(conv, x), conv(x), rtol=1e-5, atol=1e-6)
    convt = _build(eqx.nn.ConvTranspose2d, 6, 5, 2, stride=2, key=k2, dtype=jnp.float32)
    np.testing.assert_allclose(_conv_transpose(convt, x), convt(x), rtol=1e-5, atol=1e-6)
    # the overlapping 4 x 4 layers go through the layers themselves
    big = _build(eqx.nn.ConvTranspose2d, 6, 1, 4, stride=2, padding=1, key=k2, dtype=jnp.float32)
    assert np.array_equal(_conv_transpose(big, x), big(x)) and big(x).shape == (1, 16, 20)


def test_vae_bad_input_errors(small_vae):
    good = np.zeros((2, 16, 16))
    with pytest.raises(ValueError, match=r"kx must have shape \(\.\.\., 16, 16\)"):
        hy.vae_encode(small_vae, np.zeros((2, 64, 64)))
    with pytest.raises(ValueError, match="kx must be finite"):
        hy.vae_encode(small_vae, np.where(np.eye(16, dtype=bool), np.nan, 0.0))
    with pytest.raises(ValueError, match=r"kx .*\[-1, 1\].*1\.5"):
        hy.vae_encode(small_vae, good + 1.5)
    with pytest.raises(ValueError, match=r"z must have shape \(\.\.\., 4\)"):
        hy.vae_decode(small_vae, np.zeros((2, 5)))
    with pytest.raises(ValueError, match="z must be finite"):
        hy.vae_decode(small_vae, np.full((4,), np.inf))
    with pytest.raises(ValueError, match="batch must be a dict with the key 'kx'"):
        hy.vae_loss(small_vae, {"x": good}, jax.random.key(0))
    with pytest.raises(ValueError, match=r"batch\['kx'\] .*\[-1, 1\]"):
        hy.vae_loss(small_vae, {"kx": good - 2}, jax.random.key(0))
    with pytest.raises(ValueError, match=r"grid must be a multiple of 2\*\*len\(channels\) = 32"):
        hy.VAE(grid=48, channels=(1, 2, 3, 4, 5), key=jax.random.key(0))
    with pytest.raises(ValueError, match="latent must be an int >= 1"):
        hy.VAE(latent=0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="channels must be a non-empty"):
        hy.VAE(channels=(), key=jax.random.key(0))
    with pytest.raises(ValueError, match="dense must be an int"):
        hy.VAE(dense=2.5, key=jax.random.key(0))


def test_kl_divergence_against_closed_form():
    mean = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5]])
    var = np.array([[1.0, 1.0, 1.0], [0.25, 4.0, 1.0]])
    # KL(N(m, s^2) || N(0, 1)) = ln(1/s) + (s^2 + m^2)/2 - 1/2 per dimension
    expected = np.sum(np.log(1 / np.sqrt(var)) + (var + mean**2) / 2 - 0.5, axis=-1)
    got = hy.kl_divergence(mean, np.log(var))
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert expected[0] == 0.0 and expected[1] == pytest.approx(3.75)  # ln 2 + 5/8, -ln 2 + 7/2, 1/8


def test_vae_loss_terms_normalisation(small_vae, small_kx):
    key = jax.random.key(5)
    terms = hy.vae_loss_terms(small_vae, {"kx": small_kx}, key, beta=0.3)
    # the documented normalisation, by hand
    mean, logvar = hy.vae_encode(small_vae, small_kx)
    eps = jax.random.normal(key, mean.shape, jnp.float32)
    recon = hy.vae_decode(small_vae, mean + jnp.exp(0.5 * logvar) * eps)
    sse = np.sum((np.asarray(recon, float) - small_kx) ** 2, axis=(1, 2))
    kl = np.asarray(hy.kl_divergence(mean, logvar), float)
    assert float(terms["reconstruction"]) == pytest.approx(sse.mean(), rel=1e-5)
    assert float(terms["mse"]) == pytest.approx(sse.mean() / 16**2, rel=1e-5)
    assert float(terms["kl"]) == pytest.approx(kl.mean(), rel=1e-4, abs=1e-6)
    assert float(terms["loss"]) == pytest.approx(sse.mean() + 0.3 * kl.mean(), rel=1e-5)
    assert float(hy.vae_loss(small_vae, {"kx": small_kx}, key)) == pytest.approx(sse.mean() + kl.mean(), rel=1e-5)


def test_vae_loss_decreases_on_a_tiny_batch(small_vae, small_kx):
    opt = optax.adam(1e-2)
    model = small_vae
    state = opt.init(eqx.filter(model, hy.trainable_filter(model)))
    batch = {"kx": small_kx}

    @eqx.filter_jit
    def step(model, state, key):
        loss, grads = eqx.filter_value_and_grad(hy.vae_loss)(model, batch, key)
        updates, state = opt.update(grads, state, model)
        return eqx.apply_updates(model, updates), state, loss

    key = jax.random.key(0)
    losses = []
    for i in range(40):
        model, state, loss = step(model, state, jax.random.fold_in(key, i))
        losses.append(float(loss))
    first = hy.vae_loss(small_vae, batch, jax.random.key(99))
    last = hy.vae_loss(model, batch, jax.random.key(99))
    assert np.all(np.isfinite(losses))
    assert float(last) < 0.8 * float(first), (float(first), float(last))  # ~0.66 measured
    assert losses[-1] < losses[0]


# ----------------------------------------------------------------------------- regressor


def test_regressor_heads_and_parameter_count_of_table_2():
    paper = eqx.filter_eval_shape(hy.Regressor, 512, key=jax.random.key(0))
    assert len(paper.heads) == 6 and all(len(h) == 6 for h in paper.heads)
    shared = _linear_count([512, 512, 1024, 512, 256, 128, 64])
    head = _linear_count([64, 32, 16, 8, 4, 2, 1])
    assert (shared, head) == (1_485_248, 2_793)
    assert hy.count_parameters(paper) == shared + 6 * head == 1_502_006
    # the statistics are arrays of the module but not trainable parameters
    reg = hy.Regressor(7, key=jax.random.key(0))
    assert hy.count_parameters(reg) == _linear_count([7, 512, 1024, 512, 256, 128, 64]) + 6 * head
    assert reg.hyperparameters == {"in_features": 7, "shared_widths": [512, 1024, 512, 256, 128, 64], "head_widths": [32, 16, 8, 4, 2], "n_targets": 6}


@pytest.fixture(scope="module")
def tiny_data():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, (40, 5))
    y = np.column_stack([0.95 + 0.01 * x[:, 0], 0.8 + 0.05 * x[:, 1], -0.3 + 0.1 * x[:, 2], -0.35 + 0.1 * x[:, 2], -0.4 + 0.1 * x[:, 3], -0.5 + 0.1 * x[:, 4]])
    return x, y


def _tiny_regressor(key=0, **kw):
    return hy.Regressor(5, key=jax.random.key(key), shared_widths=(16, 8), head_widths=(4, 2), **kw)


def test_regressor_standardisation_units_and_loss(tiny_data):
    x, y = tiny_data
    reg = hy.with_statistics(_tiny_regressor(), x, y)
    np.testing.assert_allclose(reg.x_mean, x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(reg.y_std, y.std(0), rtol=1e-5)
    pred = hy.predict_regressor(reg, x)
    assert pred.shape == (40, 6) and pred.dtype == jnp.float32
    raw = jax.vmap(reg.standardised)(jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(pred, raw * reg.y_std + reg.y_mean, rtol=1e-5, atol=1e-6)
    # losses on standardised targets, by hand
    z = (y - y.mean(0)) / y.std(0)
    err = np.asarray(raw, float) - z
    batch = {"features": x, "targets": y}
    assert float(hy.regressor_loss(reg, batch, None)) == pytest.approx(np.mean(err**2), rel=1e-4)
    assert float(hy.regressor_loss(reg, batch, None, metric="mae")) == pytest.approx(np.mean(np.abs(err)), rel=1e-4)
    # NaN targets are missing values: left out of the mean, gradients stay finite
    y_nan = y.copy()
    y_nan[:5, 3] = np.nan
    keep = np.isfinite(y_nan)
    loss, grads = eqx.filter_value_and_grad(hy.regressor_loss)(reg, {"features": x, "targets": y_nan}, None)
    assert float(loss) == pytest.approx(np.mean((err**2)[keep]), rel=1e-4)
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))
    # the statistics get no gradient and are not in the trainable partition
    for g in (grads.x_mean, grads.x_std, grads.y_mean, grads.y_std):
        assert np.all(np.asarray(g) == 0)
    params, _ = eqx.partition(reg, hy.trainable_filter(reg))
    assert params.x_mean is None and params.y_std is None and params.shared[0].weight is not None


def test_regressor_bad_input_errors(tiny_data):
    x, y = tiny_data
    reg = _tiny_regressor()
    with pytest.raises(ValueError, match=r"features must have shape \(\.\.\., 5\)"):
        hy.predict_regressor(reg, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="features must be finite"):
        hy.predict_regressor(reg, np.full((3, 5), np.nan))
    with pytest.raises(ValueError, match="metric must be 'mse' or 'mae'"):
        hy.regressor_loss(reg, {"features": x, "targets": y}, None, metric="huber")
    with pytest.raises(ValueError, match=r"batch\['targets'\]"):
        hy.regressor_loss(reg, {"features": x, "targets": y[:, :3]}, None)
    with pytest.raises(ValueError, match="x_std must be > 0"):
        _tiny_regressor(x_std=np.zeros(5))
    with pytest.raises(ValueError, match="y_mean must have shape"):
        _tiny_regressor(y_mean=np.zeros(5))
    with pytest.raises(ValueError, match="in_features must be an int"):
        hy.Regressor(0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="model must be a Regressor"):
        hy.predict_regressor(hy.Ensemble(5, 2, key=jax.random.key(0), shared_widths=(4,), head_widths=(2,)), x)
    with pytest.raises(ValueError, match="H_A must be finite and > 0"):
        hy.paper_units(np.zeros(6), -1.0)


def test_paper_units_of_the_shipped_anchors(shipped):
    a = hy.paper_units(shipped.anchors.values, shipped.attrs["H_A"])
    assert list(shipped.anchor.values) == list(hy.ANCHORS)
    np.testing.assert_array_equal(a[:, :2], shipped.anchors.values[:, :2])
    np.testing.assert_allclose(a[:, 5] * shipped.attrs["H_A"], shipped.sel(anchor="Hc").anchors.values)
    # sane ranges: remanence in (0.4, 1] Ms (the most misoriented structures of the 832-curve
    # set reach 0.44, below the 2/pi of decoupled isotropic grains), fields between -H_A and
    # 0, ordered along the curve
    assert np.all((a[:, 1] > 0.4) & (a[:, 1] <= 1.0) & (a[:, 0] >= a[:, 1]))
    assert np.all((a[:, 2:] < 0) & (a[:, 2:] > -1))
    assert np.all(np.diff(a[:, 2:], axis=1) <= 0)


def test_ensemble_mean_spread_and_loss(tiny_data):
    x, y = tiny_data
    kw = dict(shared_widths=(16, 8), head_widths=(4, 2))
    ens = hy.with_statistics(hy.Ensemble(5, n_members=3, key=jax.random.key(2), **kw), x, y)
    assert ens.members.shared[0].weight.shape == (3, 16, 5)
    assert hy.count_parameters(ens) == 3 * hy.count_parameters(_tiny_regressor())
    member = [jax.tree_util.tree_map(lambda a, i=i: a[i] if eqx.is_array(a) else a, ens.members) for i in range(3)]
    preds = np.stack([np.asarray(hy.predict_regressor(m, x)) for m in member])
    mean, spread = hy.predict_ensemble(ens, x)
    np.testing.assert_allclose(mean, preds.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(spread, preds.std(0), rtol=1e-4, atol=1e-6)
    assert float(np.min(spread)) > 0  # different seeds, different members
    batch = {"features": x, "targets": y}
    expected = np.mean([float(hy.regressor_loss(m, batch, None)) for m in member])
    assert float(hy.ensemble_loss(ens, batch, None)) == pytest.approx(expected, rel=1e-5)
    # identical members: zero spread, the mean is the member's prediction
    same = eqx.tree_at(lambda e: e.members, ens, jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a[0], a.shape) if eqx.is_array(a) else a, ens.members))
    mean, spread = hy.predict_ensemble(same, x)
    assert np.all(np.asarray(spread) == 0)
    np.testing.assert_allclose(mean, preds[0], rtol=1e-5, atol=1e-6)
    hp = ens.hyperparameters
    assert hp == {"in_features": 5, "n_members": 3, "shared_widths": [16, 8], "head_widths": [4, 2], "n_targets": 6}
    rebuilt = hy.Ensemble(**json.loads(json.dumps(hp)), key=jax.random.key(0))
    assert jax.tree_util.tree_structure(rebuilt) == jax.tree_util.tree_structure(ens)
    params, _ = eqx.partition(ens, hy.trainable_filter(ens))
    assert params.members.x_mean is None and params.members.heads[0][0].weight.shape == (3, 4, 8)


# ----------------------------------------------------------------------------- baseline


def _names(f, names):
    return [dict(zip(names, row)) for row in f]


def test_image_statistics_of_hand_made_maps():
    aligned = np.zeros((16, 16))
    perpendicular = np.ones((16, 16))
    diagonal = np.full((16, 16), np.sin(np.pi / 4))
    halves = np.zeros((16, 16))
    halves[8:, :] = -0.5  # 30 degrees below x = 8 (along the first axis)
    f, names = hy.image_statistics(np.stack([aligned, perpendicular, diagonal, halves]))
    assert f.shape == (4, len(hy.STATISTICS)) and names == hy.STATISTICS and f.dtype == np.float64
    a, p, d, h = _names(f, names)
    # fully aligned single grain
    assert a["mean_abs_kx"] == a["mean_psi"] == a["boundary_frac"] == a["log_n_grains"] == 0.0
    assert a["mean_ky"] == a["frac_aligned_5deg"] == a["mean_hsw"] == 1.0
    assert a["mean_grain_area"] == 256 and a["intercept_x"] == a["intercept_y"] == 16
    assert a["grain_diameter"] == pytest.approx(np.sqrt(4 * 256 / np.pi))
    # perpendicular: no remanence, switching field back to H_A (Stoner-Wohlfarth at 90 degrees)
    assert p["mean_ky"] == pytest.approx(0.0, abs=1e-12) and p["mean_psi"] == pytest.approx(np.pi / 2)
    assert p["frac_aligned_45deg"] == 0.0 and p["mean_hsw"] == pytest.approx(1.0)
    # 45 degrees: the Stoner-Wohlfarth minimum h_sw = 1/2
    assert d["min_hsw"] == pytest.approx(0.5) and d["mean_kx2"] == pytest.approx(0.5)
    assert d["frac_aligned_45deg"] == 1.0 and d["frac_aligned_30deg"] == 0.0
    # two grains, one boundary line across the first axis
    assert h["mean_abs_kx"] == pytest.approx(0.25) and h["mean_ky"] == pytest.approx((1 + np.sqrt(0.75)) / 2)
    assert h["frac_aligned_20deg"] == 0.5 and h["frac_aligned_30deg"] == 1.0
    assert h["boundary_frac_x"] == pytest.approx(16 / 240) and h["boundary_frac_y"] == 0.0
    assert h["boundary_frac"] == pytest.approx(16 / 480)
    assert h["mean_abs_dpsi_boundary"] == pytest.approx(np.pi / 6)
    assert h["mean_abs_dpsi"] == pytest.approx(16 * np.pi / 6 / 480)
    assert h["log_n_grains"] == pytest.approx(np.log(2)) and h["mean_grain_area"] == 128 and h["cv_grain_area"] == 0
    assert h["intercept_x"] == 8 and h["intercept_y"] == 16
    # one map without a batch axis gives the same row
    np.testing.assert_array_equal(hy.image_statistics(halves)[0][0], f[3])


def test_image_statistics_with_grain_ids_and_real_structures(shipped):
    gid = np.zeros((16, 16), np.int16)
    gid[:8, 8:], gid[8:, :8], gid[8:, 8:] = 1, 2, 3  # four aligned grains (theta = 0)
    f, names = hy.image_statistics(np.zeros((16, 16)), grain_id=gid)
    s = dict(zip(names, f[0]))
    assert s["log_n_grains"] == pytest.approx(np.log(4)) and s["mean_grain_area"] == 64
    assert s["boundary_frac_x"] == s["boundary_frac_y"] == pytest.approx(16 / 240)
    assert s["mean_abs_dpsi_boundary"] == 0.0
    # real Voronoi structures: grain ids give the occupied grains; equal-kx regions count
    # every connected fragment (at least as many)
    kx, ids = shipped.kx.values[:6], shipped.grain_id.values[:6]
    with_ids = dict(zip(names, hy.image_statistics(kx, grain_id=ids)[0].T))
    from_kx = dict(zip(names, hy.image_statistics(kx)[0].T))
    n_ids = [len(np.unique(i)) for i in ids]
    np.testing.assert_allclose(np.exp(with_ids["log_n_grains"]), n_ids)
    assert np.all(np.exp(from_kx["log_n_grains"]) >= np.array(n_ids) - 1e-9)
    np.testing.assert_array_equal(with_ids["mean_ky"], from_kx["mean_ky"])
    assert np.all(with_ids["mean_ky"] > 0.3)
    with pytest.raises(ValueError, match=r"kx .*\[-1, 1\]"):
        hy.image_statistics(np.full((4, 4), 1.2))
    with pytest.raises(ValueError, match="kx must be finite"):
        hy.image_statistics(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="kx must have shape"):
        hy.image_statistics(np.zeros(16))
    with pytest.raises(ValueError, match="grain_id must be an integer array"):
        hy.image_statistics(np.zeros((4, 4)), grain_id=np.zeros((4, 5), int))


def test_equal_regions_are_the_connected_components_of_the_cell_graph():
    """The doubled-resolution image labelling against scipy's connected components of the
    graph of equal 4-neighbours: the same labels, numbered alike, unique across maps."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    from invdesign_surrogates.hysteresis._baseline import _equal_regions

    rng = np.random.default_rng(5)
    # few values, so that equal regions touch diagonally and wind around each other
    maps = np.round(rng.normal(size=(6, 23, 17)).cumsum(axis=1) / 2.0)
    maps[0] = 0.0  # one region
    maps[1] = np.indices((23, 17)).sum(0) % 2  # checkerboard: every cell alone
    n, nx, ny = maps.shape
    idx = np.arange(maps.size).reshape(maps.shape)
    same_x = maps[:, 1:, :] == maps[:, :-1, :]
    same_y = maps[:, :, 1:] == maps[:, :, :-1]
    rows = np.concatenate([idx[:, 1:, :][same_x], idx[:, :, 1:][same_y]])
    cols = np.concatenate([idx[:, :-1, :][same_x], idx[:, :, :-1][same_y]])
    graph = sp.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(maps.size, maps.size))
    k, ref = connected_components(graph, directed=False)
    got = _equal_regions(maps, 0.5)
    np.testing.assert_array_equal(got, ref.reshape(maps.shape))
    assert got.max() + 1 == k and len(np.unique(got[0])) == 1 and len(np.unique(got[1])) == nx * ny


def _design(x, quadratic):
    mu, sd = x.mean(0), x.std(0)
    z = (x - mu) / sd
    if quadratic:
        z = hy.quadratic_features(z)
    return (z - z.mean(0)) / z.std(0)


@pytest.mark.parametrize("quadratic", [False, True])
def test_ridge_equals_lstsq_closed_form(quadratic):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4)) * [1.0, 10.0, 0.1, 3.0] + 2.0
    y = np.column_stack([x @ [0.5, 0.1, -3.0, 0.0], np.sin(x[:, 0])]) + 0.1 * rng.normal(size=(50, 2))
    alpha = 2.5
    b = hy.fit_baseline(x, y, alphas=[alpha], quadratic=quadratic)
    X = _design(x, quadratic)
    P = X.shape[1]
    assert P == (4 + 10 if quadratic else 4)
    aug_x = np.vstack([X, np.sqrt(alpha) * np.eye(P)])
    aug_y = np.vstack([y - y.mean(0), np.zeros((P, 2))])
    coef = np.linalg.lstsq(aug_x, aug_y, rcond=None)[0]
    np.testing.assert_allclose(b.coef, coef, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.predict(x), X @ coef + y.mean(0), rtol=1e-9, atol=1e-12)
    x_new = rng.normal(size=(7, 4))
    np.testing.assert_allclose(b.predict(x_new), _design_like(x, x_new, quadratic) @ coef + y.mean(0), rtol=1e-9, atol=1e-12)
    assert np.all(b.alpha == alpha) and np.all(np.isnan(b.cv_mse))


def _design_like(x, x_new, quadratic):
    mu, sd = x.mean(0), x.std(0)
    z, zn = (x - mu) / sd, (x_new - mu) / sd
    if quadratic:
        z, zn = hy.quadratic_features(z), hy.quadratic_features(zn)
    return (zn - z.mean(0)) / z.std(0)


def test_ridge_cross_validation():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 3))
    signal = x @ [1.0, -2.0, 0.5]
    y = np.column_stack([signal, rng.normal(size=60)])  # exact linear target; pure noise
    alphas = np.logspace(-3, 3, 7)
    b = hy.fit_baseline(x, y, alphas=alphas, n_folds=4, seed=3, names=["a", "b", "c"])
    assert b.alpha[0] == alphas[0] and b.alpha[1] >= 100  # no penalty for the signal, a strong one for noise
    assert b.names == ("a", "b", "c") and b.cv_mse.shape == (2, 7)
    # the CV error of one alpha, by hand (folds: a permutation with seed 3, modulo 4)
    fold = np.random.default_rng(3).permutation(60) % 4
    sse = 0.0
    for k in range(4):
        tr, va = fold != k, fold == k
        X = _design(x[tr], False)
        w = np.linalg.solve(X.T @ X + alphas[3] * np.eye(3), X.T @ (y[tr, 1] - y[tr, 1].mean()))
        sse += np.sum((_design_like(x[tr], x[va], False) @ w + y[tr, 1].mean() - y[va, 1]) ** 2)
    assert b.cv_mse[1, 3] == pytest.approx(sse / 60, rel=1e-10)
    with pytest.raises(ValueError, match="n_folds must be an int in"):
        hy.fit_baseline(x, y, n_folds=1)
    with pytest.raises(ValueError, match="alphas must be"):
        hy.fit_baseline(x, y, alphas=[0.0])
    with pytest.raises(ValueError, match="targets must be finite"):
        hy.fit_baseline(x, np.where(y > 2, np.nan, y))
    with pytest.raises(ValueError, match="targets must have shape"):
        hy.fit_baseline(x, y[:10])
    with pytest.raises(ValueError, match=r"features must have shape \(n, 3\)"):
        b.predict(np.zeros((2, 4)))


def test_baseline_on_the_shipped_training_split(shipped):
    """Image statistics + ridge explain most of the variance of the training anchors (CV).

    The baseline is strong: cross-validated RMSE 0.0016 Ms (M1), 0.010 Ms (Mr), 0.02-0.03 H_A
    (fields) on the 103 training structures of the first 128, close to the paper's Table 3 MAEs.
    """
    from invdesign_surrogates.data.hysteresis import is_test

    train = ~is_test(shipped.sample.values)
    f, names = hy.image_statistics(shipped.kx.values[train])
    y = hy.paper_units(shipped.anchors.values[train], shipped.attrs["H_A"])
    b = hy.fit_baseline(f, y, names=names)
    cv_rmse = np.sqrt(b.cv_mse[np.arange(6), np.searchsorted(b.alphas, b.alpha)])
    assert np.all(cv_rmse < 0.35 * y.std(0)), cv_rmse / y.std(0)  # 0.06 (Mr) ... 0.21 (Hc) measured
