"""The command line is honest about progress and files (issue 13, section 3).

- the L-BFGS bar of `gradient_search` has no made-up total (max_iter * outer_iters is a cap,
  not a forecast) and shows the convergence measures as its postfix; `progress=False` is silent;
- `invdesign run` names its files after problem, method, seed and --quick, so such runs never
  overwrite each other, and says so when a repeated run replaces its own earlier files;
- bad paths (`show` on a text file or a folder, an unusable `--out`) give one-line errors with
  exit code 2 that name the path, not tracebacks.

The CLI runs use a toy `ProblemEntry` (a one-parameter quadratic) put in place of the registry,
so no physics runs here; `tests/problems/test_coil_trap.py` runs a real problem end to end.
"""

import functools
import os

import numpy as np
import pytest

import invdesign  # noqa: F401
from invdesign import cli
from invdesign.optimize import (
    Constraint,
    DesignProblem,
    DesignSpace,
    Objective,
    Parameter,
    ProblemEntry,
    gradient_search,
    load,
)
from invdesign.optimize import _gradient


@functools.lru_cache
def _problem():
    """min (x - 2)^2 s.t. x <= 1 on [-3, 3]: the answer is x = 1 with the constraint active."""
    space = DesignSpace([Parameter("x", -3.0, 3.0, "m")])
    return DesignProblem(
        "toy", space, lambda p: {"f": (p["x"] - 2.0) ** 2, "g": p["x"] - 1.0},
        [Objective("f", units="m^2")], [Constraint("g", units="m")],
    )


# ---------------------------------------------------------------- progress of gradient_search


class _RecordingBar:
    """Stands in for tqdm: records how the bar was made and every postfix it was given."""

    made: list = []

    def __init__(self, *args, **kwargs):
        self.kwargs = kwargs
        self.disable = kwargs.get("disable", False)
        self.postfixes = []
        self.updates = 0
        _RecordingBar.made.append(self)

    def update(self, n):
        self.updates += n

    def set_postfix(self, post=None, refresh=True, **kw):
        self.postfixes.append(dict(post or {}, **kw))

    def close(self):
        pass


def test_gradient_progress_has_no_fake_total_and_shows_convergence(monkeypatch):
    monkeypatch.setattr(_gradient, "tqdm", _RecordingBar)
    _RecordingBar.made = []
    ds = gradient_search(_problem(), max_iter=1000, outer_iters=20, progress=True, chunk_size=16)
    (bar,) = _RecordingBar.made
    # the old bar's total was max_iter * outer_iters = 20000 for a run of a few dozen steps
    assert bar.kwargs["total"] is None
    assert bar.updates == ds.sizes["iteration"] < 1000
    last = bar.postfixes[-1]
    assert set(last) == {"outer", "viol", "grad", "tol", "L"}
    assert float(last["grad"]) == pytest.approx(float(ds["grad_norm"][-1]), rel=0.05)
    assert float(last["viol"]) == pytest.approx(float(ds["max_violation"][-1]), rel=0.05, abs=1e-12)
    assert float(last["tol"]) == 1e-8
    n_outer, cap = last["outer"].split("/")
    assert int(n_outer) == int(ds["outer"][-1]) + 1 and int(cap) == 20
    assert float(ds["x"][-1]) == pytest.approx(1.0, abs=1e-6)


def test_gradient_progress_false_is_silent(capfd):
    ds = gradient_search(_problem(), progress=False)
    assert ds.attrs["converged"] == 1
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_gradient_progress_false_computes_no_postfix(monkeypatch):
    monkeypatch.setattr(_gradient, "tqdm", _RecordingBar)
    _RecordingBar.made = []
    gradient_search(_problem(), progress=False)
    (bar,) = _RecordingBar.made
    assert bar.disable and bar.postfixes == []


# ---------------------------------------------------------------- file names of `invdesign run`


def test_run_tag_carries_method_seed_and_quick():
    assert cli.run_tag("coil-trap", "gradient", 0, False) == "coil-trap-gradient"  # the default run
    assert cli.run_tag("coil-trap", "gradient", 0, True) == "coil-trap-gradient-quick"
    assert cli.run_tag("coil-trap", "genetic", 3, False) == "coil-trap-genetic-seed3"
    assert cli.run_tag("coil-trap", "gradient", 7, True) == "coil-trap-gradient-seed7-quick"
    tags = {cli.run_tag("p", m, s, q) for m in ("gradient", "genetic") for s in (0, 1, 12) for q in (False, True)}
    assert len(tags) == 12


def _toy_entry(calls):
    def run(method, seed, quick, progress):
        calls.append((method, seed, quick))
        if quick:
            return gradient_search(_problem(), max_iter=5, outer_iters=1, seed=seed, progress=False)
        return gradient_search(_problem(), seed=seed, progress=False)

    def plot(ds, out_dir):
        # like the problems' plots: PROBLEM-what.png; the content tells the runs apart
        path = out_dir / f"{ds.attrs['problem']}-history.png"
        path.write_bytes(f"seed {ds.attrs['seed']} n {ds.sizes['iteration']}".encode())
        return [path]

    return ProblemEntry("toy", "a toy", ("gradient",), run=run, plot=plot)


@pytest.fixture
def toy_cli(monkeypatch):
    calls = []
    monkeypatch.setattr(cli, "available_problems", lambda: {"toy": _toy_entry(calls)})
    return calls


