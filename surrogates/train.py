"""Training entry point of the surrogates: `python -m invdesign_surrogates.train <surrogate> ...`.

Hysteresis (see `invdesign_surrogates.hysteresis._pipeline` for the stages):

    python -m invdesign_surrogates.train hysteresis --labeled data/hysteresis/labeled.nc --out runs/hysteresis

generates 100 000 unlabeled structures into `OUT/data`, chooses the VAE latent size among
`--latents` by short runs, trains the VAE, cross-validates the regressor candidates on the
training split, trains the ensemble, evaluates on the fixed test split and draws the
learning curve. Everything checkpoints; `--resume` continues an interrupted run (same
settings). Retrain only the regressor on new labeled data with the VAE of an earlier run:

    python -m invdesign_surrogates.train hysteresis --labeled NEW.nc --out runs/new --reuse-vae runs/hysteresis

`--ship` copies the weights and the test slice into the package (`hysteresis/shipped/`)
and prints the sha256 values to pin in `hysteresis/_shipped.py`. The run uses the GPU when
JAX sees one, else the CPU. SIGTERM stops a run like Ctrl-C: the last finished epoch is
checkpointed.

Dynamics (see `invdesign_surrogates.dynamics._pipeline`): split by field, autoencoder,
latent trajectories, stepper, PCA and lookup baselines, evaluation on the held-out and the
SP4 fields; every stage is kept, so rerunning the same command continues:

    python -m invdesign_surrogates.train dynamics --data data/dynamics --out runs/dynamics

`--ship` (once the run has finished) copies `ae.eqx`, `stepper.eqx`, `start.eqx`, a
`reference.nc` (the solver's and the rollout's <m>(t) of SP4 fields 1 and 2, with the
recorded errors) and the data's `s_state.nc` into `dynamics/shipped/` and prints the sha256 values to pin in
`dynamics/_rollout.py`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
from pathlib import Path


def _hysteresis_parser(sub):
    from invdesign_surrogates.hysteresis._pipeline import PipelineConfig

    d = PipelineConfig(labeled="-", out="-")
    p = sub.add_parser("hysteresis", help="hysteresis surrogate: VAE + anchor-point ensemble (Kovacs et al.)",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("--labeled", required=True, help="labeled dataset (.nc with kx, anchors, attr H_A)")
    p.add_argument("--out", required=True, help="output folder (checkpoints, weights, evaluation)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (same settings)")
    p.add_argument("--labeled-limit", type=int, default=None, help="use only labeled samples with index below this")
    p.add_argument("--unlabeled", default=None, help="existing unlabeled dataset (.nc with kx) instead of generating")
    p.add_argument("--n-unlabeled", type=int, default=d.n_unlabeled)
    p.add_argument("--data-seed", type=int, default=d.data_seed)
    p.add_argument("--vae-val", type=int, default=d.vae_val, help="held-out unlabeled structures")
    p.add_argument("--latents", type=int, nargs="+", default=list(d.latents), help="latent-size candidates")
    p.add_argument("--vae-lrs", type=float, nargs="+", default=list(d.vae_lrs), help="Nadam learning-rate candidates")
    p.add_argument("--vae-channels", type=int, nargs="+", default=list(d.vae_channels))
    p.add_argument("--vae-dense", type=int, default=d.vae_dense)
    p.add_argument("--vae-batch", type=int, default=d.vae_batch)
    p.add_argument("--vae-beta", type=float, default=d.vae_beta,
                   help="weight of the KL term (1: the paper's VAE; below 1: sharper, further from the prior)")
    p.add_argument("--select-structures", type=int, default=d.select_structures, help="structures of each short run")
    p.add_argument("--select-epochs", type=int, default=d.select_epochs, help="epochs of each short run")
    p.add_argument("--vae-epochs", type=int, default=d.vae_epochs, help="epochs of the long run over all structures")
    p.add_argument("--reuse-vae", default=None, help="vae.eqx (or a run folder) to reuse: skips the unlabeled part")
    p.add_argument("--vae-init", default=None,
                   help="vae.eqx (or a run folder) to continue for --vae-epochs more epochs (no short runs)")
    p.add_argument("--vae-only", action="store_true", help="stop after the VAE stage")
    p.add_argument("--feature-sets", nargs="+", default=list(d.feature_sets), help="regressor input candidates")
    p.add_argument("--members", type=int, default=d.members)
    p.add_argument("--shared-widths", type=int, nargs="+", default=list(d.shared_widths))
    p.add_argument("--head-widths", type=int, nargs="+", default=list(d.head_widths))
    p.add_argument("--reg-lr", type=float, default=d.reg_lr)
    p.add_argument("--reg-batch", type=int, default=d.reg_batch)
    p.add_argument("--cv-folds", type=int, default=d.cv_folds)
    p.add_argument("--cv-max-epochs", type=int, default=d.cv_max_epochs)
    p.add_argument("--cv-smooth", type=int, default=d.cv_smooth)
    p.add_argument("--slice-size", type=int, default=d.slice_size)
    p.add_argument("--learning-curve", type=int, nargs="*", default=None,
                   help="training-set sizes (default: 25 50 100 250 500 ... below all, and all; none: skip)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--ship", action="store_true", help="copy the weights into the package and print the pins")
    p.set_defaults(run=_run_hysteresis)


def _run_hysteresis(a) -> dict:
    from invdesign_surrogates.hysteresis import _pipeline, _shipped

    config = _pipeline.PipelineConfig(
        labeled=a.labeled, out=a.out, labeled_limit=a.labeled_limit, unlabeled=a.unlabeled, n_unlabeled=a.n_unlabeled,
        data_seed=a.data_seed, vae_val=a.vae_val, latents=tuple(a.latents), vae_lrs=tuple(a.vae_lrs),
        vae_channels=tuple(a.vae_channels), vae_dense=a.vae_dense, vae_batch=a.vae_batch, vae_beta=a.vae_beta,
        select_structures=a.select_structures, select_epochs=a.select_epochs, vae_epochs=a.vae_epochs,
        reuse_vae=a.reuse_vae, vae_init=a.vae_init, vae_only=a.vae_only, feature_sets=tuple(a.feature_sets),
        members=a.members,
        shared_widths=tuple(a.shared_widths), head_widths=tuple(a.head_widths), reg_lr=a.reg_lr,
        reg_batch=a.reg_batch, cv_folds=a.cv_folds, cv_max_epochs=a.cv_max_epochs, cv_smooth=a.cv_smooth,
        slice_size=a.slice_size, learning_curve=None if a.learning_curve is None else tuple(a.learning_curve),
        seed=a.seed, progress=not a.no_progress,
    )
    summary = _pipeline.run_pipeline(config, resume=a.resume)
    if a.ship:
        summary["shipped"] = ship(Path(a.out), _shipped.SHIPPED, ("vae.eqx",) if a.vae_only else SHIPPED_FILES)
    return summary


def _require(run_dir: Path, names) -> None:
    """Refuse to ship from a run that lacks any of `names`."""
    for name in names:
        if not (run_dir / name).exists():
            raise FileNotFoundError(f"{run_dir / name} does not exist: the run in {run_dir} has not finished")


def _install(src: Path, target: Path) -> str:
    """Copy `src` into the folder `target` atomically; the sha256 of the copy."""
    from invdesign_surrogates._weights import file_sha256

    target.mkdir(parents=True, exist_ok=True)
    tmp = target / f".{src.name}.tmp"
    shutil.copyfile(src, tmp)
    tmp.replace(target / src.name)
    return file_sha256(target / src.name)


def _print_pins(pins: dict, module: str) -> None:
    print(f"pin these in {module} (SHIPPED_SHA256):", file=sys.stderr)
    for name, sha in pins.items():
        print(f'    "{name}": "{sha}",', file=sys.stderr)


SHIPPED_FILES = ("vae.eqx", "anchors.eqx", "test_slice.nc")
"""What a finished hysteresis run ships (`--ship`; only `vae.eqx` with `--vae-only`)."""


def ship(run_dir: Path, target: Path, names=SHIPPED_FILES) -> dict:
    """Copy `names` (default `SHIPPED_FILES`) of a finished run into `target`; their sha256."""
    _require(run_dir, names)
    pins = {name: _install(run_dir / name, target) for name in names}
    _print_pins(pins, "surrogates/hysteresis/_shipped.py")
    return pins


def _dynamics_parser(sub):
    from invdesign_surrogates.dynamics._pipeline import DynamicsConfig

    d = DynamicsConfig(data="-", out="-")
    p = sub.add_parser("dynamics", help="dynamics surrogate: conv autoencoder + latent stepper on SP4 (Kovacs et al.)",
                       description="Train the magnetization-dynamics surrogate and its baselines, stage by stage "
                                   "(see invdesign_surrogates.dynamics._pipeline); rerun the same command to continue.")
    p.add_argument("--data", required=True, help="dynamics dataset folder (python -m invdesign_surrogates.data.dynamics)")
    p.add_argument("--out", required=True, help="output folder (checkpoints, weights, evaluation)")
    p.add_argument("--n-fields", type=int, default=None, help="use only the first N fields (learning curve)")
    p.add_argument("--latent", type=int, default=d.latent)
    p.add_argument("--channels", type=int, nargs="+", default=list(d.channels))
    p.add_argument("--ae-lr", type=float, default=d.ae_lr)
    p.add_argument("--ae-batch", type=int, default=d.ae_batch)
    p.add_argument("--ae-epochs", type=int, default=d.ae_epochs)
    p.add_argument("--ae-init", default=None, help="warm start from this trained ae.eqx (same architecture)")
    p.add_argument("--ae-every", type=int, default=d.ae_every, help="train the autoencoder on every k-th state")
    p.add_argument("--stepper-lr", type=float, default=d.stepper_lr)
    p.add_argument("--stepper-batch", type=int, default=d.stepper_batch)
    p.add_argument("--stepper-epochs", type=int, default=d.stepper_epochs)
    p.add_argument("--pca-modes", type=int, default=d.pca_modes)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--ship", action="store_true", help="copy the weights into the package and print the pins")
    p.set_defaults(run=_run_dynamics)


def _run_dynamics(a) -> dict:
    from invdesign_surrogates.dynamics._pipeline import DynamicsConfig, run_pipeline
    from invdesign_surrogates.dynamics._rollout import SHIPPED

    summary = run_pipeline(DynamicsConfig(
        data=a.data, out=a.out, n_fields=a.n_fields, latent=a.latent, channels=tuple(a.channels), ae_lr=a.ae_lr,
        ae_batch=a.ae_batch, ae_epochs=a.ae_epochs, ae_init=a.ae_init, ae_every=a.ae_every, stepper_lr=a.stepper_lr, stepper_batch=a.stepper_batch,
        stepper_epochs=a.stepper_epochs, pca_modes=a.pca_modes, seed=a.seed, progress=not a.no_progress))
    if a.ship:
        summary["shipped"] = ship_dynamics(Path(a.out), SHIPPED)
    return summary


def ship_dynamics(run_dir: Path, target: Path) -> dict:
    """Copy the weights of a finished dynamics run into `target` with `reference.nc`; their sha256.

    `reference.nc` holds, for SP4 fields 1 and 2, the solver's <m>(t) and the rollout's (from
    the solver's states at 0.01-0.04 ns) as the run's evaluation computed them, and the
    recorded max / RMS |d<m>| from 0.01 ns on (attributes `max_err_field1`, ...): the shipped
    weights' test reruns the public `rollout` and compares."""
    import numpy as np
    import xarray as xr

    from invdesign_surrogates._weights import file_sha256
    from invdesign_surrogates.data._shards import atomic_write_netcdf
    from invdesign_surrogates.dynamics._rollout import FIRST

    names = ("ae.eqx", "stepper.eqx", "start.eqx")
    _require(run_dir, names + ("evaluation.nc", "sp4.nc"))
    with xr.open_dataset(run_dir / "evaluation.nc", engine="h5netcdf") as ev, \
            xr.open_dataset(run_dir / "sp4.nc", engine="h5netcdf") as sp4:
        cases = ["SP4 field 1", "SP4 field 2"]
        ref = ev[["m_solver", "m_ae_rollout"]].sel(case=cases).isel(time=slice(FIRST, None)).load()
        ref["b_ext"] = (("case", "xyz"), np.asarray(sp4["b_ext"].values, dtype=float),
                        {"units": "T", "long_name": "applied field mu0 H"})
    err = np.linalg.norm(ref["m_ae_rollout"].values - ref["m_solver"].values, axis=-1)
    ref = ref.assign_coords(case=["field1", "field2"])
    ref.attrs = {"description": "SP4 fields 1 and 2 on the trained grid: solver <m>(t) and the rollout of the shipped "
                                "weights from the solver states at 0.01-0.04 ns, as evaluated by the training run",
                 **{f"max_err_field{j + 1}": float(err[j].max()) for j in range(2)},
                 **{f"rms_err_field{j + 1}": float(np.sqrt(np.mean(err[j] ** 2))) for j in range(2)}}
    pins = {name: _install(run_dir / name, target) for name in names}
    atomic_write_netcdf(ref, target / "reference.nc")
    pins["reference.nc"] = file_sha256(target / "reference.nc")
    # the training data's s-state: rollout(m0=None) starts the solver from it
    data = Path(json.loads((run_dir / "run.json").read_text())["settings"]["data"])
    pins["s_state.nc"] = _install(data / "s_state.nc", target)
    _print_pins(pins, "surrogates/dynamics/_rollout.py")
    return pins


def _sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None) -> int:
    import invdesign  # noqa: F401  (x64 on; the surrogates cast to float32 themselves)

    parser = argparse.ArgumentParser(prog="python -m invdesign_surrogates.train", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="surrogate", required=True)
    _hysteresis_parser(sub)
    _dynamics_parser(sub)
    a = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        summary = a.run(a)
    except KeyboardInterrupt:
        print("interrupted: the finished epochs are checkpointed; rerun the same command (hysteresis: with "
              "--resume) to continue", file=sys.stderr)
        return 130
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
