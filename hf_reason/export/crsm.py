# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""CRSM export: its graphs, options, quantization defaults, parity check and registry entry.

The graphs are the prompt prefill and the single-token step, with the recurrent states as plain
tensors, and the small heads deliberation calls between steps. transformers' `MambaCache` cannot
cross a graph boundary (and Mamba's fixed-size states do not fit Optimum's KV-cache classes), so the
per-layer conv / SSM states are stacked into two tensors, `conv_states (batch, layers, intermediate,
conv_kernel)` and `ssm_states (batch, layers, intermediate, state_size)`, that `mixer_chunk_forward`
reads and returns. Both backbone graphs return the logits and the states only: the state summary
and the value head's estimate come from the separate `summarize` / `value` graphs when asked for,
as the PyTorch forward computes them only with `return_value=True` (a plain decode never reads them;
docs/onnx.md, "CRSM graphs").
"""

from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar, Optional

import torch
from torch import nn
from transformers import AutoModelForCausalLM

from ..models.crsm import CRSMForCausalLM
from .configs import onnx_config
from .ort_crsm import ORTCRSMForCausalLM
from .pipeline import (
    ExportOptions,
    ExportRequest,
    FamilyExporter,
    build_export,
    check_positive_int,
    decoding_parity,
    optimum_trace,
    register_family,
)


def mixer_chunk_forward(
    mixer,
    hidden_states: torch.Tensor,
    conv_state: torch.Tensor,
    ssm_state: torch.Tensor,
    attention_mask: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`MambaMixer.slow_forward` for a chunk of tokens that continues from saved states.

    transformers' prefill path convolves a chunk as if nothing came before it (the conv state is
    overwritten, not read), so a chunk is only exact from empty states; the single-token path reads
    both states but takes one token. Written here (`slow_forward`'s arithmetic; the read-out by `C`
    runs after the scan loop instead of inside it) so the prefill graph can run a prompt of any
    length in fixed-size chunks: the chunk is convolved after the last `conv_kernel - 1` inputs kept
    in `conv_state`, and the scan starts from `ssm_state`. The states are one layer's slices of the
    stacked graph inputs, `(batch, 1, intermediate, conv_kernel)` and `(batch, 1, intermediate,
    state)`, as in `mixer_step_forward`; returns the mixer output and the two new states, alike.
    """
    seq_len = hidden_states.shape[1]
    intermediate = mixer.intermediate_size
    hidden_states, gate = mixer.in_proj(hidden_states).split([intermediate, intermediate], dim=-1)
    mask = None if attention_mask is None else attention_mask.unsqueeze(1).to(hidden_states.dtype)
    hidden_states = hidden_states.transpose(1, 2)  # (batch, intermediate, seq_len) for the convolution
    if mask is not None:
        hidden_states = hidden_states * mask
    extended = torch.cat([conv_state[:, 0, :, 1:], hidden_states], dim=-1)  # (batch, intermediate, k - 1 + seq_len)
    new_conv_state = extended[:, None, :, -mixer.conv_kernel_size :]
    hidden_states = nn.functional.conv1d(extended, mixer.conv1d.weight, mixer.conv1d.bias, groups=intermediate)
    hidden_states = mixer.act(hidden_states)
    if mask is not None:
        hidden_states = hidden_states * mask

    # The scan runs time-major, (batch, seq_len, intermediate, state): each token's slice is contiguous
    # (the per-token Split / Concat are plain copies), and the broadcasts are matmuls or over leading
    # axes, as in `mixer_step_forward` (below).
    hidden_states = hidden_states.transpose(1, 2)  # (batch, seq_len, intermediate)
    time_step, B, C = torch.split(
        mixer.x_proj(hidden_states), [mixer.time_step_rank, mixer.ssm_state_size, mixer.ssm_state_size], dim=-1
    )
    discrete_time_step = _softplus(mixer.dt_proj(time_step))  # (batch, seq_len, intermediate)
    discrete_A, deltaB_u = _discretize(mixer, discrete_time_step, hidden_states, B)
    # Unrolled by the tracer (the graph's chunk length is fixed): two nodes per token and layer, with
    # the read-out by C once after the loop. `ssm_state` (batch, 1, intermediate, state) is one token's slice.
    states = []
    for i in range(seq_len):
        ssm_state = discrete_A[:, i : i + 1] * ssm_state + deltaB_u[:, i : i + 1]
        states.append(ssm_state)
    scan_output = (torch.cat(states, dim=1) @ C[..., None]).squeeze(-1)  # (batch, seq_len, intermediate)
    scan_output = scan_output + hidden_states * mixer.D
    scan_output = scan_output * mixer.act(gate)
    return mixer.out_proj(scan_output), new_conv_state, ssm_state