def test_seed_and_quick_runs_do_not_overwrite_each_other(tmp_path, toy_cli, capsys):
    out = tmp_path / "shared"
    for argv in ([], ["--seed", "3"], ["--quick"], ["--seed", "3", "--quick"]):
        assert cli.main(["run", "toy", "--out", str(out), "--no-progress", *argv]) == 0
    assert toy_cli == [("gradient", 0, False), ("gradient", 3, False), ("gradient", 0, True), ("gradient", 3, True)]
    files = sorted(os.listdir(out))
    assert files == sorted(
        f"{tag}{ext}"
        for tag in ("toy-gradient", "toy-gradient-seed3", "toy-gradient-quick", "toy-gradient-seed3-quick")
        for ext in (".nc", "-history.png")
    )  # and no temporary plot folder left behind
    assert int(load(out / "toy-gradient-seed3.nc").attrs["seed"]) == 3
    assert load(out / "toy-gradient-quick.nc").sizes["iteration"] == 5
    assert (out / "toy-gradient-seed3-history.png").read_bytes().startswith(b"seed 3 n ")
    assert (out / "toy-gradient-quick-history.png").read_bytes() == b"seed 0 n 5"
    text = capsys.readouterr().out
    assert f"dataset: {out / 'toy-gradient-seed3-quick.nc'}" in text
    assert f"plot:    {out / 'toy-gradient-seed3-quick-history.png'}" in text
    assert "note:" not in text  # nothing was replaced


def test_repeated_run_says_it_replaces_its_files(tmp_path, toy_cli, capsys):
    out = tmp_path / "o"
    assert cli.main(["run", "toy", "--quick", "--out", str(out), "--no-progress"]) == 0
    assert "note:" not in capsys.readouterr().out
    assert cli.main(["run", "toy", "--quick", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert f"note: {out / 'toy-gradient-quick.nc'} exists" in text and "replaced" in text


def test_default_out_folder_is_named_after_the_run(tmp_path, toy_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "toy", "--seed", "2", "--quick", "--no-progress"]) == 0
    assert (tmp_path / "runs" / "toy-gradient-seed2-quick" / "toy-gradient-seed2-quick.nc").is_file()


def test_run_help_documents_the_file_names(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "PROBLEM-METHOD[-seedN][-quick]" in text and "never overwrite each other" in text


# ---------------------------------------------------------------- one-line errors for bad paths


def _one_line_error(capsys, *needles):
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "Traceback" not in captured.err and len(err.splitlines()) == 1, captured.err
    assert err.startswith("error: ")
    for needle in needles:
        assert needle in err, err
    return err


def test_show_on_a_text_file(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("not a dataset\n")
    assert cli.main(["show", str(path)]) == 2
    _one_line_error(capsys, repr(str(path)), "is not a netCDF")


def test_show_on_a_folder(tmp_path, capsys):
    assert cli.main(["show", str(tmp_path)]) == 2
    err = _one_line_error(capsys, repr(str(tmp_path)), "is a folder")
    assert "does not exist" not in err


def test_show_on_a_missing_file(tmp_path, capsys):
    assert cli.main(["show", str(tmp_path / "nope.nc")]) == 2
    _one_line_error(capsys, repr(str(tmp_path / "nope.nc")), "does not exist")


def test_show_on_an_unreadable_file(tmp_path, capsys, monkeypatch):
    path = tmp_path / "locked.nc"
    path.write_bytes(b"")

    def denied(p):  # what h5py raises for a file without read permission (root is never denied)
        raise PermissionError(13, "Permission denied", str(p))

    monkeypatch.setattr(cli, "load", denied)
    assert cli.main(["show", str(path)]) == 2
    _one_line_error(capsys, repr(str(path)), "cannot be read", "Permission denied")


def test_run_out_is_a_file(tmp_path, capsys, toy_cli):
    path = tmp_path / "a-file"
    path.write_text("x")
    assert cli.main(["run", "toy", "--quick", "--out", str(path), "--no-progress"]) == 2
    _one_line_error(capsys, f"--out {str(path)!r}", "is a file, not a folder")
    assert toy_cli == []  # refused before the search ran


def test_run_out_cannot_be_created(tmp_path, capsys, toy_cli):
    (tmp_path / "a-file").write_text("x")
    out = tmp_path / "a-file" / "sub"
    assert cli.main(["run", "toy", "--quick", "--out", str(out), "--no-progress"]) == 2
    _one_line_error(capsys, f"--out {str(out)!r}", "cannot create the folder")
    assert toy_cli == []


def test_run_out_is_not_writable(tmp_path, capsys, toy_cli, monkeypatch):
    out = tmp_path / "locked"
    out.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: make the probe file fail as it would for a user
        def denied(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(cli.tempfile, "TemporaryFile", denied)
    out.chmod(0o555)
    try:
        assert cli.main(["run", "toy", "--quick", "--out", str(out), "--no-progress"]) == 2
        _one_line_error(capsys, f"--out {str(out)!r}", "cannot write files in this folder", "Permission denied")
        assert toy_cli == [] and os.listdir(out) == []
    finally:
        out.chmod(0o755)


def test_run_write_failure_after_the_search(tmp_path, capsys, toy_cli, monkeypatch):
    # the folder was fine when checked but the write fails later (disk full, folder removed)
    def failing_save(ds, path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(cli, "save", failing_save)
    assert cli.main(["run", "toy", "--quick", "--out", str(tmp_path), "--no-progress"]) == 2
    _one_line_error(capsys, repr(str(tmp_path / "toy-gradient-quick.nc")), "No space left on device")
    assert np.all([not n.endswith(".png") for n in os.listdir(tmp_path)])
