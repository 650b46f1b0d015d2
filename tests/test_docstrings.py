"""The `>>>` examples in the library's docstrings run and print what they claim.

Docstrings use Markdown code fences around the examples; the fences are stripped before
handing the text to `doctest` (ELLIPSIS and NORMALIZE_WHITESPACE enabled).
"""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import invdesign

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _examples():
    found = []
    for info in pkgutil.walk_packages(invdesign.__path__, "invdesign."):
        if info.name.endswith("cli"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__:
                continue
            doc = inspect.getdoc(obj) if (inspect.isfunction(obj) or inspect.isclass(obj)) else None
            if doc and ">>>" in doc:
                found.append((f"{info.name}.{name}", doc, module))
    return found


EXAMPLES = _examples()


def test_there_are_examples():
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("name,doc,module", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_docstring_example_runs(name, doc, module):
    text = "\n".join(line for line in doc.splitlines() if not line.strip().startswith("```"))
    globs = dict(vars(module))
    test = doctest.DocTestParser().get_doctest(text, globs, name, module.__file__, 0)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    out = []
    runner.run(test, out=out.append)
    assert runner.failures == 0, "".join(out)
