"""Hysteresis training pipeline and the shipped surrogate.

The pipeline runs end to end once per module on a tiny configuration (48 unlabeled
structures, a VAE with 2-4 channels, 40 labeled structures, 2-member ensembles, 3 epochs);
the tests check its outputs against recomputations (MAE, epoch choice, out-of-fold
losses), that the fixed test split never reaches a trainer, that an interrupted run
resumes to the same numbers, and the public `predict` / `encode` / `decode` on the
shipped weights, including the MAE recorded in their header for the committed test slice.
"""

import json
import shutil
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import invdesign_surrogates
from invdesign_surrogates import hysteresis as hy
from invdesign_surrogates import train as train_cli
from invdesign_surrogates._training import read_checkpoint_header
from invdesign_surrogates._weights import file_sha256, load_model, read_header, save_model
from invdesign_surrogates.data.hysteresis import _settings, is_test, unlabeled_shard
from invdesign_surrogates.hysteresis import _pipeline, _shipped

# a tiny pipeline and small models: compile-bound, so XLA's cheaper optimisation level (tests/conftest.py)
FULL_XLA_OPTIMIZATION = False

LABELED = Path(invdesign_surrogates.__file__).parent / "data" / "shipped" / "hysteresis_labeled_64x64.nc"
SHIPPED = _shipped.SHIPPED

TINY = dict(
    labeled_limit=40, vae_val=16, latents=(2, 3), vae_channels=(2, 4), vae_dense=8, vae_batch=16,
    select_structures=16, select_epochs=1, vae_epochs=1, feature_sets=("latent_stats", "latent_stats_blend", "latent_stats_residual", "stats_residual"),
    members=2, shared_widths=(8,), head_widths=(2,), cv_max_epochs=3, cv_smooth=1, slice_size=4,
    learning_curve=(16,), progress=False,
)


@pytest.fixture(scope="module")
def unlabeled(tmp_path_factory):
    path = tmp_path_factory.mktemp("unlabeled") / "unlabeled.nc"
    unlabeled_shard(_settings({}), {"index": list(range(48))}).to_netcdf(path, engine="h5netcdf")
    return path


def _config(out, unlabeled, **kw):
    return hy.PipelineConfig(labeled=str(LABELED), out=str(out), unlabeled=str(unlabeled), **{**TINY, **kw})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, unlabeled):
    """The tiny pipeline, with a spy on every training call (stage and data)."""
    out = tmp_path_factory.mktemp("run")
    calls = []
    real = _pipeline.train

    def spy(model, loss_fn, optimizer, data, **kw):
        calls.append({"stage": kw["settings"]["stage"], "data": {k: np.array(v) for k, v in data.items()},
                      "val": None if kw.get("val_data") is None else {k: np.array(v) for k, v in kw["val_data"].items()}})
        return real(model, loss_fn, optimizer, data, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_pipeline, "train", spy)
        summary = hy.run_pipeline(_config(out, unlabeled))
    return out, summary, calls


def _load(path):
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


# ----------------------------------------------------------------------------- end to end


