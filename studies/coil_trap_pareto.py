"""Pareto front of the concentric chip trap: lowest trap frequency vs current vs trap depth.

Runs NSGA-II (`invdesign_problems.coil_trap.pareto_problem`) over the two currents and the two loop
radii of the concentric trap levitating the paper's 5 um niobium sphere, saves the result
dataset and draws the front (three pairwise projections coloured by the third objective).

    python studies/coil_trap_pareto.py [--pop 80] [--gen 60] [--seed 0] [--out studies/figures]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from invdesign.optimize import genetic_search, save, summary_table
from invdesign.plot import display_scale, savefig
from invdesign_problems.coil_trap import pareto_problem


def draw_front(ds, path):
    names = json.loads(ds.attrs["objectives"])  # freq_min, current, depth
    pairs = [(names[1], names[0], names[2]), (names[1], names[2], names[0]), (names[2], names[0], names[1])]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    for ax, (x, y, c) in zip(axes, pairs):
        fx, ux = display_scale(ds[x].values, ds[x].attrs["units"])
        fy, uy = display_scale(ds[y].values, ds[y].attrs["units"])
        fc, uc = display_scale(ds[c].values, ds[c].attrs["units"])
        hx, hy = ds[f"history_{x}"].values.ravel() * fx, ds[f"history_{y}"].values.ravel() * fy
        feasible = ds["history_cv"].values.ravel() <= 0
        ax.scatter(hx[feasible], hy[feasible], s=4, c="0.85", label="feasible designs seen")
        sc = ax.scatter(ds[x].values * fx, ds[y].values * fy, c=ds[c].values * fc, s=24, cmap="viridis",
                        label="Pareto set")
        fig.colorbar(sc, ax=ax, label=f"{ds[c].attrs['long_name']} [{uc}]")
        ax.set_xlabel(f"{ds[x].attrs['long_name']} [{ux}]")
        ax.set_ylabel(f"{ds[y].attrs['long_name']} [{uy}]")
        lo = np.nanpercentile(hy[feasible], 1) if feasible.any() else None
        if lo is not None:
            ax.set_ylim(bottom=min(lo, np.nanmin(ds[y].values * fy)))
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Concentric chip trap, 5 um Nb sphere (k = 1): NSGA-II Pareto front of trap frequency, "
                 "current and trap depth")
    fig.tight_layout()
    return savefig(fig, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pop", type=int, default=80)
    parser.add_argument("--gen", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "figures"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = genetic_search(pareto_problem(), algorithm="nsga2", pop_size=args.pop, n_gen=args.gen,
                        seed=args.seed)
    save(ds, out / "coil_trap_pareto.nc")
    png = draw_front(ds, out / "coil_trap_pareto.png")
    print(summary_table(ds))
    print(f"{ds.sizes['solution']} Pareto-optimal designs; dataset {out / 'coil_trap_pareto.nc'}; plot {png}")
    for key in ("freq_min", "current", "depth", "height"):
        v = ds[key].values
        print(f"  {key:<9s} range on the front: {v.min():.4g} .. {v.max():.4g} {ds[key].attrs['units']}")


if __name__ == "__main__":
    main()
