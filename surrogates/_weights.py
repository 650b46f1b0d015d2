"""Shipped surrogate weights: one file with a JSON header and Equinox-serialised leaves.

A weights file is

1. the magic line `INVDESIGN-WEIGHTS 1\\n`;
2. one line of compact UTF-8 JSON (the header), ended by `\\n`;
3. the leaves of the model as written by `eqx.tree_serialise_leaves` (a sequence of
   `.npy` records: no pickle, read back with `allow_pickle=False`).

The header holds what the caller passes (the model's constructor `hyperparameters`, data
hash and seed ranges, epochs, final losses, grid shape, ...) plus keys this module adds
and checks when loading: `format`, `model_class`, `model_leaves` (path, shape and dtype of
every leaf), `payload_bytes`, `payload_sha256` and `header_sha256` (so a truncated or
damaged file is recognised even without a pinned hash) and `versions` (equinox, jax,
numpy).

Shipped weights are float32 (the neural-surrogate contract); `save_model` refuses other
floating dtypes, and `cast_float32` converts a model built in float64. Loading rebuilds the
skeleton (from a module or from a factory of the header), checks it leaf by leaf against
the header, optionally checks a pinned sha256 of the whole file and expected header
values, and only then fills in the weights.

The same container (with another magic line) holds the training checkpoints of
`invdesign_surrogates._training`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from invdesign import atomic_write

__all__ = ["save_model", "load_model", "read_header", "file_sha256", "check_sha256", "cast_float32"]

MAGIC = b"INVDESIGN-WEIGHTS 1\n"
FORMAT = "invdesign-weights/1"
_MAX_HEADER = 64 * 2**20  # a header line longer than this is not a header
RESERVED = ("format", "model_class", "model_leaves", "payload_bytes", "payload_sha256", "header_sha256", "versions")


# ---------------------------------------------------------------------------------------
# JSON and leaves


def _jsonable(obj, where: str):
    """`obj` as plain JSON types (tuples -> lists, numpy scalars/arrays -> Python); raise naming `where`."""
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} keys must be strings, got {k!r}")
            out[k] = _jsonable(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        if not np.isfinite(obj):
            raise ValueError(f"{where} must be finite to be stored as JSON, got {float(obj)}")
        return float(obj)
    if isinstance(obj, (np.ndarray, jax.Array)):
        return _jsonable(np.asarray(obj).tolist(), where)
    raise TypeError(f"{where} must be JSON-able (dict, list, str, number, bool, None), got {type(obj).__name__}")


def _dumps(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _leaf_spec(tree) -> list:
    """[path, shape, dtype] of every leaf `eqx.tree_serialise_leaves` writes, in its order."""
    spec = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        name = jax.tree_util.keystr(path)
        if isinstance(leaf, (jax.Array, np.ndarray, np.generic, jax.ShapeDtypeStruct)):
            spec.append([name, list(leaf.shape), str(leaf.dtype)])
        elif isinstance(leaf, (bool, int, float, complex)):
            spec.append([name, [], type(leaf).__name__])
    return spec


def _compare_specs(saved: list, now: list, what: str, path) -> None:
    """Raise ValueError naming the first leaf where `now` differs from `saved`."""
    for i, (a, b) in enumerate(zip(saved, now)):
        if list(a) != list(b):
            raise ValueError(
                f"{what} does not match {str(path)!r}: leaf {i} is {b[0]} with shape {tuple(b[1])} and dtype "
                f"{b[2]}, the file has {a[0]} with shape {tuple(a[1])} and dtype {a[2]}"
            )
    if len(saved) != len(now):
        raise ValueError(f"{what} does not match {str(path)!r}: it has {len(now)} leaves, the file has {len(saved)}")


def _serialise(tree) -> bytes:
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, tree)
    return buf.getvalue()


def _read_leaf(f, like):
    """Deserialise one leaf with `allow_pickle=False` (never unpickles)."""
    if isinstance(like, (jax.Array, jax.ShapeDtypeStruct)):
        return jnp.asarray(np.lib.format.read_array(f, allow_pickle=False))
    if isinstance(like, np.ndarray):
        return np.lib.format.read_array(f, allow_pickle=False)
    if isinstance(like, (bool, int, float, complex, np.generic)):
        return type(like)(np.lib.format.read_array(f, allow_pickle=False).item())
    return like


def _deserialise(payload: bytes, like, what: str, path):
    """Fill the leaves of `like` from `payload`; the payload must be consumed exactly."""
    buf = io.BytesIO(payload)
    try:
        out = eqx.tree_deserialise_leaves(buf, like, filter_spec=_read_leaf)
    except (ValueError, RuntimeError, EOFError, OSError) as err:
        raise ValueError(f"{what}: cannot read the leaves of {str(path)!r} ({err}); the file is corrupt") from None
    if buf.tell() != len(payload):
        raise ValueError(
            f"{what} does not match {str(path)!r}: {len(payload) - buf.tell()} bytes of leaves left over after "
            "filling the skeleton"
        )
    return out


# ---------------------------------------------------------------------------------------
# the container: magic line, JSON line, payload


def _pack(magic: bytes, header: dict, payload: bytes) -> bytes:
    header = dict(header, payload_bytes=len(payload), payload_sha256=hashlib.sha256(payload).hexdigest())
    header["header_sha256"] = hashlib.sha256(_dumps(header)).hexdigest()
    return magic + _dumps(header) + b"\n" + payload


def _unpack_header(raw: bytes, magic: bytes, path) -> tuple[dict, int]:
    """(header, offset of the payload) of the bytes `raw` read from `path`."""
    if not raw.startswith(magic):
        kind = magic.split(b" ")[0].decode()
        raise ValueError(f"{str(path)!r} is not an {kind} file (wrong magic line {raw[:len(magic)]!r})")
    end = raw.find(b"\n", len(magic))
    if end < 0:
        raise ValueError(f"{str(path)!r} is truncated or corrupt: its JSON header line has no end")
    try:
        header = json.loads(raw[len(magic):end].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{str(path)!r} is corrupt: its JSON header does not parse ({err})") from None
    if not isinstance(header, dict) or not isinstance(header.get("payload_bytes"), int):
        raise ValueError(f"{str(path)!r} is corrupt: its header is not a weights header")
    check = header.pop("header_sha256", None)
    if check != hashlib.sha256(_dumps(header)).hexdigest():
        raise ValueError(f"{str(path)!r} is corrupt: the sha256 of its JSON header does not match")
    return header, end + 1


def _read_container(path, magic: bytes) -> tuple[dict, bytes, str]:
    """(header, payload, sha256 of the file) of the file at `path`; checks length and payload hash."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"path {str(path)!r} does not exist") from None
    header, start = _unpack_header(raw, magic, path)
    payload = raw[start:]
    if len(payload) != header["payload_bytes"]:
        raise ValueError(
            f"{str(path)!r} is truncated or corrupt: {len(payload)} bytes of leaves, the header says "
            f"{header['payload_bytes']}"
        )
    if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
        raise ValueError(f"{str(path)!r} is corrupt: the sha256 of its leaves does not match its header")
    return header, payload, hashlib.sha256(raw).hexdigest()


