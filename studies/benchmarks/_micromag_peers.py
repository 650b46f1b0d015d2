"""Peer micromagnetic solvers on muMAG standard problem 4 (SP4).

Runs two finite-difference micromagnetic codes from PyPI on SP4 so that the
``invdesign.micromag`` solver can be benchmarked and validated against them:

* NeuralMag (``pip install "neuralmag[jax]"``), JAX backend on the CPU,
  adaptive Dormand-Prince 5(4) from diffrax (``diffrax.Dopri5`` with a
  ``diffrax.PIDController(rtol, atol)``).
* magnum.np (``pip install magnumnp`` plus a CPU build of torch), its default
  adaptive Runge-Kutta-Fehlberg 4(5) integrator (``magnumnp.RKF45(atol, rtol)``).

Each peer runs in a fresh Python subprocess (this file is also the worker
script: ``python _micromag_peers.py --worker PEER PARAMS_JSON OUT_NPZ``). That
keeps the peers' global settings (NeuralMag switches on ``jax_enable_x64`` and
fixes its backend once per process, magnum.np sets torch's default dtype and
device at import) out of the caller's process, gives a clean JIT cache for the
compile timing, and lets a peer live in a separate virtualenv. The interpreter
is found in this order: the environment variable ``INVDESIGN_<PEER>_PYTHON``,
the current interpreter, then ``$INVDESIGN_PEERS_VENV/bin/python`` (default
``/work/peers-venv``). The first one that can import the peer is used; if none
can, ``run_*_sp4`` raises ``RuntimeError("peer X not installed: pip install
...")`` so that a benchmark can skip it.

Only the standard library and numpy are imported at module level, so the
worker also runs in the peers' virtualenv. See ``studies/benchmarks/PEERS.md``
for the install commands and the numbers measured on the 2-core machine.

SP4 (muMAG): permalloy 500 nm x 125 nm x 3 nm, Ms = 8.0e5 A/m,
A = 1.3e-11 J/m, no anisotropy, alpha = 0.02, gamma = 2.211e5 m/(A s).
s-state: m0 along (1, 0.25, 0.1) normalised, relaxed with alpha = 1 in zero
field. Field 1: mu0 H = (-24.6, 4.3, 0) mT, field 2: (-35.5, -6.3, 0) mT.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

__all__ = [
    "SP4",
    "SP4_FIELDS_T",
    "PEER_INSTALL",
    "run_neuralmag_sp4",
    "run_magnumnp_sp4",
    "run_peer_sp4",
    "peer_python",
    "first_zero_crossing",
    "sp4_summary",
    "save_trajectory_csv",
    "load_trajectory_csv",
]

#: SP4 material and geometry (SI units). ``gamma`` is the muMAG value
#: mu0*|gamma_e| = 2.211e5 m/(A s); both peers default to 2.21276e5.
SP4 = dict(
    size=(500e-9, 125e-9, 3e-9),
    Ms=8.0e5,
    A=1.3e-11,
    alpha=0.02,
    gamma=2.211e5,
    m_init=(1.0, 0.25, 0.1),
)
#: Applied fields mu0*H in tesla.
SP4_FIELDS_T = {"1": (-24.6e-3, 4.3e-3, 0.0), "2": (-35.5e-3, -6.3e-3, 0.0)}
MU0 = 4e-7 * math.pi

PEER_INSTALL = {
    "neuralmag": 'pip install "neuralmag[jax]==1.0.0"',
    "magnumnp": (
        "python -m venv /work/peers-venv && /work/peers-venv/bin/pip install "
        '"torch==2.13.0+cpu" "magnumnp==2.2.0"'
    ),
}
_PEER_MODULES = {"neuralmag": ("neuralmag", "jax", "diffrax"), "magnumnp": ("magnumnp", "torch")}
_DEFAULT_VENV = "/work/peers-venv"


# --------------------------------------------------------------------------
# helpers usable without any peer installed
# --------------------------------------------------------------------------
def _can_import(python, modules):
    # compare without resolving symlinks: a venv's python links to the base interpreter
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        return all(importlib.util.find_spec(m) is not None for m in modules)
    if not os.path.exists(python):
        return False
    code = "import importlib.util as u,sys; sys.exit(any(u.find_spec(m) is None for m in %r))" % (list(modules),)
    try:
        return subprocess.run([python, "-c", code], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def peer_python(peer):
    """Path of a Python interpreter that can import ``peer``, or ``None``.

    Candidates, in order: ``$INVDESIGN_<PEER>_PYTHON``, ``sys.executable``,
    ``$INVDESIGN_PEERS_VENV/bin/python`` (default ``/work/peers-venv``).
    """
    if peer not in _PEER_MODULES:
        raise ValueError(f"unknown peer {peer!r}; known: {sorted(_PEER_MODULES)}")
    venv = os.environ.get("INVDESIGN_PEERS_VENV", _DEFAULT_VENV)
    candidates = [
        os.environ.get(f"INVDESIGN_{peer.upper()}_PYTHON"),
        sys.executable,
        os.path.join(venv, "bin", "python"),
    ]
    for py in candidates:
        if py and _can_import(py, _PEER_MODULES[peer]):
            return py
    return None


def first_zero_crossing(t, x):
    """Time of the first sign change of ``x(t)`` (linear interpolation), or nan."""
    t = np.asarray(t, float)
    x = np.asarray(x, float)
    s = np.sign(x)
    idx = np.nonzero(s[1:] * s[:-1] <= 0)[0]
    idx = [i for i in idx if not (x[i] == 0 and x[i + 1] == 0)]
    if not idx:
        return float("nan")
    i = idx[0]
    if x[i] == x[i + 1]:
        return float(t[i])
    return float(t[i] - x[i] * (t[i + 1] - t[i]) / (x[i + 1] - x[i]))


def sp4_summary(result, times=(0.1e-9, 0.2e-9, 0.5e-9, 1.0e-9)):
    """Key numbers of an SP4 trajectory: s-state <m>, first zero crossing of
    <mx> and <m> linearly interpolated at ``times`` (s)."""
    t, m = np.asarray(result["t"]), np.asarray(result["m"])
    out = {
        "m_relaxed": [float(v) for v in result.get("m_relaxed", (np.nan,) * 3)],
        "t_mx_zero": first_zero_crossing(t, m[:, 0]),
        "m_at": {float(tt): [float(np.interp(tt, t, m[:, k])) for k in range(3)] for tt in times},
    }
    for k in ("wall_setup", "wall_relax", "wall_compile", "wall_dynamics", "n_steps", "n_rejected"):
        if k in result:
            out[k] = result[k]
    return out


def save_trajectory_csv(path, result, source=None, extra=None):
    """Write ``result['t'], result['m']`` as CSV ``t_s,mx,my,mz`` with a
    ``#`` comment header describing the run (peer, version, grid, tolerance,
    date). Returns ``path``."""
    t, m = np.asarray(result["t"]), np.asarray(result["m"])
    lines = []
    if source:
        lines += [f"source: {s}" for s in str(source).splitlines()]
    meta_keys = (
        "peer", "version", "backend", "field", "mu0H_T", "n", "dx", "dtype", "gamma",
        "integrator", "rtol", "atol", "relax", "m_relaxed", "averaging", "n_steps",
        "n_rejected", "n_rhs_evals", "wall_setup", "wall_relax", "wall_compile", "wall_dynamics", "date",
    )
    for k in meta_keys:
        if k in result:
            v = result[k]
            if isinstance(v, float):
                v = f"{v:.6g}"
            lines.append(f"{k}: {v}")
    for k, v in (extra or {}).items():
        lines.append(f"{k}: {v}")
    lines.append("columns: t [s], <mx>, <my>, <mz> (spatial averages of the unit magnetisation)")
    with open(path, "w") as fh:
        for line in lines:
            fh.write(f"# {line}\n")
        fh.write("t_s,mx,my,mz\n")
        for ti, mi in zip(t, m):
            fh.write(f"{ti:.6e},{mi[0]:.9f},{mi[1]:.9f},{mi[2]:.9f}\n")
    return path


def load_trajectory_csv(path):
    """Read a CSV written by :func:`save_trajectory_csv` (or any file in
    ``tests/micromag/data`` with ``#`` comments and a ``t_s,mx,my,mz`` header).
    Returns ``dict(t=(N,), m=(N, 3), header=[comment lines])``."""
    header = []
    with open(path) as fh:
        for line in fh:
            if line.startswith("#"):
                header.append(line[1:].strip())
            else:
                break
    data = np.loadtxt(path, delimiter=",", comments=["#", "t_s"], ndmin=2)
    return {"t": data[:, 0], "m": data[:, 1:4], "header": header}


# --------------------------------------------------------------------------
# public runners
# --------------------------------------------------------------------------
def run_peer_sp4(
    peer,
    field="1",
    n=(128, 32, 1),
    t_end=1e-9,
    dt_out=1e-11,
    rtol=1e-5,
    atol=None,
    relax_tol=1e7,
    gamma=SP4["gamma"],
    dtype="float64",
    python=None,
    timeout=1800,
    verbose=False,
    repeat=1,
):
    """Run SP4 in ``peer`` ("neuralmag" or "magnumnp") in a subprocess.

    See :func:`run_neuralmag_sp4` for the arguments and the returned dict.
    """
    if peer not in _PEER_MODULES:
        raise ValueError(f"unknown peer {peer!r}; known: {sorted(_PEER_MODULES)}")
    field = str(field)
    if field not in SP4_FIELDS_T:
        raise ValueError(f"field must be '1' or '2', got {field!r}")
    py = python or peer_python(peer)
    if py is None or (python is not None and not _can_import(python, _PEER_MODULES[peer])):
        raise RuntimeError(f"peer {peer} not installed: {PEER_INSTALL[peer]}")
    params = dict(
        field=field,
        n=[int(v) for v in n],
        t_end=float(t_end),
        dt_out=float(dt_out),
        rtol=float(rtol),
        atol=float(rtol if atol is None else atol),
        relax_tol=float(relax_tol),
        gamma=None if gamma is None else float(gamma),
        dtype=dtype,
        repeat=int(repeat),
    )
    env = dict(os.environ)
    if peer == "neuralmag":
        env.update(NM_BACKEND="jax", NM_DTYPE=dtype, JAX_PLATFORMS="cpu")
    else:
        env.update(CUDA_DEVICE="-1")  # CPU; skips magnum.np's GPU probe subprocess
    with tempfile.TemporaryDirectory(prefix=f"sp4_{peer}_") as tmp:
        out = os.path.join(tmp, "result.npz")
        cmd = [py, os.path.abspath(__file__), "--worker", peer, json.dumps(params), out]
        t0 = time.perf_counter()
        proc = subprocess.run(
            cmd, env=env, cwd=tmp, timeout=timeout, text=True,
            stdout=None if verbose else subprocess.PIPE,
            stderr=None if verbose else subprocess.STDOUT,
        )
        wall_total = time.perf_counter() - t0
        if proc.returncode != 0 or not os.path.exists(out):
            tail = (proc.stdout or "")[-4000:]
            raise RuntimeError(f"peer {peer} SP4 run failed (exit {proc.returncode}):\n{tail}")
        with np.load(out) as z:
            res = json.loads(str(z["meta"]))
            res["t"] = z["t"]
            res["m"] = z["m"]
    res["wall_subprocess_total"] = wall_total
    res["python"] = py
    return res


def run_neuralmag_sp4(field="1", n=(128, 32, 1), t_end=1e-9, dt_out=1e-11, rtol=1e-5, atol=None,
                      relax_tol=1e7, gamma=SP4["gamma"], dtype="float64", python=None,
                      timeout=1800, verbose=False, repeat=1):
    """SP4 in NeuralMag (JAX backend, CPU) in a subprocess.

    Parameters
    ----------
    field : "1" or "2"
        SP4 field 1 (mu0 H = (-24.6, 4.3, 0) mT) or field 2 ((-35.5, -6.3, 0) mT).
    n : (nx, ny, nz)
        Number of cells; cell size = (500, 125, 3) nm / n. NeuralMag is a
        *nodal* FD code: with nz == 1 a 2D nodal mesh of (nx+1) x (ny+1) nodes
        with thickness 3 nm is used (the layout NeuralMag recommends for
        single-layer films), otherwise a 3D mesh of (nx+1)(ny+1)(nz+1) nodes.
    t_end, dt_out : float
        Length of the field run and output interval (s).
    rtol, atol : float
        Tolerances of the adaptive integrator (atol defaults to rtol). Used for
        both the relaxation and the dynamics. NeuralMag: diffrax ``Dopri5`` +
        ``PIDController(rtol, atol)`` inside ``LLGSolver.solve`` (one
        ``diffeqsolve`` over [0, t_end], outputs by dense interpolation).
        magnum.np: ``RKF45(atol, rtol)`` through ``LLGSolver.step(state, dt_out)``.
    relax_tol : float
        s-state stopping criterion, max |dm/dt| in rad/s, integrating the LLG
        with alpha = 1 in zero field (NeuralMag ``LLGSolver.relax(tol)``,
        magnum.np ``LLGSolver.relax(dm_tol=relax_tol/gamma)``).
    gamma : float or None
        Reduced gyromagnetic ratio mu0*gamma in m/(A s). Default: the SP4 value
        2.211e5, patched into the peer (NeuralMag ``neuralmag.common.llg.GAMMA_PRIME``,
        magnum.np ``magnumnp.common.constants.gamma``); ``None`` keeps the
        peer's built-in 2.21276e5.
    dtype : "float64" or "float32"
    python : str, optional
        Interpreter to use (default: :func:`peer_python`).
    timeout : float
        Subprocess timeout in s.
    verbose : bool
        Stream the peer's log to the terminal instead of capturing it.
    repeat : int
        Number of timed dynamics runs (from the same s-state); ``wall_dynamics``
        is the minimum, ``wall_dynamics_all`` lists all (the trajectory is the
        last run's; the runs are deterministic).

    Returns
    -------
    dict with ``t`` (N,) [s], ``m`` (N, 3) spatially averaged m (t = 0 is the
    relaxed s-state), ``m_relaxed`` (3,), ``wall_setup`` (mesh, field terms,
    demag kernel), ``wall_relax`` (s-state relaxation, including the JIT
    compilation of the relaxation kernels), ``wall_compile`` (warm-up of the
    dynamics integrator: JIT compile + a 1e-13 s integration), ``wall_dynamics``
    (field run after warm-up), ``n_steps``/``n_rejected`` (integrator steps of
    the timed run), ``version``, ``peer``, ``integrator``, ``n``, ``dx``,
    ``gamma``, ``rtol``, ``atol``, ``date``, ``python``, ``wall_dynamics_all`` /
    ``cpu_dynamics_all`` (wall and process CPU seconds of every timed run),
    ``loadavg_before/after``
    (1/5/15-min load averages around the timed runs: the timings are only
    meaningful on an otherwise idle machine) and more metadata.

    Raises
    ------
    RuntimeError
        ``"peer neuralmag not installed: pip install ..."`` if no interpreter can
        import neuralmag (and jax, diffrax); also if the subprocess fails.
    """
    return run_peer_sp4("neuralmag", field=field, n=n, t_end=t_end, dt_out=dt_out, rtol=rtol,
                        atol=atol, relax_tol=relax_tol, gamma=gamma, dtype=dtype, python=python,
                        timeout=timeout, verbose=verbose, repeat=repeat)


def run_magnumnp_sp4(field="1", n=(128, 32, 1), t_end=1e-9, dt_out=1e-11, rtol=1e-5, atol=None,
                     relax_tol=1e7, gamma=SP4["gamma"], dtype="float64", python=None,
                     timeout=1800, verbose=False, repeat=1):
    """SP4 in magnum.np (torch, CPU) in a subprocess; same arguments and
    return value as :func:`run_neuralmag_sp4`.

    magnum.np is a cell-centred FD code (n cells, m at cell centres, Newell
    demag kernel). Relaxation: ``LLGSolver([demag, exchange], solver=RKF45,
    atol, rtol).relax(state, maxiter=2000, dm_tol=relax_tol/gamma, dt=1e-11)``
    (alpha = 1). Dynamics: ``LLGSolver([demag, exchange, external], RKF45,
    atol, rtol)``, ``llg.step(state, dt_out)`` until ``t_end`` (the integrator
    shortens the last internal step to land on each output time).
    ``wall_compile`` is the first evaluation of the dynamics RHS, which
    triggers magnum.np's ``torch.compile`` (inductor) kernels, plus one warm-up
    RKF45 step of 1e-13 s whose result is discarded.
    Raises ``RuntimeError("peer magnumnp not installed: ...")`` if missing.
    """
    return run_peer_sp4("magnumnp", field=field, n=n, t_end=t_end, dt_out=dt_out, rtol=rtol,
                        atol=atol, relax_tol=relax_tol, gamma=gamma, dtype=dtype, python=python,
                        timeout=timeout, verbose=verbose, repeat=repeat)


# --------------------------------------------------------------------------
# workers (run inside the peer's interpreter)
# --------------------------------------------------------------------------
def _out_times(t_end, dt_out):
    nout = int(round(t_end / dt_out))
    return np.arange(nout + 1) * dt_out


def _common_meta(p, peer):
    n = p["n"]
    dx = [SP4["size"][i] / n[i] for i in range(3)]
    h = [b / MU0 for b in SP4_FIELDS_T[p["field"]]]
    meta = dict(
        peer=peer,
        field=p["field"],
        mu0H_T=list(SP4_FIELDS_T[p["field"]]),
        n=list(n),
        dx=dx,
        rtol=p["rtol"],
        atol=p["atol"],
        relax_tol=p["relax_tol"],
        dtype=p["dtype"],
        t_end=p["t_end"],
        dt_out=p["dt_out"],
        date=_dt.datetime.now().isoformat(timespec="seconds"),
        host_cpus=os.cpu_count(),
    )
    return meta, dx, h


def _worker_neuralmag(p):
    import neuralmag as nm
    import neuralmag.common.llg as nm_llg

    import jax

    nm.config.dtype = p["dtype"]
    meta, dx, h_ext = _common_meta(p, "neuralmag")
    meta["version"] = getattr(nm, "__version__", "?")
    meta["backend"] = f"jax {jax.__version__} ({jax.devices()[0].platform}), diffrax"
    try:
        import diffrax

        meta["backend"] = f"jax {jax.__version__} ({jax.devices()[0].platform}), diffrax {diffrax.__version__}"
    except Exception:  # pragma: no cover
        pass
    meta["gamma"] = nm_llg.GAMMA_PRIME if p["gamma"] is None else p["gamma"]
    if p["gamma"] is not None:
        nm_llg.GAMMA_PRIME = p["gamma"]

    nx, ny, nz = p["n"]
    t0 = time.perf_counter()
    if nz == 1:
        mesh = nm.Mesh((nx, ny), tuple(dx))
        meta["averaging"] = f"nodal average over 2D nodal mesh ({nx + 1}x{ny + 1} nodes, thickness {dx[2]:g} m)"
    else:
        mesh = nm.Mesh((nx, ny, nz), tuple(dx))
        meta["averaging"] = f"nodal average over 3D nodal mesh ({nx + 1}x{ny + 1}x{nz + 1} nodes)"
    state = nm.State(mesh)
    state.material.Ms = SP4["Ms"]
    state.material.A = SP4["A"]
    state.material.alpha = SP4["alpha"]
    m0 = np.asarray(SP4["m_init"]) / np.linalg.norm(SP4["m_init"])
    state.m = nm.VectorFunction(state).fill(tuple(float(v) for v in m0))
    nm.ExchangeField().register(state, "exchange")
    nm.DemagField().register(state, "demag")
    nm.TotalField("exchange", "demag").register(state)
    _ = np.asarray(state.h.tensor)  # build demag kernel + field code now
    meta["wall_setup"] = time.perf_counter() - t0

    # s-state: NeuralMag's relax() integrates the LLG with alpha = 1 in
    # chunks of 1e-11 s (Dopri5, same tolerances) until max|dm/dt| < tol.
    llg = nm.LLGSolver(state, rtol=p["rtol"], atol=p["atol"])
    t0 = time.perf_counter()
    llg.relax(tol=p["relax_tol"])
    m_rel = np.asarray(state.m.avg())
    meta["wall_relax"] = time.perf_counter() - t0
    meta["m_relaxed"] = [float(v) for v in m_rel]
    meta["relax"] = (
        f"NeuralMag LLGSolver.relax(tol={p['relax_tol']:g} rad/s): alpha=1, zero field, "
        f"Dopri5 rtol=atol={p['rtol']:g}, from m0 || (1,0.25,0.1)"
    )

    h = nm.VectorFunction(state).fill(tuple(h_ext))
    nm.ExternalField(h).register(state, "external")
    nm.TotalField("exchange", "demag", "external").register(state)
    llg = nm.LLGSolver(state, rtol=p["rtol"], atol=p["atol"], max_steps=1_000_000)
    meta["integrator"] = (
        f"NeuralMag LLGSolverJAX(solver_type='Dopri5', rtol={p['rtol']:g}, atol={p['atol']:g}, "
        "scale_t=1e-9, max_steps=1e6).solve(ts): a single diffrax.diffeqsolve with "
        "PIDController, dt0=1e-14 s, outputs via SaveAt(ts) dense interpolation"
    )
    ts_np = _out_times(p["t_end"], p["dt_out"])
    ts = state.tensor(ts_np)

    # warm-up: same shapes, tiny time span -> compiles the diffeqsolve
    t0 = time.perf_counter()
    sol = llg.solve(state.tensor(ts_np * (1e-13 / p["t_end"])))
    jax.block_until_ready(sol.ys)
    meta["wall_compile"] = time.perf_counter() - t0

    walls = []
    meta["loadavg_before"] = list(os.getloadavg())
    cpus = []
    for _ in range(max(1, p.get("repeat", 1))):
        c0, t0 = time.process_time(), time.perf_counter()
        sol = llg.solve(ts)
        ys = jax.block_until_ready(sol.ys)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    meta["loadavg_after"] = list(os.getloadavg())
    meta["wall_dynamics"] = min(walls)
    meta["wall_dynamics_all"] = walls
    meta["cpu_dynamics_all"] = cpus
    stats = {k: int(np.asarray(v)) for k, v in sol.stats.items() if np.ndim(v) == 0}
    meta["n_steps"] = stats.get("num_accepted_steps", stats.get("num_steps"))
    meta["n_rejected"] = stats.get("num_rejected_steps")
    meta["solver_result"] = str(sol.result)

    m_avg = []
    for i in range(ys.shape[0]):
        state.m.tensor = ys[i]
        m_avg.append(np.asarray(state.m.avg()))
    return meta, ts_np, np.asarray(m_avg)


def _worker_magnumnp(p):
    import torch

    import magnumnp as mn
    import magnumnp.common.constants as mn_const

    if p["dtype"] == "float32":
        torch.set_default_dtype(torch.float32)
    meta, dx, h_ext = _common_meta(p, "magnumnp")
    meta["version"] = mn.__version__
    meta["backend"] = f"torch {torch.__version__} (cpu, {torch.get_num_threads()} threads)"
    meta["gamma"] = mn_const.gamma if p["gamma"] is None else p["gamma"]
    if p["gamma"] is not None:
        mn_const.gamma = p["gamma"]  # read at call time by LLGSolver.dm / relax
    gamma = mn_const.gamma

    t0 = time.perf_counter()
    mesh = mn.Mesh(tuple(p["n"]), tuple(dx))
    state = mn.State(mesh)
    state.material = {"Ms": SP4["Ms"], "A": SP4["A"], "alpha": SP4["alpha"]}
    m0 = np.asarray(SP4["m_init"]) / np.linalg.norm(SP4["m_init"])
    state.m = state.Constant([float(v) for v in m0])
    demag = mn.DemagField()
    exchange = mn.ExchangeField()
    external = mn.ExternalField([float(v) for v in h_ext])
    _ = demag.h(state)  # demag kernel
    meta["wall_setup"] = time.perf_counter() - t0
    meta["averaging"] = f"cell average over {p['n'][0]}x{p['n'][1]}x{p['n'][2]} cells"

    llg_dyn = mn.LLGSolver([demag, exchange, external], solver=mn.RKF45, atol=p["atol"], rtol=p["rtol"])
    # compile warm-up (torch.compile'd exchange kernel) + one short step, discarded
    t0 = time.perf_counter()
    m_save, t_save = state.m.clone(), state.t
    llg_dyn.dm(state.t, state.m, state=state)
    llg_dyn.step(state, 1e-13)
    state.m, state.t = m_save, t_save
    meta["wall_compile"] = time.perf_counter() - t0

    llg_rel = mn.LLGSolver([demag, exchange], solver=mn.RKF45, atol=p["atol"], rtol=p["rtol"])
    t0 = time.perf_counter()
    ok = llg_rel.relax(state, maxiter=2000, dm_tol=p["relax_tol"] / gamma, dt=1e-11)
    meta["wall_relax"] = time.perf_counter() - t0
    meta["relax_converged"] = bool(ok)
    m_rel = state.m.mean(dim=(0, 1, 2)).cpu().numpy()
    meta["m_relaxed"] = [float(v) for v in m_rel]
    meta["relax"] = (
        f"magnum.np LLGSolver.relax(maxiter=2000, dm_tol={p['relax_tol'] / gamma:g} "
        f"(= {p['relax_tol']:g} rad/s / gamma), dt=1e-11): alpha=1, zero field, "
        f"RKF45 rtol=atol={p['rtol']:g}, from m0 || (1,0.25,0.1)"
    )

    meta["integrator"] = (
        f"magnum.np RKF45(atol={p['atol']:g}, rtol={p['rtol']:g}) via LLGSolver.step(state, "
        f"{p['dt_out']:g}) (internal adaptive steps, last step clipped to the output time, "
        "initial dt=1e-15 s, max dt 1e-10 s)"
    )
    ts_np = _out_times(p["t_end"], p["dt_out"])
    m_s = state.m.clone()
    walls, cpus = [], []
    meta["loadavg_before"] = list(os.getloadavg())
    for _ in range(max(1, p.get("repeat", 1))):
        llg_dyn = mn.LLGSolver([demag, exchange, external], solver=mn.RKF45, atol=p["atol"], rtol=p["rtol"])
        n_eval = [0]
        f_orig = llg_dyn._solver._f

        def f_counted(*a, **k):  # count RHS evaluations (6 per RKF45 attempt)
            n_eval[0] += 1
            return f_orig(*a, **k)

        llg_dyn._solver._f = f_counted
        state.m = m_s.clone()
        state.t = 0.0
        state._step = 0
        m_avg = [state.m.mean(dim=(0, 1, 2)).cpu().numpy()]
        c0, t0 = time.process_time(), time.perf_counter()
        for k in range(1, len(ts_np)):
            llg_dyn.step(state, float(ts_np[k] - ts_np[k - 1]))
            m_avg.append(state.m.mean(dim=(0, 1, 2)).cpu().numpy())
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    meta["loadavg_after"] = list(os.getloadavg())
    meta["wall_dynamics"] = min(walls)
    meta["wall_dynamics_all"] = walls
    meta["cpu_dynamics_all"] = cpus
    meta["n_steps"] = int(state._step)
    meta["n_rhs_evals"] = int(n_eval[0])
    meta["n_rejected"] = int(n_eval[0] // 6 - state._step)
    return meta, ts_np, np.asarray(m_avg)


def _worker_main(argv):
    peer, params_json, out = argv
    p = json.loads(params_json)
    fn = {"neuralmag": _worker_neuralmag, "magnumnp": _worker_magnumnp}[peer]
    meta, t, m = fn(p)
    np.savez(out, t=np.asarray(t, float), m=np.asarray(m, float), meta=np.asarray(json.dumps(meta)))
    print(json.dumps({k: v for k, v in meta.items()}, indent=1))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--worker":
        _worker_main(sys.argv[2:])
    else:
        print(__doc__)
