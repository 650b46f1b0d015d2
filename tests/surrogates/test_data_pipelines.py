"""Dask shard pipelines: results, resume after interruption, corrupt shards, wrong settings."""

import os

import numpy as np
import pytest
import xarray as xr

from invdesign.micromag import sp4_initial_state, sp4_system
from invdesign_surrogates.data import _shards, dynamics, hysteresis

# small grids and few steps: compile-bound, so XLA's cheaper optimisation level (tests/conftest.py)
FULL_XLA_OPTIMIZATION = False


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as c:
            yield c


def _mtimes(directory):
    return {p.name: p.stat().st_mtime_ns for p in directory.glob("*.nc")}


def test_hysteresis_labeled_shards_resume_and_recover_from_corruption(tmp_path, client):
    kw = dict(grid=[16, 16], n_grains_range=[2, 6], n_unlabeled=30, unlabeled_per_shard=10,
              n_labeled=3, labeled_per_shard=1, step=0.05, progress=False, client=client)
    res = hysteresis.generate(tmp_path, **kw)
    lab, unl = res["labeled"], res["unlabeled"]
    assert unl.sizes["sample"] == 30 and lab.sizes["sample"] == 3
    # structures are reproducible from their seeds and parameters
    from invdesign.micromag import voronoi_grains

    g = voronoi_grains((16, 16), (2e-9, 2e-9), int(unl.n_grains[4]), float(unl.theta[4]), seed=int(unl.structure_seed[4]))
    assert np.array_equal(g.grain_id, unl.grain_id[4].values)
    assert np.allclose(g.easy_axis[..., 0], unl.kx[4].values, atol=1e-7)
    assert np.all((unl.n_grains >= 2) & (unl.n_grains <= 6))
    # each labeled curve starts saturated and its remanence is the curve's value at H = 0
    H = lab.H.values
    for k in range(3):
        M = lab.M[k].values
        assert M[0] > 0.5
        i0 = int(np.argmin(np.abs(H)))
        assert abs(H[i0]) < 1e-6 * H[0]
        assert lab.anchors[k].sel(anchor="Mr").item() == pytest.approx(M[i0], abs=1e-12)
    assert lab.attrs["H_A"] == pytest.approx(2 * 4.2e6 / 1.61)

    # interrupt: delete one shard, truncate another; a rerun recomputes exactly those two
    lab_dir = tmp_path / "labeled"
    before = _mtimes(lab_dir)
    os.remove(lab_dir / "labeled-0000.nc")
    with open(lab_dir / "labeled-0001.nc", "r+b") as f:
        f.truncate(200)
    with pytest.raises(ValueError, match="incomplete|corrupt"):
        _shards.open_shards(lab_dir, "sample")
    with pytest.warns(UserWarning, match="labeled-0001"):
        res2 = hysteresis.generate(tmp_path, **kw)
    after = _mtimes(lab_dir)
    assert after["labeled-0002.nc"] == before["labeled-0002.nc"]  # untouched
    assert (lab_dir / "labeled-0001.nc.corrupt").exists()
    xr.testing.assert_allclose(res2["labeled"][["M", "anchors"]], lab[["M", "anchors"]])

    # other settings in the same directory are refused, not mixed
    with pytest.raises(ValueError, match="different settings"):
        hysteresis.generate(tmp_path, **{**kw, "step": 0.1})


def test_dynamics_pipeline_matches_a_direct_integration(tmp_path, client):
    ds = dynamics.generate(tmp_path, grid=[16, 4, 1], n_fields=3, per_shard=2, t_end=5e-11, dt_out=1e-11,
                           client=client, progress=False)
    assert ds.sizes["sample"] == 3 and ds.sizes["time"] == 6
    assert ds.m.dtype == np.float32
    b = ds.b_ext.values
    angle = np.degrees(np.arctan2(b[:, 1], -b[:, 0]))
    assert np.all(np.abs(angle) <= 22.0) and np.all((np.linalg.norm(b, axis=1) >= 0.022) & (np.linalg.norm(b, axis=1) <= 0.041))
    # the stored trajectory equals an integration done here from the stored s-state
    from invdesign.constants import MU0
    from invdesign.micromag import integrate_llg

    system = sp4_system((16, 4, 1))
    m0 = ds.m_initial.values
    ref = sp4_initial_state(system)
    assert np.max(np.abs(np.asarray(ref.m) - m0)) < 1e-6
    sol = integrate_llg(system, m0, b[1] / MU0, ds.time.values, rtol=1e-5, atol=1e-5, method="bs3")
    assert np.max(np.abs(np.asarray(sol.values) - ds.m_avg[1].values)) < 1e-10
    norms = np.linalg.norm(ds.m.values.astype(float), axis=-1)
    assert np.max(np.abs(norms - 1)) < 1e-6
    # a rerun finds everything done and changes nothing
    before = _mtimes(tmp_path)
    dynamics.generate(tmp_path, grid=[16, 4, 1], n_fields=3, per_shard=2, t_end=5e-11, dt_out=1e-11, client=client, progress=False)
    after = _mtimes(tmp_path)
    assert {k: v for k, v in after.items() if k.startswith("shard")} == {k: v for k, v in before.items() if k.startswith("shard")}


