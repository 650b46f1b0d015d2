"""Reproduce the paper's stability maps (Figs. 1-3) and equilibria of the two chip traps.

Paper: Arrayas, Trueba, Uriarte, "Machine learning techniques in magnetic levitation
problems" (shared/papers/coil-traps-diamagnet-levitation.md).

- Fig. 1: single loop (radius 1, crossing the x-z plane at x = +-1): region where
  ``lap |B|^2 > 0``.
- Fig. 2: anti-Helmholtz trap (2 um loops at z = -+0.5 um, 30 mA, sphere R = 0.5 um,
  m = 4.487e-15 kg): blue unstable, green stable, red stable and the vertical magnetic force
  holds the weight.
- Fig. 3: concentric trap (12 um and 18 um loops in z = 0, 38 mA, sphere R = 5 um,
  m = 4.487e-12 kg).

Every map is drawn with three stability criteria, because the paper's eq. 11 taken
literally (3-D Laplacian) is satisfied everywhere outside the wires
(``lap |B|^2 = 2 sum_ij (dB_j/dx_i)^2 >= 0``):

- ``laplacian``: 3-D ``lap |B|^2 > 0`` (eq. 11 as written);
- ``planar``: in-plane ``(d2/dx2 + d2/dz2) |B|^2 > 0`` (the Laplacian of the plotted 2-D
  cut, which does change sign);
- ``hessian``: all eigenvalues of the Hessian of U positive (true local stability).

The equilibria of both traps for k = 1 (perfect diamagnet, chi = -1) and k = 3/2
(superconducting sphere) are found with Newton from starts on and off the axis, classified
by their Hessian, and written to ``coil_trap_equilibria.csv`` / ``.md`` next to the paper's
statements.

    python studies/coil_traps.py [--out studies/figures] [--n 241]
"""

from __future__ import annotations

import argparse
import os
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Circle, Patch  # noqa: E402

from invdesign import atomic_write  # noqa: E402  (importing invdesign enables x64)
from invdesign.constants import G0  # noqa: E402
from invdesign.fields import Loops  # noqa: E402
from invdesign.levitation import (  # noqa: E402
    CRITERIA,
    Sphere,
    anti_helmholtz_sphere,
    anti_helmholtz_trap,
    axial_equilibrium,
    classify_stability,
    concentric_sphere,
    concentric_trap,
    escape_barrier,
    find_equilibria,
    stability_map,
)

KB = 1.380649e-23  # J/K
UM = 1e-6
CLASS_CMAP = ListedColormap(["#3b6fd4", "#3aa655", "#d43b3b"])  # blue, green, red
CRITERION_TITLE = {
    "laplacian": r"3-D $\nabla^2 B^2>0$ (eq. 11)",
    "planar": r"in-plane $(\partial_x^2+\partial_z^2) B^2>0$",
    "hessian": r"Hessian of $U$ positive definite",
}
PAPER = {
    "anti_helmholtz": "only stable point: the centre (0, 0, 0); vertical oscillation amplitude < 0.5 um",
    "concentric": "only stable point: on the axis x = 0, close to z = 3 um (red/green boundary)",
}


def atomic_savefig(fig, path):
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=130, format="png"))


# --------------------------------------------------------------------------- figures


def figure_single_loop(out, n):
    loop = Loops(radius=1.0, current=1.0)
    s = np.linspace(-2.5, 2.5, n)
    probe = Sphere(radius=1e-3, mass=1.0)  # only sets the mask radius; lap |B|^2 is geometric
    ds = stability_map(loop, probe, s, s, g=0.0, mask_radius=1e-3)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), constrained_layout=True)
    fields = {"laplacian": ds.lap_b2, "planar": ds.lap_b2_xz, "hessian": ds.min_stiffness}
    for ax, crit in zip(axes, CRITERIA):
        positive = (fields[crit] > 0).where(~np.isnan(fields[crit]))
        ax.pcolormesh(s, s, positive, cmap=ListedColormap(["white", "0.6"]), vmin=0, vmax=1, shading="auto")
        ax.plot([-1, 1], [0, 0], "ko", ms=5)
        ax.set_title(CRITERION_TITLE[crit] + "\n(grey: > 0)")
        ax.set_xlabel("x / a")
        ax.set_aspect("equal")
    axes[0].set_ylabel("z / a")
    fig.suptitle("Fig. 1: single current loop (radius a, crossing the x-z plane at x = ±1)")
    path = os.path.join(out, "coil_traps_fig1_single_loop.png")
    atomic_savefig(fig, path)
    plt.close(fig)
    frac = {c: float((fields[c] > 0).mean()) for c in CRITERIA}
    return path, frac


