"""Atomic file writing: the one place the library (and its studies) replace files.

`atomic_write` writes to a temporary file in the target's folder, flushes and fsyncs it,
gives it the requested permissions, and moves it onto the target with `os.replace`
(atomic on POSIX and Windows). A reader therefore sees the old file or the complete new
one, never a partial file; when writing fails the temporary file is removed and the old
target is left untouched.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write"]


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; best effort (not every platform opens folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[Path], None] | bytes | str,
    *,
    mode: int = 0o644,
    encoding: str = "utf-8",
) -> Path:
    """Replace `path` atomically with new content.

    **Arguments:**

    - `path`: the target file. Its folder must exist (this function creates no folders).
    - `write`: the content: `bytes`, a `str` (encoded with `encoding`), or a callable
      `write(tmp_path)` that writes the complete file at the temporary path it is given
      (for writers that want a file name, such as `xarray.Dataset.to_netcdf` or
      `matplotlib.figure.Figure.savefig`; they may truncate or recreate that file).
    - `mode`: permission bits of the new file (default `0o644`, independent of the umask).
    - `encoding`: text encoding for a `str` `write`.

    **Returns:** the target as a `pathlib.Path`.

    **Raises:** `FileNotFoundError` naming the target when its folder does not exist;
    `TypeError` for any other kind of `write`; whatever the writer raises (the temporary
    file is removed first and the old target stays intact).

    **Example:**

    ```python
    atomic_write("table.md", "| a | b |\\n")
    atomic_write("run.nc", lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))
    ```
    """
    target = Path(path)
    if isinstance(write, str):
        data: bytes | None = write.encode(encoding)
    elif isinstance(write, (bytes, bytearray, memoryview)):
        data = bytes(write)
    elif callable(write):
        data = None
    else:
        raise TypeError(f"write must be bytes, str or a callable taking the temporary path, got {type(write).__name__}")
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {str(target)!r}: its folder {str(folder)!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    try:
        if data is not None:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        else:
            os.close(fd)
            write(Path(tmp))
            _fsync_file(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(folder)
    return target
