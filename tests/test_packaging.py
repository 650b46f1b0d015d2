"""Packaging: every package folder is installed under its import name, and the problems
and surrogates folders install under namespaced names (not generic top-level ones)."""

import importlib
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _import_name(folder: Path) -> str:
    rel = folder.relative_to(ROOT).parts
    mapping = {v: k for k, v in CONFIG["package-dir"].items()}
    return ".".join((mapping.get(rel[0], rel[0]),) + rel[1:])


def test_every_package_folder_is_listed():
    folders = [p.parent for top in ("invdesign", "problems", "surrogates") for p in (ROOT / top).rglob("__init__.py")]
    names = sorted(_import_name(f) for f in folders)
    assert names == sorted(CONFIG["packages"])


def test_problems_and_surrogates_install_namespaced():
    assert CONFIG["package-dir"] == {"invdesign_problems": "problems", "invdesign_surrogates": "surrogates"}
    assert not any(n.split(".")[0] in ("problems", "surrogates") for n in CONFIG["packages"])
    for name in ("invdesign_problems.cavity", "invdesign_problems.coil_trap", "invdesign_surrogates.data.dynamics"):
        module = importlib.import_module(name)
        assert Path(module.__file__).resolve().is_relative_to(ROOT)


def test_the_wheel_carries_the_shipped_data_and_weights(tmp_path):
    # `pip install .` (not editable) must bring the shipped labeled data and surrogate
    # weights: build the wheel and look inside
    import subprocess
    import sys
    import zipfile

    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)],
        check=True, capture_output=True, cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("invdesign-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [p for p in (ROOT / "surrogates").rglob("shipped/*") if p.is_file()]
    assert shipped, "no shipped files found in surrogates/"
    for path in shipped:
        rel = path.relative_to(ROOT / "surrogates")
        assert f"invdesign_surrogates/{rel.as_posix()}" in names, f"{rel} is missing from the wheel"
