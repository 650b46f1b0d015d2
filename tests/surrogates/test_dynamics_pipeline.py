"""The dynamics training pipeline end to end on a tiny dataset (16 x 4 cells, 10 fields,
0.15 ns): splits, stages kept on rerun, evaluation against the solver's own numbers."""

import json

import numpy as np
import pytest
import xarray as xr

from invdesign.micromag._sp4 import SP4_FIELDS_T
from invdesign_surrogates import train as train_cli
from invdesign_surrogates._weights import read_header
from invdesign_surrogates.data import _shards, dynamics
from invdesign_surrogates.dynamics._pipeline import split_of

# tiny models and few steps: compile-bound, so XLA's cheaper optimisation level (tests/conftest.py)
FULL_XLA_OPTIMIZATION = False

TINY = ["--channels", "4", "8", "--latent", "4", "--ae-epochs", "2", "--ae-batch", "8",
        "--stepper-epochs", "2", "--stepper-batch", "16", "--pca-modes", "4", "--no-progress"]  # one stepper shape for both


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from dask.distributed import Client, LocalCluster

    root = tmp_path_factory.mktemp("dyn")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        dynamics.generate(root / "data", grid=[16, 4, 1], n_fields=10, per_shard=5, t_end=1.5e-10, dt_out=1e-11,
                          client=client, progress=False)
    argv = ["dynamics", "--data", str(root / "data"), "--out", str(root / "run")] + TINY
    assert train_cli.main(argv) == 0
    return root, argv


def test_split_is_fixed_by_the_field_index():
    s = split_of(np.arange(20))
    assert list(np.flatnonzero(s == "test")) == [9, 19] and list(np.flatnonzero(s == "val")) == [8, 18]


def test_pipeline_stages_and_evaluation(run, capsys):
    root, argv = run
    out = root / "run"
    ae = read_header(out / "ae.eqx")
    assert ae["train_fields"] == list(range(8)) and ae["val_fields"] == [8]
    assert ae["hyperparameters"]["channels"] == [4, 8] and ae["grid"] == [16, 4]
    data = _shards.open_shards(root / "data", "sample")
    with xr.open_dataset(out / "evaluation.nc", engine="h5netcdf") as ev:
        ev = ev.load()
    assert list(ev.case.values) == ["field 9", "SP4 field 1", "SP4 field 2"]
    # the solver's <m>(t) of the test field is the dataset's own average (float32 states)
    np.testing.assert_allclose(ev.m_solver.values[0], data.m_avg.values[9], atol=2e-6)
    # the SP4 trajectories were integrated with the SP4 fields, from the stored s-state
    with xr.open_dataset(out / "sp4.nc", engine="h5netcdf") as sp4:
        np.testing.assert_allclose(sp4.b_ext.values, [SP4_FIELDS_T[1], SP4_FIELDS_T[2]], rtol=1e-12)
        np.testing.assert_allclose(sp4.m_avg.values[:, 0], np.broadcast_to(data.m_avg.values[0, 0], (2, 3)), atol=1e-12)
    # the rollouts start from the decoded solver states: identical to the reconstruction there
    np.testing.assert_array_equal(ev.m_ae_rollout.values[:, :5], ev.m_ae_recon.values[:, :5])
    for k in ("ae_recon", "ae_rollout", "pca_recon", "pca_rollout", "lookup"):
        err = np.linalg.norm(ev[f"m_{k}"].values - ev.m_solver.values, axis=-1).max(axis=1)
        np.testing.assert_allclose(ev[f"max_err_{k}"].values, err, rtol=1e-12)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_fields"] == 1 and np.isfinite(list(summary.values())).all()
    # a rerun keeps every stage (nothing retrained) and gives the same summary
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.eqx")}
    capsys.readouterr()
    assert train_cli.main(argv) == 0
    assert json.loads(capsys.readouterr().out) == summary
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.eqx")} == stamps
    # another setting in the same folder is refused
    with pytest.raises(ValueError, match="other settings"):
        train_cli.main(argv[:-1] + ["--seed", "3", "--no-progress"])


