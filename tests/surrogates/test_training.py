"""The resumable trainer: loss decreases, resume is bit-identical to a straight run,
checkpoints refuse other settings, bad input and divergence are reported; batched
prediction."""

import pickle

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from invdesign_surrogates._training import predict_batched, read_checkpoint_header, train

# small models and few steps: compile-bound, so XLA's cheaper optimisation level (tests/conftest.py)
FULL_XLA_OPTIMIZATION = False

# shared objects: the jitted step is cached on (loss_fn, optimizer), so the tests compile it once
OPT = optax.adam(3e-2)
N, BATCH = 48, 16


def make_model(key=0):
    return eqx.nn.MLP(2, 1, width_size=8, depth=1, activation=jnp.tanh, key=jax.random.key(key), dtype=jnp.float32)


def make_data(n=N, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    y = (np.sin(2 * x[:, :1]) + 0.5 * x[:, 1:] ** 2).astype(np.float32)
    return {"x": x, "y": y}


def mse(model, batch):
    return jnp.mean((jax.vmap(model)(batch["x"]) - batch["y"]) ** 2)


def noisy_mse(model, batch, key):
    """A stochastic loss (input noise from the key) with auxiliary values."""
    x = batch["x"] + 0.01 * jax.random.normal(key, batch["x"].shape, batch["x"].dtype)
    err = jax.vmap(model)(x) - batch["y"]
    return jnp.mean(err**2), {"mae": jnp.mean(jnp.abs(err)), "max": jnp.max(jnp.abs(err))}


STOCHASTIC = dict(key_needed=True, has_aux=True)


def run(loss=noisy_mse, epochs=6, **kw):
    kw = dict(STOCHASTIC if loss is noisy_mse else {}) | kw
    return train(make_model(), loss, OPT, make_data(), epochs=epochs, batch_size=BATCH, seed=3,
                 val_data=make_data(20, seed=1), progress=False, **kw)


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_array))]


