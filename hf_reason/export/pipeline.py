# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""`export_pretrained`: a saved model folder -> ONNX graphs at FP32 / INT8 / INT4 + config + report.

The pipeline every family goes through: trace the FP32 graph(s) through Optimum's `export` with
our ONNX configs (`optimum_trace`), write them, quantize them if asked (`build_graphs`), check
parity against PyTorch, and write `export_report.json`. What differs per family (its graphs, its
quantization defaults, its parity check, its options) lives in the family's module (`trm`, `crsm`,
`meta_attention`), which registers a `FamilyExporter` that `export_pretrained` looks up by the
model's `model_type`.

Every file is first written into a temporary folder inside `OUT_DIR` and moved into place with
`os.replace`, the report last, so an interrupted export never leaves a half-written file under its
final name. Re-exporting into a folder replaces the earlier export as a whole: its report goes
first (the loaders refuse a folder without one), then graph files this export did not write (a
stale `solve.onnx` from an export with `--trm-solve-graph` would otherwise sit next to the new
`model.onnx`), then the new files move in and the new report is written last. The wrappers'
`from_pretrained` load only the graphs the report lists.

A family with several graphs (CRSM: step, prefill and the deliberation heads; TRM with
`--trm-solve-graph`: step and fused solve) writes them with one shared weights file,
`model.onnx_data`, holding each distinct weight once (`external_data.save_graphs`); the report's
sizes list every file once.
"""

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np
import onnx
import torch
from tqdm.auto import tqdm

from ..file_io import PathLike, atomic_write_json, check_saved_model
from .configs import DEFAULT_OPSET
from .external_data import save_graphs
from .quantization import (
    blockwise_8bit_blocks,
    check_int4_options,
    check_precision,
    has_fast_8bit_blocks,
    quantize_int4,
    quantize_int8,
)
from .sessions import REPORT_NAME, check_optimization_level


# Files an earlier export may have left that this one must not keep: ONNX graphs and their
# external-data files (`onnx.save(..., save_as_external_data=True)` / Optimum's `model.onnx_data`).
GRAPH_SUFFIXES = (".onnx", ".onnx_data", ".onnx.data")


def check_bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False; got {value!r}.")
    return value


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}.")
    return value


# The opsets an export may ask for: 12 is the first with Einsum, which the CRSM and meta-attention graphs
# need; 23 is the last torch.onnx writes. INT4 with quantized embedding tables (`quantize_gather`)
# needs 18, the first where the quantized TRM and CRSM graphs load (docs/onnx.md, "Opsets").
MIN_OPSET, MAX_OPSET = 12, 23
MIN_OPSET_INT4_GATHER = 18


def check_opset(opset, precision: str = "fp32", quantize_gather: bool = True) -> int:
    """Raises `ValueError` unless `opset` is one this export writes and ONNX Runtime loads; returns it."""
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"`opset` must be an integer from {MIN_OPSET} to {MAX_OPSET}; got {opset!r}.")
    if precision == "int4" and quantize_gather and opset < MIN_OPSET_INT4_GATHER:
        raise ValueError(
            f"INT4 with quantized embedding tables needs `opset` >= {MIN_OPSET_INT4_GATHER}; got {opset} "
            "(raise the opset, or keep the tables in FP32: `quantize_gather=False`, `--no-quantize-gather`)."
        )
    return opset


@dataclass
class ExportOptions:
    """
    What an export can be asked for beyond the precision and the quantization options every family
    shares. Each family subclasses it (`TRMExportOptions`, `CRSMExportOptions`,
    `MetaAttentionExportOptions`) and `export_pretrained(..., options=...)` takes the subclass of the
    model's family.

    Args:
        int8_blockwise (`Mapping[str, int]`, *optional*):
            INT8 only: `{node-name substring: block size}` of the matmuls that become 8-bit
            `MatMulNBits` (weights and activations quantized per block of input channels) instead of
            dynamic INT8. `None`: the family's default; `{}`: every matmul dynamic INT8.
    """

    # `export_pretrained`'s family-prefixed keywords that set a field of these options.
    keyword_fields: ClassVar[Mapping[str, str]] = {"int8_blockwise": "int8_blockwise"}

    int8_blockwise: Optional[Mapping[str, int]] = field(
        default=None,
        metadata={
            "help": "INT8: {node-name substring: block size (a power of two >= 16)} of the matmuls quantized as "
            "8-bit MatMulNBits instead of dynamic INT8; None: the family's default; {}: all dynamic INT8."
        },
    )

    def __post_init__(self):
        if self.int8_blockwise is not None:
            self.int8_blockwise = blockwise_8bit_blocks(self.int8_blockwise, "int8_blockwise")

    def graph_fields(self, config) -> dict:
        """The report fields the traced FP32 graphs depend on, beyond the opset: an `fp32_dir` export
        must have the same to be quantized instead of tracing again."""
        return {}

    def quantization(self, config) -> dict:
        """The family's quantization options, on top of those every family shares (`build_graphs`)."""
        return {} if self.int8_blockwise is None else {"int8_blockwise": self.int8_blockwise}


