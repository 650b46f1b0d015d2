"""The problem registry: `ProblemEntry` checks and entry-point discovery (with a fake
installed distribution on `sys.path`)."""

import textwrap

import pytest

from invdesign.optimize import ProblemEntry, available_problems, summary_table


def _run(method, seed=0, quick=False, progress=True):
    raise AssertionError("not called")


def _plot(ds, out_dir):
    return []


def test_entry_defaults_and_checks():
    entry = ProblemEntry("toy", "a toy", ["gradient"], run=_run, plot=_plot)
    assert entry.methods == ("gradient",) and entry.summary is summary_table
    assert ProblemEntry("toy", "a toy", "genetic", run=_run, plot=_plot).methods == ("genetic",)
    with pytest.raises(ValueError, match="name must be a non-empty string without spaces"):
        ProblemEntry("my toy", "a toy", ("gradient",), run=_run, plot=_plot)
    with pytest.raises(ValueError, match=r"'toy': methods must be a non-empty sequence of \['gradient', 'genetic', 'hybrid'\]"):
        ProblemEntry("toy", "a toy", ("newton",), run=_run, plot=_plot)
    with pytest.raises(ValueError, match="methods"):
        ProblemEntry("toy", "a toy", (), run=_run, plot=_plot)
    with pytest.raises(TypeError, match="'toy': plot must be callable"):
        ProblemEntry("toy", "a toy", ("gradient",), run=_run, plot="plot.png")


def _fake_distribution(root, name, target):
    """A minimal installed distribution whose ``invdesign.problems`` entry point names `target`."""
    info = root / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[invdesign.problems]\n{name} = {target}\n")


def test_entry_points_are_found_sorted_and_checked(tmp_path, monkeypatch):
    (tmp_path / "fake_toy_problem.py").write_text(textwrap.dedent("""
        from invdesign.optimize import ProblemEntry

        ENTRY = ProblemEntry("aaa-toy", "a registered toy", ("genetic",), run=print, plot=print)
        NOT_AN_ENTRY = 42
    """))
    _fake_distribution(tmp_path, "fake-toy", "fake_toy_problem:ENTRY")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = available_problems()
    assert "aaa-toy" in found and found["aaa-toy"].description == "a registered toy"
    assert list(found) == sorted(found)
    assert all(isinstance(e, ProblemEntry) for e in found.values())

    _fake_distribution(tmp_path, "fake-bad", "fake_toy_problem:NOT_AN_ENTRY")
    with pytest.raises(TypeError, match=r"entry point 'fake-bad' \(fake_toy_problem:NOT_AN_ENTRY\).*must name a ProblemEntry, got int"):
        available_problems()


def test_verify_is_only_offered_by_surrogate_problems(capsys):
    from invdesign import cli

    assert cli.main(["run", "coil-trap", "--verify", "2"]) == 2
    assert "--verify" in capsys.readouterr().err
    assert cli.main(["run", "coil-trap", "--verify", "-1"]) == 2
    assert "--verify must be >= 0" in capsys.readouterr().err
