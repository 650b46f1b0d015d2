"""`invdesign.reference` stays behind the test extra: nothing else in the package imports it,
and its mpmath modules fail with an ImportError that names the fix when mpmath is missing."""

import importlib
import re
import sys
from pathlib import Path

import pytest

import invdesign

PACKAGE = Path(invdesign.__file__).resolve().parent


def test_nothing_else_in_invdesign_imports_the_references():
    pattern = re.compile(r"^\s*(from\s+invdesign\.reference|import\s+invdesign\.reference|from\s+\.+reference)",
                         re.MULTILINE)
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if "reference" not in p.relative_to(PACKAGE).parts and pattern.search(p.read_text())]
    assert offenders == []


def test_references_do_not_import_invdesign_physics():
    for path in (PACKAGE / "reference").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+invdesign", text, re.MULTILINE), path.name
        assert not re.search(r"^\s*from\s+\.\.", text, re.MULTILINE), path.name


@pytest.mark.parametrize("name", ["invdesign.reference.newell", "invdesign.reference.levitation"])
def test_missing_mpmath_names_the_test_extra(name, monkeypatch):
    monkeypatch.setitem(sys.modules, "mpmath", None)  # makes `import mpmath` raise ImportError
    monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(ImportError, match=re.escape('pip install -e ".[test]"')):
        importlib.import_module(name)


def test_paper_loop_needs_no_mpmath(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpmath", None)
    monkeypatch.delitem(sys.modules, "invdesign.reference.paper_loop", raising=False)
    module = importlib.import_module("invdesign.reference.paper_loop")
    assert module.MU0 == pytest.approx(1.25663706212e-6, rel=1e-15)
