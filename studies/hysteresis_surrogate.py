"""The hysteresis surrogate against the solver: the paper's Figs. 5-8 and a round trip.

With the shipped weights (or a training run's folder, `--weights`) and the labeled data:

1. Fig. 5: predicted vs computed anchors (Mr, Hk90, Hc) on the fixed test split, for the
   surrogate and for the image-statistics baseline, with the MAE per anchor.
2. Fig. 6: test structures: original map, decoded map, and the computed and predicted
   anchor curves.
3. Figs. 7 and 8: morphing in latent space, z = (1 - a) z_A + a z_B. Fig. 7 runs from a
   well-aligned structure to a poorly aligned one, Fig. 8 from coarse to fine grains, both
   picked from the training structures. Each decoded structure is shown with its predicted
   curve; three of them (a = 0.2, 0.5, 0.8) are re-simulated with the solver.
4. Round trip: for test structures, the stored anchors (solver, real structure) against the
   solver on the same kx read with the ky >= 0 rule (what the kx input loses), the solver on
   grains_from_map(calibration(decode(encode(kx)))) (what the autoencoder, its angle
   calibration and the grain projection lose; also without the calibration), and the
   prediction. Decoded maps are always calibrated and projected onto grains before they
   are predicted or simulated, as a design is (`LatentSurrogate.structure`).

Writes studies/figures/hysteresis_surrogate_*.png and hysteresis_surrogate.nc, and prints
the numbers.

    python studies/hysteresis_surrogate.py [--labeled FILE] [--weights DIR] [--roundtrip 8]
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

import invdesign  # noqa: E402,F401
from invdesign.plot import savefig  # noqa: E402
from invdesign_problems.microstructure import anchor_curve  # noqa: E402
from invdesign_surrogates.data.hysteresis import is_test  # noqa: E402
from invdesign_surrogates.hysteresis import (  # noqa: E402
    decode,
    encode,
    fit_baseline,
    grains_from_map,
    image_statistics,
    load_surrogate,
    predict,
    simulate_anchors,
)

ROOT = Path(__file__).resolve().parents[1]
LABELED = ROOT / "surrogates" / "data" / "shipped" / "hysteresis_labeled_64x64.nc"
ANCHORS = ("M1", "Mr", "Hk90", "Hk80", "Hk70", "Hc")
TABLE3 = dict(M1=0.0030, Mr=0.0152, Hk90=0.0184, Hk80=0.0245, Hk70=0.0234, Hc=0.0206)


def paper_units(ds):
    a = ds["anchors"].values.copy()
    a[:, 2:] /= ds.attrs["H_A"]
    return a


def show(ax, kx, title):
    ax.imshow(np.asarray(kx).T, origin="lower", cmap="RdBu", vmin=-1, vmax=1)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def curve(ax, anchors, style, label):
    h, m = anchor_curve(anchors)
    ax.plot(h, m, style, label=label, ms=4)


def fig5(y, pred, base, out):
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    for ax, (k, name) in zip(axes, [(1, "Mr"), (2, "Hk90"), (5, "Hc")]):
        lo, hi = min(y[:, k].min(), pred[:, k].min()), max(y[:, k].max(), pred[:, k].max())
        ax.plot([lo, hi], [lo, hi], color="0.7", lw=1)
        ax.plot(y[:, k], base[:, k], "x", color="0.5", ms=4, label=f"baseline (MAE {np.mean(np.abs(base[:, k] - y[:, k])):.4f})")
        ax.plot(y[:, k], pred[:, k], "o", color="tab:orange", ms=3, label=f"surrogate (MAE {np.mean(np.abs(pred[:, k] - y[:, k])):.4f})")
        unit = "Ms" if k < 2 else "H_A"
        ax.set_xlabel(f"computed {name} ({unit})")
        ax.set_ylabel(f"predicted {name} ({unit})")
        ax.legend(fontsize=7)
    fig.suptitle(f"test split: {len(y)} structures never used in training (paper Fig. 5)", fontsize=10)
    fig.tight_layout()
    savefig(fig, out)


CALIBRATION = None  # the surrogate's AngleCalibration, set in main()


def grains(maps, calibrate=True):
    """The grain structure of decoded maps (what a design stands for: the calibrated map's
    grains, `LatentSurrogate.structure`; `calibrate=False`: the raw decoded map's)."""
    maps = np.clip(maps, -1.0, 1.0)
    return grains_from_map(CALIBRATION(maps) if calibrate else maps)[0]


def fig6(kx, y, pred, out, n=4):
    fig, axes = plt.subplots(n, 4, figsize=(10, 2.4 * n))
    rec = decode(encode(kx[:n]))
    for i in range(n):
        show(axes[i, 0], kx[i], "structure")
        show(axes[i, 1], rec[i], "decoded")
        show(axes[i, 2], grains(rec[i]), "decoded, grains")
        curve(axes[i, 3], y[i], "s-", "computed")
        curve(axes[i, 3], pred[i], "o--", "predicted")
        axes[i, 3].set_xlabel("H / H_A", fontsize=8)
        axes[i, 3].set_ylabel("M / Ms", fontsize=8)
        axes[i, 3].legend(fontsize=7)
    fig.suptitle("test structures (paper Fig. 6)", fontsize=10)
    fig.tight_layout()
    savefig(fig, out)


def morph(kx_a, kx_b, title, out, alphas=(0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0), verify=(0.2, 0.5, 0.8)):
    za, zb = encode(np.stack([kx_a, kx_b]))
    z = np.stack([(1 - a) * za + a * zb for a in alphas]).astype(np.float32)
    maps = grains(decode(z))
    pred, spread = predict(maps, return_spread=True)
    idx = [alphas.index(a) for a in verify]
    computed = simulate_anchors(maps[idx])
    fig, axes = plt.subplots(2, len(alphas), figsize=(2.1 * len(alphas), 4.6))
    for j, a in enumerate(alphas):
        show(axes[0, j], maps[j], f"a = {a:g}")
        curve(axes[1, j], pred[j], "o--", "predicted")
        if j in idx:
            curve(axes[1, j], computed[idx.index(j)], "s-", "solver")
        axes[1, j].set_ylim(-0.1, 1.05)
        axes[1, j].set_xlim(-1.0, 1.05)
        axes[1, j].tick_params(labelsize=6)
    axes[1, 0].legend(fontsize=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    savefig(fig, out)
    return np.asarray(alphas)[idx], pred[idx], computed


def main(argv=None):
    global predict, encode, decode, CALIBRATION
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labeled", default=str(LABELED))
    p.add_argument("--weights", default=None, help="a training run's folder (default: shipped weights)")
    p.add_argument("--roundtrip", type=int, default=8, help="test structures re-simulated in the round trip")
    p.add_argument("--out", default=str(ROOT / "studies" / "figures"))
    a = p.parse_args(argv)
    if a.weights is not None:  # a training run's folder instead of the shipped weights
        predict, encode, decode = (functools.partial(f, weights=a.weights) for f in (predict, encode, decode))
    CALIBRATION = load_surrogate(a.weights).calibration
    out = Path(a.out)
    ds = xr.open_dataset(a.labeled, engine="h5netcdf").load()
    ok = ds["complete"].values == 1
    test = is_test(ds["sample"].values) & ok
    train = ~is_test(ds["sample"].values) & ok
    y = paper_units(ds)
    kx = ds["kx"].values
    pred = predict(kx[test])
    stats_train, _ = image_statistics(kx[train])  # from kx alone, as the surrogate sees a structure
    stats_test, _ = image_statistics(kx[test])
    base = fit_baseline(stats_train, y[train]).predict(stats_test)
    mae = np.mean(np.abs(pred - y[test]), axis=0)
    mae_base = np.mean(np.abs(base - y[test]), axis=0)
    print(f"labeled {int(ok.sum())} (train {int(train.sum())}, test {int(test.sum())})")
    print(f"{'anchor':6s} {'surrogate':>10s} {'baseline':>10s} {'Table 3':>8s}")
    for k, name in enumerate(ANCHORS):
        print(f"{name:6s} {mae[k]:10.4f} {mae_base[k]:10.4f} {TABLE3[name]:8.4f}")
    fig5(y[test], pred, base, out / "hysteresis_surrogate_fig5.png")
    fig6(kx[test], y[test], pred, out / "hysteresis_surrogate_fig6.png")

    # morphing pairs from the training structures
    th = np.abs(ds["theta"].values)
    ng = ds["n_grains"].values
    tr = np.flatnonzero(train)
    mid = tr[(ng[tr] > 80) & (ng[tr] < 160)]
    a7, b7 = mid[np.argmin(th[mid])], mid[np.argmax(th[mid])]
    mis = tr[(th[tr] > 1.0) & (th[tr] < 2.0)]
    a8, b8 = mis[np.argmin(ng[mis])], mis[np.argmax(ng[mis])]
    m7 = morph(kx[a7], kx[b7], f"alignment: theta {th[a7]:.2f} -> {th[b7]:.2f} rad (paper Fig. 7)", out / "hysteresis_surrogate_fig7.png")
    m8 = morph(kx[a8], kx[b8], f"grain size: {ng[a8]} -> {ng[b8]} grains (paper Fig. 8)", out / "hysteresis_surrogate_fig8.png")
    for name, (alphas, p_, c_) in (("Fig. 7", m7), ("Fig. 8", m8)):
        for a_, pp, cc in zip(alphas, p_, c_):
            print(f"{name} a={a_:.1f}: predicted Mr {pp[1]:.3f} Hc {pp[5]:+.3f}; solver Mr {cc[1]:.3f} Hc {cc[5]:+.3f}")

    # round trip on the first test structures
    idx = np.flatnonzero(test)[: a.roundtrip]
    rule = simulate_anchors(kx[idx])
    dec = decode(encode(kx[idx]))
    rec = simulate_anchors(grains(dec))
    rec_raw = simulate_anchors(grains(dec, calibrate=False))
    pr = predict(kx[idx])
    rows = {"ky>=0 rule": rule, "grains(calibrated decode(encode))": rec, "grains(decode(encode)), no calibration": rec_raw,
            "prediction": pr}
    print(f"\nround trip on {len(idx)} test structures: MAE against the stored anchors (Ms, H_A)")
    for name, v in rows.items():
        print(f"  {name:16s} " + " ".join(f"{n} {m:.4f}" for n, m in zip(ANCHORS, np.mean(np.abs(v - y[idx]), axis=0))))
    res = xr.Dataset(
        {
            "mae_surrogate": ("anchor", mae), "mae_baseline": ("anchor", mae_base),
            "mae_table3": ("anchor", [TABLE3[n] for n in ANCHORS]),
            "roundtrip_stored": (("roundtrip", "anchor"), y[idx]),
            "roundtrip_rule": (("roundtrip", "anchor"), rule),
            "roundtrip_decoded": (("roundtrip", "anchor"), rec),
            "roundtrip_decoded_uncalibrated": (("roundtrip", "anchor"), rec_raw),
            "roundtrip_predicted": (("roundtrip", "anchor"), pr),
            "morph7_alpha": ("morph", m7[0]), "morph7_predicted": (("morph", "anchor"), m7[1]), "morph7_computed": (("morph", "anchor"), m7[2]),
            "morph8_alpha": ("morph", m8[0]), "morph8_predicted": (("morph", "anchor"), m8[1]), "morph8_computed": (("morph", "anchor"), m8[2]),
        },
        coords={"anchor": list(ANCHORS), "roundtrip_sample": ("roundtrip", ds["sample"].values[idx])},
        attrs={"labeled": int(ok.sum()), "n_train": int(train.sum()), "n_test": int(test.sum()),
               "units": "M1, Mr in Ms; Hk90..Hc in H_A (signed)"},
    )
    from invdesign import atomic_write

    atomic_write(out / "hysteresis_surrogate.nc", lambda tmp: res.to_netcdf(tmp, engine="h5netcdf"))


if __name__ == "__main__":
    main()
