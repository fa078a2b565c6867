# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Atomic file writes: a reader sees the old file or the whole new one, never a part.

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
from typing import BinaryIO, Union


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


def save_safetensors_atomic(tensors: dict, path: PathLike, metadata: Union[dict, None] = None) -> Path:
    """`safetensors.torch.save_file`, atomically: a state file whose presence marks a checkpoint
    complete must never exist half-written."""
    from safetensors.torch import save

    return atomic_write(path, save(tensors, metadata=metadata))


__all__ = ["atomic_path", "atomic_write", "atomic_write_json", "save_safetensors_atomic"]
