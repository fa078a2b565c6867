# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Per-token log-probabilities of completions that share their prompts, for recurrent Mamba layers (CRSM).

A Mamba layer reads the past through two tensors only: the SSM state after the last token and the
last `conv_kernel - 1` inputs of its causal convolution. `shared_state_logps` runs each distinct
prompt once (all but its last token), keeps both tensors of every layer (with gradients), then runs
the last prompt token and the completion of every row from its prompt's tensors (an index of the
one tensor per layer, so the G rows' gradients add up on the one prompt forward).

transformers' `MambaMixer` continues a cached state one token at a time only (a multi-token chunk
from a cache restarts the convolution from zeros), so the mixers run `_mixer_forward` here: the
arithmetic of `MambaMixer.slow_forward` with the mixer's own modules (PEFT adapters apply), from a
given state. With the sequential scan (the mixer's path on CPU and without the CUDA kernels) the
continued scan performs the full scan's operations in the same order, so log-probabilities and
gradients are the full forward's up to floating-point reassociation in the matrix products. A
model trained with `use_mambapy` runs a parallel scan in stock training; the sequential scan here
differs from it by reassociation only. Where the mixer would run mamba_ssm's CUDA kernels, the
fused selective scan takes no initial state, so a completion cannot continue from a shared state
inside it: `recurrent_state_blocker` reports that and the trainer runs stock.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn
from transformers.models.mamba import modeling_mamba
from transformers.models.mamba.modeling_mamba import MambaMixer


__all__ = ["recurrent_state_blocker", "shared_state_logps", "uses_mamba_mixers"]


def uses_mamba_mixers(model) -> bool:
    """Whether `model`'s sequence mixing is transformers' Mamba mixers (CRSM, Mamba)."""
    return any(isinstance(module, MambaMixer) for module in model.modules())


def _cuda_kernels_available() -> bool:
    causal_conv1d_update, causal_conv1d_fn = modeling_mamba._lazy_load_causal_conv1d()
    kernels = (
        modeling_mamba.selective_state_update,
        modeling_mamba.selective_scan_fn,
        causal_conv1d_fn,
        causal_conv1d_update,
        modeling_mamba.mamba_inner_fn,
    )
    return all(kernel is not None for kernel in kernels)


def recurrent_state_blocker(model) -> str | None:
    """Why `shared_state_logps` cannot give this Mamba-mixer model's full-forward log-probabilities (`None` if it can).

    Args:
        model: the causal LM, unwrapped from PEFT / DDP.
    """
    mixers = [module for module in model.modules() if isinstance(module, MambaMixer)]
    if any(mixer.x_proj.weight.device.type == "cuda" for mixer in mixers) and _cuda_kernels_available():
        return (
            "Mamba layers on mamba_ssm's CUDA kernels: the fused selective scan takes no initial state, so a "
            "completion cannot continue from the shared prompt state inside it"
        )
    return None


def _mixer_forward(mixer: MambaMixer, input_states, attention_mask, conv_inputs=None, ssm_state=None):
    """`MambaMixer.slow_forward`'s computation continued from a state.

    Args:
        mixer: the layer's `MambaMixer` (its modules and parameters are used as they are).
        input_states (`(batch, seq_len, hidden)`): the normalized layer input.
        attention_mask (`(batch, seq_len)` or `None`): zeros the convolution input and output at padding.
        conv_inputs (`(batch, intermediate, conv_kernel - 1)` or `None`): the convolution inputs before this
            chunk (`None`: zeros, a sequence start).
        ssm_state (`(batch, intermediate, state_size)` or `None`): the SSM state before this chunk (`None`: zeros).

    Returns:
        The mixer output `(batch, seq_len, hidden)`, the last `conv_kernel - 1` convolution inputs and the SSM
        state after the chunk.
    """
    batch_size, seq_len, _ = input_states.shape
    dtype = input_states.dtype
    hidden_states, gate = mixer.in_proj(input_states).transpose(1, 2).chunk(2, dim=1)
    if attention_mask is not None:
        hidden_states = hidden_states * attention_mask.unsqueeze(1)

    history = mixer.conv_kernel_size - 1
    if conv_inputs is None:
        conv_inputs = hidden_states.new_zeros(batch_size, hidden_states.size(1), history)
    inputs = torch.cat([conv_inputs, hidden_states], dim=-1)
    # the module pads `history` zeros on each side: output `history + t` reads inputs `t .. t + history`
    hidden_states = mixer.act(mixer.conv1d(inputs)[..., history : history + seq_len])
    next_conv_inputs = inputs[..., inputs.size(-1) - history :]
    if attention_mask is not None:
        hidden_states = hidden_states * attention_mask.unsqueeze(1)

    ssm_parameters = mixer.x_proj(hidden_states.transpose(1, 2))
    time_step, B, C = torch.split(
        ssm_parameters, [mixer.time_step_rank, mixer.ssm_state_size, mixer.ssm_state_size], dim=-1
    )
    discrete_time_step = nn.functional.softplus(mixer.dt_proj(time_step)).transpose(1, 2)
    A = -torch.exp(mixer.A_log.float())
    discrete_A = torch.exp(A[None, :, None, :] * discrete_time_step[:, :, :, None])
    discrete_B = discrete_time_step[:, :, :, None] * B[:, None, :, :].float()
    deltaB_u = discrete_B * hidden_states[:, :, :, None].float()

    if ssm_state is None:
        ssm_state = torch.zeros(
            (batch_size, mixer.intermediate_size, mixer.ssm_state_size), device=hidden_states.device, dtype=dtype
        )
    scan_outputs = []
    for i in range(seq_len):
        ssm_state = discrete_A[:, :, i, :] * ssm_state + deltaB_u[:, :, i, :]
        scan_outputs.append(torch.matmul(ssm_state.to(dtype), C[:, i, :].unsqueeze(-1))[:, :, 0])
    scan_output = torch.stack(scan_outputs, dim=-1)
    scan_output = scan_output + (hidden_states * mixer.D[None, :, None])
    scan_output = scan_output * mixer.act(gate)
    return mixer.out_proj(scan_output.transpose(1, 2)), next_conv_inputs, ssm_state


@contextmanager
def _layers_from_states(lm, states: list, rows: torch.Tensor | None):
    """Runs every Mamba layer's mixer through `_mixer_forward`.

    Without `rows` (the prompt forward), each mixer starts from zeros and records its final state in `states` (a
    recomputation under gradient checkpointing records it again). With `rows`, each starts from `states` indexed
    by `rows`, inside the mixer, so under checkpointing the per-row copy is recomputed rather than kept.

    The mixer is swapped inside its layer's `forward` (the module that holds it and that gradient checkpointing
    wraps): a recomputation in the backward, after this context has exited, runs the same computation.
    """
    layers = [m for m in lm.modules() if isinstance(getattr(m, "mixer", None), MambaMixer)]
    if len(layers) != len(states):
        raise RuntimeError(f"{type(lm).__name__} holds Mamba mixers outside layers with a `mixer` attribute")

    def mixer_forward(index, mixer):
        def run(hidden_states, cache_params=None, cache_position=None, attention_mask=None):
            if rows is None:
                out, conv_inputs, ssm_state = _mixer_forward(mixer, hidden_states, attention_mask)
                states[index] = (conv_inputs, ssm_state)
                return out
            conv_inputs, ssm_state = states[index]
            out, _, _ = _mixer_forward(
                mixer,
                hidden_states,
                attention_mask,
                conv_inputs.index_select(0, rows),
                ssm_state.index_select(0, rows),
            )
            return out

        return run

    def layer_forward(layer, forward, run):
        def forward_from_state(*args, **kwargs):
            with _instance_forward(layer.mixer, run):
                return forward(*args, **kwargs)

        return forward_from_state

    saved = [layer.__dict__.get("forward") for layer in layers]
    for index, layer in enumerate(layers):
        layer.forward = layer_forward(layer, layer.forward, mixer_forward(index, layer.mixer))
    try:
        yield
    finally:
        for layer, forward in zip(layers, saved):
            _restore_forward(layer, forward)


@contextmanager
def _instance_forward(module: nn.Module, forward):
    saved = module.__dict__.get("forward")
    module.forward = forward
    try:
        yield
    finally:
        _restore_forward(module, saved)


def _restore_forward(module: nn.Module, forward) -> None:
    """Puts back the instance-level `forward` a module had (none: the class's)."""
    if forward is None:
        del module.forward
    else:
        module.forward = forward


def shared_state_logps(
    model,
    lm,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    logits_to_keep: int,
    groups: tuple[torch.Tensor, torch.Tensor],
    compute_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probabilities (and entropies) of the completions, each distinct prompt's states computed once.

    Arguments and returns as in `shared_prefix.shared_prefix_logps`, which calls this, inside its autocast, for a
    model with transformers' Mamba mixers (`groups`: `group_prompt_rows` of the prompt block).
    """
    from .shared_prefix import checkpointing_with_cache  # one checkpointing mechanism for both kinds of state

    prefix = input_ids.size(1) - logits_to_keep - 1  # the last prompt token runs with its completion
    first, inverse = groups
    states = [None] * sum(isinstance(module, MambaMixer) for module in lm.modules())
    # the layers are swapped first, so that checkpointing wraps (and its recomputation runs) the swapped layers
    with _layers_from_states(lm, states, rows=None), checkpointing_with_cache(lm):
        lm.base_model(
            input_ids=input_ids[first, :prefix], attention_mask=attention_mask[first, :prefix], use_cache=False
        )
    if any(state is None for state in states):
        raise RuntimeError(f"{type(lm).__name__}'s prompt forward did not run all of its Mamba mixers")
    labels = input_ids[:, prefix:].masked_fill(attention_mask[:, prefix:] == 0, -100)
    labels[:, 0] = -100
    with _layers_from_states(lm, states, rows=inverse), checkpointing_with_cache(lm):
        outputs = model(
            input_ids=input_ids[:, prefix:],
            attention_mask=attention_mask[:, prefix:],
            labels=labels,
            fused_lm_head=True,
        )
    return outputs.log_probs, (outputs.entropy if compute_entropy else None)
