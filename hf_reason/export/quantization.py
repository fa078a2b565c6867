# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Weight quantization of exported graphs: dynamic INT8 and INT4 weight-only (MatMulNBits).

Both use onnxruntime's own quantizers. INT8 is `quantize_dynamic` restricted to constant weights
(per output channel): Optimum's `ORTQuantizer` also quantizes activation x activation attention
matmuls, which measurably lowered top-1 agreement for no speed gain. INT4 is `MatMulNBitsQuantizer`
after a small graph rewrite, because it only handles `MatMul` with a constant right-hand side:
`Gemm` nodes and `MatMul(x, Transpose(W))` heads (tied embeddings) would otherwise stay FP32.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Optional, Union

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..file_io import atomic_path
from .external_data import save_onnx_atomic


PRECISIONS = ("fp32", "int8", "int4")
ACCURACY_LEVELS = (0, 1, 2, 3, 4)

PathLike = Union[str, os.PathLike]


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"`precision` must be one of {', '.join(repr(p) for p in PRECISIONS)}; got {precision!r}.")
    return precision


def check_int4_options(block_size: int, accuracy_level: int) -> None:
    if (
        isinstance(block_size, bool)
        or not isinstance(block_size, int)
        or block_size < 16
        or block_size & (block_size - 1)
    ):
        raise ValueError(f"`block_size` must be a power of two >= 16 (e.g. 32, 64, 128); got {block_size!r}.")
    if accuracy_level not in ACCURACY_LEVELS:
        raise ValueError(
            f"`accuracy_level` must be one of {ACCURACY_LEVELS} (0: unset, 1: fp32, 2: fp16, 3: bf16, 4: int8 "
            f"compute); got {accuracy_level!r}."
        )


# onnxruntime's MatMulNBits has fast 8-bit kernels (int8 compute) on x86 from 1.22 and on ARM64
# from 1.23; older versions run 8-bit weights through a much slower dequantize-then-FP32 path
# (docs/onnx.md, "CRSM INT8: which matmuls carry the error").
MIN_ORT_FOR_8BIT_BLOCKS = (1, 23)


def has_fast_8bit_blocks() -> bool:
    """Whether the installed onnxruntime runs `MatMulNBits` with 8-bit weights at int8 speed."""
    import onnxruntime

    version = tuple(int(part) for part in onnxruntime.__version__.split(".")[:2])
    return version >= MIN_ORT_FOR_8BIT_BLOCKS


def blockwise_8bit_blocks(blockwise: Mapping[str, int], name: str = "blockwise") -> dict:
    """Checks `quantize_int8`'s `blockwise`, `{node-name substring: 8-bit block size}` (`name`: the
    option as the caller's user knows it, for the error); returns it as a dict."""
    if not isinstance(blockwise, Mapping) or not all(isinstance(key, str) and key for key in blockwise):
        raise ValueError(
            f"`{name}` must map node-name substrings (non-empty strings, e.g. 'mixer/in_proj') to "
            f"8-bit block sizes; got {blockwise!r}."
        )
    blocks = dict(blockwise)
    for key, block in blocks.items():
        if isinstance(block, bool) or not isinstance(block, int) or block < 16 or block & (block - 1):
            raise ValueError(
                f"`{name}`: the 8-bit block size of {key!r} must be a power of two >= 16 (e.g. 16, 32, "
                f"128); got {block!r}."
            )
    return blocks


def parse_blockwise(text: Union[str, None], option: str = "int8_blockwise") -> Union[dict, None]:
    """A command line's `'mixer/in_proj=128,lm_head=128'` -> `{"mixer/in_proj": 128, "lm_head": 128}`
    (`'none'`: `{}`, every matmul dynamic INT8); None stays None (the family's default)."""
    if text is None:
        return None
    if text.strip().lower() == "none":
        return {}
    blocks = {}
    for entry in text.split(","):
        key, sep, block = entry.partition("=")
        if not sep or not key.strip() or not block.strip().isdigit():
            raise ValueError(
                f"`{option}` takes SUBSTRING=BLOCK[,SUBSTRING=BLOCK...] (e.g. "
                f"'mixer/in_proj=128,lm_head=128') or 'none'; got entry {entry!r}."
            )
        blocks[key.strip()] = int(block)
    return blockwise_8bit_blocks(blocks, option)


