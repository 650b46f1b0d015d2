"""Refresh ``tests/file_weights.json`` from pytest junit reports (the suite's per-file seconds).

    python -m pytest --junitxml=/tmp/suite.xml
    python .ci/test_weights.py /tmp/suite.xml [more.xml ...]

The weights only order the test files for pytest-xdist (longest first, see tests/conftest.py);
stale or missing entries change the balance between workers, never which tests run.
"""

import collections
import json
import os
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "file_weights.json"


def file_seconds(reports):
    seconds = collections.Counter()
    for report in reports:
        for case in ET.parse(report).iter("testcase"):
            parts = case.get("classname", "").split(".")
            stem = next((i for i, p in enumerate(parts) if p.startswith("test_")), None)
            if stem is None:
                continue
            seconds["/".join(parts[: stem + 1]) + ".py"] += float(case.get("time", 0.0))
    return seconds


def main(argv):
    if not argv:
        sys.exit(__doc__)
    weights = dict(sorted(((k, round(v, 1)) for k, v in file_seconds(argv).items()), key=lambda kv: -kv[1]))
    fd, tmp = tempfile.mkstemp(dir=OUT.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(weights, f, indent=1)
        f.write("\n")
    os.replace(tmp, OUT)
    print(f"{len(weights)} files, {sum(weights.values()):.0f} s in all -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1:])
