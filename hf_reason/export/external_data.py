# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Writing an export's graphs so that every weight is stored once.

A family with several graphs traces each from the same model: CRSM's step and prefill graphs
both hold the whole backbone, and its `summarize` / `value` head graphs repeat weights that the
step graph already has; TRM's fused solve graph repeats the step graph's weights. `save_graphs`
writes several graphs with one external-data file (`model.onnx_data`) and puts each distinct
weight into it once: tensors with the same bytes, in any graph and under any name, are found by
a content hash and point at the same offset / length. (Content, not names: the tracer names the
same parameter differently in each graph, and a quantizer derives new names.) ONNX Runtime
resolves the `location` of external data relative to the graph's own path, so
`InferenceSession("model.onnx")` finds the shared file next to it, and `onnx.load` reads it back.

One graph is written as one self-contained file: there is nothing to share.
"""

import hashlib
import os
from pathlib import Path
from typing import Union

import onnx
from onnx import TensorProto, numpy_helper

from ..file_io import atomic_write


PathLike = Union[str, os.PathLike]

WEIGHTS_FILE_NAME = "model.onnx_data"
# Smaller tensors (shapes, scalars, norms of tiny models) stay inside the graph: an external
# reference costs about as much as the bytes, and a graph stays readable on its own.
EXTERNAL_MIN_BYTES = 1024
# Large tensors start on a page boundary so ONNX Runtime can memory-map them; small ones on a
# cache line. The padding is < 0.5% of a realistic export.
PAGE_ALIGN_MIN_BYTES = 2**20
PAGE = 4096
LINE = 64


def _tensors(graph: onnx.GraphProto):
    """Every initializer of `graph` and of its subgraphs (`If` / `Loop` bodies)."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _tensors(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for subgraph in attribute.graphs:
                    yield from _tensors(subgraph)


def _raw_bytes(tensor: TensorProto) -> bytes:
    if tensor.HasField("raw_data"):
        return tensor.raw_data
    # Typed fields (float_data, int64_data, ...): the same values in raw little-endian form.
    raw = numpy_helper.from_array(numpy_helper.to_array(tensor)).raw_data
    for field in ("float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
        tensor.ClearField(field)
    tensor.raw_data = raw
    return raw


def save_onnx_atomic(model: onnx.ModelProto, path: PathLike) -> None:
    """Writes `model` (self-contained) to `path` atomically (`atomic_write`)."""
    atomic_write(path, model.SerializeToString())


def save_graphs(models: dict, out_dir: PathLike, data_name: str = WEIGHTS_FILE_NAME) -> dict:
    """Writes `models` (file name -> `onnx.ModelProto`) into `out_dir`; returns file name -> bytes.

    Several graphs share one external-data file `data_name` holding each distinct weight once (the
    protos are modified: their large initializers become references into it). A single graph is
    written as one self-contained file. Every file goes through a temporary name and a rename.
    """
    out_dir = Path(out_dir)
    if not models:
        raise ValueError("`models` must name at least one graph to write.")
    if data_name in models or not data_name.endswith(".onnx_data"):
        raise ValueError(f"`data_name` must end in '.onnx_data' and differ from the graph names; got {data_name!r}.")
    sizes = {}
    if len(models) == 1:
        ((name, model),) = models.items()
        save_onnx_atomic(model, out_dir / name)
        return {name: (out_dir / name).stat().st_size}

    placed: dict = {}  # sha256 of the bytes -> (offset, length)

    def write_weights(handle) -> None:
        offset = 0
        for model in models.values():
            for tensor in _tensors(model.graph):
                if tensor.data_type in (TensorProto.STRING, TensorProto.UNDEFINED):
                    continue
                raw = _raw_bytes(tensor)
                if len(raw) < EXTERNAL_MIN_BYTES:
                    continue
                key = hashlib.sha256(raw).digest()
                if key not in placed:
                    align = PAGE if len(raw) >= PAGE_ALIGN_MIN_BYTES else LINE
                    padding = -offset % align
                    handle.write(b"\0" * padding)
                    handle.write(raw)
                    placed[key] = (offset + padding, len(raw))
                    offset += padding + len(raw)
                start, length = placed[key]
                tensor.ClearField("raw_data")
                del tensor.external_data[:]
                for entry_key, value in (("location", data_name), ("offset", str(start)), ("length", str(length))):
                    entry = tensor.external_data.add()
                    entry.key, entry.value = entry_key, value
                tensor.data_location = TensorProto.EXTERNAL

    atomic_write(out_dir / data_name, write_weights)
    for name, model in models.items():
        save_onnx_atomic(model, out_dir / name)
        sizes[name] = (out_dir / name).stat().st_size
    sizes[data_name] = (out_dir / data_name).stat().st_size
    return sizes


__all__ = ["EXTERNAL_MIN_BYTES", "WEIGHTS_FILE_NAME", "save_graphs", "save_onnx_atomic"]
