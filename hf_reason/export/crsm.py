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


def mixer_chunk_forward(mixer, hidden_states: torch.Tensor, conv_state: torch.Tensor, ssm_state: torch.Tensor,
                        attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`MambaMixer.slow_forward` for a chunk of tokens that continues from saved states.

    transformers' prefill path convolves a chunk as if nothing came before it (the conv state is
    overwritten, not read), so a chunk is only exact from empty states; the single-token path reads
    both states but takes one token. Written here (the same operations, in the same order, as
    `slow_forward`) so the prefill graph can run a prompt of any length in fixed-size chunks: the
    chunk is convolved after the last `conv_kernel - 1` inputs kept in `conv_state`, and the scan
    starts from `ssm_state`. Returns the mixer output and the two new states.
    """
    dtype = hidden_states.dtype
    seq_len = hidden_states.shape[1]
    hidden_states, gate = mixer.in_proj(hidden_states).transpose(1, 2).chunk(2, dim=1)
    mask = attention_mask.unsqueeze(1).to(hidden_states.dtype)
    hidden_states = hidden_states * mask
    extended = torch.cat([conv_state[..., 1:], hidden_states], dim=-1)  # (batch, intermediate, k - 1 + seq_len)
    new_conv_state = extended[..., -mixer.conv_kernel_size:]
    hidden_states = nn.functional.conv1d(extended, mixer.conv1d.weight, mixer.conv1d.bias, groups=mixer.intermediate_size)
    hidden_states = mixer.act(hidden_states) * mask

    time_step, B, C = torch.split(mixer.x_proj(hidden_states.transpose(1, 2)),
                                  [mixer.time_step_rank, mixer.ssm_state_size, mixer.ssm_state_size], dim=-1)
    discrete_time_step = nn.functional.softplus(mixer.dt_proj(time_step)).transpose(1, 2)
    A = -torch.exp(mixer.A_log.float())
    discrete_A = torch.exp(A[None, :, None, :] * discrete_time_step[:, :, :, None])
    deltaB_u = discrete_time_step[:, :, :, None] * B[:, None, :, :].float() * hidden_states[:, :, :, None].float()
    scan_outputs = []
    for i in range(seq_len):  # unrolled by the tracer: the graph's chunk length is fixed
        ssm_state = discrete_A[:, :, i, :] * ssm_state + deltaB_u[:, :, i, :]
        scan_outputs.append(torch.matmul(ssm_state.to(dtype), C[:, i, :].unsqueeze(-1))[:, :, 0])
    scan_output = torch.stack(scan_outputs, dim=-1) + hidden_states * mixer.D[None, :, None]
    scan_output = scan_output * mixer.act(gate)
    return mixer.out_proj(scan_output.transpose(1, 2)), new_conv_state, ssm_state


class CRSMPrefillForExport(nn.Module):
    """Runs a chunk of prompt tokens from given states; returns the last position's logits and the
    new states.

    The graph has a fixed chunk length: Mamba's CPU selective scan is a Python loop over the
    sequence, which the tracer unrolls. A longer prompt runs chunk after chunk, each from the states
    the previous one returned (empty states for the first); `ORTCRSMForCausalLM.prefill` left-pads
    the prompt to a whole number of chunks. Left padding with `attention_mask = 0` is exact: the
    mixer zeroes the padded inputs before the convolution and the scan, so states that start at
    zero stay zero until the first real token. Only the last position's logits are computed (the
    LM head is as large as the rest of a 50M CRSM's step).
    """

    def __init__(self, model: CRSMForCausalLM):
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, input_ids: torch.LongTensor, attention_mask: torch.LongTensor, conv_states: torch.Tensor,
                ssm_states: torch.Tensor) -> dict:
        backbone = self.model.backbone
        hidden_states = backbone.embeddings(input_ids)
        cache = backbone.new_cache(input_ids.shape[0])
        for index, block in enumerate(backbone.layers):  # `MambaBlock.forward`, with the chunk mixer
            residual = hidden_states
            hidden_states = block.norm(hidden_states.to(dtype=block.norm.weight.dtype))
            if block.residual_in_fp32:
                residual = residual.to(torch.float32)
            mixed, cache.conv_states[index], cache.ssm_states[index] = mixer_chunk_forward(
                block.mixer, hidden_states, conv_states[:, index], ssm_states[:, index], attention_mask)
            hidden_states = residual + mixed
        hidden_states = backbone.norm_f(hidden_states[:, -1:])
        logits = self.model.lm_head(hidden_states.to(self.model.lm_head.weight.dtype)).float()
        return _outputs(self.model, logits, cache)


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


__all__ = [
    "CRSMHeadsForExport",
    "CRSMPrefillForExport",
    "CRSMStepForExport",
    "export_crsm_head",
    "export_crsm_heads",
    "mixer_chunk_forward",
]