def quantize_int8(
    source: PathLike,
    target: PathLike,
    per_channel: bool = True,
    reduce_range: bool = False,
    keep_fp32: tuple = (),
    quantize_gather: bool = False,
    blockwise: Optional[Mapping[str, int]] = None,
) -> Path:
    """Dynamic INT8 (weights stored int8, activations quantized on the fly) of `MatMul` / `Gemm` weights.

    Dynamic rather than calibrated static INT8 (`quantize_static`, QDQ): static was slower than
    dynamic on TRM and meta-attention, slower than FP32 on TRM, and no more accurate (docs/onnx.md,
    "INT8: dynamic, not calibrated static"), so it is not offered.

    Args:
        per_channel: one scale per output channel (else per tensor).
        reduce_range: 7-bit weights (onnxruntime: may help accuracy on CPUs without VNNI).
        keep_fp32: node-name substrings (e.g. `"token_mixer"`) whose matmuls stay FP32.
        quantize_gather: also store embedding tables (`Gather` of a constant) as UINT8, one scale per
            table (onnxruntime's dynamic `Gather` quantization has no per-channel mode).
        blockwise: `{node-name substring: block size}`: the `MatMul`s whose names contain a
            substring (the first that matches sets the block) get 8-bit weights in blocks of that
            many input channels as `MatMulNBits` (bits 8, accuracy level 4: the activations are
            quantized per block too) instead of `quantize_dynamic`'s one activation scale per
            tensor, which a few outlier channels stretch (CRSM's gated SSM output into `out_proj`,
            docs/onnx.md). Smaller blocks follow outliers more closely; larger ones are faster
            (fewer activation scales).
            Ignored (dynamic INT8 as the rest) where `has_fast_8bit_blocks()` is false.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = Path(target)
    # Per-channel scales assume a 2-D weight; a matmul with a vector (e.g. CRSM's pooling query)
    # would get an invalid graph, and is too small to matter: it stays FP32.
    model = onnx.load(str(source))
    inline_weight_identities(model)
    graph = model.graph
    ranks = {init.name: len(init.dims) for init in graph.initializer}
    exclude = [
        node.name
        for node in graph.node
        if node.op_type in ("MatMul", "Gemm")
        and (ranks.get(node.input[1], 2) != 2 or any(key in node.name for key in keep_fp32))
    ]
    blocks = blockwise_8bit_blocks(blockwise or {})
    blocked = {}  # node name -> block size
    if blocks and has_fast_8bit_blocks():
        for node in graph.node:
            if node.op_type == "MatMul" and node.name not in exclude and ranks.get(node.input[1]) == 2:
                block = next((size for key, size in blocks.items() if key in node.name), None)
                if block is not None:
                    blocked[node.name] = block
    with atomic_path(target) as tmp:
        quantize_dynamic(
            model,
            tmp,
            op_types_to_quantize=["MatMul", "Gemm"] + (["Gather"] if quantize_gather else []),
            per_channel=per_channel,
            reduce_range=reduce_range,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude + list(blocked),
            # Weights only: attention's activation x activation matmuls stay FP32 (better agreement).
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        if blocked:
            _blockwise_8bit(str(tmp), blocked)
    return target


def _blockwise_8bit(path: str, blocks: dict) -> None:
    """Quantizes the `MatMul`s of the graph at `path` named in `blocks` (name -> block size) to 8-bit
    `MatMulNBits`, in place: one quantizer pass per block size (the quantizer takes one)."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    model = onnx.load(path)
    rows = {init.name: init.dims[0] for init in model.graph.initializer if len(init.dims) == 2}
    # A block as large as a weight's input channels is one block per output channel: larger ones
    # would only pad (the same quantization, more bytes).
    blocks = {
        node.name: min(blocks[node.name], max(16, 1 << (rows[node.input[1]] - 1).bit_length()))
        for node in model.graph.node
        if node.name in blocks
    }
    for block in sorted(set(blocks.values())):
        names = {name for name, size in blocks.items() if size == block}
        others = [node.name for node in model.graph.node if node.op_type == "MatMul" and node.name not in names]
        options = dict(
            block_size=block,
            is_symmetric=True,
            accuracy_level=4,
            op_types_to_quantize=("MatMul",),
            quant_axes=(("MatMul", 0),),
        )
        quantizer = MatMulNBitsQuantizer(
            model, nodes_to_exclude=others, algo_config=DefaultWeightOnlyQuantConfig(bits=8, **options), **options
        )
        quantizer.process()
        model = quantizer.model.model
    onnx.save(model, path)


