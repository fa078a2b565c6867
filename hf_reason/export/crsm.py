# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""CRSM graphs for ONNX export: the prompt prefill and the single-token step, with the recurrent
states as plain tensors.

transformers' `MambaCache` cannot cross a graph boundary (and Mamba's fixed-size states do not fit
Optimum's KV-cache classes), so the per-layer conv / SSM states are stacked into two tensors,
`conv_states (batch, layers, intermediate, conv_kernel)` and `ssm_states (batch, layers,
intermediate, state_size)`, rebuilt into a `CRSMCache` inside the traced forward. Both graphs also
return the state summary and the value head's estimate, which deliberation reads at every node.
"""

import torch
from torch import nn

from ..models.crsm import CRSMCache, CRSMForCausalLM


def _outputs(model: CRSMForCausalLM, logits: torch.Tensor, cache: CRSMCache) -> dict:
    summary, _ = model.summarize(cache)
    return {
        "logits": logits,
        "conv_states_out": torch.stack(cache.conv_states, dim=1),
        "ssm_states_out": torch.stack(cache.ssm_states, dim=1),
        "state_summary": summary,
        "value": model.predict_value(summary),
    }


class CRSMPrefillForExport(nn.Module):
    """Runs a left-padded prompt from empty states (Mamba's prefill path); returns logits and states.

    The graph has a fixed prompt length: Mamba's CPU selective scan is a Python loop over the
    sequence, which the tracer unrolls. Left padding with `attention_mask = 0` is exact here: the
    mixer zeroes the padded inputs before the convolution and the scan, so states that start at
    zero stay zero until the first real token.
    """

    def __init__(self, model: CRSMForCausalLM):
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, input_ids: torch.LongTensor, attention_mask: torch.LongTensor) -> dict:
        cache = self.model.backbone.new_cache(input_ids.shape[0])
        position = torch.arange(self.config.conv_kernel, device=input_ids.device)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, cache_params=cache,
                         cache_position=position, use_cache=True)
        return _outputs(self.model, out.logits, out.cache_params)


class CRSMStepForExport(nn.Module):
    """Feeds one token per row from explicit states (Mamba's single-token path)."""

    def __init__(self, model: CRSMForCausalLM):
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, input_ids: torch.LongTensor, conv_states: torch.Tensor, ssm_states: torch.Tensor) -> dict:
        cache = self.model.backbone.new_cache(input_ids.shape[0])
        cache.conv_states = list(conv_states.unbind(1))
        cache.ssm_states = list(ssm_states.unbind(1))
        # Any position >= conv_kernel - 1 selects the same (last) conv slot; only its shape matters
        # to the mixer's branch (one position: the single-token path).
        position = torch.full((1,), self.config.conv_kernel, dtype=torch.long, device=input_ids.device)
        out = self.model(input_ids=input_ids, cache_params=cache, cache_position=position, use_cache=True)
        return _outputs(self.model, out.logits, out.cache_params)




class CRSMHeadsForExport(nn.Module):
    """The small modules deliberation calls between backbone steps, as separate graphs.

    `part` selects one: `"summarize"` (stacked SSM states -> summary, layer weights), `"value"`
    (summary -> value), `"dynamics"` (summary, token -> next summary) or `"state_delta"`
    (summary -> per-layer SSM correction).
    """

    PARTS = ("summarize", "value", "dynamics", "state_delta")

    def __init__(self, model: CRSMForCausalLM, part: str):
        super().__init__()
        if part not in self.PARTS:
            raise ValueError(f"`part` must be one of {self.PARTS}; got {part!r}.")
        self.model = model
        self.part = part

    def forward(self, *inputs):
        if self.part == "summarize":
            return self.model.summarize(inputs[0])
        if self.part == "value":
            return self.model.predict_value(inputs[0])
        if self.part == "dynamics":
            return self.model.predict_next_summary(inputs[0], inputs[1])
        return self.model.state_delta(inputs[0])


def export_crsm_head(model: CRSMForCausalLM, part: str, path, opset: int) -> None:
    """Writes the FP32 graph of one head (`CRSMHeadsForExport.PARTS`) to `path`. Plain
    `torch.onnx.export`: each is a small tensor function of a submodule, with nothing for Optimum's
    model patching to do."""
    config = model.config
    ssm = torch.zeros(2, config.num_hidden_layers, config.intermediate_size, config.state_size)
    summary = torch.zeros(2, config.summary_size)
    specs = {
        "summarize": ((ssm,), ["ssm_states"], ["state_summary", "layer_weights"]),
        "value": ((summary,), ["state_summary"], ["value"]),
        "dynamics": ((summary, torch.zeros(2, dtype=torch.long)), ["state_summary", "tokens"], ["next_summary"]),
        "state_delta": ((summary,), ["state_summary"], ["correction"]),
    }
    if part not in specs:
        raise ValueError(f"`part` must be one of {tuple(specs)}; got {part!r}.")
    args, inputs, outputs = specs[part]
    batch = {0: "batch_size"}
    with torch.no_grad():
        torch.onnx.export(CRSMHeadsForExport(model, part).eval(), args, str(path), input_names=inputs,
                          output_names=outputs, dynamic_axes={name: batch for name in inputs + outputs},
                          opset_version=opset, dynamo=False)


def export_crsm_heads(model: CRSMForCausalLM, out_dir, opset: int) -> list:
    """Writes `summarize.onnx`, `value.onnx`, `dynamics.onnx`, `state_delta.onnx` (FP32) into
    `out_dir`; returns their names. (`export_pretrained` writes them at the export's precision.)"""
    from pathlib import Path

    written = []
    for part in CRSMHeadsForExport.PARTS:
        export_crsm_head(model, part, Path(out_dir) / f"{part}.onnx", opset)
        written.append(f"{part}.onnx")
    return written


__all__ = ["CRSMHeadsForExport", "CRSMPrefillForExport", "CRSMStepForExport", "export_crsm_head", "export_crsm_heads"]
