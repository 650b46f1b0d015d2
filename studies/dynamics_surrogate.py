"""The dynamics surrogate against the solver: Kovacs et al. Figs. 1, 2, 4, 5 and held-out fields.

From a training run's folder (`python -m invdesign_surrogates.train dynamics`, its
`evaluation.nc`, `sp4.nc` and weights):

1. <m>(t) of SP4 fields 1 and 2 over 1 ns: solver, encode -> decode of the solver's states
   (Figs. 1, 4), the rollout from the solver's states at 0.01-0.04 ns (surrogate and PCA
   baseline), the rollout from the fitted start codes and the lookup baseline, with the max
   and RMS |d<m>| per method.
2. Per-cell error maps |m_surrogate - m_solver| at 0.2, 0.6 and 0.8 ns for both fields,
   reconstruction and rollout (Figs. 2, 5).
3. The held-out random fields (the fixed test split): the distribution of max |d<m>| per
   method.
4. The compression ratio (one angle per cell as in the paper, and three components).

Writes `studies/figures/dynamics_surrogate_*.png` and `dynamics_surrogate.md`, prints the numbers.

    python studies/dynamics_surrogate.py --run runs/dynamics [--out studies/figures]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

import invdesign  # noqa: E402,F401
from invdesign.plot import savefig  # noqa: E402

METHODS = {"ae_recon": "encode -> decode", "ae_rollout": "rollout (solver start)",
           "fitstart_rollout": "rollout (fitted start)", "pca_recon": "PCA recon", "pca_rollout": "PCA rollout",
           "lookup": "lookup"}
MAP_TIMES_NS = (0.2, 0.6, 0.8)


def _load(run: Path):
    with xr.open_dataset(run / "evaluation.nc", engine="h5netcdf") as ev:
        ev = ev.load()
    with xr.open_dataset(run / "sp4.nc", engine="h5netcdf") as sp4:
        sp4 = sp4.load()
    return ev, sp4


def plot_sp4_curves(ev, path):
    fig, axes = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    t = ev.time.values * 1e9
    styles = {"solver": ("k", "-", 2.0), "ae_recon": ("tab:blue", "--", 1.2), "ae_rollout": ("tab:red", "-", 1.2),
              "fitstart_rollout": ("tab:purple", ":", 1.2), "pca_rollout": ("tab:green", "-.", 1.0),
              "lookup": ("tab:gray", ":", 1.0)}
    for ax, case in zip(axes, ("SP4 field 1", "SP4 field 2")):
        c = list(ev.case.values).index(case)
        for k, (colour, ls, lw) in styles.items():
            if f"m_{k}" not in ev:
                continue
            m = ev[f"m_{k}"].values[c]
            for j, comp in enumerate("xyz"):
                ax.plot(t, m[:, j], ls, color=colour, lw=lw, alpha=1.0 if j == 0 else 0.6,
                        label=(METHODS.get(k, k) if j == 0 else None))
        ax.set_title(f"{case}: <m_x>, <m_y>, <m_z> (solver black)", fontsize=10)
        ax.set_ylabel("<m>")
        ax.axhline(0, color="0.85", lw=0.6)
    axes[0].legend(fontsize=7, ncol=3)
    axes[1].set_xlabel("t (ns)")
    fig.tight_layout()
    return savefig(fig, path)


def error_maps(sp4, weights_states):
    """|m - m_solver| per cell at MAP_TIMES_NS for both SP4 fields: (field, kind, time, x, y)."""
    recon, roll = weights_states
    solver = sp4["m"].isel(z=0).values  # (2, time, x, y, 3)
    t = sp4.time.values
    idx = [int(np.argmin(np.abs(t - s * 1e-9))) for s in MAP_TIMES_NS]
    out = np.zeros((2, 2, len(idx)) + solver.shape[2:4])
    for f in range(2):
        for k, pred in enumerate((recon[f], roll[f])):
            for j, i in enumerate(idx):
                p = pred[i] / np.maximum(np.linalg.norm(pred[i], axis=-1, keepdims=True), 1e-12)
                out[f, k, j] = np.linalg.norm(p - solver[f, i], axis=-1)
    return out


def plot_error_maps(maps, path):
    fig, axes = plt.subplots(4, len(MAP_TIMES_NS), figsize=(3.6 * len(MAP_TIMES_NS), 6.4))
    vmax = float(np.percentile(maps, 99.5))
    for f in range(2):
        for k, kind in enumerate(("encode -> decode", "rollout")):
            for j, s in enumerate(MAP_TIMES_NS):
                ax = axes[2 * f + k, j]
                im = ax.imshow(maps[f, k, j].T, origin="lower", cmap="magma", vmin=0, vmax=vmax, aspect="equal")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(f"field {f + 1}, {kind}, {s:g} ns: max {maps[f, k, j].max():.2f}", fontsize=7)
    fig.colorbar(im, ax=axes, shrink=0.6, label="|m - m_solver| per cell")
    return savefig(fig, path)


def plot_heldout(ev, path):
    held = [i for i, c in enumerate(ev.case.values) if not str(c).startswith("SP4")]
    fig, ax = plt.subplots(figsize=(7, 4))
    keys = [k for k in METHODS if f"max_err_{k}" in ev]
    data = [ev[f"max_err_{k}"].values[held] for k in keys]
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(range(1, len(keys) + 1), [METHODS[k] for k in keys], rotation=20, fontsize=8)
    ax.set_ylabel("max over 1 ns of |d<m>|")
    ax.set_title(f"held-out random fields ({len(held)}): error against the solver", fontsize=10)
    fig.tight_layout()
    return savefig(fig, path)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="a training run's folder")
    p.add_argument("--out", default=str(Path(__file__).parent / "figures"))
    a = p.parse_args(argv)
    run, out = Path(a.run), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    import jax

    from invdesign_surrogates._weights import load_model
    from invdesign_surrogates.dynamics import Autoencoder, compression_ratio, reconstruct, rollout

    ev, sp4 = _load(run)
    ae, head = load_model(run / "ae.eqx", lambda h: Autoencoder(**h["hyperparameters"], key=jax.random.key(0)))
    solver = sp4["m"].isel(z=0).values.astype(np.float32)
    recon = [np.asarray(reconstruct(ae, solver[f])) for f in range(2)]
    roll = []
    for f in range(2):
        r = rollout(sp4["b_ext"].values[f, :2], m0=solver[f, 1:5], t_end=float(sp4.time.values[-1]), states=True,
                    weights=run)
        roll.append(np.concatenate([recon[f][:1], r["m"].values]))
    maps = error_maps(sp4, (recon, roll))
    files = [plot_sp4_curves(ev, out / "dynamics_surrogate_sp4.png"),
             plot_error_maps(maps, out / "dynamics_surrogate_error_maps.png"),
             plot_heldout(ev, out / "dynamics_surrogate_heldout.png")]

    held = [i for i, c in enumerate(ev.case.values) if not str(c).startswith("SP4")]
    rows = ["| method | field 1 max | field 1 RMS | field 2 max | field 2 RMS | held-out max (median) | held-out max (90 %) |",
            "|---|---|---|---|---|---|---|"]
    res = {}
    for k, name in METHODS.items():
        if f"max_err_{k}" not in ev:
            continue
        mx, rms = ev[f"max_err_{k}"].values, ev[f"rms_err_{k}"].values
        f1, f2 = list(ev.case.values).index("SP4 field 1"), list(ev.case.values).index("SP4 field 2")
        res[k] = dict(f1_max=float(mx[f1]), f1_rms=float(rms[f1]), f2_max=float(mx[f2]), f2_rms=float(rms[f2]),
                      held_median=float(np.median(mx[held])), held_p90=float(np.percentile(mx[held], 90)))
        r = res[k]
        rows.append(f"| {name} | {r['f1_max']:.3f} | {r['f1_rms']:.3f} | {r['f2_max']:.3f} | {r['f2_rms']:.3f} | "
                    f"{r['held_median']:.3f} | {r['held_p90']:.3f} |")
    grid, latent = head["grid"], head["hyperparameters"]["latent"]
    ratio_angle = compression_ratio(grid, latent)
    ratio_3 = compression_ratio(grid, latent, values_per_cell=3)
    text = "\n".join([
        f"# Dynamics surrogate vs solver ({run})",
        "",
        f"Autoencoder: grid {head['grid']}, channels {head['hyperparameters']['channels']}, "
        f"latent {head['hyperparameters']['latent']}, {len(head['train_fields'])} training fields, "
        f"best epoch {head['best_epoch']} of {head['epochs']}.",
        f"Compression ratio: {ratio_angle:g}:1 counting one angle per cell as the paper (1024:1), "
        f"{ratio_3:g}:1 counting the three stored components.",
        f"Held-out random fields: {len(held)}.",
        "",
        "|d<m>| against the solver over 1 ns (every 10 ps):",
        "",
        *rows,
        "",
        "Per-cell error maps (|m - m_solver|) at " + ", ".join(f"{s:g}" for s in MAP_TIMES_NS) + " ns: "
        + ", ".join(f"field {f + 1} {kind} max {maps[f, k].max(axis=(-2, -1)).round(3).tolist()}"
                    for f in range(2) for k, kind in enumerate(("recon", "rollout"))),
    ])
    (out / "dynamics_surrogate.md").write_text(text + "\n")
    print(text)
    print("wrote", *files, out / "dynamics_surrogate.md")
    return res


if __name__ == "__main__":
    main()
