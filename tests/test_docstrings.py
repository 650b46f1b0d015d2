"""The `>>>` examples in the docstrings of `invdesign`, `invdesign_problems` and `invdesign_surrogates` run and
print what they claim: module docstrings, functions, classes and their methods/properties.

Docstrings use Markdown code fences around the examples; the fences are stripped before
handing the text to `doctest` (ELLIPSIS and NORMALIZE_WHITESPACE enabled). Importing the
packages must stay cheap (no computation at import), which walking them here also checks.
"""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import invdesign
import invdesign_problems
import invdesign_surrogates

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
PACKAGES = (invdesign, invdesign_problems, invdesign_surrogates)


def _members(cls):
    """(name, docstring) of the methods and properties defined on `cls` itself."""
    for name, attr in vars(cls).items():
        if isinstance(attr, (staticmethod, classmethod)):
            attr = attr.__func__
        elif isinstance(attr, property):
            attr = attr.fget
        if inspect.isfunction(attr) and attr.__doc__:
            yield name, inspect.cleandoc(attr.__doc__)


WALKED = []


def _examples():
    found = []
    for package in PACKAGES:
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.endswith("cli"):
                continue
            module = importlib.import_module(info.name)
            WALKED.append(info.name)
            docs = [(info.name, inspect.getdoc(module))]
            for name, obj in vars(module).items():
                if getattr(obj, "__module__", None) != module.__name__:
                    continue
                if inspect.isfunction(obj) or inspect.isclass(obj):
                    docs.append((f"{info.name}.{name}", inspect.getdoc(obj)))
                if inspect.isclass(obj):
                    docs += [(f"{info.name}.{name}.{m}", d) for m, d in _members(obj)]
            found += [(where, doc, module) for where, doc in docs if doc and ">>>" in doc]
    return found


EXAMPLES = _examples()


def test_there_are_examples():
    assert len(EXAMPLES) >= 10
    assert {"invdesign_problems.cavity", "invdesign_problems.coil_trap", "invdesign_surrogates.data.dynamics",
            "invdesign_surrogates.data.hysteresis", "invdesign.reference.paper_loop"} <= set(WALKED)
    names = {name for name, _, _ in EXAMPLES}
    assert {"invdesign_surrogates.data.dynamics.sample_fields", "invdesign.reference.paper_loop",
            "invdesign.micromag._grid.Material.uniform"} <= names


@pytest.mark.parametrize("name,doc,module", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_docstring_example_runs(name, doc, module):
    text = "\n".join(line for line in doc.splitlines() if not line.strip().startswith("```"))
    globs = dict(vars(module))
    test = doctest.DocTestParser().get_doctest(text, globs, name, module.__file__, 0)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    out = []
    runner.run(test, out=out.append)
    assert runner.failures == 0, "".join(out)
