# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Meta-attention export: its graph, options, parity check and registry entry.

One graph, `model.onnx`: the decoder with its KV cache (GPT-2's inputs and outputs, traced from the
model itself with `MetaAttentionOnnxConfig`), the meta-attention module inside. By default the FP32
graph goes through onnxruntime.transformers' GPT-2 fusions before it is quantized (`gpt2_fusions`).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from transformers import AutoModelForCausalLM

from .configs import onnx_config
from .ort_meta_attention import ORTMetaAttentionForCausalLM
from .pipeline import (
    ExportOptions,
    ExportRequest,
    FamilyExporter,
    build_export,
    check_bool,
    decoding_parity,
    optimum_trace,
    read_fp32_report,
    register_family,
)


@dataclass
class MetaAttentionExportOptions(ExportOptions):
    """
    Meta-attention's export options (`export_pretrained(..., options=MetaAttentionExportOptions(...))`).

    Args:
        fusions (`bool`, defaults to `True`):
            Fuse the FP32 graph with onnxruntime.transformers' GPT-2 fusions (SkipLayerNormalization,
            FastGelu, shape subgraphs) before quantizing: exact within float rounding, and faster
            decoding (docs/onnx.md, "Meta-attention: graph fusions"). `--no-meta-attention-fusions`
            turns it off.
        int8_blockwise (`Mapping[str, int]`, *optional*):
            As in `ExportOptions`; meta-attention's default is none (every matmul dynamic INT8).
    """

    keyword_fields: ClassVar[dict] = {**ExportOptions.keyword_fields, "meta_attention_fusions": "fusions"}

    fusions: bool = field(
        default=True,
        metadata={"help": "Apply onnxruntime.transformers' GPT-2 fusions to the FP32 graph (True or False)."},
    )

    def __post_init__(self):
        super().__post_init__()
        check_bool(self.fusions, "fusions")

    def graph_fields(self, config) -> dict:
        return {"fusions": self.fusions}


def gpt2_fusions(trace: Callable, config, fused: dict) -> Callable:
    """`trace`, then onnxruntime.transformers' GPT-2 fusions on the FP32 graph (before quantizing).

    What it fuses here: LayerNormalization + residual Add (+ bias) into `SkipLayerNormalization`,
    GPT-2's tanh GELU into `FastGelu`, and shape-computation subgraphs (`Reshape` / `Shape`), which
    ONNX Runtime's own session-level fusions leave alone, so the session runs far fewer nodes per
    decode step (docs/onnx.md, "Meta-attention: graph fusions"). Its attention fusion never matches
    meta-attention's attention (summaries of the attention rows are read out) and is off.
    `opt_level=0`: only these graph rewrites, nothing specific to this machine's CPU, so the file
    stays portable. The counts go into `fused`.
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


def meta_attention_parity(model, ort_model, num_samples: int, seed: int, fp32: bool, decode_steps: int = 8) -> dict:
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
    result = decoding_parity(num_samples, decode_steps, top1, greedy_pt, greedy_ort)
    if fp32:
        result["max_abs_diff_logits"] = max_abs
    return result


def export_meta_attention(model, request: ExportRequest, options: MetaAttentionExportOptions) -> dict:
    """Exports a `MetaAttentionForCausalLM` (the family's step of `export_pretrained`): the decoder
    with KV cache, meta-attention inside, as `model.onnx`."""
    decoder_config = onnx_config("meta_attention", "text-generation-with-past", model.config, use_past_in_inputs=True)
    trace = optimum_trace(model, decoder_config, request.opset)
    fused = {}
    if options.fusions:
        trace = gpt2_fusions(trace, model.config, fused)

    def parity(files) -> dict:
        ort_model = ORTMetaAttentionForCausalLM.from_files(
            request.out_dir, files, request.optimization_level, config=model.config
        )
        fp32 = request.precision == "fp32"
        return meta_attention_parity(model, ort_model, request.parity_samples, request.seed, fp32=fp32)

    report = build_export(model, request, options, {"model.onnx": trace}, parity)
    if options.fusions:
        # Traced now, or by the FP32 export this one quantizes (which recorded what it fused).
        fp32_dir = request.fp32_dir
        report["fused_ops"] = fused if fp32_dir is None else read_fp32_report(fp32_dir)["fused_ops"]
    return report


META_ATTENTION_EXPORTER = register_family(
    FamilyExporter(
        name="meta_attention",
        tasks=("text-generation",),
        options_class=MetaAttentionExportOptions,
        export=export_meta_attention,
        auto_class=AutoModelForCausalLM,
    )
)


__all__ = [
    "META_ATTENTION_EXPORTER",
    "MetaAttentionExportOptions",
    "export_meta_attention",
    "gpt2_fusions",
    "meta_attention_parity",
]
