"""Energy landscapes against cavity radius and the gap / stub-rim crossover (paper Fig. 5).

Spherical N52 magnet (r = 0.5 mm, 3.67 mg) with its moment azimuthal about the stub
(gamma = 0, beta = 90 deg: +x for positions in the y-z plane), upright cavity, radii 4-7 mm.
For every radius and model the local minima of the energy in the y-z plane are found (grid
minima refined by Newton) and classified as "gap" (beyond the stub radius, below the stub
top) or "stub" (above the stub top). The crossover radius, where the gap well and the
stub-rim well have equal energy, is found by Brent's method on
``E_gap(R) - E_stub(R)`` (each evaluation rebuilds the cavity's model and re-locates both
wells by continuation), not read off a plot.

Models: 3 (the paper's N-loop at 0.3 mm elements), 4 (ideal Meissner) and 4 with the
response factor fitted in `cavity_heights.py` (if `cavity_calibration.nc` exists).

Writes `cavity_landscapes.{nc,png,md}` to studies/figures.

    python studies/cavity_landscapes.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import scipy.optimize
import xarray as xr

from _cavity_common import (
    AZIMUTHAL,
    FIGURES,
    NJ,
    cavity,
    contour_panel,
    plt,
    save_dataset,
    savefig,
    sphere,
    write_text,
)
from invdesign.cavity import (
    MEISSNER_SPACING,
    PAPER_NLOOP_SPACING,
    CoaxialCavity,
    cavity_layout,
    find_wells,
    landscape,
    meissner_model,
    nloop_model,
    refine_minimum,
)

R_STUB, H_STUB = 2e-3, 5e-3


def fitted_response():
    path = FIGURES / "cavity_calibration.nc"
    if not path.exists():
        return None
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return float(ds.attrs["fitted_response_meissner"])


def build(kind, radius, like=None):
    """Model 3 or 4 for a cavity of this radius; with `like` (another radius) on that
    cavity's element layout, so a root search over R reuses one set of compiled functions."""
    cav = CoaxialCavity(radius=radius)
    layout = None
    if like is not None:
        other = CoaxialCavity(radius=like)
        layout = (cavity_layout(other, PAPER_NLOOP_SPACING, graded=False, rim=False) if kind == "nloop"
                  else cavity_layout(other, MEISSNER_SPACING))
    return nloop_model(cav, layout=layout) if kind == "nloop" else meissner_model(cav, layout=layout)


def grids(radius, n_y, n_z):
    y = np.linspace(-radius + 0.55e-3, radius - 0.55e-3, n_y)
    z = np.linspace(0.55e-3, 12e-3, n_z)
    return y, z


def classify(w):
    if w.z > H_STUB:
        return "stub"
    if abs(w.y) > R_STUB:
        return "gap"
    return "other"