def test_bad_settings_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="grid too small"):
        hysteresis.generate(tmp_path, grid=[4, 4], n_grains_range=[16, 256], progress=False)
    with pytest.raises(ValueError, match="unknown settings"):
        dynamics.generate(tmp_path, n_feilds=3)
    with pytest.raises(ValueError, match="grid"):
        dynamics.generate(tmp_path, grid=[16, 4])


def test_hysteresis_dataset_grows_by_shards_only(tmp_path, client, monkeypatch):
    kw = dict(grid=[12, 12], n_grains_range=[2, 5], labeled_per_shard=2, step=0.1, tol=1e-5,
              parts=("labeled",), progress=False, client=client)
    small = hysteresis.generate(tmp_path, n_labeled=2, **kw)["labeled"]
    lab_dir = tmp_path / "labeled"
    before = _mtimes(lab_dir)
    # asking for more with the same settings computes only the new shards
    big = hysteresis.generate(tmp_path, n_labeled=5, **kw)["labeled"]
    after = _mtimes(lab_dir)
    assert big.sizes["sample"] == 6  # counts round up to whole shards
    assert after["labeled-0000.nc"] == before["labeled-0000.nc"]
    assert set(after) == {"labeled-0000.nc", "labeled-0001.nc", "labeled-0002.nc"}
    xr.testing.assert_equal(big.isel(sample=slice(0, 2))[["kx", "M", "anchors"]], small[["kx", "M", "anchors"]])
    # the same shards computed in this process without Dask (`n_workers=0`, a GPU machine's
    # path), group by group, are the same data
    solo_kw = {k: v for k, v in kw.items() if k != "client"}
    with monkeypatch.context() as mp:
        mp.setattr(_shards, "_client", lambda *a: pytest.fail("n_workers=0 started a Dask client"))
        solo = hysteresis.generate(tmp_path / "solo", n_labeled=5, n_workers=0, **solo_kw)["labeled"]
    xr.testing.assert_equal(solo[["kx", "M", "anchors"]], big[["kx", "M", "anchors"]])
    assert set(_mtimes(tmp_path / "solo" / "labeled")) == set(after)
    # the structures of the first shard do not depend on how many were asked for
    ng, th = hysteresis.structure_parameters(hysteresis._settings({"n_grains_range": [2, 5]}), 1, [0, 1, 130])
    assert np.array_equal(big.n_grains.values[:2], ng[:2]) and np.allclose(big.theta.values[:2], th[:2])
    # asking for fewer returns the first shards, untouched
    again = hysteresis.generate(tmp_path, n_labeled=2, **kw)["labeled"]
    assert again.sizes["sample"] == 2 and _mtimes(lab_dir) == after
    # other settings are refused; bad settings fail before any manifest is written
    with pytest.raises(ValueError, match="different settings"):
        hysteresis.generate(tmp_path, n_labeled=2, **{**kw, "tol": 1e-6})
    fresh = tmp_path / "fresh"
    with pytest.raises(ValueError, match="dtype"):
        hysteresis.generate(fresh, n_labeled=2, dtype="float16", **kw)
    with pytest.raises(ValueError, match="parts"):
        hysteresis.generate(fresh, n_labeled=2, **{**kw, "parts": ("labeled", "other")})
    assert not fresh.exists()


def test_test_split_is_fixed_by_index():
    idx = np.arange(20)
    assert hysteresis.is_test(idx).tolist() == [i % 5 == 4 for i in range(20)]
    with pytest.raises(ValueError, match="index"):
        hysteresis.is_test([1.5])


def test_shard_checks_tell_system_errors_from_corruption(tmp_path, monkeypatch):
    import errno

    path = tmp_path / "s.nc"
    _shards.atomic_write_netcdf(xr.Dataset({"a": ("x", np.arange(3.0))}, attrs={"shard_hash": "h", "complete": 1}), path)
    assert _shards.check_shard(path, "h") and not _shards.check_shard(path, "other")

    def failing(exc):
        def open_dataset(*args, **kwargs):
            raise exc
        return open_dataset

    monkeypatch.setattr(xr, "open_dataset", failing(OSError(errno.EIO, "Input/output error")))
    with pytest.raises(OSError):
        _shards.check_shard(path, "h")  # a transient system error is not corruption
    monkeypatch.setattr(xr, "open_dataset", failing(MemoryError()))
    with pytest.raises(MemoryError):
        _shards.check_shard(path, "h")
    monkeypatch.setattr(xr, "open_dataset", failing(OSError("Unable to synchronously open file (truncated file)")))
    assert not _shards.check_shard(path, "h")  # unreadable content is