@dataclass(frozen=True)
class ExportRequest:
    """
    One export as `export_pretrained` hands it to a family's export function, its arguments checked.

    Args:
        out_dir (`Path`): the fresh folder the graphs go into.
        precision (`str`): `"fp32"`, `"int8"` or `"int4"`.
        task (`str`): one of the family's tasks.
        opset (`int`): the ONNX opset.
        optimization_level (`str`): ONNX Runtime graph optimisations of the parity check.
        quantization (`dict`): the quantization options every family shares (`per_channel`,
            `block_size`, `accuracy_level`, `quantize_gather`).
        parity_samples (`int`): examples in the parity check.
        seed (`int`): seed of the parity check's inputs.
        progress (`bool`): show a progress bar.
        fp32_dir (`Path`, *optional*): an FP32 export of the same graphs to quantize instead of tracing.
    """

    out_dir: Path
    precision: str
    task: str
    opset: int
    optimization_level: str
    quantization: dict
    parity_samples: int
    seed: int
    progress: bool
    fp32_dir: Optional[Path] = None


@dataclass(frozen=True)
class FamilyExporter:
    """
    The registry entry of one model family: what `export_pretrained` looks up by `model_type`.

    Args:
        name (`str`): the family's `model_type` (`"trm"`, `"crsm"`, `"meta_attention"`).
        tasks (`tuple[str, ...]`): the tasks it exports; the first is the default.
        options_class (`type[ExportOptions]`): its options.
        export (`Callable[..., dict]`): `export(model, request: ExportRequest, options)` writes the
            graphs into `request.out_dir` and returns the report (`build_export` does the common part).
        auto_class: the transformers Auto class that loads a saved model of the family.
    """

    name: str
    tasks: tuple
    options_class: type
    export: Callable[..., dict]
    auto_class: Any


# Family name -> its registry entry; `EXPORTERS` (family -> export function) and `TASKS` (family ->
# tasks) are views of it. Filled by the family modules through `register_family`.
FAMILY_EXPORTERS: dict[str, FamilyExporter] = {}
EXPORTERS: dict[str, Callable] = {}
TASKS: dict[str, tuple] = {}


def register_family(entry: FamilyExporter) -> FamilyExporter:
    FAMILY_EXPORTERS[entry.name] = entry
    EXPORTERS[entry.name] = entry.export
    TASKS[entry.name] = entry.tasks
    return entry


def family_exporter(model_type: str) -> FamilyExporter:
    if model_type not in FAMILY_EXPORTERS:
        raise ValueError(
            f"No ONNX exporter for model type {model_type!r}; supported: {', '.join(sorted(FAMILY_EXPORTERS))}."
        )
    return FAMILY_EXPORTERS[model_type]


def _mib(size: int) -> float:
    return round(size / 2**20, 3)


