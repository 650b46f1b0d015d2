"""Induced surface charge, screening current and N-loop currents on the 7 mm stub cavity.

Paper: n-loop-cavity-levitation.md (sections II.3 and III; the response that the energy
landscapes of Figs. 4-6 come from). For the N52 sphere (r = 0.5 mm, 1.47 T) with an
azimuthal moment (+x) at two representative poses,

- above the stub rim, (0, 2.6, 6.0) mm, and
- in the gap between stub and outer wall, (0, 4.5, 2.1) mm (the paper's gap well),

this plots, for model 4 (ideal Meissner boundary-element model), the induced magnetic
surface-charge density sigma (A/m; `MeissnerModel.charges`) and the screening sheet current
|K| = |n x H| (A/m; as `MeissnerModel.surface_current`) on the cavity surfaces, and for model 3
(the paper's N-loop model, 0.3 mm elements) its loop currents i = -B_n rho / mu0 (A;
`NLoopModel.loop_currents`). Panels: a cut-away 3-D scatter of the element centres
(x <= 0 half) coloured by sigma, and unrolled maps (azimuth phi against arc length s along
the meridian profile: stub top, stub wall, floor, outer wall up to z = 15 mm) with every
element drawn as its exact (phi, s) patch, on symmetric-log / log colour scales.

Printed checks: the normal field left on the surface (|H . n| / |H| at the element centres,
zero for an ideal Meissner state), the net induced charge, the largest |K| per surface.

Writes studies/figures/cavity_charges.png (about 1-2 min, most of it building the meshes).

    python studies/cavity_charges.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import jax.numpy as jnp
import numpy as np
from matplotlib.collections import PolyCollection
from matplotlib.colors import LogNorm, SymLogNorm

from _cavity_common import AZIMUTHAL, FIGURES, cavity, model3, model4, plt, savefig, sphere
from invdesign.cavity import check_position, meissner_model, nloop_model

R = 7e-3
POSES = {"above the stub rim": (0.0, 2.6e-3, 6.0e-3), "in the gap": (0.0, 4.5e-3, 2.1e-3)}
Z_MAX = 15e-3  # outer wall shown up to this height


def unrolled(mesh, cav):
    """Per element: patch corners in (phi deg, s mm), surface label, and the surface boundaries in s (mm)."""
    profs, names = cav.profiles()
    patch = np.asarray(mesh.patch)
    lab = mesh.surface_index()
    offsets, s0 = [], 0.0
    for p in profs:
        p = np.asarray(p)
        offsets.append(s0)
        s0 += float(np.sum(np.hypot(*np.diff(p, axis=0).T)))
    sa = np.empty(mesh.size)
    sb = np.empty(mesh.size)
    for k, p in enumerate(profs):
        p = np.asarray(p)
        sel = lab == k
        sa[sel] = offsets[k] + np.hypot(patch[sel, 0] - p[0, 0], patch[sel, 1] - p[0, 1])
        sb[sel] = offsets[k] + np.hypot(patch[sel, 2] - p[0, 0], patch[sel, 3] - p[0, 1])
    pa, pb = np.degrees(patch[:, 4]), np.degrees(patch[:, 5])
    polys = np.stack([np.stack([pa, sa], -1), np.stack([pb, sa], -1), np.stack([pb, sb], -1), np.stack([pa, sb], -1)], axis=1)
    return polys * np.array([1.0, 1e3]), lab, np.array(offsets) * 1e3, names


def keep(mesh, cav):
    """Elements shown in the unrolled maps: all but the outer wall above Z_MAX."""
    c = np.asarray(mesh.centre)
    lab = mesh.surface_index()
    return ~((lab == 3) & (c[:, 2] > Z_MAX))


def unrolled_panel(ax, mesh, cav, values, norm, cmap, label, title, pose):
    polys, lab, offsets, names = unrolled(mesh, cav)
    sel = keep(mesh, cav)
    pc = PolyCollection(polys[sel], array=values[sel], cmap=cmap, norm=norm, edgecolors="none")
    ax.add_collection(pc)
    s_top = offsets[3] + Z_MAX * 1e3
    for off, name in zip(offsets, names):
        ax.axhline(off, color="k", lw=0.6)
        ax.text(362, off + 0.3, name.replace("_", " "), fontsize=6.5, va="bottom", ha="left")
    # the magnet's azimuth
    ax.axvline(np.degrees(np.arctan2(pose[1], pose[0])), color="w", lw=0.6, ls="--")
    ax.set_xlim(0, 360)
    ax.set_ylim(s_top, 0)
    ax.set_xlabel("azimuth phi (deg)")
    ax.set_ylabel("arc length s along the profile (mm)")
    ax.set_title(title, fontsize=8.5)
    plt.colorbar(pc, ax=ax, label=label, fraction=0.05, pad=0.12)


def symlog(values, decades):
    vmax = float(np.max(np.abs(values)))
    return SymLogNorm(linthresh=vmax * 10.0 ** (-decades), vmin=-vmax, vmax=vmax, base=10)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="coarse meshes (model 4 at 0.8 mm, model 3 at 0.6 mm)")
    ap.add_argument("--decades", type=float, default=3.0, help="decades of the colour scales below the maximum")
    args = ap.parse_args(argv)
    t0 = time.time()

    def log(msg):
        print(f"[{time.time() - t0:5.0f} s] {msg}", flush=True)

    cav = cavity(R)
    m4 = meissner_model(cav, 0.8e-3) if args.quick else model4(R)
    log(f"model 4: {m4.mesh.size} elements (built and factorised)")
    m3 = nloop_model(cav, 0.6e-3) if args.quick else model3(R)
    log(f"model 3: {m3.mesh.size} elements")
    mag = sphere(1.47)
    d = jnp.asarray(AZIMUTHAL)

    fig = plt.figure(figsize=(24, 11))
    for row, (name, pose) in enumerate(POSES.items()):
        p = jnp.asarray(pose)
        check_position(m4, mag, p)
        # K = n x H with H the total surface field, as `MeissnerModel.surface_current` computes
        # it; H is kept here for the check that its normal part vanishes (the field is one
        # O(N^2) pass, so it is computed once)
        sigma = m4.charges(mag, p, d)
        h = np.asarray(m4.surface_field(sigma, mag, p, d))
        sigma = np.asarray(sigma)
        nrm = np.asarray(m4.mesh.normal)
        kmag = np.linalg.norm(np.cross(nrm, h), axis=-1)
        hn = np.abs(np.sum(h * nrm, axis=-1))
        area = np.asarray(m4.mesh.area)
        i3 = np.asarray(m3.loop_currents(mag, p, d))
        u4 = float(m4.magnetic_energy(mag, p, d))
        u3 = float(m3.magnetic_energy(mag, p, d))
        log(f"{name} {tuple(round(c * 1e3, 2) for c in pose)} mm: U_mag model 4 = {u4 * 1e9:.1f} nJ, model 3 = {u3 * 1e9:.1f} nJ")
        log(f"  sigma: max |sigma| = {np.max(np.abs(sigma)):.4g} A/m, net charge sum(sigma A) = {np.sum(sigma * area):.3g} A m "
            f"(sum |sigma| A = {np.sum(np.abs(sigma) * area):.3g} A m)")
        log(f"  Meissner check: median |H.n|/|H| = {np.median(hn / np.linalg.norm(h, axis=-1)):.2e}, "
            f"max |H.n| / max |H| = {hn.max() / np.linalg.norm(h, axis=-1).max():.2e}")
        lab = m4.mesh.surface_index()
        for k, (sname, _, _) in enumerate(m4.mesh.surfaces):
            sel = lab == k
            j = np.argmax(np.where(sel, kmag, -1.0))
            c = np.asarray(m4.mesh.centre[j]) * 1e3
            log(f"  |K| on {sname}: max {kmag[j]:.4g} A/m at ({c[0]:+.2f}, {c[1]:+.2f}, {c[2]:.2f}) mm; "
                f"screening current share of sum |K|^2 A: {np.sum((kmag**2 * area)[sel]) / np.sum(kmag**2 * area):.3f}")
        lab3 = m3.mesh.surface_index()
        log("  model 3 loop currents: max |i| = " + ", ".join(
            f"{s} {np.max(np.abs(i3[lab3 == k])) * 1e3:.3g} mA" for k, (s, _, _) in enumerate(m3.mesh.surfaces)))

        # 3-D cut-away scatter of sigma
        ax = fig.add_subplot(2, 4, 4 * row + 1, projection="3d")
        c = np.asarray(m4.mesh.centre)
        sel = (c[:, 0] <= 1e-9) & (c[:, 2] <= Z_MAX)
        norm = symlog(sigma, args.decades)
        ax.scatter(c[sel, 0] * 1e3, c[sel, 1] * 1e3, c[sel, 2] * 1e3, c=sigma[sel], cmap="RdBu_r", norm=norm, s=5, depthshade=False)
        ax.scatter([pose[0] * 1e3], [pose[1] * 1e3], [pose[2] * 1e3], color="k", s=40)
        ax.quiver(pose[0] * 1e3, pose[1] * 1e3, pose[2] * 1e3, 1.5, 0, 0, color="k")  # the moment (+x)
        ax.set_xticks([-6, 0])
        ax.set_xlabel("x (mm)")
        ax.set_ylabel("y (mm)")
        ax.set_zlabel("z (mm)")
        ax.view_init(elev=20, azim=20)  # from the +x side: the inner faces of the x <= 0 half
        ax.set_box_aspect((0.5, 1.0, 1.1))
        ax.set_title(f"model 4 sigma, magnet {name} at {tuple(round(v * 1e3, 1) for v in pose)} mm, moment +x\n"
                     "(x <= 0 half, z <= 15 mm; colour scale of the next panel)", fontsize=8.5)

        unrolled_panel(fig.add_subplot(2, 4, 4 * row + 2), m4.mesh, cav, sigma, norm, "RdBu_r", "sigma (A/m)",
                       f"model 4: surface charge sigma, magnet {name}", pose)
        kmax = float(kmag.max())
        unrolled_panel(fig.add_subplot(2, 4, 4 * row + 3), m4.mesh, cav, np.maximum(kmag, kmax * 1e-6),
                       LogNorm(vmin=kmax * 10.0 ** (-args.decades), vmax=kmax), "magma", "|K| (A/m)",
                       f"model 4: screening current |K| = |n x H|, magnet {name}", pose)
        unrolled_panel(fig.add_subplot(2, 4, 4 * row + 4), m3.mesh, cav, i3, symlog(i3, args.decades), "PuOr_r", "loop current i (A)",
                       f"model 3 (N-loop): loop currents, magnet {name}", pose)
        log(f"  {name}: panels done")
    fig.suptitle("N52 sphere (1.47 T, r = 0.5 mm), azimuthal moment, 7 mm cavity: induced response on the cavity surfaces", fontsize=11)
    fig.tight_layout()
    savefig(fig, FIGURES / "cavity_charges.png")
    log(f"wrote {FIGURES / 'cavity_charges.png'}")


if __name__ == "__main__":
    main()