def _discretize(mixer, discrete_time_step: torch.Tensor, hidden_states: torch.Tensor, B: torch.Tensor):
    """Zero-order-hold `exp(A * dt)` and `dt * x * B`, `(..., intermediate, state)`, with matmuls in place
    of the broadcasts along the last axis, which ONNX Runtime's CPU kernels run far slower than a
    same-shape multiply (the outer products have an inner dimension of 1; docs/onnx.md, "Slow CPU
    kernels, not node count")."""
    A = -torch.exp(mixer.A_log.float())
    ones = torch.ones(1, mixer.ssm_state_size, dtype=A.dtype)
    discrete_A = torch.exp((discrete_time_step[..., None] @ ones) * A)
    deltaB_u = (discrete_time_step * hidden_states)[..., None] @ B[..., None, :]
    return discrete_A, deltaB_u


def mixer_step_forward(
    mixer, hidden_states: torch.Tensor, conv_state: torch.Tensor, ssm_state: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`mixer_chunk_forward` for one token per row: Mamba's single-token path (its convolution as a
    weighted sum over the conv state). The token axis of `hidden_states (batch, 1, hidden)` doubles
    as the layer axis of the states, `conv_state (batch, 1, intermediate, conv_kernel)` and
    `ssm_state (batch, 1, intermediate, state)` (slices of the stacked graph inputs): nothing is
    squeezed or unsqueezed around the mixer, and `in_proj` is split at a constant size, not by a
    traced `chunk` (Shape / Div / Slice per layer)."""
    intermediate = mixer.intermediate_size
    hidden_states, gate = mixer.in_proj(hidden_states).split(
        [intermediate, intermediate], dim=-1
    )  # (batch, 1, intermediate)
    conv_state = torch.cat([conv_state[..., 1:], hidden_states.unsqueeze(-1)], dim=-1)
    hidden_states = (conv_state * mixer.conv1d.weight[:, 0, :]).sum(-1)
    if mixer.use_conv_bias:
        hidden_states = hidden_states + mixer.conv1d.bias
    hidden_states = mixer.act(hidden_states)
    time_step, B, C = torch.split(
        mixer.x_proj(hidden_states), [mixer.time_step_rank, mixer.ssm_state_size, mixer.ssm_state_size], dim=-1
    )
    discrete_time_step = _softplus(mixer.dt_proj(time_step))  # (batch, 1, intermediate)
    discrete_A, deltaB_u = _discretize(mixer, discrete_time_step, hidden_states, B)  # (batch, 1, intermediate, state)
    ssm_state = discrete_A * ssm_state + deltaB_u
    scan_output = (ssm_state @ C[..., None]).squeeze(-1) + hidden_states * mixer.D
    scan_output = scan_output * mixer.act(gate)
    return mixer.out_proj(scan_output), conv_state, ssm_state


def _softplus(x: torch.Tensor) -> torch.Tensor:
    # ONNX Runtime's CPU Softplus is scalar, where Exp and Log are vectorized (docs/onnx.md, "Slow CPU
    # kernels, not node count").
    return torch.where(x > 20, x, torch.log1p(torch.exp(x)))  # torch's softplus threshold (20)


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

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor,
        conv_states: torch.Tensor,
        ssm_states: torch.Tensor,
    ) -> dict:
        return _run_chunk(self.model, input_ids, conv_states, ssm_states, attention_mask)


class _ChunkStates:
    """Per-layer states that the chunk mixers read and replace, passed as `cache_params` (stands in
    for the `CRSMCache` the traced forward cannot take)."""

    def __init__(self, conv_states: torch.Tensor, ssm_states: torch.Tensor):
        # (batch, 1, ...) slices of the layer axis: one `Split` node per tensor in the graph.
        self.conv_states = list(conv_states.split(1, dim=1))
        self.ssm_states = list(ssm_states.split(1, dim=1))


def _chunk_mixer_forward(
    mixer, hidden_states, cache_params=None, cache_position=None, attention_mask=None, *, step: bool = False
):
    index = mixer.layer_idx
    states = (cache_params.conv_states[index], cache_params.ssm_states[index])
    if step:  # the step graph (one token, no mask); chosen in Python, not from a traced shape
        out, *states = mixer_step_forward(mixer, hidden_states, *states)
    else:
        out, *states = mixer_chunk_forward(mixer, hidden_states, *states, attention_mask)
    cache_params.conv_states[index], cache_params.ssm_states[index] = states
    return out


def _run_chunk(
    model: CRSMForCausalLM,
    input_ids: torch.LongTensor,
    conv_states: torch.Tensor,
    ssm_states: torch.Tensor,
    attention_mask: Optional[torch.Tensor],
) -> dict:
    """The model's own forward (embeddings, `MambaBlock`s, final norm, LM head at the last position)
    with each mixer running `mixer_chunk_forward` on the given states; the mixers are swapped only for
    this call, so the traced node names stay the model's (`/model/backbone/layers.0/mixer/out_proj/...`),
    which the quantization options match on."""
    mixers = [block.mixer for block in model.backbone.layers]
    states = _ChunkStates(conv_states, ssm_states)
    for mixer in mixers:
        mixer.forward = partial(_chunk_mixer_forward, mixer, step=attention_mask is None)
    try:
        # Any `cache_position`: the chunk mixers do not read it.
        out = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            cache_params=states,
            use_cache=True,
            cache_position=torch.zeros(1, dtype=torch.long),
            logits_to_keep=1,
        )
    finally:
        for mixer in mixers:
            del mixer.forward  # back to the class's forward
    return {
        "logits": out.logits,
        "conv_states_out": torch.cat(states.conv_states, dim=1),
        "ssm_states_out": torch.cat(states.ssm_states, dim=1),
    }


class CRSMStepForExport(nn.Module):
    """Feeds one token per row from explicit states (Mamba's single-token path)."""

    def __init__(self, model: CRSMForCausalLM):
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, input_ids: torch.LongTensor, conv_states: torch.Tensor, ssm_states: torch.Tensor) -> dict:
        # A one-token chunk: the same arithmetic as Mamba's single-token path, traced without its
        # in-place cache updates (roll, index assignment), which add many nodes per step
        # (docs/onnx.md, "CRSM graphs").
        return _run_chunk(self.model, input_ids, conv_states, ssm_states, None)


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
        torch.onnx.export(
            CRSMHeadsForExport(model, part).eval(),
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dict.fromkeys(inputs + outputs, batch),
            opset_version=opset,
            dynamo=False,
        )


