"""Convergence of models 3 and 4 against the image method (plate and two parallel plates).

Reference results (independent of the mesh and of the boundary-element code):

- one plate: a dipole mu at height h above an infinite superconducting plane,
  ``U = mu0 mu^2 (1 + cos^2 theta) / (64 pi h^3)`` (paper eq. 1) and ``F_z = 3 U / h``;
- two plates z = 0 and z = gap: the infinite image series (translations by 2 k gap of the
  dipole and of its mirror image), summed to |k| <= 400 (the terms fall as 1/k^3).

A dipole of the paper's N52 sphere (|mu| = Br V / mu0) sits 1 mm above a plate of radius
20 mm (20 h), off the mesh axis, or 0.7 mm above the lower of two plates 2 mm apart (radius
40 mm). Model 4 (Meissner BEM) is refined near the magnet with elements growing away from
it; model 3 (the paper's N-loop) uses uniform equal-area elements of radius rho. The tables
give U / U_ref for a vertical (theta = 0) and horizontal (theta = 90 deg) moment, and for
model 4 also F_z / F_ref.

Writes `cavity_convergence.{nc,md}` to studies/figures.

    python studies/cavity_convergence.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from _cavity_common import FIGURES, save_dataset, sphere, write_text
from invdesign.cavity import MeissnerModel, NLoopModel, axisymmetric_mesh, parallel_plates_mesh, plate_mesh
from invdesign.constants import MU0

H = 1e-3  # height above the plate
GAP, Z0 = 2e-3, 0.7e-3  # two plates
OFFSET = np.array([0.3e-3, -0.2e-3])  # off the mesh axis
THETAS = {"vertical": 0.0, "horizontal": math.pi / 2}


def plate_energy(mu, h, theta):
    return MU0 * mu**2 * (1.0 + math.cos(theta) ** 2) / (64.0 * math.pi * h**3)


def series_energy(m, z0, gap, kmax=400):
    """-1/2 m . B of all images of a dipole m at height z0 between the planes 0 and gap."""

    def field(mm, r):
        d = np.linalg.norm(r)
        u = r / d
        return MU0 / (4 * np.pi) * (3 * np.dot(mm, u) * u - mm) / d**3

    mirror = m * np.array([1.0, 1.0, -1.0])
    b = np.zeros(3)
    for k in range(-kmax, kmax + 1):
        if k:
            b += field(m, np.array([0.0, 0.0, -2.0 * k * gap]))
        b += field(mirror, np.array([0.0, 0.0, 2.0 * z0 - 2.0 * k * gap]))
    return -0.5 * float(m @ b)


def meissner_rows(mesh, x, refs, force_ref=None):
    model = MeissnerModel(mesh)
    out = {}
    for name, theta in THETAS.items():
        d = jnp.array([math.sin(theta), 0.0, math.cos(theta)])
        u, g = jax.value_and_grad(lambda p, d=d: model.magnetic_energy(MAG, p, d))(jnp.asarray(x))
        out[name] = float(u) / refs[name]
        if force_ref is not None:
            out[name + "_force"] = -float(g[2]) / force_ref[name]
    return int(mesh.centre.shape[0]), out


def nloop_rows(profiles, rho, x, refs):
    mesh = axisymmetric_mesh(profiles, spacing=rho * math.sqrt(math.pi))  # equal-area discs of radius rho
    model = NLoopModel(mesh)
    out = {}
    for name, theta in THETAS.items():
        d = jnp.array([math.sin(theta), 0.0, math.cos(theta)])
        out[name] = float(model.magnetic_energy(MAG, jnp.asarray(x), d)) / refs[name]
    return int(mesh.centre.shape[0]), out


MAG = sphere(1.47)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two resolutions per table")
    args = ap.parse_args(argv)
    t0 = time.time()
    mu = float(MAG.moment)
    m4_spacings = [0.4e-3, 0.3e-3] if args.quick else [0.4e-3, 0.3e-3, 0.2e-3, 0.15e-3]
    m3_rhos = [0.2 * H, 0.1 * H] if args.quick else [0.2 * H, 0.1 * H, 0.07 * H, 0.05 * H]

    plate_x = np.array([*OFFSET, H])
    plate_ref = {n: plate_energy(mu, H, t) for n, t in THETAS.items()}
    plate_force = {n: 3.0 * u / H for n, u in plate_ref.items()}
    pair_x = np.array([*OFFSET, Z0])
    pair_ref = {n: series_energy(mu * np.array([math.sin(t), 0.0, math.cos(t)]), Z0, GAP) for n, t in THETAS.items()}

    rows = []  # (case, model, resolution, elements, {quantity: ratio})
    for s in m4_spacings:
        n, r = meissner_rows(plate_mesh(radius=20 * H, spacing=s, free=2e-3, growth=0.15), plate_x, plate_ref, plate_force)
        rows.append(("plate", "meissner", s, n, r))
        print(f"  plate, model 4, {s * 1e3:.2f} mm: {n} elements, {r} ({time.time() - t0:.0f} s)", flush=True)
    for s in m4_spacings:
        n, r = meissner_rows(parallel_plates_mesh(radius=40 * H, gap=GAP, spacing=s, free=2e-3, growth=0.15), pair_x, pair_ref)
        rows.append(("two_plates", "meissner", s, n, r))
        print(f"  two plates, model 4, {s * 1e3:.2f} mm: {n} elements, {r} ({time.time() - t0:.0f} s)", flush=True)
    plate_profile = [[[0.0, 0.0], [20 * H, 0.0]]]
    pair_profiles = [[[0.0, 0.0], [20 * H, 0.0]], [[20 * H, GAP], [0.0, GAP]]]  # normals into the gap
    for rho in m3_rhos:
        n, r = nloop_rows(plate_profile, rho, plate_x, plate_ref)
        rows.append(("plate", "nloop", rho, n, r))
        print(f"  plate, model 3, rho = {rho / H:.2f} h: {n} elements, {r} ({time.time() - t0:.0f} s)", flush=True)
    for rho in m3_rhos:
        n, r = nloop_rows(pair_profiles, rho, pair_x, pair_ref)
        rows.append(("two_plates", "nloop", rho, n, r))
        print(f"  two plates, model 3, rho = {rho / H:.2f} h: {n} elements, {r} ({time.time() - t0:.0f} s)", flush=True)

    quantities = ["vertical", "horizontal", "vertical_force", "horizontal_force"]
    ds = xr.Dataset(
        {
            "case": (("row",), [r[0] for r in rows]),
            "model": (("row",), [r[1] for r in rows]),
            "resolution": (("row",), [r[2] for r in rows],
                           dict(units="m", long_name="model 4: element size near the magnet; model 3: element radius")),
            "elements": (("row",), [r[3] for r in rows]),
            "ratio": (("row", "quantity"), [[r[4].get(q, np.nan) for q in quantities] for r in rows],
                      dict(long_name="model / image reference")),
        },
        coords={"row": np.arange(len(rows)), "quantity": quantities},
        attrs=dict(height=H, gap=GAP, z0=Z0, magnet="N52 sphere dipole"),
    )
    save_dataset(ds, FIGURES / "cavity_convergence.nc")

    lines = ["# Models 3 and 4 against the image method", "",
             f"Dipole of the N52 sphere; plate: h = {H * 1e3:g} mm, plate radius 20 h; two plates: "
             f"gap {GAP * 1e3:g} mm, dipole {Z0 * 1e3:g} mm above the lower plate, radius 40 mm. Ratios to the reference.", ""]
    for case in ("plate", "two_plates"):
        lines += [f"## {case.replace('_', ' ')}", "",
                  "| model | resolution | elements | U/U_ref vertical | U/U_ref horizontal | F_z/F_ref vertical | F_z/F_ref horizontal |",
                  "|---|---|---|---|---|---|---|"]
        for c, model, res, n, r in rows:
            if c != case:
                continue
            label = f"{res * 1e3:.2f} mm near the magnet" if model == "meissner" else f"rho = {res / H:.2f} h"
            f = lambda q: f"{r[q]:.5f}" if q in r else "-"  # noqa: E731
            lines.append(f"| {'4' if model == 'meissner' else '3'} | {label} | {n} | {f('vertical')} | {f('horizontal')} | "
                         f"{f('vertical_force')} | {f('horizontal_force')} |")
        lines.append("")
    write_text(FIGURES / "cavity_convergence.md", "\n".join(lines))
    print("\n".join(lines))
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
