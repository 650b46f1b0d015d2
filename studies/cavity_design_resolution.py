"""Mesh resolution of the cavity design problem: its outputs at 1.5, 1.0, 0.7 and 0.5 mm elements.

`invdesign_problems.cavity.gradient_problem` uses 1 mm elements for speed. This evaluates the problem
at one design (R = 6.69 mm, tilt = 17.864 deg, about the `--quick` optimum) on four meshes
and tabulates the located minimum, well depth, frequencies and distance from the target.

Writes `cavity_design_resolution.md` to studies/figures.

    python studies/cavity_design_resolution.py
"""

from __future__ import annotations

import math
import time

import jax

from _cavity_common import FIGURES, write_text
from invdesign_problems.cavity import gradient_problem

DESIGN = {"radius": 6.69e-3, "tilt": math.radians(17.864)}


def main():
    lines = ["# Cavity design problem against its mesh resolution", "",
             f"Design: R = {DESIGN['radius'] * 1e3:g} mm, tilt = {math.degrees(DESIGN['tilt']):g} deg (N52 sphere, response 1).", "",
             "| spacing (mm) | elements | y_min (mm) | z_min (mm) | depth (nJ) | f_min (Hz) | f_max (Hz) | distance (mm) |",
             "|---|---|---|---|---|---|---|---|"]
    for s in (1.5e-3, 1.0e-3, 0.7e-3, 0.5e-3):
        t = time.time()
        p = gradient_problem(spacing=s)
        out = {k: float(v) for k, v in jax.jit(p.evaluate)(DESIGN).items()}
        lines.append(f"| {s * 1e3:.1f} | {p.model.n_elements} | {out['y_min'] * 1e3:.4f} | {out['z_min'] * 1e3:.4f} | "
                     f"{out['depth'] * 1e9:.2f} | {out['f_min']:.3f} | {out['f_max']:.3f} | {out['distance'] * 1e3:.4f} |")
        print(lines[-1], f"({time.time() - t:.0f} s)", flush=True)
    write_text(FIGURES / "cavity_design_resolution.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