def figure_trap(out, name, title, loops, sphere, x, z, equilibria, wire_xz):
    ds = stability_map(loops, sphere, x, z, mask_radius=0.01 * float(np.min(np.asarray(loops.radius))))
    aspect = (z[-1] - z[0]) / (x[-1] - x[0])
    fig, axes = plt.subplots(1, 3, figsize=(14, 1.1 + 4.3 * aspect), constrained_layout=True)
    for ax, crit in zip(axes, CRITERIA):
        cls = classify_stability(ds, crit)
        ax.pcolormesh(x / UM, z / UM, cls, cmap=CLASS_CMAP, vmin=-0.5, vmax=2.5, shading="auto")
        for wx, wz in wire_xz:
            ax.plot(wx / UM, wz / UM, "ko", ms=4)
            ax.add_patch(Circle((wx / UM, wz / UM), float(sphere.radius) / UM, fill=False, ls="--", lw=0.8, color="k"))
        for label, (pos, marker) in equilibria.items():
            style = {"*": dict(color="white", ms=13), "D": dict(color="yellow", ms=6)}[marker]
            ax.plot(pos[0] / UM, pos[2] / UM, marker, mec="k", label=label, **style)
        ax.set_title(CRITERION_TITLE[crit])
        ax.set_xlabel("x (um)")
        ax.set_xlim(x[0] / UM, x[-1] / UM)
        ax.set_ylim(z[0] / UM, z[-1] / UM)
        ax.set_aspect("equal")
    axes[0].set_ylabel("z (um)")
    handles = [Patch(color=c) for c in CLASS_CMAP.colors] + axes[0].get_legend_handles_labels()[0]
    labels = ["unstable", "stable", "stable, F_z >= mg"] + axes[0].get_legend_handles_labels()[1]
    axes[-1].legend(handles, labels, loc="upper right", fontsize=7, framealpha=0.9)
    fig.suptitle(title + "  (dashed: sphere would overlap the wire)")
    path = os.path.join(out, f"coil_traps_{name}.png")
    atomic_savefig(fig, path)
    plt.close(fig)
    return path, ds


# --------------------------------------------------------------------------- equilibria


def axis_stable_interval(ds, z_eq, crit):
    """Heights on the map's x = 0 column, around z_eq, where the criterion holds."""
    col = classify_stability(ds, crit).sel(x=0.0, method="nearest")
    zs, ok = ds.z.values, (col.values > 0)
    i = int(np.argmin(np.abs(zs - z_eq)))
    if not ok[i]:
        return float("nan"), float("nan")
    lo = i
    while lo > 0 and ok[lo - 1]:
        lo -= 1
    hi = i
    while hi < len(zs) - 1 and ok[hi + 1]:
        hi += 1
    return float(zs[lo]), float(zs[hi])


def equilibria_rows(name, loops, sphere_fn, starts, z_axis, box, ds_map):
    rows = []
    for k in (1.0, 1.5):
        sphere = sphere_fn(k)
        ds = find_equilibria(loops, sphere, starts)
        z_ax, found = axial_equilibrium(loops, sphere, *z_axis, n_grid=128)
        for i in range(ds.sizes["equilibrium"]):
            pos = ds.position.values[i]
            stable = bool(ds.stable.values[i])
            row = {
                "trap": name, "k": k,
                "x_um": pos[0] / UM, "y_um": pos[1] / UM, "z_um": pos[2] / UM,
                "eig1_N_per_m": ds.eigenvalues.values[i, 0],
                "eig2_N_per_m": ds.eigenvalues.values[i, 1],
                "eig3_N_per_m": ds.eigenvalues.values[i, 2],
                "f1_Hz": ds.frequencies.values[i, 0],
                "f2_Hz": ds.frequencies.values[i, 1],
                "f3_Hz": ds.frequencies.values[i, 2],
                "lap_b2_T2_per_m2": ds.lap_b2.values[i],
                "stable": stable,
                "lap_positive": bool(ds.laplacian_positive.values[i]),
                "axial_equilibrium_z_um": float(z_ax) / UM if bool(found) else float("nan"),
                "depth_J": float("nan"),
                "depth_K": float("nan"),
                "note": note(ds.eigenvalues.values[i], pos),
                "paper": PAPER[name],
            }
            if stable and abs(pos[0]) < 1e-12 and abs(pos[1]) < 1e-12:
                depth = float(escape_barrier(loops, sphere, pos[2], *box, n=96))
                row["depth_J"], row["depth_K"] = depth, depth / KB
                if k == 1.0:
                    for crit in ("planar", "hessian"):
                        lo, hi = axis_stable_interval(ds_map, pos[2], crit)
                        row[f"axis_{crit}_stable_um"] = f"[{lo / UM:.2f}, {hi / UM:.2f}]"
            rows.append(row)
    return rows


