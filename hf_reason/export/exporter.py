# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""`export_pretrained`: a saved model folder -> ONNX graphs at FP32 / INT8 / INT4 + config + report.

The steps: trace the FP32 graph(s) through Optimum's `export` with our ONNX configs, check FP32
parity against PyTorch over several steps (not one forward), quantize if asked, measure the
quantized graph's agreement with PyTorch, and write `export_report.json`. Every file is first
written into a temporary folder inside `OUT_DIR` and moved into place with `os.replace`, the report
last, so an interrupted export never leaves a half-written file under its final name.

Re-exporting into a folder replaces the earlier export as a whole: its report goes first (the
loaders refuse a folder without one), then graph files this export did not write (a stale
`solve.onnx` from an export with `--trm-solve-graph` would otherwise sit next to the new
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
from functools import partial
from pathlib import Path
from typing import Optional, Union

import numpy as np
import onnx
import torch
from tqdm.auto import tqdm

from ..file_io import atomic_write_json
from .external_data import save_graphs
from .quantization import (
    PRECISIONS,
    blockwise_8bit_blocks,
    check_int4_options,
    check_precision,
    has_fast_8bit_blocks,
    quantize_int4,
    quantize_int8,
)
from .sessions import REPORT_NAME


PathLike = Union[str, os.PathLike]

# Family name -> (exporter, tasks it knows); filled below and by the other families' modules.
EXPORTERS: dict[str, Callable] = {}
MAX_PARITY_STEPS = 6
TASKS: dict[str, tuple] = {}
# Files an earlier export may have left that this one must not keep: ONNX graphs and their
# external-data files (`onnx.save(..., save_as_external_data=True)` / Optimum's `model.onnx_data`).
GRAPH_SUFFIXES = (".onnx", ".onnx_data", ".onnx.data")


def _mib(size: int) -> float:
    return round(size / 2**20, 3)


def _optimum_trace(module: torch.nn.Module, onnx_config, opset: int, input_shapes: Optional[dict] = None) -> Callable:
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


def _gpt2_fusions(trace: Callable, config, fused: dict) -> Callable:
    """`trace`, then onnxruntime.transformers' GPT-2 fusions on the FP32 graph (before quantizing).

    What it fuses here: LayerNormalization + residual Add (+ bias) into `SkipLayerNormalization`,
    GPT-2's tanh GELU into `FastGelu`, and shape-computation subgraphs (`Reshape` / `Shape`), which
    ONNX Runtime's own session-level fusions leave alone: 1266 instead of 1744 nodes per decode step
    at GPT-2-small shape. Its attention fusion never matches meta-attention's attention (summaries of
    the attention rows are read out) and is off. `opt_level=0`: only these graph rewrites, nothing
    specific to this machine's CPU, so the file stays portable. The counts go into `fused`.
    """

    def fused_trace(path: Path) -> None:
        import logging

        from onnxruntime.transformers.fusion_options import FusionOptions
        from onnxruntime.transformers.optimizer import optimize_model

        trace(path)
        options = FusionOptions("gpt2")
        options.enable_attention = False
        # Symbolic shape inference warns about every dynamic index it cannot bound (harmless here).
        shape_logger = logging.getLogger("onnxruntime.tools.symbolic_shape_infer")
        level = shape_logger.level
        shape_logger.setLevel(logging.ERROR)
        try:
            optimized = optimize_model(
                str(path),
                model_type="gpt2",
                num_heads=config.n_head,
                hidden_size=config.n_embd,
                optimization_options=options,
                opt_level=0,
                use_gpu=False,
            )
        finally:
            shape_logger.setLevel(level)
        fused.update({op: count for op, count in optimized.get_fused_operator_statistics().items() if count})
        optimized.save_model_to_file(str(path))

    return fused_trace


def _build_graphs(
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


# ----------------------------------------------------------------------------------------- TRM


def _trm_parity(model, ort_model, num_samples: int, seed: int, fp32: bool) -> dict:
    """PyTorch vs ONNX Runtime over a whole `solve` (every step's carry, logits and halting)."""
    config = model.config
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, config.vocab_size, (num_samples, config.seq_len), generator=gen)
    puzzle_ids = None
    if config.puzzle_emb_ndim:
        puzzle_ids = torch.randint(0, config.num_puzzle_identifiers, (num_samples,), generator=gen)
    max_abs = {"logits": 0.0, "q_halt_logits": 0.0, "q_continue_logits": 0.0, "carry_y": 0.0, "carry_z": 0.0}
    top1, halting = [], []
    carry_pt = carry_ort = None
    # A few steps show drift and halting; the full budget would cost minutes at the reference size.
    steps = min(config.halt_max_steps, MAX_PARITY_STEPS)
    with torch.no_grad():
        for _ in range(steps):
            pt = model(input_ids, puzzle_identifiers=puzzle_ids, carry=carry_pt, return_dict=True)
            # Same input carry on both sides: the export's own error at every step. (Free-running
            # carries drift apart by float rounding amplified through the recursion, ~1e-4 after
            # a few steps even between two PyTorch builds; agreement below measures that path.)
            forced = ort_model(input_ids, puzzle_identifiers=puzzle_ids, carry=carry_pt)
            for key, a, b in (
                ("logits", pt.logits, forced.logits),
                ("q_halt_logits", pt.q_halt_logits, forced.q_halt_logits),
                ("q_continue_logits", pt.q_continue_logits, forced.q_continue_logits),
                ("carry_y", pt.carry.y, forced.carry.y),
                ("carry_z", pt.carry.z, forced.carry.z),
            ):
                max_abs[key] = max(max_abs[key], float((a - b).abs().max()))
            ox = ort_model(input_ids, puzzle_identifiers=puzzle_ids, carry=carry_ort)
            top1.append((pt.logits.argmax(-1) == ox.logits.argmax(-1)).float().mean().item())
            halting.append(
                (
                    model.halt_decision(pt.q_halt_logits, pt.q_continue_logits)
                    == ort_model.halt_decision(ox.q_halt_logits, ox.q_continue_logits)
                )
                .float()
                .mean()
                .item()
            )
            carry_pt, carry_ort = pt.carry, ox.carry
            carry_pt.halted = torch.zeros_like(carry_pt.halted)
            carry_ort.halted = torch.zeros_like(carry_ort.halted)
        solved_pt = model.solve(input_ids, puzzle_identifiers=puzzle_ids, max_steps=steps)
        solved_ort = ort_model.solve(input_ids, puzzle_identifiers=puzzle_ids, max_steps=steps)
    result = {
        "samples": num_samples,
        "supervision_steps": steps,
        "top1_agreement": float(np.mean(top1)),
        "halting_agreement": float(np.mean(halting)),
        "solve_prediction_agreement": float((solved_pt.predictions == solved_ort.predictions).float().mean()),
        "solve_steps_equal": bool(torch.equal(solved_pt.steps, solved_ort.steps)),
    }
    if fp32:
        result["max_abs_diff_per_step"] = max_abs
    return result


def export_trm(
    model,
    out_dir: Path,
    precision: str = "fp32",
    task: str = "puzzle-solving",
    opset: Optional[int] = None,
    quantization: Optional[dict] = None,
    solve_graph: bool = False,
    solve_max_steps: Optional[int] = None,
    parity_samples: int = 8,
    seed: int = 0,
    optimization_level: str = "all",
    progress: bool = True,
    fp32_dir: Optional[Path] = None,
) -> dict:
    """Exports a `TRMForPuzzleSolving` into `out_dir` (a fresh temporary folder); returns the report."""
    from .configs import DEFAULT_OPSET, onnx_config
    from .ort import ORTTRMForPuzzleSolving
    from .trm import TRMSolveForExport, TRMStepForExport

    if task not in TASKS["trm"]:
        raise ValueError(f"`task` for a TRM must be one of {', '.join(repr(t) for t in TASKS['trm'])}; got {task!r}.")
    opset = opset or DEFAULT_OPSET
    quantization = dict(quantization or {})
    if model.config.mixer == "mlp" and quantization.get("trm_int8_fp32_token_mixer", True):
        # The MLP mixer's token-mixing matmuls carry most of the INT8 error that the recursion
        # compounds. Measured (MLP-mixer TRM, hidden 64, H=3 L=6, 64 puzzles x 6 steps), top-1
        # agreement all-INT8 -> FP32 token mixer: 0.951 -> 0.978 after 200 training steps and
        # 0.980 -> 0.983 after 400; per-tensor scales, reduce_range, asymmetric weights or an FP32
        # head / Q-head each moved it by <= 0.003. The price: ~7% of the weights at the reference
        # size stay FP32 and INT8 steps were ~10% slower (ORT profile, op shares).
        quantization["int8_keep_fp32"] = ("token_mixer",)
    model = model.eval().float()
    graphs = [("model.onnx", TRMStepForExport(model), onnx_config("trm", "token-classification", model.config))]
    solve_info = None
    if solve_graph:
        solve_module = TRMSolveForExport(model, max_steps=solve_max_steps)
        graphs.append(("solve.onnx", solve_module, onnx_config("trm_solve", "token-classification", model.config)))
        solve_info = {"max_steps": solve_module.max_steps, "use_halting": solve_module.use_halting}
    stages = 2 if precision == "fp32" else 3
    bar = tqdm(total=len(graphs) * stages, desc=f"export trm ({precision})", disable=not progress)
    report = {
        "family": "trm",
        "task": task,
        "precision": precision,
        "opset": opset,
        "solve_graph": solve_info,
        "optimization_level": optimization_level,
    }
    # The fused solve repeats the step graph's weights: written together, they are stored once.
    report.update(
        _build_graphs(
            out_dir,
            {name: _optimum_trace(module, cfg, opset) for name, module, cfg in graphs},
            precision,
            quantization,
            fp32_dir,
            bar,
        )
    )
    bar.set_postfix_str("parity")
    ort_model = ORTTRMForPuzzleSolving.from_files(
        out_dir, report["files"], optimization_level, config=model.config, solve_graph_info=solve_info
    )
    report["parity"] = _trm_parity(model, ort_model, parity_samples, seed, fp32=precision == "fp32")
    if solve_graph:
        with torch.no_grad():
            gen = torch.Generator().manual_seed(seed + 1)
            ids = torch.randint(1, model.config.vocab_size, (parity_samples, model.config.seq_len), generator=gen)
            pt = model.solve(ids, max_steps=solve_info["max_steps"])
            fused = ort_model.solve(ids, max_steps=solve_info["max_steps"], graph="fused")
        report["parity"]["fused_solve_prediction_agreement"] = float(
            (pt.predictions == fused.predictions).float().mean()
        )
        report["parity"]["fused_solve_steps_equal"] = bool(torch.equal(pt.steps, fused.steps))
    bar.update(bar.total - bar.n)
    bar.close()
    return report


EXPORTERS["trm"] = export_trm
TASKS["trm"] = ("puzzle-solving",)


# ------------------------------------------------------------------------------ meta-attention


def _meta_attention_parity(model, ort_model, num_samples: int, seed: int, fp32: bool, decode_steps: int = 8) -> dict:
    """Prefill then cached decode steps, both sides fed PyTorch's greedy tokens (teacher forcing),
    plus free-running greedy generation compared token by token."""
    config = model.config
    gen = torch.Generator().manual_seed(seed)
    prompt_len = max(8, config.meta_top_k)
    decode_steps = max(1, min(decode_steps, config.n_positions - prompt_len - 1))
    low = 3 if config.vocab_size > 3 else 0
    ids = torch.randint(low, config.vocab_size, (num_samples, prompt_len), generator=gen)
    mask = torch.ones_like(ids)
    mask[0, :2] = 0  # one left-padded row: padding must not change the outputs
    max_abs, top1 = 0.0, []
    with torch.no_grad():
        pt = model(ids, attention_mask=mask, use_cache=True)
        ox = ort_model(ids, attention_mask=mask)
        logits, cache = ox.logits, ox.past_key_values
        valid = mask.bool()
        max_abs = float((pt.logits - logits)[valid].abs().max())
        top1.append((pt.logits[valid].argmax(-1) == logits[valid].argmax(-1)).float().mean().item())
        past = pt.past_key_values
        for _ in range(decode_steps):
            token = pt.logits[:, -1:].argmax(-1)
            mask = torch.cat([mask, torch.ones_like(token)], 1)
            pt = model(token, attention_mask=mask, past_key_values=past, use_cache=True)
            past = pt.past_key_values
            ox = ort_model(token, attention_mask=mask, past_key_values=cache)
            logits, cache = ox.logits, ox.past_key_values
            max_abs = max(max_abs, float((pt.logits - logits).abs().max()))
            top1.append((pt.logits[:, -1].argmax(-1) == logits[:, -1].argmax(-1)).float().mean().item())
        prompt, prompt_mask = ids[:, 2:], torch.ones_like(ids[:, 2:])
        pad = config.pad_token_id if config.pad_token_id is not None else 0
        greedy_pt = model.generate(
            prompt, attention_mask=prompt_mask, max_new_tokens=decode_steps, do_sample=False, pad_token_id=pad
        )[:, prompt.shape[1] :]
        greedy_ort = ort_model.generate(
            prompt, attention_mask=prompt_mask, max_new_tokens=decode_steps, pad_token_id=pad
        )[:, prompt.shape[1] :]
        # Both stop once every row emitted EOS; compare the tokens both produced.
        common = min(greedy_pt.shape[1], greedy_ort.shape[1])
    result = {
        "samples": num_samples,
        "decode_steps": decode_steps,
        "top1_agreement": float(np.mean(top1)),
        "greedy_token_agreement": float((greedy_pt[:, :common] == greedy_ort[:, :common]).float().mean()),
    }
    if fp32:
        result["max_abs_diff_logits"] = max_abs
    return result


def export_meta_attention(
    model,
    out_dir: Path,
    precision: str = "fp32",
    task: str = "text-generation",
    opset: Optional[int] = None,
    quantization: Optional[dict] = None,
    parity_samples: int = 4,
    seed: int = 0,
    optimization_level: str = "all",
    progress: bool = True,
    fp32_dir: Optional[Path] = None,
    fusions: bool = True,
) -> dict:
    """Exports a `MetaAttentionForCausalLM` (decoder with KV cache, meta-attention inside) to `out_dir`;
    `fusions`: apply onnxruntime.transformers' GPT-2 fusions to the FP32 graph (`_gpt2_fusions`)."""
    from .configs import DEFAULT_OPSET, onnx_config
    from .ort import ORTMetaAttentionForCausalLM, create_session

    opset = opset or DEFAULT_OPSET
    model = model.eval().float()
    decoder_config = onnx_config("meta_attention", "text-generation-with-past", model.config, use_past_in_inputs=True)
    bar = tqdm(
        total=3 if precision != "fp32" else 2, desc=f"export meta_attention ({precision})", disable=not progress
    )
    report = {
        "family": "meta_attention",
        "task": task,
        "precision": precision,
        "opset": opset,
        "optimization_level": optimization_level,
        "fusions": fusions,
    }
    trace = _optimum_trace(model, decoder_config, opset)
    fused = {}
    if fusions:
        trace = _gpt2_fusions(trace, model.config, fused)
    report.update(_build_graphs(out_dir, {"model.onnx": trace}, precision, quantization, fp32_dir, bar))
    if fusions:
        # Traced now, or by the FP32 export this one quantizes (which recorded what it fused).
        report["fused_ops"] = (
            fused if fp32_dir is None else json.loads((fp32_dir / REPORT_NAME).read_text())["fused_ops"]
        )
    ort_model = ORTMetaAttentionForCausalLM(model.config, create_session(out_dir / "model.onnx", optimization_level))
    report["parity"] = _meta_attention_parity(model, ort_model, parity_samples, seed, fp32=precision == "fp32")
    bar.update()
    bar.close()
    return report


EXPORTERS["meta_attention"] = export_meta_attention
TASKS["meta_attention"] = ("text-generation",)


# ------------------------------------------------------------------------------------- CRSM


def _crsm_parity(model, ort_model, num_samples: int, seed: int, fp32: bool, decode_steps: int = 8) -> dict:
    """Prefill (left-padded prompts) then single-token steps fed PyTorch's greedy tokens; logits,
    recurrent states and values compared at every step; then free-running greedy generation."""
    config = model.config
    gen = torch.Generator().manual_seed(seed)
    prompt_len = 8  # more than one chunk when the prefill graph is shorter
    ids = torch.randint(3 if config.vocab_size > 3 else 0, config.vocab_size, (num_samples, prompt_len), generator=gen)
    diffs = {"logits": 0.0, "conv_states": 0.0, "ssm_states": 0.0, "value": 0.0}
    top1 = []

    def compare(pt_logits, pt_cache, pt_value, ox):
        for key, a, b in (
            ("logits", pt_logits, ox["logits"]),
            ("value", pt_value, ox["value"]),
            ("conv_states", torch.stack(pt_cache.conv_states, 1), ox["conv_states"]),
            ("ssm_states", torch.stack(pt_cache.ssm_states, 1), ox["ssm_states"]),
        ):
            diffs[key] = max(diffs[key], float((a - torch.from_numpy(b)).abs().max()))
        top1.append((pt_logits.argmax(-1) == torch.from_numpy(ox["logits"]).argmax(-1)).float().mean().item())

    with torch.no_grad():
        pt = model(ids, use_cache=True, return_value=True)
        ox = ort_model.prefill(ids, return_value=True)
        compare(pt.logits[:, -1], pt.cache_params, pt.value, ox)
        cache, position = pt.cache_params, torch.tensor([config.conv_kernel])
        for _ in range(decode_steps):
            token = pt.logits[:, -1:].argmax(-1)
            pt = model(token, cache_params=cache, cache_position=position, use_cache=True, return_value=True)
            cache, position = pt.cache_params, position + 1
            # ORT continues from its own states, as in deployment (the recurrence is contractive:
            # rounding does not grow over steps the way it does through TRM's recursion).
            ox = ort_model.step(token, ox["conv_states"], ox["ssm_states"], return_value=True)
            ox["logits"] = ox["logits"][:, -1]
            compare(pt.logits[:, -1], cache, pt.value, ox)
        greedy_pt = model.generate(
            ids, max_new_tokens=decode_steps, do_sample=False, pad_token_id=config.pad_token_id
        )[:, prompt_len:]
        greedy_ort = ort_model.generate(ids, max_new_tokens=decode_steps)[:, prompt_len:]
        common = min(greedy_pt.shape[1], greedy_ort.shape[1])
    result = {
        "samples": num_samples,
        "decode_steps": decode_steps,
        "top1_agreement": float(np.mean(top1)),
        "greedy_token_agreement": float((greedy_pt[:, :common] == greedy_ort[:, :common]).float().mean()),
    }
    if fp32:
        result["max_abs_diff"] = diffs
    return result


# CRSM matmuls left FP32 at INT8 / INT4, by node-name substring, in every graph (the step and
# prefill graphs compute the value too, and the same weights must stay byte-identical across
# graphs to be stored once). The value head is two small matmuls (summary_size x value_hidden_size
# + value_hidden_size; 1 MiB of a 50M CRSM) whose scalar output MCTS compares across children:
# measured on a random-weight CRSM (hidden 512, 2 layers), quantizing it gave a relative value
# error of 0.018 at INT8 and 0.10 at INT4.
CRSM_KEEP_FP32 = ("value_head",)
# INT8: the mixers' in_proj, x_proj, out_proj and the LM head are 8-bit MatMulNBits, which
# quantizes weights and activations per block of input channels; dynamic INT8 has one activation
# scale per tensor, and a few outlier channels stretch it (most of all in the gated SSM output that
# out_proj reads). out_proj and x_proj (the SSM output and the convolved input) keep blocks of 16;
# in_proj (reads the normalized residual stream) and the LM head (the final norm's output), 42.5M of
# a 50M CRSM's 52M blockwise weights, take blocks of 128 (fewer activation scales): with dt_proj
# below, a 50M decode step 1.19x faster than all at 16 (interleaved sessions, median of 31 rounds),
# for top-1 agreement within the measurement's noise (docs/onnx.md "CRSM INT8: a block size per
# matmul"; `int8_blockwise=` chooses another set). dt_proj (input: time_step_rank channels, 8 in issue
# 5's CRSM) stays FP32 at INT8: 0.5M weights in a 50M CRSM (2 MiB), no measurable speed difference
# against dynamic INT8 (1.01x), and blockwise it lost agreement.
CRSM_INT8_BLOCKWISE = {"mixer/in_proj": 128, "mixer/x_proj": 16, "mixer/out_proj": 16, "lm_head": 128}
CRSM_INT8_KEEP_FP32 = CRSM_KEEP_FP32 + ("mixer/dt_proj",)


def _crsm_head_quantization(precision: str) -> dict:
    """Quantization options of the deliberation head graphs that differ from the backbone's."""
    if precision == "int8":
        # The latent dynamics' token embedding is a vocabulary-sized table (as large as the LM's
        # own embedding): stored UINT8 too (relative error of the predicted summary 0.003 on the
        # model above). The backbone's embedding stays FP32 (see docs/onnx.md).
        return {"dynamics.onnx": {"int8_quantize_gather": True}}
    return {}


def export_crsm(
    model,
    out_dir: Path,
    precision: str = "fp32",
    task: str = "text-generation",
    opset: Optional[int] = None,
    quantization: Optional[dict] = None,
    prefill_length: int = 32,
    parity_samples: int = 4,
    seed: int = 0,
    optimization_level: str = "all",
    progress: bool = True,
    fp32_dir: Optional[Path] = None,
) -> dict:
    """Exports a `CRSMForCausalLM`: `model.onnx` (single-token step, states in / out) and
    `prefill.onnx` (chunks of `prefill_length` tokens, states in / out: prompts of any length)."""
    from .configs import DEFAULT_OPSET, onnx_config
    from .crsm import CRSMHeadsForExport, CRSMPrefillForExport, CRSMStepForExport, export_crsm_head
    from .ort import ORTCRSMForCausalLM

    if isinstance(prefill_length, bool) or not isinstance(prefill_length, int) or prefill_length < 1:
        raise ValueError(f"`prefill_length` must be an integer >= 1, got {prefill_length!r}.")
    opset = opset or DEFAULT_OPSET
    quantization = dict(quantization or {})
    quantization.setdefault("int8_keep_fp32", CRSM_INT8_KEEP_FP32)
    quantization.setdefault("int4_keep_fp32", CRSM_KEEP_FP32)
    quantization.setdefault("int8_blockwise", CRSM_INT8_BLOCKWISE)
    model = model.eval().float()
    graphs = {
        "model.onnx": _optimum_trace(
            CRSMStepForExport(model), onnx_config("crsm", "text-generation", model.config), opset
        ),
        "prefill.onnx": _optimum_trace(
            CRSMPrefillForExport(model),
            onnx_config("crsm_prefill", "text-generation", model.config),
            opset,
            {"sequence_length": prefill_length},
        ),
    }
    for part in CRSMHeadsForExport.PARTS:
        graphs[f"{part}.onnx"] = partial(export_crsm_head, model, part, opset=opset)
    stages = 2 if precision == "fp32" else 3
    bar = tqdm(total=len(graphs) * stages, desc=f"export crsm ({precision})", disable=not progress)
    report = {
        "family": "crsm",
        "task": task,
        "precision": precision,
        "opset": opset,
        "prefill_length": prefill_length,
        "optimization_level": optimization_level,
    }
    # The step and prefill graphs hold the same backbone: written together, every weight is stored once.
    report.update(
        _build_graphs(
            out_dir, graphs, precision, quantization, fp32_dir, bar, per_graph=_crsm_head_quantization(precision)
        )
    )
    bar.set_postfix_str("parity")
    ort_model = ORTCRSMForCausalLM.from_files(out_dir, report["files"], optimization_level, config=model.config)
    report["parity"] = _crsm_parity(model, ort_model, parity_samples, seed, fp32=precision == "fp32")
    bar.update(bar.total - bar.n)
    bar.close()
    return report


EXPORTERS["crsm"] = export_crsm
TASKS["crsm"] = ("text-generation",)


# ------------------------------------------------------------------------------- entry point


def _load_model(model_dir: PathLike):
    from transformers import AutoConfig, AutoModelForCausalLM

    import hf_reason  # noqa: F401  (registers the model types with the Auto classes)
    from hf_reason.models.auto import AutoModelForPuzzleSolving

    config = AutoConfig.from_pretrained(model_dir)
    if config.model_type not in EXPORTERS:
        raise ValueError(
            f"No ONNX exporter for model type {config.model_type!r}; supported: {', '.join(sorted(EXPORTERS))}."
        )
    if config.model_type == "trm":
        return AutoModelForPuzzleSolving.from_pretrained(model_dir)
    return AutoModelForCausalLM.from_pretrained(model_dir)


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
    trm_solve_graph: bool = False,
    trm_int8_fp32_token_mixer: bool = True,
    meta_attention_fusions: bool = True,
    crsm_prefill_length: int = 32,
    int8_blockwise: Optional[Mapping[str, int]] = None,
    parity_samples: int = 8,
    seed: int = 0,
    progress: bool = True,
    fp32_dir: Optional[PathLike] = None,
) -> dict:
    """Exports a saved hf-reason model (folder or model instance) to ONNX Runtime.

    Writes into `out_dir`: the ONNX graph(s) (`model.onnx`, plus family-specific ones), the
    config, the tokenizer when the model folder has one, and `export_report.json` with file sizes
    and the parity numbers against PyTorch. Returns the report.

    Args:
        precision: `"fp32"`, `"int8"` (dynamic, weights per channel) or `"int4"` (weight-only MatMulNBits).
        task: the family's task (default: its first); `hf-reason export --help` lists them.
        per_channel: INT8 scale per output channel (else per tensor).
        trm_int8_fp32_token_mixer: TRM with the MLP mixer only: INT8 keeps the token-mixing matmuls in
            FP32 (measured: much closer agreement with PyTorch for a few percent of the weights).
        block_size, accuracy_level, quantize_gather: INT4 options (see `quantize_int4`).
        optimization_level: ONNX Runtime graph optimisations used for the parity check and recorded
            for the wrappers (`"disable"`, `"basic"`, `"extended"`, `"all"`).
        trm_solve_graph: TRM only: also export the whole fixed-step solve as `solve.onnx`.
        meta_attention_fusions: meta-attention only: fuse the FP32 graph with onnxruntime.transformers'
            GPT-2 fusions (SkipLayerNormalization, FastGelu, shape subgraphs) before quantizing; exact
            within float rounding and measured ~10% faster decoding at GPT-2-small shape (docs/onnx.md).
        crsm_prefill_length: CRSM only: chunk length of `prefill.onnx`; a prompt runs through it
            chunk after chunk, left-padded to a whole number of chunks.
        int8_blockwise: INT8: `{node-name substring: block size}` of the matmuls that become 8-bit
            `MatMulNBits` (weights and activations quantized per block of input channels) instead
            of dynamic INT8, e.g. `{"mixer/in_proj": 16, "mixer/x_proj": 16, "mixer/out_proj": 16,
            "lm_head": 16}` (CRSM's most accurate, slower setting). Default: the family's
            (`CRSM_INT8_BLOCKWISE`; none for TRM and meta-attention). `{}`: all dynamic INT8.
        parity_samples: examples in the parity check.
        fp32_dir: a folder written by an earlier `precision="fp32"` export of this same model (same
            graph options): INT8 / INT4 quantize its graphs instead of tracing the model again.
            Only the family and graph options are checked, not the weights.
    """
    from .ort import OPTIMIZATION_LEVELS

    check_precision(precision)
    if precision == "int4":
        check_int4_options(block_size, accuracy_level)
    if int8_blockwise is not None:
        int8_blockwise = blockwise_8bit_blocks(int8_blockwise, "int8_blockwise")  # checked before tracing
    if optimization_level not in OPTIMIZATION_LEVELS:
        raise ValueError(
            f"`optimization_level` must be one of {', '.join(repr(o) for o in OPTIMIZATION_LEVELS)}; "
            f"got {optimization_level!r}."
        )
    if isinstance(model_or_dir, torch.nn.Module):
        model, model_dir = model_or_dir, None
    else:
        model_dir = Path(model_or_dir)
        model = _load_model(model_dir)
    family = model.config.model_type
    if family not in EXPORTERS:
        raise ValueError(f"No ONNX exporter for model type {family!r}; supported: {', '.join(sorted(EXPORTERS))}.")
    task = task or TASKS[family][0]
    if task not in TASKS[family]:
        raise ValueError(
            f"`task` for model type {family!r} must be one of "
            f"{', '.join(repr(t) for t in TASKS[family])}; got {task!r}."
        )
    kwargs = {}
    if family == "trm":
        kwargs = {"solve_graph": trm_solve_graph}
    elif family == "crsm":
        kwargs = {"prefill_length": crsm_prefill_length}
    elif family == "meta_attention":
        kwargs = {"fusions": meta_attention_fusions}
    if fp32_dir is not None:
        from .configs import DEFAULT_OPSET

        expected = {"opset": opset or DEFAULT_OPSET}
        if family == "trm":
            expected["solve_graph"] = (
                {"max_steps": model.config.halt_max_steps, "use_halting": True} if trm_solve_graph else None
            )
        elif family == "crsm":
            expected["prefill_length"] = crsm_prefill_length
        elif family == "meta_attention":
            expected["fusions"] = meta_attention_fusions
        kwargs["fp32_dir"] = _check_fp32_dir(fp32_dir, family, expected)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    try:
        report = EXPORTERS[family](
            model,
            staging,
            precision=precision,
            task=task,
            opset=opset,
            quantization={
                "per_channel": per_channel,
                "block_size": block_size,
                "accuracy_level": accuracy_level,
                "quantize_gather": quantize_gather,
                "trm_int8_fp32_token_mixer": trm_int8_fp32_token_mixer,
                **({} if int8_blockwise is None else {"int8_blockwise": int8_blockwise}),
            },
            parity_samples=parity_samples,
            seed=seed,
            optimization_level=optimization_level,
            progress=progress,
            **kwargs,
        )
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


__all__ = ["EXPORTERS", "PRECISIONS", "TASKS", "export_pretrained", "export_trm"]