def test_rollout_face_matches_the_pipeline_and_checks_its_input(run, tmp_path):
    import shutil
    import warnings

    from invdesign_surrogates.dynamics import ExtrapolationWarning, rollout

    root, _ = run
    out = root / "run"
    data = _shards.open_shards(root / "data", "sample")
    states = data.m.values[9, :, :, :, 0, :]
    field = data.b_ext.values[9]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)  # a training-range field: no warning
        res = rollout(field, m0=states[1:5], t_end=1.5e-10, weights=out)
    with xr.open_dataset(out / "evaluation.nc", engine="h5netcdf") as ev:
        ref = ev.m_ae_rollout.values[0, 1:]
    np.testing.assert_allclose(res.m_avg.values, ref, atol=1e-5)
    assert res.time.values[0] == pytest.approx(1e-11) and res.time.values[-1] == pytest.approx(1.5e-10)
    assert res.attrs["extrapolation"] == 0
    # m0=None: the start states come from the solver (s-state relaxed on the trained grid)
    auto = rollout(field, t_end=1e-10, weights=out, states=True)
    assert auto.m.shape == (10, 16, 4, 3)
    np.testing.assert_allclose(auto.m_avg.values[:4], res.m_avg.values[:4], atol=1e-4)
    # outside the trained range: a warning, recorded in the result
    with pytest.warns(ExtrapolationWarning, match="outside the trained range"):
        far = rollout([0.03, 0.0], m0=states[1:5], t_end=1e-10, weights=out)
    assert far.attrs["extrapolation"] == 1
    # bad input names the argument
    with pytest.raises(ValueError, match="m0 must hold 4 states"):
        rollout(field, m0=states[1:4], weights=out)
    with pytest.raises(ValueError, match="m0.*trained grid"):
        rollout(field, m0=np.zeros((4, 8, 4, 3)), weights=out)
    with pytest.raises(ValueError, match="field must be finite"):
        rollout([np.nan, 0.0], m0=states[1:5], weights=out)
    with pytest.raises(ValueError, match="t_end"):
        rollout(field, m0=states[1:5], t_end=1.234e-10, weights=out)
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    raw = (bad / "stepper.eqx").read_bytes()
    (bad / "stepper.eqx").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="stepper.eqx"):
        rollout(field, m0=states[1:5], weights=bad)
    # the shipped weights are for the 256 x 64 grid: these 16 x 4 states are refused by name
    with pytest.raises(ValueError, match=r"m0 must hold 4 states of shape \(256, 64, 3\)"):
        rollout(field, m0=states[1:5])


def test_switching_model_is_the_fitted_start_rollout(run):
    import jax

    from invdesign_surrogates.dynamics import SwitchingModel

    root, _ = run
    out = root / "run"
    head = read_header(out / "start.eqx")
    assert head["hyperparameters"] == {"n_past": 4, "latent": 4}
    assert np.isfinite(head["val_rms_error"]) and head["code_std"] > 0
    data = _shards.open_shards(root / "data", "sample")
    field = data.b_ext.values[9, :2]
    model = SwitchingModel(out)
    t = model.times(1.5e-10)
    assert len(t) == 15 and t[0] == pytest.approx(1e-11)
    m = np.asarray(jax.jit(model.m_avg, static_argnums=1)(field, 1.5e-10))
    with xr.open_dataset(out / "evaluation.nc", engine="h5netcdf") as ev:
        ref = ev.m_fitstart_rollout.values[0, 1:]  # the pipeline's own numbers (NumPy path)
        err = np.linalg.norm(ev.m_fitstart_rollout.values - ev.m_solver.values, axis=-1).max(axis=1)
        np.testing.assert_allclose(ev.max_err_fitstart_rollout.values, err, rtol=1e-12)
    np.testing.assert_allclose(m, ref, atol=1e-5)
    # one state decoded at t: the last row of the curve
    np.testing.assert_allclose(model.m_avg_at(field, 1.5e-10), m[-1], atol=1e-6)
    # differentiable in the field: the derivative along a direction against central differences
    fx = jax.jit(lambda b: model.m_avg_at(b, 1.5e-10)[0])
    g = np.asarray(jax.grad(fx)(jax.numpy.asarray(field, dtype=jax.numpy.float32)))
    d = np.array([1.0, 0.5]) / np.hypot(1.0, 0.5)
    h = 2e-4
    fd = (float(fx(field + h * d)) - float(fx(field - h * d))) / (2 * h)
    assert np.all(np.isfinite(g)) and abs(g @ d) > 1e-3
    assert g @ d == pytest.approx(fd, rel=0.05, abs=0.02 * abs(fd) + 1e-3)
    # the lowest <m_x> with one decoder pass in its gradient: value and derivative equal the
    # plain minimum over the decoded curve
    lo, curve = model.m_avg_min(field, 1.5e-10)
    np.testing.assert_allclose(curve, m, atol=1e-6)
    assert float(lo) == pytest.approx(float(m[:, 0].min()), abs=1e-6)
    g_min = np.asarray(jax.grad(lambda b: model.m_avg_min(b, 1.5e-10)[0])(jax.numpy.asarray(field, jax.numpy.float32)))
    g_ref = np.asarray(jax.grad(lambda b: model.m_avg(b, 1.5e-10)[:, 0].min())(jax.numpy.asarray(field, jax.numpy.float32)))
    np.testing.assert_allclose(g_min, g_ref, rtol=1e-4, atol=1e-6)
    # a population in one vmap equals one field at a time
    fields = np.stack([field, field * 1.1])
    many = np.asarray(jax.vmap(lambda b: model.m_avg_at(b, 1.5e-10))(fields))
    np.testing.assert_allclose(many[1], model.m_avg_at(fields[1], 1.5e-10), atol=1e-6)


