"""The `invdesign` command: list design problems, run one, show a saved result.

    invdesign list
    invdesign run coil-trap [--method gradient|genetic|hybrid] [--out DIR] [--seed N] [--quick] [--resume]
                            (writes DIR/coil-trap-METHOD[-seedN][-quick].nc and .png plots)
    invdesign show results.nc

Design problems live outside the core library (folder `problems/`, import name `invdesign_problems`) and register
themselves through the ``invdesign.problems`` entry-point group, so `invdesign` never
imports them directly. Each entry point names an `invdesign.optimize.ProblemEntry`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from .optimize import SearchInterrupted, available_problems, checkpointing, load, save
from .optimize._checkpoint import checkpoint_files

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


def run_tag(problem: str, method: str, seed: int, quick: bool) -> str:
    """The name of one run's files: ``PROBLEM-METHOD[-seedN][-quick]``.

    The seed appears when it is not the default 0 and ``-quick`` for `--quick` runs, so runs
    that differ in method, seed or `--quick` never share a file name, and the default run
    keeps the plain name (``coil-trap-gradient``).
    """
    return f"{problem}-{method}" + (f"-seed{seed}" if seed != 0 else "") + ("-quick" if quick else "")


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _prepare_out(out: Path) -> str | None:
    """Create the output folder and check that it takes files; a one-line error or None."""
    if out.exists() and not out.is_dir():
        return f"--out {str(out)!r} is a file, not a folder"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"--out {str(out)!r}: cannot create the folder ({_reason(exc)})"
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        return f"--out {str(out)!r}: cannot write files in this folder ({_reason(exc)})"
    return None


def _place_plots(pngs, tmp: Path, out: Path, problem: str, tag: str) -> list[Path]:
    """Move the plots written into `tmp` to `out`, their names carrying the run tag.

    Problem plots are named ``PROBLEM-what.png``; they become ``TAG-what.png``
    (``coil-trap-history.png`` -> ``coil-trap-gradient-seed3-history.png``).
    """
    placed = []
    for p in map(Path, pngs):
        if p.parent.resolve() != tmp.resolve():
            placed.append(p)  # written elsewhere by the problem's plot: leave it where it is
            continue
        rest = p.name[len(problem):] if p.name.startswith(problem + "-") else "-" + p.name
        dest = out / (tag + rest)
        os.replace(p, dest)
        placed.append(dest)
    return placed


def _cmd_run(args) -> int:
    problems = available_problems()
    if args.problem not in problems:
        return _error(f"unknown problem {args.problem!r}; choose one of: {', '.join(problems)}")
    entry = problems[args.problem]
    method = args.method or entry.methods[0]
    if method not in entry.methods:
        return _error(f"--method must be one of {', '.join(entry.methods)} for {entry.name}, got {method!r}")
    if args.verify is not None and args.verify < 0:
        return _error(f"--verify must be >= 0 (designs to re-check with the solver), got {args.verify}")
    if args.verify and not entry.verifies:
        return _error(f"--verify: {entry.name} is not searched on a surrogate, so there is nothing to re-check")
    if args.refine is not None and args.refine < 0:
        return _error(f"--refine must be >= 0 (extra solver runs), got {args.refine}")
    if args.refine and not entry.refines:
        return _error(f"--refine: {entry.name} has no solver-checked refinement "
                      f"(problems with one: {', '.join(n for n, e in problems.items() if e.refines) or 'none'})")
    tag = run_tag(entry.name, method, args.seed, args.quick)
    out = Path(args.out) if args.out else Path("runs") / tag
    problem_msg = _prepare_out(out)
    if problem_msg:
        return _error(problem_msg)
    path = out / f"{tag}.nc"
    prefix = out / tag
    partial_path = out / f"{tag}.partial.nc"
    print(f"running {entry.name} with {method} search (seed {args.seed}{', quick' if args.quick else ''}) -> {path}")
    existing = checkpoint_files(prefix)
    if args.resume:
        print(f"resuming from {len(existing)} checkpoint file(s) in {out}" if existing
              else f"note: --resume, but {out} holds no checkpoint of this run; starting from the beginning")
    elif existing:
        print(f"note: {out} holds checkpoints of an interrupted run; starting over (--resume continues it)")
    if path.exists():
        print(f"note: {path} exists (an earlier run with the same problem, method, seed and --quick); "
              "it is replaced when this run finishes")
    t0 = time.perf_counter()
    extra = {"verify": args.verify} if entry.verifies and args.verify is not None else {}
    if entry.refines and args.refine:
        extra["refine"] = args.refine
    try:
        with _sigterm_as_interrupt(), checkpointing(prefix, resume=args.resume):
            ds = entry.run(method=method, seed=args.seed, quick=args.quick, progress=not args.no_progress, **extra)
    except KeyboardInterrupt as exc:
        command = (f"invdesign run {entry.name} --method {method} --out {out}"
                   + (f" --seed {args.seed}" if args.seed else "") + (" --quick" if args.quick else "")
                   + (f" --verify {args.verify}" if args.verify else "")
                   + (f" --refine {args.refine}" if args.refine else "") + " --resume")
        return _interrupted(exc, partial_path, command)
    except FileNotFoundError as exc:  # missing weights or data of a surrogate problem: the message says which
        return _error(str(exc))
    elapsed = time.perf_counter() - t0
    try:
        save(ds, path)
        tmp = Path(tempfile.mkdtemp(prefix=".plots-", dir=out))
        try:
            pngs = _place_plots(entry.plot(ds, tmp), tmp, out, entry.name, tag)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        name = exc.filename or path
        return _error(f"cannot write {str(name)!r} ({_reason(exc)}); the search result is lost")
    for f in checkpoint_files(prefix) + [partial_path]:
        f.unlink(missing_ok=True)  # the finished result replaces them
    print(entry.summary(ds))
    print(f"\nsearch took {elapsed:.1f} s")
    print(f"dataset: {path}")
    for p in pngs:
        print(f"plot:    {p}")
    return 0


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (e.g. from a batch scheduler) stops the run like Ctrl-C (main thread only)."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _interrupted(exc: KeyboardInterrupt, partial_path: Path, resume: str) -> int:
    """Save the partial result of an interrupted run and say how to continue; exit status 130."""
    partial = getattr(exc, "partial", None) if isinstance(exc, SearchInterrupted) else None
    if partial is not None:
        try:
            save(partial, partial_path)
            print(f"\ninterrupted: partial result (marked status=interrupted) in {partial_path}", file=sys.stderr)
        except OSError as err:
            print(f"\ninterrupted: could not write the partial result {str(partial_path)!r} ({_reason(err)})",
                  file=sys.stderr)
    else:
        print("\ninterrupted before the first finished iteration", file=sys.stderr)
    print(f"continue with: {resume}", file=sys.stderr)
    return 130


def _cmd_show(args) -> int:
    path = Path(args.file)
    if path.is_dir():
        return _error(f"FILE {str(path)!r} is a folder, not a dataset; give a .nc file written by `invdesign run`")
    if not path.exists():
        return _error(f"FILE {str(path)!r} does not exist")
    try:
        ds = load(path)
    except PermissionError as exc:
        return _error(f"FILE {str(path)!r} cannot be read ({_reason(exc)})")
    except (OSError, ValueError) as exc:
        return _error(
            f"FILE {str(path)!r} is not a netCDF (HDF5) dataset written by `invdesign run` "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        )
    print(ds)
    settings = ds.attrs.get("settings")
    if settings:
        try:
            settings = json.dumps(json.loads(settings), indent=2)
        except (TypeError, ValueError):
            pass
        print("\nsettings:", settings)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="invdesign", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the registered design problems")
    run = sub.add_parser(
        "run", help="run a design search and write dataset + plots",
        description="Run a design search and write its dataset and plots.",
        epilog=(
            "Output files are named after the run, TAG = PROBLEM-METHOD[-seedN][-quick] (the seed "
            "when it is not 0, -quick for --quick): the dataset OUT/TAG.nc and plots OUT/TAG-*.png, "
            "e.g. runs/coil-trap-gradient-seed3-quick/coil-trap-gradient-seed3-quick.nc. Runs that "
            "differ in method, seed or --quick therefore never overwrite each other, even with a "
            "shared --out; repeating the same run replaces its files, and says so before it starts. "
            "While a search runs it checkpoints to OUT/TAG.checkpoint-N.npz; Ctrl-C or SIGTERM saves "
            "the result so far as OUT/TAG.partial.nc, and --resume continues from the checkpoints."
        ),
    )
    run.add_argument("problem", help="problem name (see `invdesign list`)")
    run.add_argument("--method", choices=["gradient", "genetic", "hybrid"], default=None,
                     help="search method (default: the problem's first method)")
    run.add_argument("--out", default=None, help="output directory (default runs/TAG, see below)")
    run.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    run.add_argument("--quick", action="store_true", help="small, fast settings (smoke test)")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.add_argument("--resume", action="store_true",
                     help="continue an interrupted run of the same problem, method, seed and --quick from "
                          "its checkpoints in OUT (searches checkpoint as they go)")
    run.add_argument("--verify", type=int, default=None, metavar="N",
                     help="surrogate problems: re-check the best N designs with the full solver (default: the "
                          "problem's, 0 for microstructure, 1 for switching)")
    run.add_argument("--refine", type=int, default=None, metavar="N",
                     help="switching: after the check, up to N more solver runs that correct the surrogate "
                          "where the solver disagrees and search again; reports the smallest field the "
                          "solver confirms (about 15 s per run on 2 cores)")
    show = sub.add_parser("show", help="print a saved result dataset")
    show.add_argument("file", help="a .nc file written by `invdesign run`")
    args = parser.parse_args(argv)
    return {"list": _cmd_list, "run": _cmd_run, "show": _cmd_show}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
