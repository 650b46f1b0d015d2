"""muMAG standard problem 4 with invdesign.micromag, next to published and peer numbers.

Runs the s-state and both switching fields for 1 ns on the 128 x 32 x 1 grid (and, with
`--fine`, on the paper's 256 x 64 x 1 grid), prints the zero crossing of <mx> and <m> at
0.1, 0.2, 0.5, 1.0 ns beside the peer solvers' runs stored in tests/micromag/data, and
draws <m>(t) into studies/figures/micromag_sp4.png and a table micromag_sp4.md.

    python studies/micromag_sp4.py [--fine] [--out studies/figures]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from invdesign.micromag import (  # noqa: E402
    average_magnetization,
    first_zero_crossing,
    sp4_dynamics,
    sp4_initial_state,
    sp4_system,
)
from invdesign.plot import savefig  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "tests" / "micromag" / "data"
TIMES = (0.1e-9, 0.2e-9, 0.5e-9, 1.0e-9)


def _peer(name, field):
    path = DATA / f"sp4_field{field}_{name}_128x32.csv"
    lines = path.read_text().splitlines()
    n = sum(1 for line in lines if line.startswith("#"))
    return np.loadtxt(path, delimiter=",", skiprows=n + 1)


def _row(label, t, m):
    at = [np.array([np.interp(tt, t, m[:, k]) for k in range(3)]) for tt in TIMES]
    t0 = first_zero_crossing(t, m[:, 0])
    cells = " | ".join("(" + ", ".join(f"{v:+.4f}" for v in a) + ")" for a in at)
    return f"| {label} | {m[0, 0]:.4f}, {m[0, 1]:.4f} | {t0 * 1e9:.5f} | {cells} |", t0


def run(grid):
    system = sp4_system(grid)
    s = sp4_initial_state(system)
    out = {"m0": np.asarray(average_magnetization(system, s.m))}
    for field in (1, 2):
        sol = sp4_dynamics(system, s.m, field, t_end=1e-9, dt_out=1e-12)
        out[field] = (np.asarray(sol.t), np.asarray(sol.values), int(sol.n_steps))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="studies/figures")
    p.add_argument("--fine", action="store_true", help="also run the 256 x 64 x 1 grid")
    a = p.parse_args(argv)
    out = Path(a.out)
    grids = [(128, 32, 1)] + ([(256, 64, 1)] if a.fine else [])
    runs = {g: run(g) for g in grids}
    lines = [
        "# muMAG standard problem 4",
        "",
        "Published reference for field 1: first zero crossing of <mx> near 0.1385 ns (OOMMF at",
        "2.5 nm cells, magnum.np, NeuralMag). Peer rows: runs of those codes on the same",
        "128 x 32 x 1 grid made here (tests/micromag/data, provenance in the file headers).",
        "",
    ]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for field, ax in zip((1, 2), axes):
        lines += [f"## Field {field}", "", "| solver | s-state <mx>, <my> | t(<mx> = 0) [ns] | <m>(0.1 ns) | <m>(0.2 ns) | <m>(0.5 ns) | <m>(1.0 ns) |", "|---|---|---|---|---|---|---|"]
        for g, r in runs.items():
            t, m, steps = r[field]
            row, t0 = _row(f"invdesign {g[0]}x{g[1]}x{g[2]} ({steps} steps)", t, m)
            lines.append(row)
            if field == 1:
                print(f"invdesign {g}: zero crossing {t0 * 1e9:.5f} ns ({(t0 / 0.1385e-9 - 1) * 100:+.2f} % vs 0.1385 ns)")
            for k, c in enumerate("xyz"):
                ax.plot(t * 1e9, m[:, k], label=f"<m{c}> {g[0]}x{g[1]}", lw=1.2 if g == grids[0] else 0.8)
        for name in ("magnumnp", "neuralmag"):
            ref = _peer(name, field)
            row, _ = _row(f"{name} 128x32x1", ref[:, 0], ref[:, 1:])
            lines.append(row)
            ax.plot(ref[::10, 0] * 1e9, ref[::10, 1], ".", ms=2, label=f"<mx> {name}")
        lines.append("")
        ax.set_title(f"SP4 field {field}")
        ax.set_xlabel("t (ns)")
        ax.axhline(0, color="k", lw=0.5)
    axes[0].set_ylabel("<m>")
    axes[1].legend(fontsize=7, loc="lower right")
    savefig(fig, out / "micromag_sp4.png")
    (out / "micromag_sp4.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
