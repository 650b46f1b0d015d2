"""Demagnetization curves of 2D Nd2Fe14B grain structures against Stoner-Wohlfarth.

Three couplings of the same isotropic structure (easy axes uniform over all in-plane
directions), field along y stepped from H_A to -H_A in 0.01 H_A:

1. decoupled grains, no magnetostatics: independent SW particles (must equal the
   area-weighted SW ensemble of the grains' angles);
2. weakly coupled: 2 % exchange across grain boundaries, with magnetostatics;
3. fully coupled: full exchange across boundaries, with magnetostatics (the physical magnet).

Printed and written to studies/figures/hysteresis_sw.md: Mr/Ms and Hc/H_A of each, the
ensemble SW values (Mr = 2/pi, Hc = 0.508 H_A) and the finite-sample SW values.

    python studies/hysteresis_sw.py [--grid 64] [--grains 64] [--out studies/figures]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from invdesign.micromag import (  # noqa: E402
    anchor_points,
    demagnetization_curve,
    grain_system,
    sw_ensemble_2d,
    sw_ensemble_2d_angles,
    sw_ensemble_2d_figures,
    voronoi_grains,
)
from invdesign.plot import savefig  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--grid", type=int, default=64)
    p.add_argument("--grains", type=int, default=64)
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--out", default="studies/figures")
    a = p.parse_args(argv)
    grains = voronoi_grains((a.grid, a.grid), (2e-9, 2e-9), a.grains, np.pi, seed=a.seed)
    cases = {
        "decoupled, no magnetostatics": grain_system(grains, intergrain_exchange=0.0, demag=False),
        "2 % boundary exchange + magnetostatics": grain_system(grains, intergrain_exchange=0.02, demag=True),
        "fully coupled + magnetostatics": grain_system(grains, intergrain_exchange=1.0, demag=True),
    }
    curves = {}
    for name, system in cases.items():
        curves[name] = demagnetization_curve(system, tol=1e-6)
        c = curves[name]
        print(f"{name}: Mr = {c.attrs['Mr']:.4f} Ms, Hc = {-c.attrs['Hc'] / c.attrs['H_A']:.4f} H_A ({c.attrs['wall_time_s']:.0f} s)")
    H_A = curves[next(iter(curves))].attrs["H_A"]
    h = curves[next(iter(curves))]["H"].values / H_A
    ids, area = np.unique(grains.grain_id, return_counts=True)
    sw_sample = sw_ensemble_2d_angles(h, grains.angles[ids], weights=area)
    a_sample = anchor_points(h * H_A, sw_sample, h_anisotropy=H_A)
    fig_sw = sw_ensemble_2d_figures()
    lines = [
        f"# Demagnetization curves vs Stoner-Wohlfarth ({a.grid} x {a.grid} cells of 2 nm, {a.grains} grains, isotropic)",
        "",
        "| case | Mr / Ms | Hc / H_A | Hk90 / H_A |",
        "|---|---|---|---|",
        f"| SW ensemble, all in-plane directions | {fig_sw['Mr']:.4f} (2/pi) | {fig_sw['Hc']:.4f} | |",
        f"| SW, this structure's grains (area-weighted) | {a_sample.Mr:.4f} | {-a_sample.Hc / H_A:.4f} | {-a_sample.Hk90 / H_A:.4f} |",
    ]
    for name, c in curves.items():
        lines.append(f"| micromagnetic, {name} | {c.attrs['Mr']:.4f} | {-c.attrs['Hc'] / H_A:.4f} | {-c.attrs['Hk90'] / H_A:.4f} |")
    fig, ax = plt.subplots(figsize=(6, 4.5))
    hh = np.linspace(1, -1, 401)
    ax.plot(hh, sw_ensemble_2d(hh), "k--", lw=1, label="SW ensemble")
    ax.plot(h, sw_sample, "k:", lw=1, label="SW, these grains")
    for name, c in curves.items():
        ax.plot(c["H"].values / H_A, c["M"].values, label=name)
    ax.set_xlabel("H / H_A")
    ax.set_ylabel("M / Ms")
    ax.axhline(0, color="gray", lw=0.5)
    ax.axvline(0, color="gray", lw=0.5)
    ax.legend(fontsize=7)
    out = Path(a.out)
    savefig(fig, out / "hysteresis_sw.png")
    (out / "hysteresis_sw.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