def note(eig, pos):
    """Describe an equilibrium: on the axis, or on a ring (axisymmetry gives a zero mode)."""
    r = float(np.hypot(pos[0], pos[1]))
    if r < 1e-12:
        return "on the axis"
    if np.min(np.abs(eig)) < 1e-9 * np.max(np.abs(eig)):
        return f"ring of equilibria, r = {r / UM:.3g} um (zero azimuthal mode)"
    return f"off the axis, r = {r / UM:.3g} um"


COLUMNS = ["trap", "k", "x_um", "y_um", "z_um", "eig1_N_per_m", "eig2_N_per_m", "eig3_N_per_m",
           "f1_Hz", "f2_Hz", "f3_Hz", "lap_b2_T2_per_m2", "stable", "lap_positive",
           "axial_equilibrium_z_um", "depth_J", "depth_K", "axis_planar_stable_um",
           "axis_hessian_stable_um", "note", "paper"]


def fmt(v):
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "" if np.isnan(v) else f"{v:.6g}"
    if v is None:
        return ""
    return str(v)


def findings(rows):
    """Bullet points comparing the stable equilibria with the paper's statements."""
    stable = {(r["trap"], r["k"]): r for r in rows if r["stable"]}
    ah1, ah2 = stable[("anti_helmholtz", 1.0)], stable[("anti_helmholtz", 1.5)]
    cc1, cc2 = stable[("concentric", 1.0)], stable[("concentric", 1.5)]
    return [
        f"- Anti-Helmholtz: the only stable equilibrium is the centre, sagged by gravity to z = "
        f"{ah1['z_um'] * 1e3:.3g} nm (k = 1) / {ah2['z_um'] * 1e3:.3g} nm (k = 3/2) (paper: the centre). "
        f"Trap frequencies {ah1['f1_Hz'] / 1e3:.4g} kHz (radial, twice) and {ah1['f3_Hz'] / 1e3:.4g} kHz "
        f"(axial) for k = 1; the ratio 1/2 follows from B^2 = G^2 (z^2 + r^2/4).",
        f"- Anti-Helmholtz, vertical motion: on the axis the in-plane Laplacian stays positive for "
        f"|z| < {ah1['axis_planar_stable_um'].strip('[]').split(',')[1].strip()} um and the full Hessian for "
        f"|z| < {ah1['axis_hessian_stable_um'].strip('[]').split(',')[1].strip()} um "
        "(paper: amplitude < 0.5 um).",
        f"- Concentric: the stable equilibrium is on the axis at z = {cc1['z_um']:.3f} um (k = 1) and "
        f"{cc2['z_um']:.3f} um (k = 3/2), at the boundary between the red and green regions (paper: close "
        f"to z = 3 um). Frequencies {cc1['f1_Hz']:.4g} Hz (radial, twice) and {cc1['f3_Hz']:.4g} Hz (axial) "
        "for k = 1. An unstable equilibrium sits lower on the axis and a ring of unstable ones above the "
        "wires.",
        "- Eq. 11 taken literally (3-D Laplacian) holds everywhere outside the wires "
        "(lap |B|^2 = 2 sum (dB_j/dx_i)^2 >= 0), so it cannot produce the paper's blue regions. The "
        "in-plane Laplacian of the x-z cut (middle panels) does change sign and is consistent with the "
        "captions (anti-Helmholtz: blue on the axis from |z| ~ 0.4 um, near the loop planes); it is our reading "
        "of what the figures show, not a stability criterion. Stability proper needs the full Hessian "
        "(right panels), which gives smaller stable regions.",
    ]


