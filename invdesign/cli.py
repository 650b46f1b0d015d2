"""The `invdesign` command: list design problems, run one, show a saved result.

    invdesign list
    invdesign run coil-trap [--method gradient|genetic] [--out DIR] [--seed N] [--quick]
    invdesign show results.nc

Design problems live outside the core library (folder `problems/`, import name `invdesign_problems`) and register
themselves through the ``invdesign.problems`` entry-point group, so `invdesign` never
imports them directly. Each entry point names an `invdesign.optimize.ProblemEntry`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .optimize import available_problems, load, save

__all__ = ["main"]


def _cmd_list(args) -> int:
    problems = available_problems()
    if not problems:
        print("no design problems are registered (is the package installed with `pip install -e .`?)")
        return 1
    width = max(len(n) for n in problems)
    for name, entry in problems.items():
        print(f"{name:<{width}}  [{'|'.join(entry.methods)}]  {entry.description}")
    return 0


def _cmd_run(args) -> int:
    problems = available_problems()
    if args.problem not in problems:
        print(f"error: unknown problem {args.problem!r}; choose one of: {', '.join(problems)}",
              file=sys.stderr)
        return 2
    entry = problems[args.problem]
    method = args.method or entry.methods[0]
    if method not in entry.methods:
        print(f"error: --method must be one of {', '.join(entry.methods)} for {entry.name}, got {method!r}",
              file=sys.stderr)
        return 2
    if args.verify < 0:
        print(f"error: --verify must be >= 0 (designs to re-check with the solver), got {args.verify}", file=sys.stderr)
        return 2
    if args.verify and not entry.verifies:
        print(f"error: --verify: {entry.name} is not searched on a surrogate, so there is nothing to re-check", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path("runs") / f"{entry.name}-{method}"
    out.mkdir(parents=True, exist_ok=True)
    print(f"running {entry.name} with {method} search (seed {args.seed}) -> {out}/")
    t0 = time.perf_counter()
    extra = {"verify": args.verify} if entry.verifies else {}
    ds = entry.run(method=method, seed=args.seed, quick=args.quick, progress=not args.no_progress, **extra)
    elapsed = time.perf_counter() - t0
    path = out / f"{entry.name}-{method}.nc"
    save(ds, path)
    pngs = entry.plot(ds, out)
    print(entry.summary(ds))
    print(f"\nsearch took {elapsed:.1f} s")
    print(f"dataset: {path}")
    for p in pngs:
        print(f"plot:    {p}")
    return 0


def _cmd_show(args) -> int:
    path = Path(args.file)
    if not path.is_file():
        print(f"error: FILE {str(path)!r} does not exist", file=sys.stderr)
        return 2
    ds = load(path)
    print(ds)
    settings = ds.attrs.get("settings")
    if settings:
        print("\nsettings:", json.dumps(json.loads(settings), indent=2))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="invdesign", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the registered design problems")
    run = sub.add_parser("run", help="run a design search and write dataset + plots")
    run.add_argument("problem", help="problem name (see `invdesign list`)")
    run.add_argument("--method", choices=["gradient", "genetic"], default=None,
                     help="search method (default: the problem's first method)")
    run.add_argument("--out", default=None, help="output directory (default runs/PROBLEM-METHOD)")
    run.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    run.add_argument("--quick", action="store_true", help="small, fast settings (smoke test)")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.add_argument("--verify", type=int, default=0, metavar="N",
                     help="surrogate problems: re-check the best N designs with the full solver (default 0)")
    show = sub.add_parser("show", help="print a saved result dataset")
    show.add_argument("file", help="a .nc file written by `invdesign run`")
    args = parser.parse_args(argv)
    return {"list": _cmd_list, "run": _cmd_run, "show": _cmd_show}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
