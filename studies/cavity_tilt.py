"""Tilted cavity: a single minimum and the magnet's mechanical frequencies (paper Fig. 8).

The cavity lies on its side with its axis raised 10 deg above the horizontal (tilt = 10 deg
in `up_vector`; the +y wall is up, gravity pulls towards -y and slightly towards the floor).
Spherical N52 magnet, moment azimuthal (+x), radii 7 and 5 mm, models 3, 4 and 4 with the
fitted response factor. For each: landscape in the y-z plane (20 nJ contours), its local
minima, and at the global minimum the frequencies from the autodiff Hessian of the energy:

- ``f_r, f_z, f_phi``: along the cylindrical directions of the cavity (the paper's modes),
  moment fixed in the cavity frame (the paper's landscape convention);
- the same with the moment relaxed to its lowest-energy direction at every position
  (dipole response tensor), for comparison;
- the paper's method: quadratic fits ``U = k x^2 + b`` through three points spaced 0.1 mm
  (0.1 mm / r rad in phi) at the minimum.

Paper (5 mm cavity, 3.67 mg sphere, quadratic fits): f_r = 28 Hz, f_z = 11 Hz, f_phi = 4.3 Hz.
The paper fits ``U = k x^2 + b`` and takes ``f = sqrt(k / m) / (2 pi)``; for that form the
spring constant is ``2 k`` and the oscillator frequency ``sqrt(2 k / m) / (2 pi)``, a factor
sqrt(2) higher. The fits are reported both ways (``frequency_quadratic_fit`` is the
oscillator frequency, ``frequency_paper_convention`` the paper's formula).

Writes `cavity_tilt.{nc,png,md}` to studies/figures.

    python studies/cavity_tilt.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import time

import jax.numpy as jnp
import numpy as np
import xarray as xr

from _cavity_common import AZIMUTHAL, FIGURES, NJ, cavity, contour_panel, plt, save_dataset, savefig, sphere, write_text
from cavity_landscapes import build, fitted_response
from invdesign.cavity import find_wells, landscape, mechanical_frequencies, total_energy

TILT = math.radians(10.0)
PAPER = dict(f_r=28.0, f_z=11.0, f_phi=4.3)


def quadratic_fit_frequencies(model, mag, y, z, resp, step=1e-4):
    """The paper's estimate: k from three points at -step, 0, +step along r, z and phi."""
    p0 = np.array([0.0, y, z])
    r = abs(y)
    dirs = {"f_r": np.array([0.0, math.copysign(1.0, y), 0.0]), "f_z": np.array([0.0, 0.0, 1.0])}
    out = {}
    u = lambda p: float(total_energy(model, mag, jnp.asarray(p), jnp.asarray(AZIMUTHAL), tilt=TILT, response=resp))  # noqa: E731
    for name, e in dirs.items():
        um, u0, up = u(p0 - step * e), u(p0), u(p0 + step * e)
        k = (up + um - 2 * u0) / (2 * step**2)  # U = k x^2 + b
        out[name] = math.copysign(math.sqrt(abs(2 * k) / float(mag.mass)) / (2 * math.pi), k)
    # phi: rotate the position about the cavity axis (moment rotated along: stays azimuthal)
    dphi = step / r
    vals = []
    for s in (-1, 0, 1):
        c, sn = math.cos(s * dphi), math.sin(s * dphi)
        p = np.array([-sn * y, c * y, z])
        d = np.array([c, sn, 0.0]) * math.copysign(1.0, 1.0)
        vals.append(float(total_energy(model, mag, jnp.asarray(p), jnp.asarray(d), tilt=TILT, response=resp)))
    k = (vals[0] + vals[2] - 2 * vals[1]) / (2 * step**2)
    out["f_phi"] = math.copysign(math.sqrt(abs(2 * k) / float(mag.mass)) / (2 * math.pi), k)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.time()
    mag = sphere(1.47)
    chi = fitted_response()
    variants = [("nloop", 1.0), ("meissner", 1.0)] + ([("meissner", chi)] if chi is not None else [])
    names = [k if r == 1.0 else f"{k}_chi" for k, r in variants]
    radii = [7e-3, 5e-3]
    n_y, n_z = (31, 29) if args.quick else (61, 57)
    keys = ["f_r", "f_z", "f_phi"]
    fixed = np.full((len(variants), len(radii), 3), np.nan)
    relaxed = np.full_like(fixed, np.nan)
    fitted = np.full_like(fixed, np.nan)
    paper_conv = np.full_like(fixed, np.nan)
    eig = np.full_like(fixed, np.nan)
    minimum = np.full((len(variants), len(radii), 3), np.nan)
    n_wells = np.zeros((len(variants), len(radii)), dtype=int)
    maps = {}
    for i, (kind, resp) in enumerate(variants):
        for k, radius in enumerate(radii):
            model = build(kind, radius)
            y = np.linspace(-radius + 0.55e-3, radius - 0.55e-3, n_y)
            z = np.linspace(0.55e-3, 14e-3, n_z)
            maps[(i, k)] = landscape(model, mag, y, z, AZIMUTHAL, tilt=TILT, response=resp)
            wells = find_wells(model, mag, AZIMUTHAL, y, z, tilt=TILT, response=resp)
            n_wells[i, k] = len(wells)
            if not wells:
                continue
            w = wells[0]
            minimum[i, k] = (w.y, w.z, w.energy)
            p = jnp.array([0.0, w.y, w.z])
            f = mechanical_frequencies(model, mag, p, AZIMUTHAL, tilt=TILT, response=resp)
            fixed[i, k] = [f[q] for q in keys]
            eig[i, k] = f["eigenfrequencies"]
            if kind == "meissner":
                fr = mechanical_frequencies(model, mag, p, AZIMUTHAL, tilt=TILT, response=resp, relax_orientation=True)
                relaxed[i, k] = [fr[q] for q in keys]
            qf = quadratic_fit_frequencies(model, mag, w.y, w.z, resp)
            fitted[i, k] = [qf[q] for q in keys]
            paper_conv[i, k] = fitted[i, k] / math.sqrt(2.0)  # sqrt(k/m) instead of sqrt(2k/m)
            print(f"  {names[i]} R = {radius * 1e3:.0f} mm: {len(wells)} minima, global at y = {w.y * 1e3:.2f}, "
                  f"z = {w.z * 1e3:.2f} mm; f (Hessian) = {np.round(fixed[i, k], 2)} Hz ({time.time() - t0:.0f} s)", flush=True)

    ds = xr.Dataset(
        {
            "minimum": (("model", "radius", "item"), minimum, dict(long_name="global minimum (y m, z m, energy J)")),
            "n_minima": (("model", "radius"), n_wells, dict(long_name="local minima in the y-z plane")),
            "frequency_hessian": (("model", "radius", "mode"), fixed, dict(units="Hz", long_name="Hessian, moment fixed")),
            "frequency_relaxed": (("model", "radius", "mode"), relaxed, dict(units="Hz", long_name="Hessian, moment relaxed")),
            "frequency_quadratic_fit": (("model", "radius", "mode"), fitted, dict(units="Hz", long_name="3-point fits, 0.1 mm")),
            "frequency_paper_convention": (("model", "radius", "mode"), paper_conv,
                                           dict(units="Hz", long_name="3-point fits with the paper's f = sqrt(k/m)/2pi")),
            "eigenfrequency": (("model", "radius", "index"), eig, dict(units="Hz", long_name="Hessian eigenfrequencies")),
            "paper_frequency": (("mode",), np.array([PAPER[q] for q in keys]), dict(units="Hz", long_name="paper, R = 5 mm")),
        },
        coords={"model": names, "radius": ("radius", np.array(radii), dict(units="m")), "mode": keys,
                "item": ["y", "z", "energy"], "index": [0, 1, 2]},
        attrs=dict(tilt_deg=10.0, magnet="N52 sphere 3.67 mg", direction="azimuthal (+x)"),
    )
    save_dataset(ds, FIGURES / "cavity_tilt.nc")

    lines = ["# Tilted cavity (axis 10 deg above horizontal), N52 sphere", "",
             "| model | R (mm) | minima | global minimum y, z (mm) | f_r, f_z, f_phi Hessian (Hz) | relaxed moment (Hz) | 3-point fits (Hz) | fits, paper's sqrt(k/m) (Hz) |",
             "|---|---|---|---|---|---|---|---|"]
    for i, n in enumerate(names):
        for k, radius in enumerate(radii):
            fmt = lambda a: ", ".join(f"{v:.2f}" for v in a) if np.all(np.isfinite(a)) else "-"  # noqa: E731
            lines.append(f"| {n} | {radius * 1e3:.0f} | {n_wells[i, k]} | {minimum[i, k, 0] * 1e3:.2f}, {minimum[i, k, 1] * 1e3:.2f} | "
                         f"{fmt(fixed[i, k])} | {fmt(relaxed[i, k])} | {fmt(fitted[i, k])} | {fmt(paper_conv[i, k])} |")
    lines += ["", "Paper (R = 5 mm, model 3, quadratic fits with f = sqrt(k/m)/2pi for U = k x^2 + b): "
              "f_r = 28, f_z = 11, f_phi = 4.3 Hz."]
    write_text(FIGURES / "cavity_tilt.md", "\n".join(lines) + "\n")

    fig, axes = plt.subplots(len(variants), len(radii), figsize=(4.4 * len(radii), 3.9 * len(variants)), squeeze=False,
                             layout="constrained")
    for (i, k), m in maps.items():
        marks = [(minimum[i, k, 0], minimum[i, k, 1], "r*")] if np.isfinite(minimum[i, k, 0]) else []
        contour_panel(axes[i, k], m, f"{names[i]}, R = {radii[k] * 1e3:.0f} mm, tilted 10 deg", cavity(radii[k]), marks)
    savefig(fig, FIGURES / "cavity_tilt.png")
    print("\n".join(lines))
    print(f"total {time.time() - t0:.0f} s; energies in units of {NJ} J in the maps")


if __name__ == "__main__":
    main()
