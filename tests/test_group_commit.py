"""s2lib.io.atomic.group_commit: the artifacts of a pass are renamed in place at once and fsynced together when the
block ends (files, then their folders), each surviving file exactly once; nothing is synced before."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from s2lib.errors import DataError
from s2lib.io import atomic
from s2lib.io.store import S2Areas, load_s2area, store_s2area


@pytest.fixture
def synced(monkeypatch) -> list[tuple[int, bool]]:
    """Every fsync as (inode, is a folder), in call order (threads append too)."""
    seen: list[tuple[int, bool]] = []
    real = os.fsync

    def spy(fd: int) -> None:
        st = os.fstat(fd)
        seen.append((st.st_ino, stat.S_ISDIR(st.st_mode)))
        real(fd)

    monkeypatch.setattr(atomic.os, "fsync", spy)
    return seen


def _ino(p: Path) -> int:
    return os.stat(p).st_ino


def test_outside_a_block_every_write_syncs_its_file_then_its_folder(tmp_path: Path, synced) -> None:
    p = atomic.write_bytes_atomic(tmp_path / "a.bin", b"abc")
    assert synced == [(_ino(p), False), (_ino(tmp_path), True)]


def test_inside_a_block_files_are_visible_at_once_and_synced_together_at_the_end(tmp_path: Path, synced) -> None:
    sub = tmp_path / "set"
    with atomic.group_commit():
        a = atomic.write_bytes_atomic(tmp_path / "a.bin", b"first")
        a = atomic.write_bytes_atomic(a, b"second")          # replaced in the block: synced once, the new one
        b = atomic.write_json_atomic(sub / "b.json", {"x": 1})
        assert a.read_bytes() == b"second" and b.read_text().startswith("{")
        assert not list(tmp_path.glob(".*.tmp")) and not list(sub.glob(".*.tmp"))
        assert synced == []                                   # nothing before the end of the block
    files = sorted(i for i, d in synced if not d)
    folders = sorted(i for i, d in synced if d)
    assert files == sorted([_ino(a), _ino(b)])
    assert folders == sorted([_ino(tmp_path), _ino(sub)])
    assert all(not d for _, d in synced[:2]) and all(d for _, d in synced[2:])   # files first, then folders


def test_a_block_that_raises_still_syncs_what_it_wrote(tmp_path: Path, synced) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with atomic.group_commit():
            p = atomic.write_bytes_atomic(tmp_path / "a.bin", b"x")
            raise RuntimeError("boom")
    assert synced == [(_ino(p), False), (_ino(tmp_path), True)]
    with atomic.group_commit():                            # the module state was reset: a fresh block works
        pass


def test_nested_blocks_commit_once_at_the_outer_end(tmp_path: Path, synced) -> None:
    with atomic.group_commit():
        with atomic.group_commit():
            p = atomic.write_bytes_atomic(tmp_path / "a.bin", b"x")
        assert synced == []
    assert synced == [(_ino(p), False), (_ino(tmp_path), True)]


def test_store_and_load_inside_a_block_round_trip(tmp_path: Path, synced) -> None:
    s2 = S2Areas(tmp_path, np.array([1.0, 2.5, 4.0]), method="m", params={}, event_ids=np.array(
        [[0, 0], [0, 1], [1, 0]]), flags=np.array([0, 1, 0], np.uint8), sideband=np.array([0.1, -0.2, 0.0]))
    with atomic.group_commit():
        store_s2area(s2, tmp_path)
        back = load_s2area(tmp_path)
        assert synced == []
    np.testing.assert_array_equal(back.areas, [1.0, 2.5, 4.0])
    np.testing.assert_array_equal(back.flags, [0, 1, 0])
    names = {"s2_areas.npy", "s2_event_ids.npy", "s2_flags.npy", "s2_sideband.npy", "s2_results.json"}
    assert sorted(i for i, d in synced if not d) == sorted(_ino(tmp_path / n) for n in names)


def test_the_raw_folder_check_follows_a_repointed_symlink(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    raw = tmp_path / "raw"
    raw.symlink_to(a)
    with pytest.raises(DataError, match="inside the raw data folder"):
        atomic.write_bytes_atomic(a / "x.bin", b"x", raw_root=raw)
    raw.unlink()
    raw.symlink_to(b)                                       # the same name now means another folder
    with pytest.raises(DataError, match="inside the raw data folder"):
        atomic.write_bytes_atomic(b / "x.bin", b"x", raw_root=raw)
    assert atomic.write_bytes_atomic(a / "x.bin", b"x", raw_root=raw).read_bytes() == b"x"


def test_the_raw_folder_check_follows_a_folder_renamed_behind_its_link(tmp_path: Path) -> None:
    """The remembered resolution is keyed by the folder's inode, which a rename keeps: moving the raw folder
    and re-pointing its link must not leave the check comparing against the old, vanished path."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    raw = tmp_path / "raw"
    raw.symlink_to(a)
    with pytest.raises(DataError, match="inside the raw data folder"):
        atomic.write_bytes_atomic(a / "x.bin", b"x", raw_root=raw)
    a.rename(b)                                             # same inode, new path
    raw.unlink()
    raw.symlink_to(b)
    with pytest.raises(DataError, match="inside the raw data folder"):
        atomic.write_bytes_atomic(b / "x.bin", b"x", raw_root=raw)
    assert not (b / "x.bin").exists()


def test_the_raw_folder_check_sees_through_linked_folders_and_files(tmp_path: Path) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    (raw / "set").mkdir(parents=True)
    out.mkdir()
    (out / "set").symlink_to(raw / "set")                     # a set folder that is a link into the raw tree
    with pytest.raises(DataError, match="inside the raw data folder"):
        atomic.write_bytes_atomic(out / "set" / "a.npy", b"x", raw_root=raw)
    (raw / "set" / "b.npy").write_bytes(b"raw")
    (out / "b.npy").symlink_to(raw / "set" / "b.npy")          # a file that is a link into the raw tree
    with pytest.raises(DataError, match="inside the raw data folder"):
        atomic.write_bytes_atomic(out / "b.npy", b"x", raw_root=raw)
    assert (raw / "set" / "b.npy").read_bytes() == b"raw" and not (raw / "set" / "a.npy").exists()
    assert atomic.write_bytes_atomic(out / "c.npy", b"x", raw_root=raw).read_bytes() == b"x"


def test_a_block_belongs_to_its_thread(tmp_path: Path, synced) -> None:
    """Another thread writing while a block is open is synced at once, as outside a block; the block's own file
    waits for its end."""
    import threading

    with atomic.group_commit():
        mine = atomic.write_bytes_atomic(tmp_path / "mine.bin", b"m")
        t = threading.Thread(target=atomic.write_bytes_atomic, args=(tmp_path / "other.bin", b"o"))
        t.start()
        t.join()
        assert synced == [(_ino(tmp_path / "other.bin"), False), (_ino(tmp_path), True)]
    assert (_ino(mine), False) in synced[2:] and len(synced) == 4
