"""Atomic writes: the old file or the whole new one, with the permissions of a plain write; and the check
that a safetensors file read back is whole."""

import json
import os
import stat

import pytest
import torch
from safetensors.torch import load_file

from hf_reason.file_io import (
    atomic_path,
    atomic_write,
    atomic_write_json,
    check_safetensors,
    check_saved_weights,
    save_safetensors_atomic,
)


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


def test_a_cut_or_foreign_safetensors_file_is_named(tmp_path):
    path = save_safetensors_atomic({"w": torch.ones(4, 4)}, tmp_path / "model.safetensors")
    whole = path.read_bytes()
    assert check_safetensors(path) == path and check_saved_weights(tmp_path) == [path]
    for data in (whole[: len(whole) // 2], whole[:4], whole + b"tail", b'{"not": "safetensors"}'):
        path.write_bytes(data)
        with pytest.raises(ValueError, match=f"{path} is not a whole safetensors file"):
            check_saved_weights(tmp_path)
        with pytest.raises(ValueError, match="shown/model.safetensors is not a whole"):
            check_safetensors(path, shown_as="shown/model.safetensors")


def test_saved_weights_follow_the_shard_index(tmp_path):
    for name in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"):
        save_safetensors_atomic({name[:11]: torch.zeros(2)}, tmp_path / name)
    index = tmp_path / "model.safetensors.index.json"
    weight_map = {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}
    atomic_write_json(index, {"weight_map": weight_map})
    assert [p.name for p in check_saved_weights(tmp_path)] == sorted(weight_map.values())
    atomic_write_json(index, {"weight_map": {**weight_map, "c": "model-00003-of-00002.safetensors"}})
    with pytest.raises(FileNotFoundError, match=f"{index} names the shard model-00003-of-00002.safetensors"):
        check_saved_weights(tmp_path)
    atomic_write_json(index, {"weight_map": {"a": "../elsewhere.safetensors"}})
    with pytest.raises(ValueError, match="not a file name of"):
        check_saved_weights(tmp_path)
    index.write_text("[1, 2]")
    with pytest.raises(ValueError, match="is not a JSON object with a `weight_map`"):
        check_saved_weights(tmp_path)