def test_switching_problems_search_and_verify(run, tmp_path, monkeypatch, check_png, capsys):
    from invdesign import cli
    from invdesign.optimize import genetic_search
    from invdesign_problems.switching import (field_of, pareto_problem, plot_design, solver_curve,
                                              threshold_problem, verify_designs)

    root, _ = run
    out = root / "run"
    data = _shards.open_shards(root / "data", "sample")
    # the verification's solver curve is the data pipeline's own trajectory for that field
    b9 = data.b_ext.values[9, :2]
    np.testing.assert_allclose(solver_curve(b9, 1.5e-10, (16, 4)), data.m_avg.values[9, 1:], atol=1e-6)
    # field_of: SP4 field 1 is 25 mT at 10 deg from -x towards +y
    np.testing.assert_allclose(field_of(25.0, 10.0), [-0.025 * np.cos(np.radians(10)), 0.025 * np.sin(np.radians(10))])

    front = genetic_search(pareto_problem(t_end=1.5e-10, threshold=0.5, weights=out), algorithm="nsga2",
                           pop_size=8, n_gen=2, seed=0, progress=False)
    assert "t_switch" in front and front["t_switch"].attrs["units"] == "ns"
    assert np.all((front["field_mT"].values >= 22.0) & (front["field_mT"].values <= 41.0))
    front = verify_designs(front, 2, weights=out)
    assert front.sizes["verified"] == 2 and front["t_switch_verified"].shape == (2,)
    # the verified points span the front: its weakest and its strongest feasible field
    ok = front["not_reached"].values <= 0
    fields = front["field_mT"].values[ok if ok.any() else slice(None)]
    np.testing.assert_allclose(np.sort(front["field_mT"].values[front["verified_index"].values]),
                               [fields.min(), fields.max()])
    check_png(plot_design(front, tmp_path / "front.png"))
    with pytest.raises(ValueError, match="t_target"):
        threshold_problem(t_target=1.234e-10, weights=out)
    with pytest.raises(ValueError, match="threshold"):
        threshold_problem(threshold=-1.5, weights=out)

    # the command line (Adam through the rollout, then the solver) on a training run's weights
    monkeypatch.setenv("INVDESIGN_DYNAMICS_WEIGHTS", str(out))
    assert cli.main(["run", "switching", "--quick", "--no-progress", "--out", str(tmp_path / "cli")]) == 0
    with xr.open_dataset(next((tmp_path / "cli").glob("*.nc")), engine="h5netcdf") as ds:
        ds = ds.load()
    assert ds.attrs["algorithm"] == "gradient-adam" and np.all(np.isfinite(ds["mx_target"].values))
    assert ds.sizes["verified"] == 1 and ds["m_verified"].shape == (1, 15, 3)  # 0.01 ... 0.15 ns
    # the verified curve is the solver's for the final design's field
    b = np.asarray(field_of(float(ds["field_mT"][-1]), float(ds["angle_deg"][-1])))
    np.testing.assert_allclose(ds["m_verified"].values[0], solver_curve(b, 1.5e-10, (16, 4)), atol=1e-12)
    assert float(ds["mx_target_verified"][0]) == pytest.approx(float(ds["m_verified"].values[0, -1, 0]))
    assert float(ds["mx_min_verified"][0]) == pytest.approx(float(ds["m_verified"].values[0, :, 0].min()))
    # the predicted curve ends at the surrogate's <m_x>(t_target) of the search, its minimum is mx_min
    assert float(ds["m_predicted"].values[0, -1, 0]) == pytest.approx(float(ds["mx_target"][-1]), abs=1e-5)
    assert float(ds["m_predicted"].values[0, :, 0].min()) == pytest.approx(float(ds["mx_min"][-1]), abs=1e-5)
    check_png(next((tmp_path / "cli").glob("*-design.png")))
    # --refine: two more solver runs, each the solver's own curve; the answer is a field the
    # solver switched, or NaN
    assert cli.main(["run", "switching", "--quick", "--no-progress", "--refine", "2", "--out", str(tmp_path / "ref")]) == 0
    with xr.open_dataset(next((tmp_path / "ref").glob("*.nc")), engine="h5netcdf") as ref:
        ref = ref.load()
    assert 1 <= ref.sizes["refine"] <= 3 and ref.attrs["refine_runs"] == ref.sizes["refine"] - 1
    k = ref.sizes["refine"] - 1
    b = np.asarray(field_of(float(ref["refine_field_mT"][k]), float(ref["refine_angle_deg"][k])))
    np.testing.assert_allclose(ref["refine_m_verified"].values[k], solver_curve(b, 1.5e-10, (16, 4)), atol=1e-12)
    np.testing.assert_allclose(ref["refine_mx_verified"], ref["refine_m_verified"].values[:, :, 0].min(-1))
    ok = ref["refine_mx_verified"].values <= -0.9
    if ok.any():
        assert float(ref["field_mT_refined"]) == ref["refine_field_mT"].values[ok].min()
    else:
        assert np.isnan(float(ref["field_mT_refined"]))
    check_png(next((tmp_path / "ref").glob("*-design.png")))
    assert "solver-checked refinement" in capsys.readouterr().out
    # --refine on a problem without one, and a negative count: clear errors
    assert cli.main(["run", "switching-pareto", "--quick", "--refine", "1", "--out", str(tmp_path / "x")]) == 2
    assert "--refine: switching-pareto has no solver-checked refinement" in capsys.readouterr().err
    assert cli.main(["run", "switching", "--quick", "--refine", "-1", "--out", str(tmp_path / "x")]) == 2
    assert "--refine must be >= 0" in capsys.readouterr().err
    # missing weights: a clear error naming the file, no traceback
    monkeypatch.setenv("INVDESIGN_DYNAMICS_WEIGHTS", str(tmp_path / "nowhere"))
    assert cli.main(["run", "switching", "--quick", "--no-progress", "--out", str(tmp_path / "cli2")]) == 2
    assert "nowhere/ae.eqx' does not exist" in capsys.readouterr().err


