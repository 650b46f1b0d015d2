"""muMAG standard problem 4 at 128 x 32 x 1 cells against published and peer results.

References:
- zero crossing of <mx> for field 1: 0.1385 ns, the value on which published solvers agree
  (OOMMF at 2.5 nm cells, magnum.np, NeuralMag). Goal: within 0.5 %. Our grid has 3.9 nm
  cells; magnum.np on this same grid crosses at 0.13863 ns (its file here), and changing
  our tolerance from 1e-3 to 1e-6 moves the crossing by < 1e-5 ns (measured), so the
  0.5 % bound is set by the spread of discretisations, not by the integrator.
- trajectories over t <= 0.3 ns from two peer solvers run on the same 128 x 32 x 1 grid
  (files in tests/micromag/data, provenance in their headers): magnum.np (finite
  differences like ours: agreement to 1e-3 expected) and NeuralMag (nodal discretisation:
  agreement to 2e-2).
- the s-state <m> asserted by mumax3's regression test of SP4 on the same 128 x 32 x 1
  grid (test/standardproblem4.mx3 in the mumax3 repository): (0.96697, 0.12527, 0).
"""

from pathlib import Path

import numpy as np
import pytest

from invdesign.micromag import average_magnetization, first_zero_crossing, sp4_dynamics, sp4_initial_state, sp4_system

DATA = Path(__file__).parent / "data"


def _peer(name, field):
    path = DATA / f"sp4_field{field}_{name}_128x32.csv"
    lines = path.read_text().splitlines()
    n_comment = sum(1 for line in lines if line.startswith("#"))
    return np.loadtxt(path, delimiter=",", skiprows=n_comment + 1)


@pytest.fixture(scope="module")
def s_state():
    system = sp4_system((128, 32, 1))
    res = sp4_initial_state(system)
    return system, res


def test_s_state(s_state):
    system, res = s_state
    assert res.converged
    m = np.asarray(average_magnetization(system, res.m))
    for name in ("magnumnp", "neuralmag"):
        ref = _peer(name, 1)[0, 1:]
        tol = 1e-3 if name == "magnumnp" else 3e-3
        assert np.max(np.abs(m - ref)) < tol, (name, m, ref)
    assert abs(m[2]) < 1e-4  # the film keeps m in plane
    assert np.max(np.abs(m - np.array([0.96697, 0.12527, 0.0]))) < 2e-4  # mumax3, same grid


def test_field1_zero_crossing_and_trajectory(s_state):
    system, res = s_state
    sol = sp4_dynamics(system, res.m, 1, t_end=1e-9, dt_out=1e-12)
    t = np.asarray(sol.t)
    m = np.asarray(sol.values)
    assert bool(sol.success)
    t0 = first_zero_crossing(t, m[:, 0])
    assert abs(t0 - 0.1385e-9) / 0.1385e-9 < 0.005
    for name, tol in (("magnumnp", 1e-3), ("neuralmag", 2e-2)):
        ref = _peer(name, 1)
        sel = ref[:, 0] <= 0.3e-9 + 1e-15
        ours = np.stack([np.interp(ref[sel, 0], t, m[:, k]) for k in range(3)], -1)
        assert np.max(np.abs(ours - ref[sel, 1:])) < tol, name
    # the finite-difference peer agrees over the whole nanosecond
    ref = _peer("magnumnp", 1)
    ours = np.stack([np.interp(ref[:, 0], t, m[:, k]) for k in range(3)], -1)
    assert np.max(np.abs(ours - ref[:, 1:])) < 2e-3


def test_field2_trajectory(s_state):
    system, res = s_state
    sol = sp4_dynamics(system, res.m, 2, t_end=0.3e-9, dt_out=1e-12)
    t = np.asarray(sol.t)
    m = np.asarray(sol.values)
    for name, tol in (("magnumnp", 2e-3), ("neuralmag", 3e-2)):
        ref = _peer(name, 2)
        sel = ref[:, 0] <= 0.3e-9 + 1e-15
        ours = np.stack([np.interp(ref[sel, 0], t, m[:, k]) for k in range(3)], -1)
        assert np.max(np.abs(ours - ref[sel, 1:])) < tol, name