def optimum_trace(module: torch.nn.Module, onnx_config, opset: int, input_shapes: Optional[dict] = None) -> Callable:
    """A function writing the FP32 graph of `module` to a path, traced through Optimum's `export`."""

    def trace(path: Path) -> None:
        from optimum.exporters.onnx import export

        export(
            model=module,
            config=onnx_config,
            output=path,
            opset=opset,
            input_shapes={"batch_size": 2, **(input_shapes or {})},
        )

    return trace


def build_export(
    model, request: ExportRequest, options: ExportOptions, graphs: dict, parity: Callable[[dict], dict], per_graph=None
) -> dict:
    """What every family's export does with its graphs: writes them (`build_graphs`, with the shared
    and the family's quantization options), checks parity and returns the report.

    Args:
        graphs: file name -> function writing that FP32 graph to a path (`optimum_trace`).
        parity: `parity(files)` compares the written graphs (the report's `files`) with `model`.
        per_graph: quantization options of some graphs that differ from the others'.
    """
    family = model.config.model_type
    stages = 2 if request.precision == "fp32" else 3  # trace, (quantize,) parity
    bar = tqdm(total=len(graphs) * stages, desc=f"export {family} ({request.precision})", disable=not request.progress)
    report = {
        "family": family,
        "task": request.task,
        "precision": request.precision,
        "opset": request.opset,
        **options.graph_fields(model.config),
        "optimization_level": request.optimization_level,
    }
    quantization = {**request.quantization, **options.quantization(model.config)}
    report.update(
        build_graphs(request.out_dir, graphs, request.precision, quantization, request.fp32_dir, bar, per_graph)
    )
    bar.set_postfix_str("parity")
    report["parity"] = parity(report["files"])
    bar.update(bar.total - bar.n)
    bar.close()
    return report


def decoding_parity(num_samples: int, decode_steps: int, top1: list, greedy_pt, greedy_ort) -> dict:
    """The parity numbers of a causal LM: top-1 agreement over the teacher-forced positions and the
    agreement of free-running greedy tokens (both sides stop once every row emitted EOS: the tokens
    both produced are compared)."""
    common = min(greedy_pt.shape[1], greedy_ort.shape[1])
    return {
        "samples": num_samples,
        "decode_steps": decode_steps,
        "top1_agreement": float(np.mean(top1)),
        "greedy_token_agreement": float((greedy_pt[:, :common] == greedy_ort[:, :common]).float().mean()),
    }


def build_graphs(
    out_dir: Path,
    graphs: dict,
    precision: str,
    quantization: dict,
    fp32_dir: Optional[Path],
    bar,
    per_graph: Optional[dict] = None,
) -> dict:
    """Writes the export's graphs into `out_dir`; returns the report's `files`, `fp32_mib` and `quantization`.

    `graphs` maps each file name to a function that writes its FP32 graph to a path. The FP32 graphs
    are traced (or read from an earlier FP32 export, `fp32_dir`: tracing dominates the export time of
    the larger models and gives the same graph for every precision), written together so that
    identical weights are stored once (`save_graphs`: one external-data file for several graphs),
    then quantized one by one and written together again. `per_graph` overrides quantization
    options for some graphs. Sizes count every file once.
    """
    fp32_root = out_dir if precision == "fp32" else out_dir / "fp32"
    fp32_root.mkdir(exist_ok=True)
    protos = {}
    for name, trace in graphs.items():
        bar.set_postfix_str(f"{name}: export")
        if fp32_dir is not None:
            protos[name] = onnx.load(str(fp32_dir / name))
        else:
            traced = out_dir / f".traced-{name}"
            trace(traced)
            protos[name] = onnx.load(str(traced))
            traced.unlink()
        bar.update()
    fp32_sizes = save_graphs(protos, fp32_root)
    del protos
    result = {"fp32_mib": {name: _mib(size) for name, size in fp32_sizes.items()}}
    if precision == "fp32":
        result["files"] = dict(result["fp32_mib"])
        return result
    quantized, details = {}, {}
    for name in graphs:
        bar.set_postfix_str(f"{name}: quantize")
        options = {**quantization, **(per_graph or {}).get(name, {})}
        target = out_dir / f".quantized-{name}"
        details[name] = _quantize(fp32_root / name, target, precision, options)
        quantized[name] = onnx.load(str(target))
        target.unlink()
        bar.update()
    shutil.rmtree(fp32_root)
    sizes = save_graphs(quantized, out_dir)
    result["files"] = {name: _mib(size) for name, size in sizes.items()}
    # What every graph shares goes first; what differs per graph (rewrites, FP32 leftovers) under `graphs`.
    shared = {
        key: value
        for key, value in details[next(iter(graphs))].items()
        if all(d.get(key) == value for d in details.values())
    }
    result["quantization"] = dict(shared)
    differing = {name: {k: v for k, v in d.items() if k not in shared} for name, d in details.items()}
    if any(differing.values()):
        result["quantization"]["graphs"] = {name: d for name, d in differing.items() if d}
    return result


