"""Shipped weights: bit-exact round trip, pinned sha256, corrupt/truncated/wrong files,
header expectations, wrong skeletons, float32 only, no pickle."""

import json
import pickle

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from invdesign_surrogates._weights import (
    MAGIC,
    RESERVED,
    cast_float32,
    file_sha256,
    load_model,
    read_header,
    save_model,
)

HP = {"in_size": 3, "out_size": 2, "width_size": 8, "depth": 2}


def make(header_or_hp, key=0):
    hp = header_or_hp.get("hyperparameters", header_or_hp)
    return eqx.nn.MLP(**hp, key=jax.random.key(key), dtype=jnp.float32)


def arrays(tree):
    return jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_array))


def assert_same_leaves(a, b):
    la, lb = arrays(a), arrays(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        assert x.dtype == y.dtype == jnp.float32
        assert x.shape == y.shape
        assert np.array_equal(np.asarray(x), np.asarray(y))  # bit-exact (no tolerance)


@pytest.fixture
def saved(tmp_path):
    model = make(HP, key=7)
    header = {"hyperparameters": HP, "grid": (64, 64), "latent": 16, "data_sha256": "ab" * 32,
              "seed_ranges": {"train": [0, 800], "test": [800, 1000]}, "epochs": 12,
              "losses": {"train": np.float32(0.125), "val": 0.25}}
    path = tmp_path / "mlp.eqx"
    sha = save_model(path, model, header)
    return path, model, sha


def test_round_trip_is_bit_exact_with_skeleton_or_factory(saved):
    path, model, sha = saved
    assert sha == file_sha256(path) and len(sha) == 64
    loaded, header = load_model(path, make(HP, key=1), sha256=sha)  # skeleton with other values
    assert_same_leaves(loaded, model)
    loaded2, _ = load_model(path, make)  # factory of the header
    assert_same_leaves(loaded2, model)
    x = jnp.ones(3, jnp.float32)
    assert np.array_equal(loaded(x), model(x))
    # abstract skeleton (no allocation of the init weights)
    abstract = eqx.filter_eval_shape(make, HP)
    loaded3, _ = load_model(path, abstract)
    assert_same_leaves(loaded3, model)
    # the header keeps what the caller passed (tuples as lists, numpy as Python) and adds its own keys
    assert header["hyperparameters"] == HP
    assert header["grid"] == [64, 64] and header["losses"] == {"train": 0.125, "val": 0.25}
    assert header["seed_ranges"]["test"] == [800, 1000]
    assert header["model_class"] == "MLP" and header["format"] == "invdesign-weights/1"
    assert {"equinox", "jax", "numpy"} <= set(header["versions"])
    assert header == read_header(path)
    assert all(dtype == "float32" for _, _, dtype in header["model_leaves"])


def test_save_is_deterministic_atomic_and_replaces(tmp_path, saved):
    path, model, sha = saved
    user = {k: v for k, v in read_header(path).items()
            if k not in RESERVED}
    assert save_model(tmp_path / "again.eqx", model, user) == sha  # same model and header: same bytes
    other = make(HP, key=3)
    sha2 = save_model(path, other, {"hyperparameters": HP})
    assert sha2 != sha
    assert_same_leaves(load_model(path, make)[0], other)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.eqx", "mlp.eqx"]  # no temp files left


def test_pinned_sha256_mismatch_is_refused(saved):
    path, _, sha = saved
    wrong = ("0" if sha[0] != "0" else "1") + sha[1:]
    with pytest.raises(ValueError, match="sha256 of .*mlp.eqx.* pinned"):
        load_model(path, make, sha256=wrong)
    load_model(path, make, sha256=sha.upper())  # hex case does not matter


@pytest.mark.parametrize("damage", ["truncate_payload", "truncate_header", "flip_payload", "flip_header",
                                    "wrong_magic", "empty", "extra_bytes"])
def test_corrupt_or_truncated_file_names_the_path(saved, damage):
    path, _, _ = saved
    raw = path.read_bytes()
    start = raw.index(b"\n", len(MAGIC)) + 1
    damaged = {
        "truncate_payload": raw[: start + (len(raw) - start) // 2],
        "truncate_header": raw[: len(MAGIC) + 20],
        "flip_payload": raw[:-5] + bytes([raw[-5] ^ 0x01]) + raw[-4:],
        "flip_header": raw[: len(MAGIC) + 3] + b"#" + raw[len(MAGIC) + 4:],
        "wrong_magic": b"INVDESIGN-WEIGHTS 9\n" + raw[len(MAGIC):],
        "empty": b"",
        "extra_bytes": raw + b"\x00",
    }[damage]
    path.write_bytes(damaged)
    with pytest.raises(ValueError, match="mlp.eqx"):
        load_model(path, make)


def test_flipped_leaf_byte_is_caught_by_the_payload_hash(saved):
    # the right length, but one leaf byte differs
    path, _, _ = saved
    raw = path.read_bytes()
    start = raw.index(b"\n", len(MAGIC)) + 1
    path.write_bytes(raw[:-1] + bytes([raw[-1] ^ 0xFF]))
    assert len(path.read_bytes()) - start == read_header(path)["payload_bytes"]
    with pytest.raises(ValueError, match="corrupt"):
        load_model(path, make)


def test_missing_file_and_not_a_weights_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.eqx"):
        load_model(tmp_path / "nope.eqx", make)
    with pytest.raises(FileNotFoundError, match="nope.eqx"):
        read_header(tmp_path / "nope.eqx")
    p = tmp_path / "model.pkl"
    p.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="model.pkl.*not an INVDESIGN-WEIGHTS file"):
        load_model(p, make)
    with pytest.raises(ValueError, match="model.pkl"):
        read_header(p)


def test_expected_header_values(saved):
    path, model, _ = saved
    loaded, _ = load_model(path, make, expect={"grid": (64, 64), "latent": 16, "hyperparameters.depth": 2,
                                               "seed_ranges.train": [0, 800]})
    assert_same_leaves(loaded, model)
    with pytest.raises(ValueError, match="grid = \\[64, 64\\], expected \\[32, 32\\]"):
        load_model(path, make, expect={"grid": (32, 32)})
    with pytest.raises(ValueError, match="hyperparameters.width_size = 8, expected 16"):
        load_model(path, make, expect={"latent": 16, "hyperparameters.width_size": 16})
    with pytest.raises(ValueError, match="no key 'n_latent'"):
        load_model(path, make, expect={"n_latent": 16})


def test_wrong_skeleton_is_refused(saved):
    path, _, _ = saved
    abstract = lambda f, *a, **kw: eqx.filter_eval_shape(f, *a, **kw)  # noqa: E731 - skeletons without init work
    with pytest.raises(ValueError, match="skeleton does not match .*mlp.eqx.*shape"):
        load_model(path, abstract(make, HP | {"width_size": 4}))
    with pytest.raises(ValueError, match="skeleton does not match .*layers"):
        load_model(path, lambda h: abstract(make, h["hyperparameters"] | {"depth": 3}))
    with pytest.raises(ValueError, match="skeleton is a Linear"):
        load_model(path, abstract(eqx.nn.Linear, 3, 2, key=jax.random.key(0), dtype=jnp.float32))
    with pytest.raises(ValueError, match="float64"):
        load_model(path, abstract(eqx.nn.MLP, **HP, key=jax.random.key(0), dtype=jnp.float64))
    with pytest.raises(TypeError, match="like_or_factory"):
        load_model(path, 3)


def test_save_refuses_float64_bad_headers(tmp_path):
    model64 = eqx.nn.MLP(**HP, key=jax.random.key(0), dtype=jnp.float64)
    with pytest.raises(ValueError, match="float64; shipped weights are float32"):
        save_model(tmp_path / "a.eqx", model64, {"hyperparameters": HP})
    sha = save_model(tmp_path / "a.eqx", cast_float32(model64), {"hyperparameters": HP})
    assert sha == file_sha256(tmp_path / "a.eqx")
    loaded, _ = load_model(tmp_path / "a.eqx", make)
    assert np.array_equal(arrays(loaded)[0], np.asarray(arrays(model64)[0], np.float32))
    model = make(HP)
    with pytest.raises(ValueError, match="hyperparameters"):
        save_model(tmp_path / "b.eqx", model, {"epochs": 3})
    with pytest.raises(ValueError, match="reserved keys \\['model_leaves'\\]"):
        save_model(tmp_path / "b.eqx", model, {"hyperparameters": HP, "model_leaves": []})
    with pytest.raises(TypeError, match="header\\['losses'\\]\\['f'\\]"):
        save_model(tmp_path / "b.eqx", model, {"hyperparameters": HP, "losses": {"f": object()}})
    with pytest.raises(ValueError, match="header\\['loss'\\] must be finite"):
        save_model(tmp_path / "b.eqx", model, {"hyperparameters": HP, "loss": float("nan")})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_model(tmp_path / "missing" / "b.eqx", model, {"hyperparameters": HP})
    assert not (tmp_path / "b.eqx").exists()


def test_no_pickle_anywhere(saved, monkeypatch):
    path, model, sha = saved
    raw = path.read_bytes()
    assert not raw.startswith(b"\x80")  # not a pickle stream
    magic, head, payload = raw.split(b"\n", 2)
    assert magic + b"\n" == MAGIC
    assert json.loads(head)["payload_bytes"] == len(payload)
    assert payload.startswith(b"\x93NUMPY")  # .npy records, no object arrays
    assert payload.count(b"\x93NUMPY") == len(arrays(model))
    assert b"'descr': '|O'" not in payload

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used while loading weights")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    loaded, _ = load_model(path, make, sha256=sha)
    assert_same_leaves(loaded, model)