def inline_weight_identities(model: onnx.ModelProto) -> int:
    """Reads weights straight from their initializer where the tracer routed them through `Identity`.

    TorchScript emits `Identity(W)` for every reuse of a parameter (TRM applies one network 21
    times per step); both quantizers only take a `MatMul` whose weight *is* an initializer, so
    without this they skip all but the first use and the file keeps the FP32 weights. Returns the
    number of Identity nodes removed.
    """
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    outputs = {o.name for o in graph.output}
    alias = {
        node.output[0]: node.input[0]
        for node in graph.node
        if node.op_type == "Identity" and node.input[0] in initializers and node.output[0] not in outputs
    }
    if not alias:
        return 0
    kept = [node for node in graph.node if not (node.op_type == "Identity" and node.output[0] in alias)]
    for node in kept:
        for i, name in enumerate(node.input):
            if name in alias:
                node.input[i] = alias[name]
    del graph.node[:]
    graph.node.extend(kept)
    return len(alias)


def _consumers(graph: onnx.GraphProto) -> dict:
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return consumers


def rewrite_for_weight_only(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict]:
    """Makes every constant-weight matmul a plain `MatMul(x, W)` so MatMulNBits can take it.

    - `Gemm(A, B, C)` (alpha = beta = 1, no transA, B constant) -> `MatMul(A, B or B^T)` + `Add(C)`;
    - `MatMul(x, Transpose(W))` with constant `W` -> `MatMul(x, W^T)`, `W^T` stored as its own
      initializer (a tied embedding stays available to its `Gather`);
    - `Identity(W)` reuses of a weight read `W` directly (`inline_weight_identities`).

    Returns the rewritten model (modified in place) and counts of each rewrite.
    """
    graph = model.graph
    counts = {"identity": inline_weight_identities(model), "gemm": 0, "transposed_weight": 0}
    initializers = {init.name: init for init in graph.initializer}
    new_nodes = []
    producers = {out: node for node in graph.node for out in node.output}
    consumers = _consumers(graph)
    removed_transposes = set()
    for node in graph.node:
        if node.op_type == "Gemm" and node.input[1] in initializers:
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA", 0):
                weight_name = node.input[1]
                if attrs.get("transB", 0):
                    weight = numpy_helper.to_array(initializers[weight_name]).T
                    weight_name = f"{weight_name}_transposed"
                    if weight_name not in initializers:
                        initializers[weight_name] = numpy_helper.from_array(np.ascontiguousarray(weight), weight_name)
                        graph.initializer.append(initializers[weight_name])
                has_bias = len(node.input) > 2 and node.input[2]
                matmul_out = f"{node.output[0]}_matmul" if has_bias else node.output[0]
                new_nodes.append(
                    helper.make_node("MatMul", [node.input[0], weight_name], [matmul_out], name=f"{node.name}_MatMul")
                )
                if has_bias:
                    new_nodes.append(
                        helper.make_node("Add", [matmul_out, node.input[2]], [node.output[0]], name=f"{node.name}_Add")
                    )
                counts["gemm"] += 1
                continue
        if node.op_type == "MatMul":
            producer = producers.get(node.input[1])
            if (
                producer is not None
                and producer.op_type == "Transpose"
                and producer.input[0] in initializers
                and len(numpy_helper.to_array(initializers[producer.input[0]]).shape) == 2
            ):
                perm = [helper.get_attribute_value(a) for a in producer.attribute if a.name == "perm"]
                if not perm or list(perm[0]) == [1, 0]:
                    source = producer.input[0]
                    weight_name = f"{source}_transposed"
                    if weight_name not in initializers:
                        weight = numpy_helper.to_array(initializers[source]).T
                        initializers[weight_name] = numpy_helper.from_array(np.ascontiguousarray(weight), weight_name)
                        graph.initializer.append(initializers[weight_name])
                    node = helper.make_node("MatMul", [node.input[0], weight_name], list(node.output), name=node.name)
                    if all(c.op_type == "MatMul" for c in consumers[producer.output[0]]):
                        removed_transposes.add(id(producer))
                    counts["transposed_weight"] += 1
        new_nodes.append(node)
    new_nodes = [n for n in new_nodes if id(n) not in removed_transposes]
    del graph.node[:]
    graph.node.extend(new_nodes)
    # Drop initializers nothing reads any more (e.g. a Gemm's transposed-layout weight).
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model, counts