def test_corrupt_shards_are_kept_and_stale_temporaries_removed(tmp_path):
    import time

    shards = [{"name": "s-0000", "params": {"index": [0]}}]
    for _ in range(2):
        (tmp_path / "s-0000.nc").write_bytes(b"not a netcdf file")
        with pytest.warns(UserWarning, match="s-0000"):
            assert _shards.pending_shards(tmp_path, "g", {}, shards) == shards
    assert sorted(p.name for p in tmp_path.glob("s-0000.nc.corrupt*")) == ["s-0000.nc.corrupt", "s-0000.nc.corrupt.1"]
    old = tmp_path / ".s-0000.nc.abc123.tmp"
    new = tmp_path / ".s-0000.nc.def456.tmp"
    old.write_bytes(b"x")
    new.write_bytes(b"x")
    past = time.time() - 2 * _shards.STALE_SECONDS
    os.utime(old, (past, past))
    assert _shards.remove_stale_temporaries(tmp_path, shards) == [old]
    assert not old.exists() and new.exists()  # a fresh one may belong to a running worker


def test_dynamics_dataset_resumes_after_moving_its_folder(tmp_path, client):
    # the same time grid as the test above: its compiled integrator serves this one too
    kw = dict(grid=[16, 4, 1], n_fields=2, per_shard=1, t_end=5e-11, dt_out=1e-11, client=client, progress=False)
    first = dynamics.generate(tmp_path / "a", **kw)
    manifest = (tmp_path / "a" / "manifest.json").read_text()
    assert str(tmp_path) not in manifest  # no absolute paths in the shard parameters
    os.rename(tmp_path / "a", tmp_path / "b")
    os.remove(tmp_path / "b" / "shard-0001.nc")
    again = dynamics.generate(tmp_path / "b", **kw)
    np.testing.assert_array_equal(again.m_avg.values, first.m_avg.values)
    # asking for more fields appends shards; the fields already there stay as they are
    before = _mtimes(tmp_path / "b")
    grown = dynamics.generate(tmp_path / "b", **{**kw, "n_fields": 3})
    assert grown.sizes["sample"] == 3
    np.testing.assert_array_equal(grown.m_avg.values[:2], first.m_avg.values)
    np.testing.assert_array_equal(grown.b_ext.values[:2], first.b_ext.values)
    after = _mtimes(tmp_path / "b")
    assert all(after[k] == before[k] for k in ("shard-0000.nc", "shard-0001.nc"))
    assert sorted(k for k in after if k.startswith("shard")) == ["shard-0000.nc", "shard-0001.nc", "shard-0002.nc"]


def test_a_combined_dataset_restores_its_shards(tmp_path, client):
    kw = dict(grid=[12, 12], n_grains_range=[2, 5], labeled_per_shard=2, n_labeled=4, step=0.1, tol=1e-5,
              parts=("labeled",), progress=False, client=client)
    first = hysteresis.generate(tmp_path / "a", **kw)["labeled"]
    # a fresh machine has only the combined file: restoring it makes the run a no-op
    restored = _shards.restore_shards(tmp_path / "a" / "labeled.nc", tmp_path / "b" / "labeled")
    before = _mtimes(restored)
    again = hysteresis.generate(tmp_path / "b", **kw)["labeled"]
    assert _mtimes(restored) == before
    xr.testing.assert_equal(again[["kx", "M", "anchors"]], first[["kx", "M", "anchors"]])
    with pytest.raises(ValueError, match="open_shards"):
        bare = tmp_path / "bare.nc"
        first[["kx"]].drop_attrs().to_netcdf(bare, engine="h5netcdf")
        _shards.restore_shards(bare, tmp_path / "c")


def test_a_rerun_task_after_a_lost_worker_does_not_recompute(tmp_path):
    """Dask reruns finished tasks whose results were on a lost worker; the shard is on disk."""
    def explode(*args, **kwargs):
        raise AssertionError("the shard was computed again")

    done = tmp_path / "shard-0000.nc"
    _shards.atomic_write_netcdf(xr.Dataset({"a": ("x", np.arange(3.0))}), done)
    assert _shards._run_one(explode, "g", {}, {"name": "shard-0000", "params": {}}, str(done)) == str(done)
    other = tmp_path / "shard-0001.nc"
    assert _shards._run_group(explode, "g", {}, [{"params": {}}] * 2, [str(done), str(done)]) == [str(done)] * 2
    with pytest.raises(AssertionError, match="computed again"):  # a missing file is computed
        _shards._run_group(explode, "g", {}, [{"params": {}}] * 2, [str(done), str(other)])
