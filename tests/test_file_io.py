"""Atomic writes: the old file or the whole new one, with the permissions of a plain write."""

import json
import os
import stat

import pytest
import torch
from safetensors.torch import load_file

from hf_reason.file_io import atomic_path, atomic_write, atomic_write_json, save_safetensors_atomic


def test_atomic_write_takes_bytes_text_and_a_writer(tmp_path):
    assert atomic_write(tmp_path / "a.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert atomic_write(tmp_path / "b.txt", "é\n").read_text(encoding="utf-8") == "é\n"
    atomic_write(tmp_path / "c.bin", lambda handle: [handle.write(b"x") for _ in range(3)])
    assert (tmp_path / "c.bin").read_bytes() == b"xxx"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt", "c.bin"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = atomic_write(tmp_path / "state.json", "old")

    def fail(handle):
        handle.write(b"half of the new")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        atomic_write(path, fail)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_files_get_the_permissions_of_a_plain_write(tmp_path):
    old = os.umask(0o022)
    try:
        plain = tmp_path / "plain"
        plain.write_text("x")
        atomic_write(tmp_path / "atomic", "x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "atomic").stat().st_mode)
    assert mode == stat.S_IMODE(plain.stat().st_mode) == 0o644


def test_atomic_path_serves_writers_that_take_a_path(tmp_path):
    target = tmp_path / "plot.png"
    with atomic_path(target, suffix=".png") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".") and tmp.suffix == ".png"
        tmp.write_bytes(b"png")
        assert not target.exists()
    assert target.read_bytes() == b"png" and not tmp.exists()


def test_json_and_safetensors_round_trip(tmp_path):
    atomic_write_json(tmp_path / "r.json", {"b": 1, "a": [1.5]}, sort_keys=True)
    assert (tmp_path / "r.json").read_text() == '{"a": [1.5], "b": 1}\n'
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": [1.5], "b": 1}
    tensors = {"w": torch.arange(6.0).view(2, 3)}
    save_safetensors_atomic(tensors, tmp_path / "s.safetensors")
    torch.testing.assert_close(load_file(tmp_path / "s.safetensors")["w"], tensors["w"])
