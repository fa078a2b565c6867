# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Per-token log-probabilities of completions that share their prompts, with each prompt run once.

GRPO scores G completions of every prompt. TRL's loss forward runs `[prompt | completion]` for each
row, so a prompt's hidden states and keys / values are computed G times although they depend on the
prompt alone, and the loss reads completion tokens only. `shared_prefix_logps` runs each distinct
prompt once (all but its last token, into a key / value cache), then runs the last prompt token and
the completion of every row against that cache: the rows' attention reads the shared prompt keys /
values (each row's copy is an index of the one tensor, so the G rows' gradients add up on the one
prompt forward), then the row's own tokens. Positions, the attention mask and the cache positions are
those of the full-row forward, so the log-probabilities and their gradients are the full forward's up
to floating-point reassociation.

Gradient checkpointing: transformers drops the cache inside checkpointed layers
(`GradientCheckpointingLayer` sets `past_key_values=None` in training), which would leave nothing to
share. `checkpointing_with_cache` instead checkpoints the same layers itself, non-reentrant (reentrant
checkpointing passes gradients to explicit inputs only, not to the cached prompt keys / values), with
cache layers whose `update` has no side effect that a recomputation could repeat: a prompt layer
records its keys / values (a recomputation records them again), and a completion layer expands the
prompt's keys / values to the rows inside the layer, so under checkpointing the expanded copy is
recomputed in the backward instead of being kept.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager, nullcontext

import torch
from torch.utils.checkpoint import checkpoint
from transformers import DynamicCache
from transformers.cache_utils import Cache, DynamicLayer
from transformers.modeling_layers import GradientCheckpointingLayer

from .shared_state import recurrent_state_blocker, shared_state_logps, uses_mamba_mixers


__all__ = [
    "checkpointing_with_cache",
    "group_prompt_rows",
    "prefix_sharing_blocker",
    "shared_prefix_logps",
]


