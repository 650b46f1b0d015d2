"""`invdesign.atomic_write`: content, permissions, no leftovers, the old file kept on failure."""

import os
import stat

import pytest

from invdesign import atomic_write


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"\x00\x01binary\xff", b"\x00\x01binary\xff"),
        ("text \u00b5m\n", "text \u00b5m\n".encode()),
    ],
    ids=["bytes", "str"],
)
def test_writes_content_with_mode_0644_and_no_temp_file(tmp_path, content, expected):
    path = tmp_path / "out.dat"
    assert atomic_write(path, content) == path
    assert path.read_bytes() == expected
    assert _mode(path) == 0o644
    assert os.listdir(tmp_path) == ["out.dat"]


def test_callable_writer_gets_a_temp_path_in_the_same_folder(tmp_path):
    seen = []

    def write(tmp):
        seen.append(tmp)
        assert tmp.parent == tmp_path and tmp != tmp_path / "out.txt"
        tmp.write_text("written by name")

    path = atomic_write(str(tmp_path / "out.txt"), write)
    assert path.read_text() == "written by name"
    assert len(seen) == 1 and not seen[0].exists()
    assert os.listdir(tmp_path) == ["out.txt"]


def test_mode_is_independent_of_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        atomic_write(tmp_path / "a", "x")
        atomic_write(tmp_path / "b", "x", mode=0o600)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a") == 0o644
    assert _mode(tmp_path / "b") == 0o600


def test_replaces_an_existing_file_and_its_mode(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    os.chmod(path, 0o600)
    atomic_write(path, "new")
    assert path.read_text() == "new"
    assert _mode(path) == 0o644
    assert os.listdir(tmp_path) == ["out.txt"]


@pytest.mark.parametrize("failure", [ValueError, KeyboardInterrupt])
def test_writer_failure_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, failure):
    path = tmp_path / "out.txt"
    path.write_text("old content")

    def write(tmp):
        tmp.write_text("half of the new con")
        raise failure("writer broke")

    with pytest.raises(failure, match="writer broke"):
        atomic_write(path, write)
    assert path.read_text() == "old content"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_writer_failure_without_old_file_leaves_nothing(tmp_path):
    def write(tmp):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "new.txt", write)
    assert os.listdir(tmp_path) == []


def test_writer_that_removes_its_temp_file_is_reported(tmp_path):
    def write(tmp):
        tmp.unlink()

    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "out.txt", write)
    assert os.listdir(tmp_path) == []


def test_missing_folder_names_the_target(tmp_path):
    target = tmp_path / "no" / "such" / "folder" / "out.nc"
    with pytest.raises(FileNotFoundError, match=r"out\.nc.*folder.*does not exist"):
        atomic_write(target, b"data")
    assert not (tmp_path / "no").exists()


def test_bad_content_type_is_refused(tmp_path):
    with pytest.raises(TypeError, match="write must be bytes, str or a callable"):
        atomic_write(tmp_path / "out.txt", 3.5)
    assert os.listdir(tmp_path) == []
