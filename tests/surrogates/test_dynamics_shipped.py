"""The shipped dynamics surrogate: the files match their pinned sha256, and the public
`rollout` of SP4 field 1 (starting states from the solver) reproduces the error against the
solver's <m>(t) that the training run recorded, on the trained 256 x 64 grid."""

import numpy as np
import pytest
import xarray as xr

from invdesign.micromag._sp4 import SP4_FIELDS_T
from invdesign_surrogates._weights import file_sha256
from invdesign_surrogates.dynamics import rollout
from invdesign_surrogates.dynamics._rollout import SHIPPED, SHIPPED_SHA256


@pytest.fixture(scope="module")
def reference():
    with xr.open_dataset(SHIPPED / "reference.nc", engine="h5netcdf") as f:
        return f.load()


def test_shipped_files_match_their_pins():
    assert set(SHIPPED_SHA256) == {"ae.eqx", "stepper.eqx", "start.eqx", "reference.nc", "s_state.nc"}
    for name, sha in SHIPPED_SHA256.items():
        assert sha is not None, f"{name} is not pinned"
        assert file_sha256(SHIPPED / name) == sha, name
    assert sum((SHIPPED / n).stat().st_size for n in ("ae.eqx", "stepper.eqx", "start.eqx")) <= 5_000_000


def test_field1_rollout_reproduces_the_recorded_error(reference):
    ref = reference.sel(case="field1")
    # the reference's solver curve was integrated in SP4 field 1
    np.testing.assert_allclose(ref.b_ext.values, SP4_FIELDS_T[1], rtol=1e-12)
    ds = rollout(SP4_FIELDS_T[1][:2], t_end=float(ref.time.values[-1]))
    assert ds.attrs["extrapolation"] == 0
    np.testing.assert_allclose(ds.time.values, ref.time.values, rtol=1e-9)
    err = np.linalg.norm(ds.m_avg.values - ref.m_solver.values, axis=-1)
    # the training run's evaluation (its own code path) and the public face agree
    np.testing.assert_allclose(ds.m_avg.values, ref.m_ae_rollout.values, atol=2e-3)
    assert abs(err.max() - reference.attrs["max_err_field1"]) < 2e-3
    assert abs(np.sqrt(np.mean(err**2)) - reference.attrs["rms_err_field1"]) < 1e-3
    # and it follows the solver's reversal (SP4's standard check: the first zero crossing of
    # <m_x>, here to within two 10 ps steps), down to <m_x> < -0.9
    sol, sur = ref.m_solver.values[:, 0], ds.m_avg.values[:, 0]
    assert sol[0] > 0.9 and sol.min() < -0.9 and sur.min() < -0.9
    t = ds.time.values
    assert abs(t[np.argmax(sur < 0)] - t[np.argmax(sol < 0)]) <= 2.01e-11
    assert err.max() < 0.5  # a curve that does not reverse is off by about 2