def _read_header_only(path, magic: bytes) -> dict:
    try:
        with open(path, "rb") as f:
            raw = f.read(len(magic))
            if raw == magic:
                raw += f.readline(_MAX_HEADER)
    except FileNotFoundError:
        raise FileNotFoundError(f"path {str(path)!r} does not exist") from None
    return _unpack_header(raw, magic, path)[0]


# ---------------------------------------------------------------------------------------
# public API


def check_sha256(path, sha256: str, actual: str | None = None) -> None:
    """Refuse the file at `path` unless its sha256 (`actual`, computed when None) is the pinned `sha256`.

    **Raises:** `ValueError` naming the file, the pinned and the actual hash.
    """
    actual = file_sha256(path) if actual is None else actual
    if actual != str(sha256).lower():
        raise ValueError(f"sha256 of {str(path)!r} is {actual}, not the pinned {sha256}: a different or damaged file")


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 hex digest of the file at `path` (read in 1 MiB chunks).

    **Arguments:**

    - `path`: the file.

    **Returns:** 64 lowercase hex digits, as pinned in code for shipped weights.

    **Example:**

    ```python
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "empty"
    >>> _ = p.write_bytes(b"")
    >>> file_sha256(p)
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

    ```
    """
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(2**20), b""):
                h.update(chunk)
    except FileNotFoundError:
        raise FileNotFoundError(f"path {str(path)!r} does not exist") from None
    return h.hexdigest()


def cast_float32(tree):
    """`tree` with every floating array leaf cast to float32 (other leaves unchanged).

    Equinox layers built with `jax_enable_x64` on (as `import invdesign` sets it) default to
    float64; surrogates train, run and ship in float32.

    **Example:**

    ```python
    >>> import jax, jax.numpy as jnp, equinox as eqx
    >>> lin = eqx.nn.Linear(2, 1, key=jax.random.key(0), dtype=jnp.float64)
    >>> cast_float32(lin).weight.dtype
    dtype('float32')

    ```
    """

    def cast(x):
        if isinstance(x, (jax.Array, np.ndarray)) and jnp.issubdtype(x.dtype, jnp.floating):
            return x.astype(np.float32)
        return x

    return jax.tree_util.tree_map(cast, tree)


def save_model(path: str | os.PathLike, model: eqx.Module, header: Mapping[str, Any]) -> str:
    """Write `model` and `header` atomically to one weights file.

    **Arguments:**

    - `path`: the file to write (its folder must exist). An existing file is replaced
      atomically: readers see the old or the new file, never a partial one.
    - `model`: the Equinox module. Its floating array leaves must be float32 (see
      `cast_float32`).
    - `header`: a JSON-able dict (tuples become lists, numpy scalars Python numbers). It must
      hold `"hyperparameters"`, a dict of the model's constructor arguments, so a loader can
      rebuild the skeleton; add whatever else describes the weights (data hash, seed
      ranges, epochs, final losses, grid shape). The keys `format`, `model_class`,
      `model_leaves`, `payload_bytes`, `payload_sha256`, `header_sha256` and `versions`
      are added here and may not be passed.

    **Returns:** the sha256 hex digest of the written file (pin it in code for shipped
    weights and pass it to `load_model`).

    **Raises:** `ValueError` naming the leaf when a floating leaf is not float32, or naming
    the header key that is reserved, missing or not JSON-able.

    **Example:**

    ```python
    >>> import tempfile, pathlib, jax, jax.numpy as jnp, equinox as eqx
    >>> hp = {"in_features": 2, "out_features": 1}
    >>> lin = eqx.nn.Linear(**hp, key=jax.random.key(0), dtype=jnp.float32)
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "lin.eqx"
    >>> sha = save_model(p, lin, {"hyperparameters": hp, "epochs": 10})
    >>> sha == file_sha256(p)
    True
    >>> p.read_bytes().splitlines()[0]
    b'INVDESIGN-WEIGHTS 1'
    >>> read_header(p)["hyperparameters"]
    {'in_features': 2, 'out_features': 1}

    ```
    """
    if not isinstance(header, Mapping):
        raise TypeError(f"header must be a dict, got {type(header).__name__}")
    taken = sorted(set(header) & set(RESERVED))
    if taken:
        raise ValueError(f"header may not set the reserved keys {taken} (save_model writes them)")
    if not isinstance(header.get("hyperparameters"), Mapping):
        raise ValueError(
            "header must hold 'hyperparameters', a dict of the model's constructor arguments (so a loader can "
            f"rebuild the skeleton), got {header.get('hyperparameters')!r}"
        )
    head = _jsonable(header, "header")
    spec = _leaf_spec(model)
    for name, _, dtype in spec:
        if dtype not in ("float", "float32") and ("float" in dtype):  # "float": a Python scalar leaf
            raise ValueError(
                f"model leaf {name or '<root>'} is {dtype}; shipped weights are float32 (build the model with "
                "dtype=jnp.float32 or pass cast_float32(model))"
            )
    head.update(
        format=FORMAT,
        model_class=type(model).__name__,
        model_leaves=spec,
        versions={"equinox": eqx.__version__, "jax": jax.__version__, "numpy": np.__version__},
    )
    data = _pack(MAGIC, head, _serialise(model))
    atomic_write(path, data)
    return hashlib.sha256(data).hexdigest()


def read_header(path: str | os.PathLike) -> dict:
    """The JSON header of the weights file at `path` (reads only the first two lines).

    **Returns:** the header passed to `save_model` plus `format`, `model_class`,
    `model_leaves`, `payload_bytes`, `payload_sha256` and `versions` (`header_sha256` is
    checked and dropped).

    **Raises:** `ValueError` naming `path` when it is not a weights file or its header is
    damaged; `FileNotFoundError` when it does not exist.
    """
    return _read_header_only(path, MAGIC)


def _lookup(header: dict, key: str):
    """`header[key]`, where a dotted key `"a.b"` looks into nested dicts."""
    node = header
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def check_header(header: dict, expect: Mapping[str, Any], path) -> None:
    """Raise ValueError naming the first key of `expect` that `header` lacks or holds with another value."""
    for key, want in expect.items():
        want = _jsonable(want, f"expect[{key!r}]")
        try:
            got = _lookup(header, key)
        except KeyError:
            raise ValueError(f"the header of {str(path)!r} has no key {key!r} (expected {want!r})") from None
        if got != want:
            raise ValueError(f"the header of {str(path)!r} has {key} = {got!r}, expected {want!r}")


def load_model(
    path: str | os.PathLike,
    like_or_factory: eqx.Module | Callable[[dict], eqx.Module],
    *,
    sha256: str | None = None,
    expect: Mapping[str, Any] | None = None,
) -> tuple[eqx.Module, dict]:
    """Load weights written by `save_model`; never unpickles.

    **Arguments:**

    - `path`: the weights file.
    - `like_or_factory`: a skeleton module with the right structure (its array values are
      ignored; `jax.ShapeDtypeStruct` leaves from `eqx.filter_eval_shape` do), or a callable
      `factory(header) -> skeleton`, typically
      `lambda h: Model(**h["hyperparameters"], key=jax.random.key(0))`.
    - `sha256`: the pinned sha256 of the whole file; when given, any other file is refused.
    - `expect`: header values the caller relies on, e.g. `{"grid": (64, 64),
      "hyperparameters.latent_size": 16}` (dotted keys look into nested dicts, tuples
      compare equal to the stored lists).

    **Returns:** `(model, header)`.

    **Raises:** `ValueError` naming `path` for a wrong magic line or a truncated or corrupt
    file, naming the pinned and actual hashes for a sha256 mismatch, naming the key for an
    `expect` mismatch, and naming the first differing leaf when the skeleton does not match
    the file; `FileNotFoundError` when `path` does not exist.

    **Example:**

    ```python
    >>> import tempfile, pathlib, jax, jax.numpy as jnp, equinox as eqx
    >>> hp = {"in_features": 3, "out_features": 2}
    >>> make = lambda h: eqx.nn.Linear(**h["hyperparameters"], key=jax.random.key(0), dtype=jnp.float32)
    >>> trained = eqx.nn.Linear(**hp, key=jax.random.key(7), dtype=jnp.float32)
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "lin.eqx"
    >>> sha = save_model(p, trained, {"hyperparameters": hp})
    >>> model, header = load_model(p, make, sha256=sha, expect={"hyperparameters.out_features": 2})
    >>> bool(jnp.array_equal(model.weight, trained.weight)), model.weight.dtype
    (True, dtype('float32'))
    >>> load_model(p, make, expect={"hyperparameters.out_features": 4})
    Traceback (most recent call last):
    ValueError: the header of '...' has hyperparameters.out_features = 2, expected 4

    ```
    """
    header, payload, actual = _read_container(path, MAGIC)
    if sha256 is not None:
        check_sha256(path, sha256, actual)
    if header.get("format") != FORMAT or not isinstance(header.get("model_leaves"), list):
        raise ValueError(f"{str(path)!r} is corrupt or of an unknown format {header.get('format')!r}")
    if expect is not None:
        check_header(header, expect, path)
    if isinstance(like_or_factory, eqx.Module):
        like = like_or_factory
    elif callable(like_or_factory):
        like = like_or_factory(header)
    else:
        raise TypeError(
            f"like_or_factory must be an eqx.Module or a callable header -> module, got {type(like_or_factory).__name__}"
        )
    if type(like).__name__ != header.get("model_class"):
        raise ValueError(
            f"the skeleton is a {type(like).__name__}, the weights in {str(path)!r} are a {header.get('model_class')}"
        )
    _compare_specs(header["model_leaves"], _leaf_spec(like), "the skeleton", path)
    return _deserialise(payload, like, "load_model", path), header