def assert_identical(a, b):
    for x, y in zip(leaves(a), leaves(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y)  # bit for bit


def assert_same_result(r, s):
    assert_identical(r.model, s.model)
    assert_identical(r.best_model, s.best_model)
    assert_identical(r.opt_state, s.opt_state)
    assert r.history.keys() == s.history.keys()
    for k in r.history:
        assert np.array_equal(r.history[k], s.history[k]), k
    assert r.best_epoch == s.best_epoch and r.epochs == s.epochs


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """Six epochs straight through, checkpointing every epoch."""
    path = tmp_path_factory.mktemp("straight") / "ckpt.bin"
    return run(checkpoint=path), path


def test_loss_decreases_on_a_toy_regression():
    r = train(make_model(), mse, OPT, make_data(), epochs=15, batch_size=BATCH, seed=0,
              val_data=make_data(20, seed=1), progress=False)
    train_loss, val_loss = r.history["train_loss"], r.history["val_loss"]
    assert train_loss.shape == val_loss.shape == (15,) and train_loss.dtype == np.float64
    assert train_loss[-1] < 0.3 * train_loss[0] and val_loss[-1] < 0.3 * val_loss[0]
    assert r.best_epoch == int(np.argmin(val_loss)) + 1
    # the best model is the one whose validation loss was recorded at best_epoch
    val = make_data(20, seed=1)
    assert float(mse(r.best_model, val)) == pytest.approx(val_loss[r.best_epoch - 1], rel=1e-5)
    assert r.epochs == 15 and r.resumed_from == 0
    assert all(x.dtype == np.float32 for x in leaves(r.model))


def test_stochastic_loss_with_aux_records_everything(straight):
    r, path = straight
    assert set(r.history) == {"train_loss", "train_mae", "train_max", "val_loss", "val_mae", "val_max"}
    assert all(v.shape == (6,) and np.all(np.isfinite(v)) for v in r.history.values())
    assert np.all(r.history["train_max"] >= r.history["train_mae"])
    head = read_checkpoint_header(path)
    assert head["epoch"] == 6 and head["best_epoch"] == r.best_epoch
    assert head["settings"]["batch_size"] == BATCH and head["settings"]["seed"] == 3
    assert head["history"]["val_loss"] == r.history["val_loss"].tolist()
    # another seed gives another run
    other = train(make_model(), noisy_mse, OPT, make_data(), epochs=1, batch_size=BATCH, seed=4,
                  progress=False, **STOCHASTIC)
    assert other.history["train_loss"][0] != r.history["train_loss"][0]


def test_resume_after_three_epochs_is_bit_identical(straight, tmp_path):
    r, _ = straight
    path = tmp_path / "ckpt.bin"
    first = run(epochs=3, checkpoint=path)
    assert first.epochs == 3 and read_checkpoint_header(path)["epoch"] == 3
    resumed = run(epochs=6, checkpoint=path)
    assert resumed.resumed_from == 3 and resumed.epochs == 6
    assert_same_result(resumed, r)
    # a finished run resumes to itself without training
    again = run(epochs=6, checkpoint=path)
    assert again.resumed_from == 6
    assert_same_result(again, r)


def test_interrupted_run_keeps_its_last_epoch_and_resumes_identically(straight, tmp_path, monkeypatch):
    r, _ = straight
    path = tmp_path / "ckpt.bin"
    seen = []

    def stop_at_4(epoch, logs):
        seen.append((epoch, logs["train_loss"]))
        if epoch == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(checkpoint=path, checkpoint_every=3, callback=stop_at_4)
    assert [e for e, _ in seen] == [1, 2, 3, 4]
    assert [v for _, v in seen] == r.history["train_loss"][:4].tolist()
    assert read_checkpoint_header(path)["epoch"] == 4  # written on the way out, not only at epoch 3

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used while resuming")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    resumed = run(checkpoint=path, checkpoint_every=3)
    assert resumed.resumed_from == 4
    assert_same_result(resumed, r)
    assert not path.read_bytes().startswith(b"\x80")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.bin"]  # atomic writes leave no temp files


@pytest.mark.parametrize("change,named", [
    (dict(batch_size=8), "batch_size: 16 in the checkpoint, 8 now"),
    (dict(seed=4), "seed: 3 in the checkpoint, 4 now"),
    (dict(data=make_data(seed=5)), "data.sha256"),
    (dict(settings={"lr": 1e-3}), "user.lr: None in the checkpoint, 0.001 now"),
    (dict(model=make_model(key=1)), "initial_model_sha256"),
    (dict(model=eqx.nn.MLP(2, 1, width_size=4, depth=1, key=jax.random.key(0), dtype=jnp.float32)),
     "model_leaves (shapes/dtypes) differ"),
    (dict(optimizer=optax.sgd(1e-2)), "opt_state_leaves"),
    (dict(key_needed=False, has_aux=False, loss_fn=mse), "key_needed: True in the checkpoint, False now"),
])
def test_resume_with_other_settings_is_refused(straight, tmp_path, change, named):
    path = tmp_path / "ckpt.bin"
    path.write_bytes(straight[1].read_bytes())
    kw = dict(model=make_model(), loss_fn=noisy_mse, optimizer=OPT, data=make_data(), epochs=6,
              batch_size=BATCH, seed=3, val_data=make_data(20, seed=1), progress=False,
              checkpoint=path, **STOCHASTIC) | change
    with pytest.raises(ValueError, match="ckpt.bin.*other settings") as err:
        train(**kw)
    assert named in str(err.value)


def test_checkpoint_beyond_epochs_or_corrupt_is_refused(straight, tmp_path):
    path = tmp_path / "ckpt.bin"
    raw = straight[1].read_bytes()
    path.write_bytes(raw)
    with pytest.raises(ValueError, match="holds 6 finished epochs, more than epochs=5"):
        run(epochs=5, checkpoint=path)
    path.write_bytes(raw[:-10])
    with pytest.raises(ValueError, match="ckpt.bin.*truncated"):
        run(checkpoint=path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="ckpt.bin.*not an INVDESIGN-CHECKPOINT file"):
        run(checkpoint=path)


def test_divergence_raises_and_keeps_the_last_finite_epoch(tmp_path):
    def exploding(model, batch):
        return mse(model, batch) * jnp.where(model.layers[0].bias[0] > -1e9, jnp.inf, 1.0)

    path = tmp_path / "ckpt.bin"
    with pytest.raises(FloatingPointError, match="epoch 1.*ckpt.bin"):
        train(make_model(), exploding, OPT, make_data(), epochs=3, batch_size=BATCH, seed=0, progress=False,
              checkpoint=path)
    assert not path.exists()  # no finished epoch to keep


def test_bad_arguments_are_named():
    kw = dict(epochs=1, batch_size=BATCH, seed=0, progress=False)
    m, d = make_model(), make_data()
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        train(m, mse, OPT, d, **kw | {"batch_size": 0})
    with pytest.raises(ValueError, match="epochs must be"):
        train(m, mse, OPT, d, **kw | {"epochs": 0})
    with pytest.raises(ValueError, match="seed must be"):
        train(m, mse, OPT, d, **kw | {"seed": -1})
    with pytest.raises(ValueError, match="batch_size must be <= the 48 samples"):
        train(m, mse, OPT, d, **kw | {"batch_size": 64})
    with pytest.raises(ValueError, match="data\\['x'\\] has 48 samples, data\\['y'\\] has 47"):
        train(m, mse, OPT, {"x": d["x"], "y": d["y"][:-1]}, **kw)
    with pytest.raises(ValueError, match="val_data"):
        train(m, mse, OPT, d, val_data={}, **kw)
    with pytest.raises(TypeError, match="optimizer"):
        train(m, mse, "adam", d, **kw)


def test_drop_last_false_uses_every_sample():
    r = train(make_model(), mse, OPT, make_data(), epochs=2, batch_size=20, seed=0, drop_last=False,
              keep_best=False, progress=False)
    assert r.best_model is None and r.history["train_loss"].shape == (2,)


def test_predict_batched_matches_vmap_with_padding_and_pytrees():
    model = make_model()
    x = make_data(37)["x"]
    want = np.asarray(jax.vmap(model)(x))
    got = predict_batched(model, x, batch_size=8)  # 4 full batches and one padded
    assert isinstance(got, np.ndarray) and got.shape == (37, 1) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # float32; XLA may fuse batches differently
    both = predict_batched(lambda s: {"y": model(s["x"]), "sum": jnp.sum(s["x"])}, {"x": x}, batch_size=16)
    np.testing.assert_allclose(both["y"], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(both["sum"], x.sum(axis=1), rtol=1e-6)
    batched = predict_batched(jax.vmap(model), x, batch_size=100, vmap=False)
    np.testing.assert_allclose(batched, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="leading axis"):
        predict_batched(model, {"a": x, "b": x[:3]})
    with pytest.raises(ValueError, match="batch_size"):
        predict_batched(model, x, batch_size=0)