def write_tables(out, rows):
    csv = [",".join(COLUMNS)]
    for r in rows:
        csv.append(",".join(f'"{fmt(r.get(c))}"' if c in ("paper", "note") or "stable_um" in c else fmt(r.get(c))
                            for c in COLUMNS))
    atomic_write(os.path.join(out, "coil_trap_equilibria.csv"), "\n".join(csv) + "\n")
    md = ["# Equilibria of the paper's chip traps (point-particle sphere, U = m g z + k V B^2 / (2 mu0))", "",
          "Frequencies are signed: negative = unstable direction (growth rate 2 pi |f|). "
          "Stable = all Hessian eigenvalues > 0; lap>0 = paper eq. 11. Depth = minimax escape barrier "
          "on an (r, z) grid (the table lists it also in kelvin, depth / k_B).", "",
          "| trap | k | position (um) | eigenvalues (N/m) | frequencies (Hz) | stable | lap>0 | depth (J) | "
          "depth / k_B (K) | axis interval, planar / hessian criterion (um) | note | paper |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pos = f"({r['x_um']:.3g}, {r['y_um']:.3g}, {r['z_um']:.6g})"
        eig = ", ".join(f"{r[f'eig{i}_N_per_m']:.4g}" for i in (1, 2, 3))
        fr = ", ".join(f"{r[f'f{i}_Hz']:.5g}" for i in (1, 2, 3))
        interval = " / ".join(r.get(f"axis_{c}_stable_um", "") for c in ("planar", "hessian")).strip(" /")
        md.append(f"| {r['trap']} | {r['k']:g} | {pos} | {eig} | {fr} | {fmt(r['stable'])} | "
                  f"{fmt(r['lap_positive'])} | {fmt(r['depth_J'])} | {fmt(r['depth_K'])} | {interval} | {r['note']} | "
                  f"{r['paper']} |")
    md += ["", "## Comparison with the paper", ""] + findings(rows)
    atomic_write(os.path.join(out, "coil_trap_equilibria.md"), "\n".join(md) + "\n")
    return "\n".join(md)


# --------------------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join("studies", "figures"), help="output directory")
    parser.add_argument("--n", type=int, default=241, help="grid points per axis of the maps")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()

    path, frac = figure_single_loop(args.out, args.n)
    print(f"{path}: fraction of the plane with positive 3-D Laplacian / in-plane Laplacian / "
          f"positive-definite Hessian = {frac['laplacian']:.3f} / {frac['planar']:.3f} / {frac['hessian']:.3f}")

    ah, cc = anti_helmholtz_trap(), concentric_trap()
    ah_starts = np.array([[0, 0, z] for z in np.linspace(-0.3e-6, 0.3e-6, 7)]
                         + [[0.2e-6, 0.1e-6, 0.1e-6], [-0.2e-6, 0.0, -0.15e-6]])
    cc_starts = np.array([[0, 0, z] for z in np.linspace(0.1e-6, 12e-6, 25)]
                         + [[1e-6, 0, 3e-6], [0, -1e-6, 4e-6], [2e-6, 1e-6, 6e-6]])

    eq = {}
    for name, loops, sphere_fn, starts in (("anti_helmholtz", ah, anti_helmholtz_sphere, ah_starts),
                                            ("concentric", cc, concentric_sphere, cc_starts)):
        for k, marker in ((1.0, "*"), (1.5, "D")):
            ds = find_equilibria(loops, sphere_fn(k), starts)
            for i in np.flatnonzero(ds.stable.values):
                eq[(name, k)] = (ds.position.values[i], marker)

    x = np.linspace(-1.5e-6, 1.5e-6, args.n)
    ah_eq = {f"stable eq. k={k:g}": eq[("anti_helmholtz", k)] for k in (1.0, 1.5)}
    path, ds_ah = figure_trap(
        args.out, "fig2_anti_helmholtz",
        "Fig. 2: anti-Helmholtz trap, 30 mA, a = 1 um, z = ±0.5 um; sphere R = 0.5 um, k = 1",
        ah, anti_helmholtz_sphere(1.0), x, x, ah_eq, [(-1e-6, -0.5e-6), (1e-6, -0.5e-6), (-1e-6, 0.5e-6), (1e-6, 0.5e-6)])
    print(path)
    xc = np.linspace(-12e-6, 12e-6, args.n)
    zc = np.linspace(-3e-6, 12e-6, int(args.n * 15 / 24) | 1)
    cc_eq = {f"stable eq. k={k:g}": eq[("concentric", k)] for k in (1.0, 1.5)}
    path, ds_cc = figure_trap(
        args.out, "fig3_concentric",
        "Fig. 3: concentric trap, 38 mA, a = 6 and 9 um; sphere R = 5 um, k = 1",
        cc, concentric_sphere(1.0), xc, zc, cc_eq, [(-9e-6, 0), (-6e-6, 0), (6e-6, 0), (9e-6, 0)])
    print(path)

    rows = equilibria_rows("anti_helmholtz", ah, anti_helmholtz_sphere, ah_starts, (-0.45e-6, 0.45e-6),
                           (3e-6, -3e-6, 3e-6), ds_ah)
    rows += equilibria_rows("concentric", cc, concentric_sphere, cc_starts, (0.0, 12e-6),
                            (15e-6, -3e-6, 20e-6), ds_cc)
    print(write_tables(args.out, rows))
    print(f"weight: anti-Helmholtz sphere {4.487e-15 * G0:.4g} N, concentric sphere {4.487e-12 * G0:.4g} N")
    print(f"done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