def _quantize(source: Path, target: Path, precision: str, options: dict) -> dict:
    """Quantizes `source` into `target`; returns what was done, for the report."""
    if precision == "int8":
        keep = tuple(options.get("int8_keep_fp32", ()))
        gather = bool(options.get("int8_quantize_gather", False))
        blocks = dict(options.get("int8_blockwise", {})) if has_fast_8bit_blocks() else {}
        quantize_int8(
            source,
            target,
            per_channel=options["per_channel"],
            keep_fp32=keep,
            quantize_gather=gather,
            blockwise=blocks,
        )
        info = {
            "method": "onnxruntime.quantization.quantize_dynamic",
            "weight_type": "QInt8",
            "per_channel": options["per_channel"],
            "weights_only": True,
            "kept_fp32": list(keep),
            "quantize_gather": gather,
        }
        if options.get("int8_blockwise"):
            # The matmuls named here (node-name substring -> block size) are 8-bit MatMulNBits
            # (blockwise weights and activations), or dynamic INT8 as the rest where this
            # onnxruntime lacks the fast 8-bit kernels (then empty).
            info["blockwise_8bit"] = blocks
        return info
    keep = tuple(options.get("int4_keep_fp32", ()))
    _, counts = quantize_int4(
        source,
        target,
        block_size=options["block_size"],
        accuracy_level=options["accuracy_level"],
        quantize_gather=options["quantize_gather"],
        keep_fp32=keep,
    )
    return {
        "method": "onnxruntime MatMulNBitsQuantizer",
        "bits": 4,
        "block_size": options["block_size"],
        "accuracy_level": options["accuracy_level"],
        "symmetric": True,
        "quantize_gather": options["quantize_gather"],
        "kept_fp32": list(keep),
        "rewrites": counts,
    }


def _check_fp32_dir(fp32_dir: PathLike, family: str, expected: dict) -> Path:
    """`fp32_dir` must hold an FP32 export of the same family with the same graph options."""
    fp32_dir = Path(fp32_dir)
    report_path = fp32_dir / REPORT_NAME
    if not report_path.is_file():
        raise ValueError(
            f"`fp32_dir` must be a folder written by `export_pretrained(..., precision='fp32')`; "
            f"{report_path} does not exist."
        )
    report = json.loads(report_path.read_text())
    found = {
        "family": report.get("family"),
        "precision": report.get("precision"),
        **{k: report.get(k) for k in expected},
    }
    wanted = {"family": family, "precision": "fp32", **expected}
    if found != wanted:
        mismatched = {k: (found[k], wanted[k]) for k in wanted if found[k] != wanted[k]}
        raise ValueError(f"`fp32_dir` {fp32_dir} holds a different export (field: (found, needed)): {mismatched}.")
    missing = [name for name in report.get("fp32_mib", {}) if not (fp32_dir / name).is_file()]
    if missing:
        raise ValueError(f"`fp32_dir` {fp32_dir} lacks the graph(s) {missing} listed in its report.")
    return fp32_dir


def read_fp32_report(fp32_dir: Path) -> dict:
    """The report of the FP32 export that an export quantizes (checked by `export_pretrained`)."""
    return json.loads((fp32_dir / REPORT_NAME).read_text())