def _tied_embedding_pairs(model: onnx.ModelProto) -> list:
    """(Gather node, MatMul node) names whose weights are one tied embedding: the MatMul weight is the
    Gather table transposed (the tracer stores the LM head of a tied model as its own transposed
    copy, or `rewrite_for_weight_only` made it one)."""
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    tables = {}
    for node in graph.node:
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
        if (
            node.op_type == "Gather"
            and node.name
            and axis == 0
            and node.input[0] in initializers
            and len(initializers[node.input[0]].dims) == 2
        ):
            tables.setdefault(tuple(initializers[node.input[0]].dims), []).append(node)
    pairs, arrays, paired = [], {}, set()

    def array(name: str) -> np.ndarray:
        if name not in arrays:
            arrays[name] = numpy_helper.to_array(initializers[name])
        return arrays[name]

    for node in graph.node:
        if node.op_type != "MatMul" or not node.name or node.input[1] not in initializers:
            continue
        dims = tuple(initializers[node.input[1]].dims)
        if len(dims) != 2:
            continue
        for gather in tables.get((dims[1], dims[0]), []):
            table = array(gather.input[0])
            # A constant table (e.g. TRM's zero-initialised puzzle embedding next to its zero-initialised
            # halting head) equals any other constant matrix of its shape without being tied to it.
            if gather.name in paired or table.min() == table.max():
                continue
            if np.array_equal(array(node.input[1]), table.T):
                pairs.append((gather.name, node.name))
                paired.add(gather.name)
                break
    return pairs