# CRSM matmuls left FP32 at INT8 / INT4, by node-name substring, in every graph (the step and
# prefill graphs compute the value too, and the same weights must stay byte-identical across
# graphs to be stored once). The value head is two small matmuls whose scalar output MCTS compares
# across children, where quantization error shows most (docs/onnx.md, "Quantization").
CRSM_KEEP_FP32 = ("value_head",)
# INT8: the mixers' in_proj, x_proj, out_proj and the LM head are 8-bit MatMulNBits, which
# quantizes weights and activations per block of input channels; dynamic INT8 has one activation
# scale per tensor, and a few outlier channels stretch it (most of all in the gated SSM output that
# out_proj reads). out_proj and x_proj (the SSM output and the convolved input) keep blocks of 16;
# in_proj (reads the normalized residual stream) and the LM head (the final norm's output), most of
# the blockwise weights, take blocks of 128 (fewer activation scales: faster, for the same
# agreement). dt_proj (input: time_step_rank channels) stays FP32 at INT8: small, no slower, and
# blockwise it lost agreement. The measurements: docs/onnx.md, "CRSM INT8: a block size per matmul";
# `int8_blockwise=` chooses another set.
CRSM_INT8_BLOCKWISE = {"mixer/in_proj": 128, "mixer/x_proj": 16, "mixer/out_proj": 16, "lm_head": 128}
CRSM_INT8_KEEP_FP32 = CRSM_KEEP_FP32 + ("mixer/dt_proj",)