def group_prompt_rows(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Which rows hold the same (padded) prompt.

    Args:
        prompt_ids (`torch.Tensor` of shape `(batch, prompt_len)`): left-padded prompt ids.
        prompt_mask (`torch.Tensor` of shape `(batch, prompt_len)`): their attention mask.

    Returns:
        `first` (`(num_unique,)`: one row holding each distinct prompt) and `inverse` (`(batch,)`:
        the index in `first` of each row's prompt). Any pattern of repeats works, singletons included.
    """
    key = torch.cat([prompt_ids, prompt_mask.to(prompt_ids.dtype)], dim=1)
    _, inverse = torch.unique(key, dim=0, return_inverse=True)
    batch = key.size(0)
    rows = torch.arange(batch, device=key.device)
    first = torch.full((int(inverse.max()) + 1,), batch, device=key.device, dtype=rows.dtype)
    first = first.scatter_reduce(0, inverse, rows, reduce="amin")
    return first, inverse


class _PromptLayer(DynamicLayer):
    """A cache layer for the prompt forward that records the keys / values it is given.

    A recomputation under gradient checkpointing records them again instead of appending a second copy.
    """

    def update(self, key_states, value_states, cache_kwargs=None):
        if not self.is_initialized:
            self.lazy_initialization(key_states)
        self.keys, self.values = key_states, value_states
        return key_states, value_states


class _SharedPrefixLayer(DynamicLayer):
    """A cache layer holding the distinct prompts' keys / values `(num_unique, heads, prefix, dim)`.

    `update` returns, for every row, its prompt's keys / values (indexed by `rows`) followed by the
    row's new ones; the layer itself keeps only the distinct prompts, so the update has no side effect
    and the expanded copy lives only as long as the attention that reads it.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, rows: torch.Tensor):
        super().__init__()
        self.lazy_initialization(keys)
        self.keys, self.values, self.rows = keys, values, rows
        self.updated = False

    def update(self, key_states, value_states, cache_kwargs=None):
        self.updated = True
        keys = torch.cat([self.keys.index_select(0, self.rows), key_states], dim=-2)
        values = torch.cat([self.values.index_select(0, self.rows), value_states], dim=-2)
        return keys, values


class _LayerCache(DynamicCache):
    """A `DynamicCache` built from given layers (or growing `_PromptLayer`s when none are given)."""

    def __init__(self, layers: list[DynamicLayer] | None = None):
        if layers is None:
            Cache.__init__(self, layer_class_to_replicate=_PromptLayer)
        else:
            Cache.__init__(self, layers=layers)


def prefix_sharing_blocker(model) -> str | None:
    """Why `shared_prefix_logps` cannot give this model's full-forward log-probabilities exactly (`None` if it can).

    Args:
        model: the causal LM, unwrapped from PEFT / DDP (the module that owns `base_model`).
    """
    config = model.config
    text_config = config.get_text_config(decoder=True)
    if config.is_encoder_decoder:
        return "an encoder-decoder model: its decoder's prompt is not a cacheable prefix"
    if uses_mamba_mixers(model):
        reason = recurrent_state_blocker(model)
        if reason is not None:
            return reason
    else:
        reason = _key_value_blocker(model, text_config)
        if reason is not None:
            return reason
    if getattr(model, "base_model", model) is model:
        return f"{type(model).__name__} has no separate backbone (`base_model`) to run the prompt through"
    if any(isinstance(m, torch.nn.Dropout) and m.training and m.p > 0 for m in model.modules()):
        return (
            "active dropout: the completions of a prompt would share one dropout mask on the prompt, which is not "
            "the full forward's distribution (set `disable_dropout=True`)"
        )
    flagged = [m for m in model.modules() if getattr(m, "gradient_checkpointing", False) is True]
    if flagged and model.training and not any(isinstance(m, GradientCheckpointingLayer) for m in flagged):
        return "gradient checkpointing outside transformers' `GradientCheckpointingLayer`"
    return None


def _key_value_blocker(model, text_config) -> str | None:
    """Why a model without Mamba mixers cannot share its prompt keys / values (`None` if it can)."""
    supports_cache = getattr(model, "_supports_default_dynamic_cache", lambda: False)()
    if not supports_cache:
        return (
            f"{type(model).__name__} does not run on a key / value `DynamicCache` and has no Mamba mixers, so there "
            "is no prompt state to share"
        )
    layer_types = set(getattr(text_config, "layer_types", None) or ["full_attention"])
    windowed = getattr(text_config, "sliding_window", None) or getattr(text_config, "attention_chunk_size", None)
    if layer_types != {"full_attention"} or windowed:
        return "sliding-window or chunked attention layers: only full-attention key / value caches are shared"
    if getattr(text_config, "use_bidirectional_attention", False) or getattr(text_config, "is_causal", True) is False:
        return "bidirectional attention: prompt positions see completion tokens"
    return None


@contextmanager
def checkpointing_with_cache(model):
    """Runs `model`'s gradient-checkpointed layers under a non-reentrant checkpoint that keeps the cache.

    transformers drops `past_key_values` in checkpointed layers during training; inside this context
    the model's own checkpointing is off and each `GradientCheckpointingLayer` that had it on runs
    through `torch.utils.checkpoint` with the same options, except `use_reentrant=False` (reentrant
    checkpointing does not pass gradients to tensors reached through the cache). Only the cache layers
    of this module may be used inside (their updates are free of side effects a recomputation could
    repeat). Without gradients the layers simply run (nothing to checkpoint). Everything is restored on exit.

    Args:
        model: the unwrapped causal LM.
    """
    flagged = [m for m in model.modules() if getattr(m, "gradient_checkpointing", False) is True]
    if not flagged or not model.training:
        yield
        return
    layers = [m for m in flagged if isinstance(m, GradientCheckpointingLayer)] if torch.is_grad_enabled() else []
    saved_forwards = [layer.__dict__.get("forward") for layer in layers]
    for module in flagged:
        module.gradient_checkpointing = False
    for layer in layers:
        options = dict(getattr(layer._gradient_checkpointing_func, "keywords", {}))
        options["use_reentrant"] = False
        layer.forward = _checkpointed(layer.forward, options)
    try:
        yield
    finally:
        for layer, forward in zip(layers, saved_forwards):
            if forward is None:
                del layer.forward
            else:
                layer.forward = forward
        for module in flagged:
            module.gradient_checkpointing = True


def _checkpointed(forward, options: dict):
    def run(*args, **kwargs):
        return checkpoint(functools.partial(forward, **kwargs), *args, **options)

    return run


def shared_prefix_logps(
    model,
    lm,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    logits_to_keep: int,
    compute_entropy: bool = False,
    autocast=None,
    groups: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probabilities (and entropies) of the completions, each distinct prompt run once.

    The same values as `model(input_ids, attention_mask=..., labels=..., fused_lm_head=True)` on the full
    rows (TRL's `_get_per_token_logps_and_entropies`), up to floating-point reassociation.

    Args:
        model: what TRL calls: the policy or reference model with TRL's fused LM head
            (`trl.trainer.utils.add_fused_lm_head`), possibly wrapped in PEFT / DDP. The completion
            forward goes through it (so DDP prepares its gradient reduction as for a stock step).
        lm: the same model unwrapped from PEFT / DDP: the prompt forward runs its `base_model` (the
            backbone; PEFT adapters are injected into its modules and apply).
        input_ids (`torch.Tensor` of shape `(batch, prompt_len + completion_len)`): left-padded prompts
            followed by right-padded completions.
        attention_mask (`torch.Tensor`, same shape): their mask.
        logits_to_keep (`int`): the completion length; the prompt block is the rest (at least 2 columns).
        compute_entropy (`bool`): also return the per-token entropies.
        autocast: a context manager factory for the forwards (e.g. `accelerator.autocast`).
        groups: `group_prompt_rows` of the prompt block, when the caller has it already.

    Returns:
        Log-probabilities `(batch, logits_to_keep)`, zero on completion padding, and the entropies
        (same shape) or `None`.
    """
    prompt_len = input_ids.size(1) - logits_to_keep
    if prompt_len < 2:
        raise ValueError(f"shared_prefix_logps needs a prompt block of at least 2 columns, got {prompt_len}")
    autocast = autocast or nullcontext
    first, inverse = groups or group_prompt_rows(input_ids[:, :prompt_len], attention_mask[:, :prompt_len])
    prefix = prompt_len - 1  # the last prompt token runs with its completion: its output scores the first token

    if uses_mamba_mixers(lm):
        with autocast():
            return shared_state_logps(
                model, lm, input_ids, attention_mask, logits_to_keep, (first, inverse), compute_entropy
            )
    prompt_cache = _LayerCache()
    with autocast(), checkpointing_with_cache(lm):
        lm.base_model(
            input_ids=input_ids[first, :prefix],
            attention_mask=attention_mask[first, :prefix],
            past_key_values=prompt_cache,
            use_cache=True,
        )
        shared = [_SharedPrefixLayer(layer.keys, layer.values, inverse) for layer in prompt_cache.layers]
        labels = input_ids[:, prefix:].masked_fill(attention_mask[:, prefix:] == 0, -100)
        labels[:, 0] = -100
        outputs = model(
            input_ids=input_ids[:, prefix:],
            attention_mask=attention_mask,
            past_key_values=_LayerCache(shared),
            cache_position=torch.arange(prefix, input_ids.size(1), device=input_ids.device),
            labels=labels,
            fused_lm_head=True,
        )
    if not shared or not all(layer.updated for layer in shared):
        raise RuntimeError(
            f"{type(lm).__name__} did not read the shared prompt cache in its completion forward (it ignores "
            "`past_key_values` when TRL's fused LM head sets `use_cache=False`)"
        )
    return outputs.log_probs, (outputs.entropy if compute_entropy else None)