def _load_model(model_dir: Path):
    """The model saved in `model_dir`, after checking that the folder, its config and its weights are there
    and whole (a truncated weights file is named, not met deep inside `from_pretrained`)."""
    from transformers import AutoConfig

    check_saved_model(model_dir)
    config = AutoConfig.from_pretrained(model_dir)
    return family_exporter(config.model_type).auto_class.from_pretrained(model_dir)


def _family_options(entry: FamilyExporter, options: Optional[ExportOptions], keywords: dict) -> ExportOptions:
    """The options of `entry`'s family: `options`, or built from `export_pretrained`'s family-prefixed
    `keywords` (those given; the keywords of other families are not the model's and are ignored)."""
    options_class = entry.options_class
    if options is None:
        fields = options_class.keyword_fields
        return options_class(**{fields[key]: value for key, value in keywords.items() if key in fields})
    if not isinstance(options, options_class):
        raise ValueError(
            f"`options` for model type {entry.name!r} must be a {options_class.__name__}; "
            f"got {type(options).__name__}."
        )
    if keywords:
        raise ValueError(
            f"Pass either `options` or the keywords {', '.join(f'`{key}`' for key in keywords)}, not both "
            f"(they set the fields of {options_class.__name__})."
        )
    return options


def export_pretrained(
    model_or_dir,
    out_dir: PathLike,
    precision: str = "fp32",
    task: Optional[str] = None,
    opset: Optional[int] = None,
    per_channel: bool = True,
    block_size: int = 128,
    accuracy_level: int = 4,
    quantize_gather: bool = True,
    optimization_level: str = "all",
    trm_solve_graph: Optional[bool] = None,
    trm_int8_fp32_token_mixer: Optional[bool] = None,
    meta_attention_fusions: Optional[bool] = None,
    crsm_prefill_length: Optional[int] = None,
    int8_blockwise: Optional[Mapping[str, int]] = None,
    parity_samples: int = 8,
    seed: int = 0,
    progress: bool = True,
    fp32_dir: Optional[PathLike] = None,
    options: Optional[ExportOptions] = None,
) -> dict:
    """Exports a saved hf-reason model (folder or model instance) to ONNX Runtime.

    Writes into `out_dir`: the ONNX graph(s) (`model.onnx`, plus family-specific ones), the
    config, the tokenizer when the model folder has one, and `export_report.json` with file sizes
    and the parity numbers against PyTorch. Returns the report.

    Args:
        precision: `"fp32"`, `"int8"` (dynamic, weights per channel) or `"int4"` (weight-only MatMulNBits).
        task: the family's task (default: its first); `hf-reason export --help` lists them.
        per_channel: INT8 scale per output channel (else per tensor).
        block_size, accuracy_level, quantize_gather: INT4 options (see `quantize_int4`).
        optimization_level: ONNX Runtime graph optimisations used for the parity check and recorded
            for the wrappers (`"disable"`, `"basic"`, `"extended"`, `"all"`).
        opset: the ONNX opset, from `MIN_OPSET` (12) to `MAX_OPSET` (23); default 18. INT4 with
            `quantize_gather` needs 18 or more.
        parity_samples: examples in the parity check (>= 1).
        fp32_dir: a folder written by an earlier `precision="fp32"` export of this same model (same
            graph options): INT8 / INT4 quantize its graphs instead of tracing the model again.
            Only the family and graph options are checked, not the weights.
        options: the family's options (`TRMExportOptions`, `CRSMExportOptions`,
            `MetaAttentionExportOptions`); default: the family's defaults.
        trm_solve_graph, trm_int8_fp32_token_mixer, meta_attention_fusions, crsm_prefill_length,
            int8_blockwise: the same as the fields of the family's options (`TRMExportOptions.solve_graph`,
            `TRMExportOptions.int8_fp32_token_mixer`, `MetaAttentionExportOptions.fusions`,
            `CRSMExportOptions.prefill_length`, `int8_blockwise` of every family), for calls without
            `options`; those of another family than the model's are ignored.
    """
    check_precision(precision)
    if precision == "int4":
        check_int4_options(block_size, accuracy_level)
    opset = check_opset(DEFAULT_OPSET if opset is None else opset, precision, quantize_gather)
    check_positive_int(parity_samples, "parity_samples")
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise NotADirectoryError(f"`out_dir` {out_dir} is a file; an export writes a folder.")
    if int8_blockwise is not None:
        int8_blockwise = blockwise_8bit_blocks(int8_blockwise, "int8_blockwise")  # checked before tracing
    check_optimization_level(optimization_level)
    if isinstance(model_or_dir, torch.nn.Module):
        model, model_dir = model_or_dir, None
    else:
        model_dir = Path(model_or_dir)
        model = _load_model(model_dir)
    entry = family_exporter(model.config.model_type)
    task = task or entry.tasks[0]
    if task not in entry.tasks:
        raise ValueError(
            f"`task` for model type {entry.name!r} must be one of "
            f"{', '.join(repr(t) for t in entry.tasks)}; got {task!r}."
        )
    keywords = {
        "trm_solve_graph": trm_solve_graph,
        "trm_int8_fp32_token_mixer": trm_int8_fp32_token_mixer,
        "meta_attention_fusions": meta_attention_fusions,
        "crsm_prefill_length": crsm_prefill_length,
        "int8_blockwise": int8_blockwise,
    }
    options = _family_options(entry, options, {key: value for key, value in keywords.items() if value is not None})
    if fp32_dir is not None:
        expected = {"opset": opset, **options.graph_fields(model.config)}
        fp32_dir = _check_fp32_dir(fp32_dir, entry.name, expected)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    try:
        request = ExportRequest(
            out_dir=staging,
            precision=precision,
            task=task,
            opset=opset,
            optimization_level=optimization_level,
            quantization={
                "per_channel": per_channel,
                "block_size": block_size,
                "accuracy_level": accuracy_level,
                "quantize_gather": quantize_gather,
            },
            parity_samples=parity_samples,
            seed=seed,
            progress=progress,
            fp32_dir=fp32_dir,
        )
        report = entry.export(model.eval().float(), request, options)
        model.config.save_pretrained(staging)
        report["tokenizer"] = False
        if model_dir is not None:
            report["tokenizer"] = _save_tokenizer(model_dir, staging)
        report["source"] = str(model_dir) if model_dir is not None else model.__class__.__name__
        report["fp32_total_mib"] = round(sum(report["fp32_mib"].values()), 3)
        report["total_mib"] = round(sum(report["files"].values()), 3)
        report["size_ratio_vs_fp32"] = round(report["total_mib"] / report["fp32_total_mib"], 4)
        _commit_export(staging, out_dir, report)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _commit_export(staging: Path, out_dir: Path, report: dict) -> None:
    """Replaces the export in `out_dir` by the finished one in `staging` (see the module docstring).

    Only the report and graph files are removed, so other files in `out_dir` survive; a crash
    part-way leaves a folder without a report, which the wrappers refuse to load."""
    report_path = out_dir / REPORT_NAME
    report_path.unlink(missing_ok=True)
    staged = {path.name for path in staging.iterdir()}
    for path in out_dir.iterdir():
        if path.is_file() and path.name not in staged and path.name.endswith(GRAPH_SUFFIXES):
            path.unlink()
    for name in sorted(staged):
        os.replace(staging / name, out_dir / name)
    atomic_write_json(report_path, report, indent=2, sort_keys=True)


def _save_tokenizer(model_dir: Path, target: Path) -> bool:
    if not any((model_dir / name).exists() for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
        return False
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(model_dir).save_pretrained(target)
    return True


__all__ = [
    "EXPORTERS",
    "FAMILY_EXPORTERS",
    "TASKS",
    "ExportOptions",
    "ExportRequest",
    "FamilyExporter",
    "build_export",
    "build_graphs",
    "check_opset",
    "decoding_parity",
    "export_pretrained",
    "family_exporter",
    "optimum_trace",
    "register_family",
]