def _share_tied_embeddings(model: onnx.ModelProto, pairs: list) -> int:
    """Points each tied embedding's `GatherBlockQuantized` at its LM head's `MatMulNBits` weights.

    `MatMulNBits` stores `W^T` as `W`'s rows in blocks along the hidden size, 4-bit values packed two
    per byte with the implicit symmetric zero point 8: exactly what `GatherBlockQuantized` reads as
    packed UINT8 data with `bits=4` (default zero point 8) once reshaped to `(vocab, hidden / 2)`.
    So the table is stored once instead of twice (the Gather's own INT4 copy is dropped); the
    dequantized values of the two are identical. Needs the hidden size to be a multiple of the
    block size (else the head's blocks are padded); returns the number of tables shared.
    """
    graph = model.graph
    nodes = {node.name: node for node in graph.node}
    initializers = {init.name: init for init in graph.initializer}
    shared, dropped = 0, set()
    for gather_name, matmul_name in pairs:
        gather, matmul = nodes.get(f"{gather_name}_Q4"), nodes.get(f"{matmul_name}_Q4")
        if (
            gather is None
            or matmul is None
            or gather.op_type != "GatherBlockQuantized"
            or matmul.op_type != "MatMulNBits"
        ):
            continue
        g_attrs = {a.name: helper.get_attribute_value(a) for a in gather.attribute}
        m_attrs = {a.name: helper.get_attribute_value(a) for a in matmul.attribute}
        hidden, vocab, block = m_attrs["K"], m_attrs["N"], m_attrs["block_size"]
        if (
            len(matmul.input) > 3
            or len(gather.input) > 3
            or m_attrs.get("bits", 4) != 4
            or hidden % block
            or g_attrs.get("block_size") != block
            or g_attrs.get("quantize_axis") != 1
            or g_attrs.get("gather_axis", 0) != 0
        ):
            continue
        data_shape, scales_shape = f"{gather.name}_packed_shape", f"{gather.name}_scales_shape"
        graph.initializer.extend(
            [
                numpy_helper.from_array(np.array([vocab, hidden // 2], np.int64), data_shape),
                numpy_helper.from_array(np.array([vocab, hidden // block], np.int64), scales_shape),
            ]
        )
        data, scales = f"{gather.name}_packed", f"{gather.name}_scales"
        reshapes = [
            helper.make_node("Reshape", [matmul.input[1], data_shape], [data], name=f"{gather.name}_Reshape"),
            helper.make_node(
                "Reshape", [matmul.input[2], scales_shape], [scales], name=f"{gather.name}_Reshape_scales"
            ),
        ]
        dropped.update(name for name in (gather.input[0], gather.input[2]) if name in initializers)
        position = list(graph.node).index(gather)
        replacement = helper.make_node(
            "GatherBlockQuantized",
            [data, gather.input[1], scales],
            list(gather.output),
            name=gather.name,
            domain="com.microsoft",
            bits=4,
            block_size=block,
            gather_axis=0,
            quantize_axis=1,
        )
        graph.node.remove(gather)
        for offset, node in enumerate(reshapes + [replacement]):
            graph.node.insert(position + offset, node)
        shared += 1
    if dropped:
        used = {name for node in graph.node for name in node.input}
        kept = [init for init in graph.initializer if init.name not in dropped or init.name in used]
        del graph.initializer[:]
        graph.initializer.extend(kept)
    return shared


def quantize_int4(
    source: PathLike,
    target: PathLike,
    block_size: int = 128,
    accuracy_level: int = 4,
    is_symmetric: bool = True,
    quantize_gather: bool = True,
    keep_fp32: tuple = (),
) -> tuple[Path, dict]:
    """INT4 weight-only quantization with onnxruntime's `MatMulNBitsQuantizer`.

    Args:
        block_size: weights share one scale per `block_size` input channels (power of two >= 16).
        accuracy_level: compute type of `MatMulNBits`; 4 (int8 activations) is the fast one on CPU
            (docs/onnx.md, "Quantization"), 0 / 1 keep FP32 activations (more accurate).
        is_symmetric: symmetric blocks (no zero point).
        quantize_gather: also store embedding tables (`Gather`) in 4 bits; otherwise a large
            vocabulary keeps the file far above 1/5 of FP32. A table tied to a quantized LM head (its
            weight is the table transposed) is then read from the head's 4-bit weights, stored once.
        keep_fp32: node-name substrings (e.g. `"token_mixer"`) whose matmuls stay FP32.

    Returns the target path and the rewrite counts.
    """
    check_int4_options(block_size, accuracy_level)
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    model, counts = rewrite_for_weight_only(onnx.load(str(source)))
    op_types = ("MatMul", "Gather") if quantize_gather else ("MatMul",)
    exclude = [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul" and any(key in node.name for key in keep_fp32)
    ]
    tied = [pair for pair in _tied_embedding_pairs(model) if pair[1] not in exclude] if quantize_gather else []
    algo_config = DefaultWeightOnlyQuantConfig(
        block_size=block_size,
        is_symmetric=is_symmetric,
        accuracy_level=accuracy_level,
        op_types_to_quantize=op_types,
        quant_axes=(("MatMul", 0), ("Gather", 1)),
    )
    quantizer = MatMulNBitsQuantizer(
        model,
        block_size=block_size,
        is_symmetric=is_symmetric,
        accuracy_level=accuracy_level,
        op_types_to_quantize=op_types,
        quant_axes=(("MatMul", 0), ("Gather", 1)),
        algo_config=algo_config,
        nodes_to_exclude=exclude,
    )
    quantizer.process()
    counts["tied_embedding_shared"] = _share_tied_embeddings(quantizer.model.model, tied)
    save_onnx_atomic(quantizer.model.model, target)
    return Path(target), counts


__all__ = [
    "ACCURACY_LEVELS",
    "blockwise_8bit_blocks",
    "has_fast_8bit_blocks",
    "PRECISIONS",
    "check_int4_options",
    "check_precision",
    "inline_weight_identities",
    "parse_blockwise",
    "quantize_int4",
    "quantize_int8",
    "rewrite_for_weight_only",
    "save_onnx_atomic",
]