def test_pipeline_outputs_agree_with_recomputation(tiny_run):
    out, summary, _ = tiny_run
    ev = _load(out / "evaluation.nc")
    assert ev.sizes == {"sample": 8, "anchor": 6} and list(ev.anchor.values) == list(hy.ANCHORS)
    assert ev.sample.values.tolist() == [4, 9, 14, 19, 24, 29, 34, 39]  # the fixed test split below 40
    np.testing.assert_allclose(ev.mae_surrogate, np.abs(ev.surrogate - ev.target).mean("sample"), rtol=1e-6)
    np.testing.assert_allclose(ev.mae_baseline, np.abs(ev.baseline - ev.target).mean("sample"), rtol=1e-12)
    np.testing.assert_allclose(ev.within_2_spread, (np.abs(ev.surrogate - ev.target) <= 2 * ev.spread).mean("sample"))
    np.testing.assert_allclose(ev.mae_table3, [0.0030, 0.0152, 0.0184, 0.0245, 0.0234, 0.0206])
    assert ev.surrogate.dtype == np.float32 and np.all(ev.spread > 0)
    for name in ("surrogate", "baseline", "mae_surrogate"):
        assert ev[name].attrs["units"] == _pipeline.UNITS
    assert not any(isinstance(v, (dict, bool)) for v in ev.attrs.values())
    with xr.open_dataset(LABELED, engine="h5netcdf") as lab:
        y = hy.paper_units(lab.anchors.sel(sample=ev.sample).values, lab.attrs["H_A"])
    np.testing.assert_allclose(ev.target, y, rtol=1e-12)
    assert summary["mae_surrogate"] == dict(zip(hy.ANCHORS, ev.mae_surrogate.values.tolist()))

    lc = _load(out / "learning_curve.nc")
    assert lc.n_train.values.tolist() == [16, 32]
    np.testing.assert_array_equal(lc.mae_surrogate.sel(n_train=32), ev.mae_surrogate)
    assert np.all(np.isfinite(lc.mae_baseline))


def test_vae_latent_chosen_by_held_out_loss_and_headers(tiny_run):
    out, summary, _ = tiny_run
    vh = read_header(out / "vae.eqx")
    cands = vh["latent_selection"]["candidates"]
    assert [c["latent"] for c in cands] == [2, 3]
    assert vh["latent"] == min(cands, key=lambda c: c["val_loss"])["latent"] == summary["latent"]
    assert vh["grid"] == [64, 64] and vh["unlabeled"]["n"] == 48
    assert vh["unlabeled"]["train_index_range"] == [0, 32] and vh["unlabeled"]["val_index_range"] == [32, 48]
    assert all(dtype == "float32" for _, _, dtype in vh["model_leaves"])
    ah = read_header(out / "anchors.eqx")
    assert ah["vae_sha256"] == file_sha256(out / "vae.eqx")
    assert ah["labeled"]["sha256"] == file_sha256(LABELED)
    assert ah["hyperparameters"]["n_members"] == 2 and ah["feature_set"] in TINY["feature_sets"]
    assert len(ah["feature_standardisation"]["x_mean"]) == vh["latent"] + len(hy.STATISTICS)
    assert all(dtype == "float32" for _, _, dtype in ah["model_leaves"])


def test_cv_epoch_choice_is_the_recorded_one(tiny_run):
    out, summary, _ = tiny_run
    cv = _load(out / "cv.nc")
    ah = read_header(out / "anchors.eqx")
    ref = cv.baseline_cv_mae.values
    weights = np.asarray(_pipeline.BLEND_WEIGHTS)
    for fs in TINY["feature_sets"]:
        run = "latent_stats" if fs == "latent_stats_blend" else fs
        hist = read_checkpoint_header(out / "regressor" / f"cv_{run}.ckpt")["history"]
        if fs == "latent_stats":
            mae, w = np.stack([hist[f"val_mae_{a}"] for a in hy.ANCHORS], axis=1), None
        else:  # the best network weight per epoch and anchor
            m = np.array([[hist[f"val_mae{j}_{a}"] for a in hy.ANCHORS] for j in range(len(weights))])  # (W, 6, E)
            mae, w = m.min(0).T, weights[m.argmin(0).T]
            np.testing.assert_allclose(m[-1].T, np.stack([hist[f"val_mae_{a}"] for a in hy.ANCHORS], axis=1), rtol=1e-6)
            if fs in ("latent_stats_residual", "stats_residual"):  # weight 0 is the ridge alone: the baseline's CV MAE
                np.testing.assert_allclose(m[0].T, np.broadcast_to(ref, mae.shape), rtol=2e-4)
        np.testing.assert_allclose(cv.cv_mae.sel(feature_set=fs), mae)
        epoch, score = _pipeline.choose_epoch(mae, ref, TINY["cv_smooth"])
        assert cv.chosen_epoch.sel(feature_set=fs) == epoch == ah["cv"][fs]["epoch"]
        np.testing.assert_allclose(cv.score.sel(feature_set=fs), score)
        np.testing.assert_allclose(ah["cv"][fs]["cv_mae"], mae[epoch - 1])
        np.testing.assert_allclose(cv.correction.sel(feature_set=fs), np.ones(6) if w is None else w[epoch - 1])
    chosen = min(TINY["feature_sets"], key=lambda f: ah["cv"][f]["score"])
    assert cv.attrs["chosen_feature_set"] == chosen == ah["feature_set"] == summary["feature_set"]
    assert ah["epochs"] == ah["cv"][chosen]["epoch"] == read_checkpoint_header(out / "regressor" / "final.ckpt")["epoch"]