def lowest(wells, kind):
    c = [w for w in wells if classify(w) == kind and w.converged]
    return min(c, key=lambda w: w.energy) if c else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.time()
    radii = np.array([4.0, 5.0, 7.0]) * 1e-3 if args.quick else np.array([4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0]) * 1e-3
    n_y, n_z = (29, 25) if args.quick else (57, 47)
    mag = sphere(1.47)
    chi = fitted_response()
    variants = [("nloop", 1.0), ("meissner", 1.0)] + ([("meissner", chi)] if chi is not None else [])
    names = [f"{k}" if r == 1.0 else f"{k}_chi" for k, r in variants]

    e_gap = np.full((len(variants), radii.size), np.nan)
    e_stub = np.full_like(e_gap, np.nan)
    pos_gap = np.full(e_gap.shape + (2,), np.nan)
    pos_stub = np.full_like(pos_gap, np.nan)
    glob = np.full(e_gap.shape + (2,), np.nan)
    profiles = {}
    maps = {}
    lines = ["# Energy landscapes vs cavity radius (N52 sphere, azimuthal moment)", ""]
    for i, (kind, resp) in enumerate(variants):
        for k, radius in enumerate(radii):
            model = build(kind, radius)
            y, z = grids(radius, n_y, n_z)
            ds = landscape(model, mag, y, z, AZIMUTHAL, response=resp)
            wells = find_wells(model, mag, AZIMUTHAL, y, z, response=resp)
            g, s = lowest(wells, "gap"), lowest(wells, "stub")
            if g:
                e_gap[i, k], pos_gap[i, k] = g.energy, (abs(g.y), g.z)
            if s:
                e_stub[i, k], pos_stub[i, k] = s.energy, (abs(s.y), s.z)
            if wells:
                glob[i, k] = (abs(wells[0].y), wells[0].z)
            e = ds.energy.values
            profiles[(i, k)] = (y, np.nanmin(e, axis=0))  # Fig. 5c: minimum over z at each y
            if round(radius * 1e4) in (45, 50, 70) or (args.quick and round(radius * 1e4) in (50, 70)):
                maps[(i, k)] = ds
            print(f"  {names[i]} R = {radius * 1e3:.1f} mm: {len(wells)} wells, gap {g}, stub {s} ({time.time() - t0:.0f} s)",
                  flush=True)

    # crossover: the radius where the global minimum moves between the stub rim and the gap.
    # E_gap - E_stub is followed by continuation of both wells; a well that vanishes counts
    # as infinitely high. Bisection on the sign brackets the switch; where both wells exist
    # at both ends of the final bracket, Brent's method finishes on E_gap - E_stub.
    crossover, crossover_kind = {}, {}
    for i, (kind, resp) in enumerate(variants):
        which = np.where(np.isfinite(e_gap[i]) & ~(e_stub[i] < e_gap[i]), 1.0, np.where(np.isfinite(e_stub[i]), -1.0, np.nan))
        idx = [k for k in range(radii.size - 1) if which[k] * which[k + 1] < 0]
        if not idx:
            crossover[names[i]], crossover_kind[names[i]] = float("nan"), "none"
            continue
        k = idx[0]
        # several starts per well, since a well on the axis can split into two off-axis ones
        # (the axis then holds a saddle that Newton would settle on); the last position found
        # is tried first (continuation)
        starts = {"gap": [p for p in (pos_gap[i, k], pos_gap[i, k + 1]) if np.all(np.isfinite(p))],
                  "stub": [p for p in (pos_stub[i, k], pos_stub[i, k + 1]) if np.all(np.isfinite(p))]}
        starts["stub"] += [np.array([0.3e-3, H_STUB + 2e-3]), np.array([0.9 * R_STUB, H_STUB + 1.6e-3])]
        starts["gap"] += [np.array([0.5 * (radii[k] + R_STUB), 2.5e-3])]

        def diff(radius, kind=kind, resp=resp, starts=starts, like=float(radii[k])):
            model = build(kind, radius, like)
            e = {}
            for which_, cands in starts.items():
                found = []
                for yy, zz in cands:
                    if abs(yy) > radius - 0.6e-3:
                        continue
                    w = refine_minimum(model, mag, yy, zz, AZIMUTHAL, response=resp)
                    if w.converged and classify(w) == which_:
                        found.append(w)
                best = min(found, key=lambda w: w.energy) if found else None
                e[which_] = best.energy if best else math.inf
                if best:
                    cands.insert(0, np.array([abs(best.y), best.z]))
            if math.isinf(e["gap"]) and math.isinf(e["stub"]):
                raise RuntimeError(f"both wells lost at R = {radius}")
            return e["gap"] - e["stub"]

        a, b = float(radii[k]), float(radii[k + 1])
        fa, fb = diff(a), diff(b)
        while b - a > 2e-5:
            m = 0.5 * (a + b)
            fm = diff(m)
            if np.sign(fm) == np.sign(fa):
                a, fa = m, fm
            else:
                b, fb = m, fm
        if math.isfinite(fa) and math.isfinite(fb):
            crossover[names[i]] = float(scipy.optimize.brentq(diff, a, b, xtol=1e-6))
            crossover_kind[names[i]] = "equal well energies"
        else:
            crossover[names[i]] = 0.5 * (a + b)
            lost = "stub" if (math.isinf(fa) and fa < 0) or (math.isinf(fb) and fb < 0) else "gap"
            crossover_kind[names[i]] = f"the {lost} well vanishes (bisection, +-10 um)"
        print(f"  crossover {names[i]}: {crossover[names[i]] * 1e3:.3f} mm, {crossover_kind[names[i]]} "
              f"({time.time() - t0:.0f} s)", flush=True)

    out = xr.Dataset(
        {
            "gap_well_energy": (("model", "radius"), e_gap, dict(units="J", long_name="lowest gap well")),
            "stub_well_energy": (("model", "radius"), e_stub, dict(units="J", long_name="lowest well above the stub")),
            "gap_well_position": (("model", "radius", "coord"), pos_gap, dict(units="m", long_name="(|y|, z) of the gap well")),
            "stub_well_position": (("model", "radius", "coord"), pos_stub, dict(units="m", long_name="(|y|, z) of the stub well")),
            "global_minimum": (("model", "radius", "coord"), glob, dict(units="m", long_name="(|y|, z) of the global minimum")),
            "crossover_radius": (("model",), np.array([crossover[n] for n in names]),
                                 dict(units="m", long_name="global minimum moves between stub rim and gap")),
            "crossover_kind": (("model",), np.array([crossover_kind[n] for n in names])),
        },
        coords={"model": names, "radius": ("radius", radii, dict(units="m")), "coord": ["abs_y", "z"]},
        attrs=dict(magnet="N52 sphere", direction="azimuthal (+x)", response_fitted=float(chi) if chi else float("nan")),
    )
    save_dataset(out, FIGURES / "cavity_landscapes.nc")

    lines += ["| model | R (mm) | gap well (|y|, z) mm | E_gap (nJ) | stub well (|y|, z) mm | E_stub (nJ) | global |", "|---|---|---|---|---|---|---|"]
    for i, n in enumerate(names):
        for k, radius in enumerate(radii):
            gtxt = f"({pos_gap[i, k, 0] * 1e3:.2f}, {pos_gap[i, k, 1] * 1e3:.2f})" if np.isfinite(e_gap[i, k]) else "none"
            stxt = f"({pos_stub[i, k, 0] * 1e3:.2f}, {pos_stub[i, k, 1] * 1e3:.2f})" if np.isfinite(e_stub[i, k]) else "none"
            which = "gap" if (np.isfinite(e_gap[i, k]) and not (e_stub[i, k] < e_gap[i, k])) else ("stub" if np.isfinite(e_stub[i, k]) else "-")
            lines.append(f"| {n} | {radius * 1e3:.1f} | {gtxt} | {e_gap[i, k] / NJ:.1f} | {stxt} | {e_stub[i, k] / NJ:.1f} | {which} |")
    lines += ["", "Crossover radius (paper: about 5.5 mm):", ""]
    for n in names:
        c = crossover[n]
        lines.append(f"- {n}: " + (f"{c * 1e3:.3f} mm ({crossover_kind[n]})" if math.isfinite(c)
                                    else "none in 4-7 mm (the global minimum stays on one side)"))
    write_text(FIGURES / "cavity_landscapes.md", "\n".join(lines) + "\n")

    # figure: contour maps (rows: model), energy vs y (Fig. 5c), well energies vs R (Fig. 5d)
    keys = sorted(maps)
    ncol = max(1, len({k for _, k in keys}))
    fig, axes = plt.subplots(len(variants) + 1, max(ncol, 2), figsize=(4.2 * max(ncol, 2), 3.6 * (len(variants) + 1)), squeeze=False,
                             layout="constrained")
    cols = {}
    for i, k in keys:
        c = cols.setdefault(k, len(cols))
        ds = maps[(i, k)]
        marks = []
        if np.isfinite(e_gap[i, k]):
            marks.append((pos_gap[i, k, 0], pos_gap[i, k, 1], "r*"))
        if np.isfinite(e_stub[i, k]):
            marks.append((pos_stub[i, k, 0], pos_stub[i, k, 1], "w*"))
        contour_panel(axes[i, c], ds, f"{names[i]}, R = {radii[k] * 1e3:.1f} mm (20 nJ contours)", cavity(radii[k]), marks)
    ax = axes[-1, 0]
    for i, n in enumerate(names):
        for k, radius in enumerate(radii):
            yy, e = profiles[(i, k)]
            ax.plot(yy * 1e3, (e - np.nanmin(e)) / NJ, ["-", "--", ":"][i], color=f"C{k}", label=f"{n}, {radius * 1e3:.1f} mm" if i == 0 or k == 0 else None)
    ax.axvspan(-2, 2, color="0.85")
    ax.set_xlabel("y (mm)")
    ax.set_ylabel("min over z of U (nJ, shifted)")
    ax.set_ylim(0, 600)
    ax.legend(fontsize=6)
    ax = axes[-1, 1]
    for i, n in enumerate(names):
        ax.plot(radii * 1e3, e_gap[i] / NJ, "o-", color=f"C{i}", label=f"{n} gap")
        ax.plot(radii * 1e3, e_stub[i] / NJ, "s--", color=f"C{i}", label=f"{n} stub")
        if math.isfinite(crossover[n]):
            ax.axvline(crossover[n] * 1e3, color=f"C{i}", lw=0.8)
    ax.set_xlabel("cavity radius (mm)")
    ax.set_ylabel("well energy (nJ)")
    ax.legend(fontsize=6)
    for a in axes.ravel():
        if not a.has_data():
            a.axis("off")
    savefig(fig, FIGURES / "cavity_landscapes.png")
    print("\n".join(lines))
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
