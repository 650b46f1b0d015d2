"""Checkpointed searches: killed (SIGKILL in a subprocess) or interrupted (Ctrl-C) part-way and
resumed, against uninterrupted runs of the same seed; the CLI's --resume and partial results."""

import os
import signal
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
import xarray as xr

import invdesign  # noqa: F401
from invdesign import cli
from invdesign.optimize import (
    ProblemEntry,
    SearchInterrupted,
    _checkpoint,
    checkpointing,
    genetic_search,
    gradient_search,
    load,
)
from invdesign.optimize._results import history

PROBLEM_SOURCE = textwrap.dedent('''
    import jax.numpy as jnp
    from invdesign.optimize import (Constraint, DesignProblem, DesignSpace, Objective, Parameter,
                                    genetic_search, gradient_search)

    def problem(n_obj=1):
        """Rosenbrock in a disc (and a second objective for NSGA-II)."""
        space = DesignSpace([Parameter("x", -2.0, 2.0, "m"), Parameter("y", -1.0, 3.0, "m")])

        def evaluate(p):
            x, y = p["x"], p["y"]
            return {"f": (1 - x) ** 2 + 100 * (y - x * x) ** 2, "f2": (x + 1.0) ** 2 + y**2,
                    "g": x * x + y * y - 1.5}

        objectives = [Objective("f"), Objective("f2")][:n_obj]
        return DesignProblem("rosen", space, evaluate, objectives, [Constraint("g", units="m^2")])

    def search(kind, problems, checkpoint=None, resume=False):
        common = dict(progress=False, checkpoint=checkpoint, resume=resume)
        if kind == "adam":
            return gradient_search(problems[1], "adam", max_iter=200, chunk_size=16, outer_iters=4, **common)
        if kind == "lbfgs":
            return gradient_search(problems[1], "lbfgs", max_iter=60, chunk_size=4, **common)
        if kind == "nsga2":
            return genetic_search(problems[2], pop_size=16, n_gen=10, seed=3, **common)
        return genetic_search(problems[1], pop_size=16, n_gen=10, seed=5, **common)
''')

KILL_SCRIPT = textwrap.dedent('''
    import os, signal, sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from invdesign.optimize import _checkpoint, genetic_search, gradient_search  # noqa: F401
    import rosen

    kind, path, after = sys.argv[1], sys.argv[2], int(sys.argv[3])
    real, count = _checkpoint.write_checkpoint, [0]

    def write_then_die(*args, **kwargs):
        real(*args, **kwargs)
        count[0] += 1
        if count[0] == after:  # killed right after a complete checkpoint, as by `kill -9`
            os.kill(os.getpid(), signal.SIGKILL)

    _checkpoint.write_checkpoint = write_then_die
    rosen.search(kind, {1: rosen.problem(1), 2: rosen.problem(2)}, checkpoint=path)
    print("finished without being killed")
''')

ns: dict = {}
exec(PROBLEM_SOURCE, ns)
PROBLEMS = {1: ns["problem"](1), 2: ns["problem"](2)}
KINDS = ("adam", "lbfgs", "ga", "nsga2")


def search(kind, **kw):
    return ns["search"](kind, PROBLEMS, **kw)


@pytest.fixture(scope="module")
def reference():
    """Uninterrupted runs, without checkpoints."""
    return {kind: search(kind) for kind in KINDS}


def _assert_same_run(a: xr.Dataset, b: xr.Dataset):
    assert dict(a.sizes) == dict(b.sizes)
    assert sorted(a.data_vars) == sorted(b.data_vars)
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    for key in ("converged", "message", "algorithm", "settings", "seed"):
        assert a.attrs[key] == b.attrs[key], key


def _stop_after(monkeypatch, n, exc=KeyboardInterrupt):
    """Raise `exc` right after the n-th checkpoint write (the write itself completes)."""
    real, count = _checkpoint.write_checkpoint, [0]

    def write(*args, **kwargs):
        real(*args, **kwargs)
        count[0] += 1
        if count[0] == n:
            raise exc

    monkeypatch.setattr(_checkpoint, "write_checkpoint", write)