def test_choose_epoch_smoothing_and_folds():
    e = np.arange(1, 201)
    curve = 1 + (e - 120.0) ** 2 / 1e4  # minimum 1 at epoch 120
    noisy = curve[:, None] * np.array([1.0, 2.0])
    noisy[39] -= [1.0, 2.0]  # a single dip to 0.64 at epoch 40
    epoch, score = _pipeline.choose_epoch(noisy, np.array([1.0, 2.0]), window=1)
    assert epoch == 40  # one noisy dip wins unsmoothed ...
    assert _pipeline.choose_epoch(noisy, np.array([1.0, 2.0]), window=21)[0] == 120  # ... not smoothed
    np.testing.assert_allclose(score[119], 1.0)
    assert _pipeline.choose_epoch([[0.5, 3.0], [0.8, 1.0]], [1.0, 1.0])[0] == 2
    f = _pipeline.fold_assignment(103, 4, 0)
    assert np.bincount(f).tolist() == [26, 26, 26, 25]
    np.testing.assert_array_equal(f, _pipeline.fold_assignment(103, 4, 0))
    with pytest.raises(ValueError, match="folds"):
        _pipeline.fold_assignment(3, 4, 0)


def test_cv_members_never_see_their_fold_and_val_loss_is_out_of_fold():
    ens = hy.Ensemble(3, 4, key=jax.random.key(0), shared_widths=(5,), head_widths=(2,))  # 2 folds x 2 members
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 3)).astype(np.float32)
    targets = rng.normal(size=(6, 2, 6)).astype(np.float32)
    fold = np.array([0, 0, 0, 1, 1, 1], np.int32)
    only0 = {"features": x[:3], "targets": targets[:3], "fold": fold[:3]}
    grads = eqx.filter_jit(eqx.filter_grad(lambda m, b: _pipeline._reg_train_loss(m, b)[0]))(ens, only0)
    w = grads.members.shared[0].weight  # (members, 5, 3)
    assert float(jnp.max(jnp.abs(w[:2]))) == 0.0 and float(jnp.max(jnp.abs(w[2:]))) > 0.0
    batch = {"features": x, "targets": targets, "fold": fold}
    _, aux = eqx.filter_jit(_pipeline._reg_val_loss)(ens, batch)
    members = [jax.tree_util.tree_map(lambda a, i=i: a[i] if eqx.is_array(a) else a, ens.members) for i in range(4)]
    p = np.stack([np.asarray(hy.predict_regressor(m, x)) for m in members])  # (members, n, 6)
    mean = np.where(fold[:, None] == 0, p[:2].mean(0), p[2:].mean(0))
    y = targets[np.arange(6), fold]
    err = np.abs(mean - y)
    np.testing.assert_allclose([aux[f"mae_{a}"] for a in hy.ANCHORS], err.mean(0), rtol=1e-5)
    # blends with the fold groups' linear predictions, and the residual reading of the targets
    linear = rng.normal(size=(6, 2, 6)).astype(np.float32)
    lin = linear[np.arange(6), fold]
    _, aux = eqx.filter_jit(_pipeline._val_blend_full)(ens, dict(batch, linear=linear))
    _, aux_r = eqx.filter_jit(_pipeline._val_blend_residual)(ens, batch)
    for j, w in enumerate(_pipeline.BLEND_WEIGHTS):
        np.testing.assert_allclose([aux[f"mae{j}_{a}"] for a in hy.ANCHORS],
                                   np.abs(lin + w * (mean - lin) - y).mean(0), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose([aux_r[f"mae{j}_{a}"] for a in hy.ANCHORS], np.abs(w * mean - y).mean(0),
                                   rtol=1e-5, atol=1e-7)


def test_cv_stops_early_and_a_stopped_run_is_not_retrained(tiny_run, tmp_path):
    out = tiny_run[0]
    cfg = _config(tmp_path, "unused", cv_max_epochs=60, cv_patience=2, reg_lr=0.03)  # overfits fast
    with xr.open_dataset(LABELED, engine="h5netcdf") as lab:
        kx, idx = lab.kx.values[:40], np.flatnonzero(~is_test(np.arange(40)))
        y = hy.paper_units(lab.anchors.values[idx], lab.attrs["H_A"])
    vae, _ = load_model(out / "vae.eqx", _pipeline._vae_factory)
    latent, stats = (a[idx] for a in hy.anchor_features(vae, kx))
    fold = _pipeline.fold_assignment(len(idx), 4, 0)
    ref = _pipeline._baseline_cv(stats.astype(float), y, fold)
    seen = []
    cv = _pipeline._cross_validate(cfg, "latent_stats_residual", latent, stats.astype(float), y, fold, ref,
                                   tmp_path / "cv.ckpt", lambda s, e, logs: seen.append(e), "cv")
    assert cv["epochs_run"] == len(seen) < 60 and cv["epochs_run"] - cv["epoch"] == 2
    assert read_checkpoint_header(tmp_path / "cv.ckpt")["epoch"] == cv["epochs_run"]
    again = _pipeline._cross_validate(cfg, "latent_stats_residual", latent, stats.astype(float), y, fold, ref,
                                      tmp_path / "cv.ckpt", lambda s, e, logs: seen.append(e), "cv")
    assert len(seen) == cv["epochs_run"] and again["epoch"] == cv["epoch"]  # nothing retrained
    np.testing.assert_array_equal(again["mae"], cv["mae"])


def test_residual_model_falls_back_to_the_linear_part():
    rng = np.random.default_rng(0)
    stats = rng.normal(size=(50, len(hy.STATISTICS)))
    y = stats[:, :6] @ np.diag([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]) + 0.5
    base = hy.fit_baseline(stats, y, alphas=[1e-3])
    m = hy.AnchorModel(3, "latent_stats_residual", 2, key=jax.random.key(0), shared_widths=(4,), head_widths=(2,),
                       correction=[1, 0, 1, 0, 1, 0], **_pipeline.linear_from_baseline(base))
    latent = rng.normal(size=(50, 3))
    mean, spread = jax.vmap(m)(latent, stats)
    np.testing.assert_allclose(np.asarray(mean)[:, 1::2], base.predict(stats)[:, 1::2], rtol=1e-4, atol=1e-4)
    ens_mean, _ = jax.vmap(m.ensemble)(np.concatenate([latent, stats], 1))
    np.testing.assert_allclose(np.asarray(mean)[:, ::2], base.predict(stats)[:, ::2] + np.asarray(ens_mean)[:, ::2],
                               rtol=1e-4, atol=1e-4)
    blend = hy.AnchorModel(3, "latent_stats_blend", 2, key=jax.random.key(0), shared_widths=(4,), head_widths=(2,),
                           correction=np.full(6, 0.25), **_pipeline.linear_from_baseline(base))
    bmean, _ = jax.vmap(blend)(latent, stats)
    np.testing.assert_allclose(bmean, 0.75 * base.predict(stats) + 0.25 * np.asarray(ens_mean), rtol=1e-4, atol=1e-4)
    # statistics alone: the ensemble reads the 32 statistics, not the latent code
    sr = hy.AnchorModel(3, "stats_residual", 2, key=jax.random.key(1), shared_widths=(4,), head_widths=(2,),
                        correction=np.full(6, 0.5), **_pipeline.linear_from_baseline(base))
    assert sr.ensemble.members.in_features == stats.shape[1]
    smean, _ = jax.vmap(sr)(latent, stats)
    s_ens, _ = jax.vmap(sr.ensemble)(stats)
    np.testing.assert_allclose(smean, base.predict(stats) + 0.5 * np.asarray(s_ens), rtol=1e-4, atol=1e-4)
    smean2, _ = jax.vmap(sr)(latent + 1.0, stats)  # the latent code does not matter
    np.testing.assert_allclose(smean2, smean)


def test_test_split_never_reaches_a_trainer(tiny_run, unlabeled):
    out, _, calls = tiny_run
    ah = read_header(out / "anchors.eqx")
    train, test = np.array(ah["labeled"]["train_samples"]), np.array(ah["labeled"]["test_samples"])
    assert not np.any(is_test(train)) and np.all(is_test(test))
    assert sorted(train.tolist() + test.tolist()) == list(range(40))
    # every feature row given to a regressor trainer is a training structure's row
    with xr.open_dataset(LABELED, engine="h5netcdf") as lab:
        kx = lab.kx.values[:40]
    vae, _ = load_model(out / "vae.eqx", _pipeline._vae_factory)
    latent, stats = hy.anchor_features(vae, kx)
    rows = {"latent_stats": np.concatenate([latent, stats], 1)}
    test_rows = rows["latent_stats"][is_test(np.arange(40))]
    reg_calls = [c for c in calls if c["stage"] in ("cv", "final")]
    assert len(reg_calls) == 3 + 1 + 2  # 3 CV runs (the blend reads latent_stats's) + final; CV + final for the learning curve
    assert sorted(c["data"]["features"].shape[1] for c in reg_calls if c["stage"] == "cv")[0] == stats.shape[1]
    for c in reg_calls:
        for d in (c["data"], c["val"]) if c["val"] is not None else (c["data"],):
            f = d["features"]
            assert f.shape[1] in (test_rows.shape[1], stats.shape[1])
            held_out = test_rows[:, -f.shape[1]:]  # the statistics are the last columns
            assert not np.any(np.all(np.isclose(f[:, None, :], held_out[None], rtol=0, atol=1e-5), axis=2))
    # the VAE sees only unlabeled structures (other seeds than the labeled ones)
    with xr.open_dataset(unlabeled, engine="h5netcdf") as ds:
        unl = ds.kx.values
    for c in (c for c in calls if c["stage"].startswith("vae")):
        assert all(any(np.array_equal(s, u) for u in unl) for s in c["data"]["kx"])
        assert not any(np.array_equal(s, t) for s in c["data"]["kx"] for t in kx)


def test_resume_after_interruption_gives_the_same_numbers(tiny_run, unlabeled, tmp_path):
    ref = _load(tiny_run[0] / "evaluation.nc")
    cfg = _config(tmp_path / "run", unlabeled)
    stage = "cv:latent_stats_residual"

    def stop(s, epoch, logs):
        if s == stage and epoch == 2:
            raise KeyboardInterrupt("test interruption")

    with pytest.raises(KeyboardInterrupt):
        hy.run_pipeline(cfg, callback=stop)
    assert read_checkpoint_header(tmp_path / "run" / "regressor" / f"cv_{'latent_stats_residual'}.ckpt")["epoch"] == 2
    with pytest.raises(ValueError, match="resume"):
        hy.run_pipeline(cfg)
    with pytest.raises(ValueError, match="members"):
        hy.run_pipeline(_config(tmp_path / "run", unlabeled, members=3), resume=True)
    seen = []
    hy.run_pipeline(cfg, resume=True, callback=lambda s, e, logs: seen.append((s, e)))
    assert [e for s, e in seen if s == stage] == [3]  # epochs 1-2 came from the checkpoint
    assert not any(s.startswith("vae") or s == "cv:latent_stats" for s, _ in seen)
    ev = _load(tmp_path / "run" / "evaluation.nc")
    for name in ("surrogate", "spread", "baseline", "mae_surrogate"):
        np.testing.assert_array_equal(ev[name], ref[name])


def test_cli_retrains_the_regressor_on_a_reused_vae(tiny_run, tmp_path, capsys):
    out = tmp_path / "reuse"
    argv = ["hysteresis", "--labeled", str(LABELED), "--out", str(out), "--reuse-vae", str(tiny_run[0]),
            "--labeled-limit", "40", "--feature-sets", "latent_stats_residual", "--members", "2",
            "--shared-widths", "8", "--head-widths", "2", "--cv-max-epochs", "3", "--cv-smooth", "1",
            "--slice-size", "4", "--learning-curve", "--no-progress"]
    assert train_cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["vae_sha256"] == file_sha256(tiny_run[0] / "vae.eqx") == file_sha256(out / "vae.eqx")
    assert summary["feature_set"] == "latent_stats_residual" and not (out / "learning_curve.nc").exists()
    assert not (out / "data").exists()  # no unlabeled structures needed
    ref = _load(tiny_run[0] / "cv.nc")
    np.testing.assert_array_equal(_load(out / "cv.nc").cv_mae.sel(feature_set="latent_stats_residual"),
                                  ref.cv_mae.sel(feature_set="latent_stats_residual"))


def test_cli_continues_a_vae_and_stops_after_it(tiny_run, unlabeled, tmp_path, capsys, monkeypatch):
    out = tmp_path / "cont"
    started = []
    real = _pipeline.train
    monkeypatch.setattr(_pipeline, "train", lambda model, *a, **kw: (started.append(model), real(model, *a, **kw))[1])
    argv = ["hysteresis", "--labeled", str(LABELED), "--out", str(out), "--unlabeled", str(unlabeled),
            "--vae-init", str(tiny_run[0] / "vae.eqx"), "--vae-epochs", "2", "--vae-only", "--vae-val", "16",
            "--vae-batch", "16", "--vae-beta", "0.25", "--labeled-limit", "40", "--no-progress"]
    assert train_cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    head = read_header(out / "vae.eqx")
    # the KL weight reaches the loss: recorded, and the history's loss is mse + 0.25 kl
    assert head["beta"] == 0.25 and "beta = 0.25" in head["loss"]
    h = head["history"]
    np.testing.assert_allclose(h["val_loss"], np.asarray(h["val_mse"]) * 64 * 64 + 0.25 * np.asarray(h["val_kl"]),
                               rtol=1e-4)
    init_model, init = load_model(tiny_run[0] / "vae.eqx", _shipped._vae_factory)
    # one training call (no short runs), starting from the continued VAE's weights
    assert len(started) == 1
    for a, b in zip(jax.tree_util.tree_leaves(eqx.filter(started[0], eqx.is_array)),
                    jax.tree_util.tree_leaves(eqx.filter(init_model, eqx.is_array))):
        np.testing.assert_array_equal(a, b)
    assert head["continued_from"]["sha256"] == file_sha256(tiny_run[0] / "vae.eqx")
    assert head["hyperparameters"] == init["hyperparameters"] and head["optimizer"]["lr"] == init["optimizer"]["lr"]
    assert head["epochs"]["final"] == 2 and len(head["history"]["val_loss"]) == 2
    assert head["epochs"]["select"] == 0 and head["epochs"]["select_structures"] == 0
    assert summary["vae_sha256"] == file_sha256(out / "vae.eqx") != file_sha256(tiny_run[0] / "vae.eqx")
    assert not (out / "anchors.eqx").exists()  # stopped after the VAE


def test_config_errors_name_the_setting(tmp_path):
    with pytest.raises(ValueError, match="vae_init and reuse_vae exclude each other"):
        hy.PipelineConfig(labeled="a.nc", out=str(tmp_path), vae_init="a.eqx", reuse_vae="b.eqx")
    with pytest.raises(ValueError, match="vae_beta must be > 0"):
        hy.PipelineConfig(labeled="a.nc", out=str(tmp_path), vae_beta=0.0)
    with pytest.raises(ValueError, match="vae_epochs must be >= 1 with vae_init"):
        hy.PipelineConfig(labeled="a.nc", out=str(tmp_path), vae_init="a.eqx", vae_epochs=0)
    with pytest.raises(ValueError, match="cv_smooth"):
        hy.PipelineConfig(labeled="a.nc", out=str(tmp_path), cv_smooth=4)
    with pytest.raises(ValueError, match="feature_sets"):
        hy.PipelineConfig(labeled="a.nc", out=str(tmp_path), feature_sets=("pixels",))
    with pytest.raises(ValueError, match="members"):
        hy.PipelineConfig(labeled="a.nc", out=str(tmp_path), members=0)
    with pytest.raises(FileNotFoundError, match="labeled"):
        hy.run_pipeline(hy.PipelineConfig(labeled=str(tmp_path / "missing.nc"), out=str(tmp_path / "o")))


# ----------------------------------------------------------------------------- shipped surrogate

# The weights are trained by the pipeline above and shipped with `--ship`; until they are,
# these tests are skipped with this reason (the issue that ships them stays open).
needs_weights = pytest.mark.skipif(
    not all((SHIPPED / name).exists() for name in ("vae.eqx", "anchors.eqx", "test_slice.nc")),
    reason="hysteresis surrogate weights are not trained and shipped yet",
)


@pytest.fixture(scope="module")
def test_slice():
    return _load(SHIPPED / "test_slice.nc")


@needs_weights
def test_shipped_files_are_pinned_small_float32():
    total = 0
    for name, sha in _shipped.SHIPPED_SHA256.items():
        assert sha is not None and file_sha256(SHIPPED / name) == sha
        total += (SHIPPED / name).stat().st_size
    assert total <= 10 * 2**20
    for name in ("vae.eqx", "anchors.eqx"):
        h = read_header(SHIPPED / name)
        assert h["grid"] == [64, 64]
        assert all(dtype == "float32" for _, _, dtype in h["model_leaves"])
    ah = read_header(SHIPPED / "anchors.eqx")
    assert ah["hyperparameters"]["n_members"] >= 5
    assert not np.any(is_test(np.array(ah["labeled"]["train_samples"])))


@needs_weights
def test_predict_on_the_shipped_slice_matches_the_recorded_mae(test_slice):
    header = read_header(SHIPPED / "anchors.eqx")
    assert test_slice.sample.values.tolist() == header["test_slice"]["samples"]
    assert np.all(is_test(test_slice.sample.values)) and test_slice.sizes["sample"] == 20
    pred, spread = hy.predict(test_slice.kx.values, return_spread=True)
    assert pred.shape == spread.shape == (20, 6) and pred.dtype == np.float32 and np.all(spread > 0)
    mae = np.abs(pred - test_slice.anchors.values).mean(0)
    np.testing.assert_allclose(mae, header["test_slice"]["mae"], rtol=1e-5, atol=1e-6)
    one = hy.predict(test_slice.kx.values[3])
    assert one.shape == (6,)
    np.testing.assert_allclose(one, pred[3], rtol=1e-5, atol=1e-6)


@needs_weights
def test_encode_decode_shipped(test_slice):
    latent = read_header(SHIPPED / "vae.eqx")["latent"]
    z = hy.encode(test_slice.kx.values[:3])
    mean, logvar = hy.encode(test_slice.kx.values[0], return_logvar=True)
    assert z.shape == (3, latent) and mean.shape == logvar.shape == (latent,)
    np.testing.assert_allclose(mean, z[0], rtol=1e-5, atol=1e-6)
    x = hy.decode(z)
    assert x.shape == (3, 64, 64) and hy.decode(z[0]).shape == (64, 64)
    assert float(np.max(np.abs(x))) <= 1.0
    # the codes carry the structure: over the slice, reconstructions are nearer their own
    # structure than chance would put them (1 in 20), and better than the all-zero map
    kx = test_slice.kx.values
    rec = hy.decode(hy.encode(kx))
    d = ((rec[:, None] - kx[None]) ** 2).mean((2, 3))
    assert np.mean(np.argmin(d, axis=1) == np.arange(len(kx))) >= 0.25
    assert np.mean(np.diag(d)) < 0.75 * np.mean(kx**2)


@needs_weights
def test_predict_bad_input_names_the_argument(test_slice):
    kx = test_slice.kx.values[:2]
    with pytest.raises(ValueError, match=r"kx must have shape \(n, 64, 64\)"):
        hy.predict(kx[:, :32, :32])
    with pytest.raises(ValueError, match="kx must have shape"):
        hy.predict(np.zeros((0, 64, 64)))
    with pytest.raises(ValueError, match="kx must be finite"):
        hy.predict(np.where(np.eye(64, dtype=bool), np.nan, kx))
    with pytest.raises(ValueError, match=r"kx .*\[-1, 1\]"):
        hy.predict(kx * 1.5)
    with pytest.raises(ValueError, match="kx must be a real array"):
        hy.predict(np.full((64, 64), "a"))
    with pytest.raises(ValueError, match="z must have shape"):
        hy.decode(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="z must be finite"):
        hy.decode(np.full(read_header(SHIPPED / "vae.eqx")["latent"], np.inf))
    with pytest.raises(ValueError, match="weights must be None"):
        hy.predict(kx, weights=SHIPPED / "vae.eqx")


@needs_weights
def test_corrupt_or_mismatched_weights_are_refused(tmp_path, test_slice):
    kx = test_slice.kx.values[:2]
    bad = tmp_path / "corrupt"
    shutil.copytree(SHIPPED, bad)
    raw = bytearray((bad / "anchors.eqx").read_bytes())
    raw[-10] ^= 0xFF
    (bad / "anchors.eqx").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="weights: .*corrupt"):
        hy.predict(kx, weights=bad)
    # weights for a 16 x 16 grid
    small = tmp_path / "grid16"
    small.mkdir()
    vae = hy.VAE(grid=16, latent=2, channels=(2,), dense=4, key=jax.random.key(0))
    vae_sha = save_model(small / "vae.eqx", vae, {"hyperparameters": vae.hyperparameters, "grid": [16, 16], "latent": 2})
    m = hy.AnchorModel(2, "latent", 1, key=jax.random.key(1), shared_widths=(4,), head_widths=(2,))
    save_model(small / "anchors.eqx", m, {"hyperparameters": m.hyperparameters, "grid": [16, 16], "vae_sha256": vae_sha,
                                          "anchors": list(hy.ANCHORS), "statistics": list(hy.STATISTICS)})
    with pytest.raises(ValueError, match=r"kx must have shape \(n, 16, 16\)"):
        hy.predict(kx, weights=small)
    assert hy.predict(np.zeros((16, 16)), weights=small).shape == (6,)
    # an anchor model trained on another VAE
    other = tmp_path / "other"
    shutil.copytree(small, other)
    save_model(other / "vae.eqx", hy.VAE(grid=16, latent=2, channels=(2,), dense=4, key=jax.random.key(5)),
               {"hyperparameters": vae.hyperparameters, "grid": [16, 16], "latent": 2})
    with pytest.raises(ValueError, match="weights: .*another VAE"):
        hy.predict(np.zeros((16, 16)), weights=other)
    # ... unless it reads the image statistics alone: then its VAE may be retrained, and the
    # anchors do not change with it
    pair = []
    for src in (small, other):
        folder = tmp_path / f"{src.name}-stats"
        shutil.copytree(src, folder)
        pair.append(folder)
        m = hy.AnchorModel(2, "stats_residual", 1, key=jax.random.key(1), shared_widths=(4,), head_widths=(2,))
        save_model(folder / "anchors.eqx", m, {"hyperparameters": m.hyperparameters, "grid": [16, 16],
                                                "vae_sha256": vae_sha, "anchors": list(hy.ANCHORS),
                                                "statistics": list(hy.STATISTICS)})
    kx16 = np.cos(np.linspace(0, 3, 256)).reshape(16, 16)
    np.testing.assert_array_equal(hy.predict(kx16, weights=pair[1]), hy.predict(kx16, weights=pair[0]))
