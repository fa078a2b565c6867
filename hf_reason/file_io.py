# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Atomic file writes: a reader sees the old file or the whole new one, never a part (`append_jsonl`: a
JSONL log gains whole lines only, across processes); and the checks of
what is read back: a JSON object (`read_json_object`), a whole safetensors file (`check_safetensors`,
`check_saved_weights`), a `save_pretrained` folder (`check_saved_model`).

Everything hf-reason writes that a crash must not corrupt (cards, reports, logs, checkpoints'
state files, ONNX graphs, plots) goes through `atomic_path`: the content is written to a hidden
temporary file in the same folder, flushed to disk, then renamed over the target. The temporary
file is created with the permissions a plain `open(path, "w")` would give (0o666 minus the
umask), not `tempfile.mkstemp`'s 0o600, so an export or a card stays readable by others.
"""

import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Optional, Union


PathLike = Union[str, os.PathLike]


@contextmanager
def atomic_path(path: PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yields a temporary path next to `path` for a writer that takes a path (a library's `save`);
    on success the file written there replaces `path`, on error it is removed.

    `suffix` ends the temporary name, for writers that infer a format from it. The name starts with
    a dot, so folder listings that skip hidden files (the Hub upload folder) never pick it up.
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}{suffix}"
    # O_EXCL: a fresh file of ours; mode 0o666 is narrowed by the umask as for any new file
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield tmp
        with open(tmp, "rb+") as handle:  # the writer may have closed its own handle without syncing
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write(path: PathLike, data: Union[bytes, str, Callable[[BinaryIO], None]], encoding: str = "utf-8") -> Path:
    """Writes `data` to `path` atomically; returns `path`.

    Args:
        data: the bytes, the text (encoded with `encoding`), or a function that writes into the
            binary handle it is given (for content produced piece by piece).
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode(encoding)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        if callable(data):
            data(handle)
        else:
            handle.write(data)
    return path


def atomic_write_json(path: PathLike, obj, **dumps_kwargs) -> Path:
    """`obj` as JSON (`json.dumps(obj, **dumps_kwargs)` plus a final newline), written atomically."""
    return atomic_write(path, json.dumps(obj, **dumps_kwargs) + "\n")


def append_jsonl(path: PathLike, record) -> Path:
    """Appends `record` as one JSON line to `path` (created if missing), whole or not at all for readers
    that skip an unparsable last line: the line goes out under a file lock (`filelock`, so concurrent
    writers of every process never interleave), with ``O_APPEND``, and is fsynced before the lock is
    released. Returns `path`."""
    from filelock import FileLock

    path = Path(path)
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    with FileLock(str(path) + ".lock"):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = 0
            while written < len(line):  # a short write goes on under the same lock
                written += os.write(fd, line[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
    return path


def save_figure_atomic(figure, path: PathLike, dpi: int = 110) -> Path:
    """A matplotlib `figure` saved as PNG at `path` (folders created) atomically, then closed.

    Args:
        figure (`matplotlib.figure.Figure`): the figure; closed even when saving fails.
        path (`str` or `os.PathLike`): the PNG file.
        dpi (`int`, defaults to 110): the resolution.
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            figure.savefig(tmp, dpi=dpi)
    finally:
        plt.close(figure)
    return path


def save_safetensors_atomic(tensors: dict, path: PathLike, metadata: Union[dict, None] = None) -> Path:
    """`safetensors.torch.save_file`, atomically: a state file whose presence marks a checkpoint
    complete must never exist half-written."""
    from safetensors.torch import save

    return atomic_write(path, save(tensors, metadata=metadata))


def read_json_object(path: PathLike) -> dict:
    """The JSON object in the file at `path`; `ValueError` naming the file when it is not UTF-8 JSON holding
    an object (a config, an index, a card's inputs), `OSError` when it cannot be read."""
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"{path} is not a valid JSON file ({error}).") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(value).__name__}.")
    return value


# The weight files `save_pretrained` writes (transformers' and PEFT's names); the shards of a sharded
# checkpoint are the ones its index names.
SAFETENSORS_WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors")
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"


def check_safetensors(path: PathLike, shown_as: Optional[PathLike] = None) -> Path:
    """Raises `ValueError` naming `path` (or `shown_as`) when it is not a whole safetensors file (truncated by
    a copy or a download that stopped, corrupted, or another format); returns `path`.

    Only the header is read: safetensors checks that the tensors it lists cover the file exactly, so a
    file cut anywhere fails here instead of deep inside `from_pretrained`.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt"):
            pass
    except SafetensorError as error:
        name = shown_as if shown_as is not None else path
        raise ValueError(f"{name} is not a whole safetensors file (truncated or corrupted: {error}).") from None
    return path


def check_saved_weights(folder: PathLike, shown_as: Optional[PathLike] = None) -> list[Path]:
    """Checks (`check_safetensors`) and returns the safetensors weight files of a `save_pretrained` folder:
    `model.safetensors`, the shards `model.safetensors.index.json` names, `adapter_model.safetensors`.

    Raises `FileNotFoundError` naming a shard the index lists but the folder lacks, and `ValueError`
    naming an index that is not a JSON object with a `weight_map`. Messages name the files as inside
    `shown_as` when given (the folder that `folder` is a copy of).
    """
    folder = Path(folder)
    shown = Path(shown_as) if shown_as is not None else folder
    paths = [folder / name for name in SAFETENSORS_WEIGHT_FILES if (folder / name).is_file()]
    if (folder / SAFETENSORS_INDEX_FILE).is_file():
        index = shown / SAFETENSORS_INDEX_FILE
        try:
            weight_map = read_json_object(folder / SAFETENSORS_INDEX_FILE).get("weight_map")
        except ValueError as error:
            raise ValueError(f"{index} is not a JSON object with a `weight_map` ({error}).") from None
        if not isinstance(weight_map, dict) or not all(isinstance(name, str) for name in weight_map.values()):
            raise ValueError(f"{index}: `weight_map` must map tensor names to shard file names.")
        for name in sorted(set(weight_map.values())):
            if Path(name).name != name:
                raise ValueError(f"{index} names the shard {name!r}, which is not a file name of {shown}.")
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{index} names the shard {name}, which {shown} lacks.")
            paths.append(folder / name)
    return [check_safetensors(path, shown / path.name) for path in paths]


def check_saved_model(folder: PathLike) -> list[Path]:
    """Checks that `folder` is a `save_pretrained` folder before a loader reads it: a folder with a config.json
    holding a JSON object and whole safetensors weights (`check_saved_weights`), which it returns.

    Raises `FileNotFoundError` or `ValueError` naming the folder or the file; transformers' loaders would
    fail on these with a bare `TypeError` (a config that is a list) or deep in safetensors (a cut file).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder (a `save_pretrained` folder is expected).")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} has no config.json (not a `save_pretrained` folder).")
    read_json_object(folder / "config.json")
    weights = check_saved_weights(folder)
    if not weights:
        raise FileNotFoundError(f"{folder} has no safetensors weights (model.safetensors or an index of shards).")
    return weights


__all__ = [
    "append_jsonl",
    "atomic_path",
    "atomic_write",
    "atomic_write_json",
    "check_safetensors",
    "check_saved_model",
    "check_saved_weights",
    "read_json_object",
    "save_figure_atomic",
    "save_safetensors_atomic",
]