@pytest.mark.parametrize("kind", ["adam", "nsga2"])
def test_sigkill_then_resume_equals_the_uninterrupted_run(kind, reference, tmp_path):
    (tmp_path / "rosen.py").write_text(PROBLEM_SOURCE)
    (tmp_path / "kill.py").write_text(KILL_SCRIPT)
    ckpt = tmp_path / f"{kind}.npz"
    # the child compiles with this process's XLA settings (the optimisation level changes
    # the last bits of the iterates)
    light = "1" if jax.config.values.get("jax_disable_most_optimizations") else "0"
    env = {**os.environ, "JAX_ENABLE_X64": "1", "JAX_DISABLE_MOST_OPTIMIZATIONS": light}
    proc = subprocess.run([sys.executable, str(tmp_path / "kill.py"), kind, str(ckpt), "3"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    meta, _ = _checkpoint.read_checkpoint(ckpt)
    # the kill left a mid-run checkpoint (not a finished one)
    assert not meta["position"]["done"] if "position" in meta else not meta["done"]
    resumed = search(kind, checkpoint=ckpt, resume=True)
    _assert_same_run(reference[kind], resumed)
    # a finished checkpoint rebuilds the result without computing anything
    again = search(kind, checkpoint=ckpt, resume=True)
    _assert_same_run(reference[kind], again)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("after", [1, 4])
def test_interrupt_leaves_a_partial_result_and_resume_completes_it(kind, after, reference, tmp_path, monkeypatch):
    ckpt = tmp_path / "search.npz"
    with monkeypatch.context() as mp:
        _stop_after(mp, after)
        with pytest.raises(SearchInterrupted) as info:
            search(kind, checkpoint=ckpt)
    partial = info.value.partial
    assert info.value.checkpoint == ckpt
    assert partial.attrs["status"] == "interrupted" and partial.attrs["converged"] == 0
    ref = reference[kind]
    # the partial history is the beginning of the uninterrupted one
    if "iteration" in ref.dims:
        n = partial.sizes["iteration"]
        assert 0 < n < ref.sizes["iteration"]
        np.testing.assert_array_equal(partial["f"].values, ref["f"].values[:n])
    else:
        n = partial.sizes["generation"]
        assert n == after
        np.testing.assert_array_equal(history(partial)["f"].values, history(ref)["f"].values[:n])
    _assert_same_run(ref, search(kind, checkpoint=ckpt, resume=True))


def test_a_checkpoint_of_another_search_is_refused(tmp_path, monkeypatch):
    ckpt = tmp_path / "ga.npz"
    with monkeypatch.context() as mp:
        _stop_after(mp, 2)
        with pytest.raises(SearchInterrupted):
            search("ga", checkpoint=ckpt)
    with pytest.raises(ValueError, match=r"ga\.npz.*different search.*seed"):
        genetic_search(PROBLEMS[1], pop_size=16, n_gen=10, seed=6, progress=False, checkpoint=ckpt, resume=True)
    with pytest.raises(ValueError, match=r"different search"):
        gradient_search(PROBLEMS[1], "adam", max_iter=200, progress=False, checkpoint=ckpt, resume=True)
    (tmp_path / "junk.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.npz"):
        search("ga", checkpoint=tmp_path / "junk.npz", resume=True)
    with pytest.raises(ValueError, match="checkpoint"):
        gradient_search(PROBLEMS[1], "adam", progress=False, resume=True)


def test_checkpoints_are_plain_arrays_written_atomically(tmp_path, monkeypatch):
    ckpt = tmp_path / "adam.npz"
    search("adam", checkpoint=ckpt)
    with np.load(ckpt, allow_pickle=False) as z:  # no object arrays anywhere
        assert all(z[k].dtype != object for k in z.files)
    assert (ckpt.stat().st_mode & 0o777) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["adam.npz"]  # no temporaries left


def test_checkpointing_block_numbers_the_searches(tmp_path):
    prefix = tmp_path / "run"
    with checkpointing(prefix):
        search("ga")
        search("adam")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["run.checkpoint-0.npz", "run.checkpoint-1.npz"]


# ----------------------------------------------------------------------------- CLI


def _entry():
    def run(method, seed, quick, progress):
        return search("nsga2" if method == "genetic" else "adam", checkpoint=None)

    return ProblemEntry("rosen", "Rosenbrock test problem", ("gradient", "genetic"), run=run, plot=lambda ds, folder: [])


@pytest.mark.parametrize("method", ["gradient", "genetic"])
def test_cli_interrupt_and_resume(method, reference, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "available_problems", lambda: {"rosen": _entry()})
    out = tmp_path / "out"
    argv = ["run", "rosen", "--method", method, "--out", str(out), "--no-progress"]
    with monkeypatch.context() as mp:
        _stop_after(mp, 2)
        assert cli.main(argv) == 130
    err = capsys.readouterr().err
    assert "--resume" in err and "partial result" in err
    tag = f"rosen-{method}"
    partial = load(out / f"{tag}.partial.nc")
    assert partial.attrs["status"] == "interrupted"
    assert (out / f"{tag}.checkpoint-0.npz").exists() and not (out / f"{tag}.nc").exists()
    # starting over without --resume is announced; with --resume it continues
    assert cli.main(argv + ["--resume"]) == 0
    assert "resuming from 1 checkpoint" in capsys.readouterr().out
    done = load(out / f"{tag}.nc")
    _assert_same_run(reference["nsga2" if method == "genetic" else "adam"], done)
    assert sorted(p.name for p in out.glob(f"{tag}.*")) == [f"{tag}.nc"]  # checkpoint and partial removed