def test_warm_started_autoencoder_on_every_other_state(run, tmp_path):
    import shutil

    import jax

    from invdesign_surrogates._weights import file_sha256, load_model
    from invdesign_surrogates.dynamics import Autoencoder

    root, argv = run
    src = root / "run" / "ae.eqx"
    warm = tmp_path / "warm"
    warm.mkdir()
    shutil.copy(root / "run" / "sp4.nc", warm / "sp4.nc")  # the SP4 solver runs are the same
    args = ["--out", str(warm), "--ae-init", str(src), "--ae-every", "2", "--ae-lr", "1e-12", "--ae-epochs", "1"]
    assert train_cli.main(argv[:3] + args + _tiny_without_ae()) == 0
    head = read_header(warm / "ae.eqx")
    assert head["init_sha256"] == file_sha256(src) and head["ae_every"] == 2
    # 8 training fields of 16 states (0 ... 0.15 ns): every other one is 8 per field
    assert head["train_states"] == 8 * 8
    # with a vanishing learning rate the trained weights are the starting ones
    load = lambda p: load_model(p, lambda h: Autoencoder(**h["hyperparameters"], key=jax.random.key(0)))[0]  # noqa: E731
    a, b = (jax.tree_util.tree_leaves(load(p)) for p in (src, warm / "ae.eqx"))
    for x, y in zip(a, b):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=0, atol=1e-9)
    # another architecture, or a missing file, is refused by name
    other = ["--out", str(tmp_path / "other"), "--ae-init", str(src), "--latent", "3"]
    with pytest.raises(ValueError, match="ae_init"):
        train_cli.main(argv[:3] + _tiny_without_ae(latent=False) + other)
    with pytest.raises(FileNotFoundError, match="ae_init"):
        train_cli.main(argv[:3] + _tiny_without_ae() + ["--out", str(tmp_path / "x"), "--ae-init", str(tmp_path / "no.eqx")])
    with pytest.raises(ValueError, match="ae_every"):
        train_cli.main(argv[:3] + _tiny_without_ae() + ["--out", str(tmp_path / "y"), "--ae-every", "0"])


def _tiny_without_ae(latent=True):
    """TINY without its autoencoder epochs (and latent size) for runs that set them."""
    drop = {"--ae-epochs"} | (set() if latent else {"--latent"})
    out, skip = [], False
    for a in TINY:
        if skip:
            skip = False
            continue
        if a in drop:
            skip = True
            continue
        out.append(a)
    return out