@dataclass
class CRSMExportOptions(ExportOptions):
    """
    CRSM's export options (`export_pretrained(..., options=CRSMExportOptions(...))`).

    Args:
        prefill_length (`int`, defaults to 32):
            Chunk length of `prefill.onnx` (`--crsm-prefill-length`); a prompt runs through it chunk
            after chunk, left-padded to a whole number of chunks.
        int8_blockwise (`Mapping[str, int]`, *optional*):
            As in `ExportOptions`; CRSM's default (`None`) is `CRSM_INT8_BLOCKWISE`, e.g.
            `{"mixer/in_proj": 16, "mixer/x_proj": 16, "mixer/out_proj": 16, "lm_head": 16}` is the
            most accurate, slower setting.
    """

    keyword_fields: ClassVar[dict] = {**ExportOptions.keyword_fields, "crsm_prefill_length": "prefill_length"}

    prefill_length: int = field(
        default=32,
        metadata={"help": "Chunk length of prefill.onnx, an integer >= 1; longer prompts run chunk after chunk."},
    )

    def __post_init__(self):
        super().__post_init__()
        check_positive_int(self.prefill_length, "prefill_length")

    def graph_fields(self, config) -> dict:
        return {"prefill_length": self.prefill_length}

    def quantization(self, config) -> dict:
        return {
            "int8_keep_fp32": CRSM_INT8_KEEP_FP32,
            "int4_keep_fp32": CRSM_KEEP_FP32,
            "int8_blockwise": CRSM_INT8_BLOCKWISE if self.int8_blockwise is None else self.int8_blockwise,
        }


def _crsm_head_quantization(precision: str) -> dict:
    """Quantization options of the deliberation head graphs that differ from the backbone's."""
    if precision == "int8":
        # The latent dynamics' token embedding is a vocabulary-sized table (as large as the LM's
        # own embedding): stored UINT8 too, at a small error in the predicted summary. The
        # backbone's embedding stays FP32 (docs/onnx.md, "Quantization").
        return {"dynamics.onnx": {"int8_quantize_gather": True}}
    return {}


def crsm_parity(model, ort_model, num_samples: int, seed: int, fp32: bool, decode_steps: int = 8) -> dict:
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
    result = decoding_parity(num_samples, decode_steps, top1, greedy_pt, greedy_ort)
    if fp32:
        result["max_abs_diff"] = diffs
    return result


def export_crsm(model, request: ExportRequest, options: CRSMExportOptions) -> dict:
    """Exports a `CRSMForCausalLM` (the family's step of `export_pretrained`): `model.onnx`
    (single-token step, states in / out), `prefill.onnx` (chunks of `options.prefill_length` tokens,
    states in / out: prompts of any length) and the deliberation heads' graphs."""
    graphs = {
        "model.onnx": optimum_trace(
            CRSMStepForExport(model), onnx_config("crsm", "text-generation", model.config), request.opset
        ),
        "prefill.onnx": optimum_trace(
            CRSMPrefillForExport(model),
            onnx_config("crsm_prefill", "text-generation", model.config),
            request.opset,
            {"sequence_length": options.prefill_length},
        ),
    }
    for part in CRSMHeadsForExport.PARTS:
        graphs[f"{part}.onnx"] = partial(export_crsm_head, model, part, opset=request.opset)

    def parity(files) -> dict:
        ort_model = ORTCRSMForCausalLM.from_files(
            request.out_dir, files, request.optimization_level, config=model.config
        )
        return crsm_parity(model, ort_model, request.parity_samples, request.seed, fp32=request.precision == "fp32")

    # The step and prefill graphs hold the same backbone: written together, every weight is stored once.
    per_graph = _crsm_head_quantization(request.precision)
    return build_export(model, request, options, graphs, parity, per_graph=per_graph)


CRSM_EXPORTER = register_family(
    FamilyExporter(
        name="crsm",
        tasks=("text-generation",),
        options_class=CRSMExportOptions,
        export=export_crsm,
        auto_class=AutoModelForCausalLM,
    )
)


__all__ = [
    "CRSM_EXPORTER",
    "CRSM_INT8_BLOCKWISE",
    "CRSM_INT8_KEEP_FP32",
    "CRSM_KEEP_FP32",
    "CRSMExportOptions",
    "CRSMHeadsForExport",
    "CRSMPrefillForExport",
    "CRSMStepForExport",
    "export_crsm",
    "export_crsm_head",
    "mixer_chunk_forward",
    "mixer_step_forward",
]
