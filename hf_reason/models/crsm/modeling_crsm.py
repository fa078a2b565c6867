# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""CRSM: a Mamba language model with a value head, latent dynamics, a state-delta module and MCTS.

The backbone is transformers' own Mamba (`MambaBlock`, `MambaMixer`, `MambaRMSNorm`, `MambaCache`)
run through its pure-PyTorch path, so it matches `MambaForCausalLM` weight for weight; only what is
new is written here: a cache whose recurrent states can be snapshotted and restored (so a search
can branch from any node without recomputing the prefix), the heads on the recurrent state, and
deliberate generation (`generate(..., deliberation="mcts")`, see `mcts.py`).
"""

from dataclasses import dataclass
from typing import Any, Optional, Union

import torch
from torch import nn
from transformers.generation import GenerationMixin
from transformers.modeling_utils import PreTrainedModel
from transformers.models.mamba.modeling_mamba import (
    MambaBlock,
    MambaMixer,
    MambaPreTrainedModel,
    MambaRMSNorm,
)
from transformers.utils import ModelOutput

from .cache_crsm import CRSMCache, CRSMCacheState
from .configuration_crsm import CRSMConfig
from .mcts import CRSMDeliberationOutput, check_ids, check_prompt_batch, mcts_generate


def structured_generation(kwargs: dict):
    """`hf_reason.decoding.generate` when `kwargs` ask for structured decoding, or pass a `tokenizer`
    with `<thought>` / `</thought>` (whose spans are then withheld from the output), else None
    (imported only then: this folder loads with `trust_remote_code` where hf-reason is not installed)."""
    options = ("grammar", "json_schema", "regex", "python_code", "hide_thoughts", "entropy_monitor")
    tokenizer = kwargs.get("tokenizer")
    has_thoughts = tokenizer is not None and {"<thought>", "</thought>"} <= tokenizer.get_vocab().keys()
    if not has_thoughts and all(kwargs.get(name) in (None, False) for name in options):
        return None
    try:
        from hf_reason.decoding import generate
    except ImportError as error:
        asked = "a tokenizer with <thought> tags" if has_thoughts else f"generate({'=..., '.join(options)}=...)"
        raise ImportError(f"{asked} needs hf-reason: `pip install hf-reason`") from error
    return generate


class CRSMStateAggregator(nn.Module):
    """Summarises the per-layer SSM states `(B, L, D, N)` into one vector `(B, summary_size)`.

    Each layer's state is reduced over `N` with learned weights, normalised (SSM states of
    different layers have very different scales) and projected; the layers are then combined by
    learned attention pooling (a query scored against each layer) or learned gates.
    """

    def __init__(self, config: CRSMConfig):
        super().__init__()
        L, D, N, S = config.num_hidden_layers, config.intermediate_size, config.state_size, config.summary_size
        self.kind = config.aggregator
        self.state_weights = nn.Parameter(torch.full((L, N), 1.0 / N))
        self.layer_norms = nn.ModuleList([nn.LayerNorm(D) for _ in range(L)])
        self.layer_proj = nn.ModuleList([nn.Linear(D, S) for _ in range(L)])
        self.layer_embedding = nn.Parameter(torch.zeros(L, S))
        if self.kind == "attention":
            self.query = nn.Parameter(torch.zeros(S))
            self.key = nn.Linear(S, S, bias=False)
        else:
            self.gate = nn.Linear(S, 1)
        self.norm = nn.LayerNorm(S)

    def forward(self, ssm_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the summary `(B, S)` and the layer weights `(B, L)` (they sum to 1)."""
        # The cache may hold the states in another dtype than the heads' weights (float32 states of a
        # bfloat16 model): compute in the weights' dtype.
        reduced = torch.einsum("bldn,ln->bld", ssm_states.to(self.state_weights.dtype), self.state_weights)
        per_layer = (
            torch.stack(
                [proj(norm(reduced[:, i])) for i, (norm, proj) in enumerate(zip(self.layer_norms, self.layer_proj))],
                dim=1,
            )
            + self.layer_embedding
        )
        if self.kind == "attention":
            scores = self.key(per_layer) @ self.query / per_layer.shape[-1] ** 0.5
            weights = scores.softmax(dim=-1)
        else:
            gates = torch.sigmoid(self.gate(per_layer)).squeeze(-1)
            weights = gates / gates.sum(dim=-1, keepdim=True).clamp_min(1e-6)
        summary = self.norm((weights.unsqueeze(-1) * per_layer).sum(dim=1))
        return summary, weights


class CRSMValueHead(nn.Module):
    """Expected task reward of the current state, from its summary."""

    def __init__(self, config: CRSMConfig):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(config.summary_size, config.value_hidden_size), nn.SiLU(), nn.Linear(config.value_hidden_size, 1)
        )

    def forward(self, summary: torch.Tensor) -> torch.Tensor:
        return self.mlp(summary).squeeze(-1)


class CRSMLatentDynamics(nn.Module):
    """(state summary, token) -> next state summary, without running the backbone."""

    def __init__(self, config: CRSMConfig):
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.summary_size)
        self.mlp = nn.Sequential(
            nn.Linear(2 * config.summary_size, config.dynamics_hidden_size),
            nn.SiLU(),
            nn.Linear(config.dynamics_hidden_size, config.summary_size),
        )
        self.norm = nn.LayerNorm(config.summary_size)

    def forward(self, summary: torch.Tensor, tokens: torch.LongTensor) -> torch.Tensor:
        update = self.mlp(torch.cat([summary, self.token_embedding(tokens)], dim=-1))
        # Summaries leave the aggregator layer-normalised; the prediction lives on the same scale.
        return self.norm(summary + update)


class CRSMStateDelta(nn.Module):
    """Proposes a bounded correction to every layer's SSM state from the state summary.

    The correction of layer `l` is `delta_scale * tanh(a_l ⊗ b_l)` with `a_l` over channels and
    `b_l` over the state dimension (rank one per layer: a full `D x N` map per layer would cost
    `summary_size * D * N` parameters).
    """

    def __init__(self, config: CRSMConfig):
        super().__init__()
        self.num_layers, self.d, self.n = config.num_hidden_layers, config.intermediate_size, config.state_size
        self.scale = config.delta_scale
        self.channel = nn.Linear(config.summary_size, self.num_layers * self.d)
        self.state = nn.Linear(config.summary_size, self.num_layers * self.n)

    def forward(self, summary: torch.Tensor) -> torch.Tensor:
        """`(B, L, D, N)` correction with every entry in `(-delta_scale, delta_scale)`."""
        a = self.channel(summary).view(-1, self.num_layers, self.d, 1)
        b = self.state(summary).view(-1, self.num_layers, 1, self.n)
        return self.scale * torch.tanh(a * b)


@dataclass
class CRSMModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, sequence_length, hidden_size)`):
            Output of the last Mamba block after the final norm.
        cache_params (`CRSMCache`, *optional*): the recurrent state after the input (with `use_cache=True`).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*): the residual stream after every block
            (with `output_hidden_states=True`).
    """

    last_hidden_state: Optional[torch.FloatTensor] = None
    cache_params: Optional[CRSMCache] = None
    hidden_states: Optional[tuple[torch.FloatTensor, ...]] = None


@dataclass
class CRSMCausalLMOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `(1,)`, *optional*): next-token cross-entropy (with `labels`).
        logits (`torch.FloatTensor` of shape `(batch_size, sequence_length, vocab_size)`): LM scores.
        cache_params (`CRSMCache`, *optional*): the recurrent state after the input.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*): the residual stream after every block.
        state_summary (`torch.FloatTensor` of shape `(batch_size, summary_size)`, *optional*): the
            aggregated recurrent state after the input (with `return_value=True`).
        value (`torch.FloatTensor` of shape `(batch_size,)`, *optional*): the value head's predicted
            reward for that state (with `return_value=True`).
        layer_weights (`torch.FloatTensor` of shape `(batch_size, num_layers)`, *optional*): the
            aggregator's weight on each layer.
    """

    loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    cache_params: Optional[CRSMCache] = None
    hidden_states: Optional[tuple[torch.FloatTensor, ...]] = None
    state_summary: Optional[torch.FloatTensor] = None
    value: Optional[torch.FloatTensor] = None
    layer_weights: Optional[torch.FloatTensor] = None


class CRSMPreTrainedModel(PreTrainedModel):
    config_class = CRSMConfig
    base_model_prefix = "backbone"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["MambaBlock"]
    # Stateful: generation keeps `cache_params` (not `past_key_values`) and cannot roll back.
    _is_stateful = True

    def _init_weights(self, module: nn.Module):
        std = self.config.initializer_range
        if isinstance(module, MambaMixer):
            # The Mamba inits (S4D-real A, log-uniform time steps, kaiming conv/out) are what make the
            # recurrence stable from step one; reuse them rather than re-derive them.
            MambaPreTrainedModel._init_weights(self, module)
        elif isinstance(module, CRSMStateAggregator):
            # Equal weight on every state slot and every layer at init: the pooling starts as a mean
            # and learns to prefer layers, instead of starting from an arbitrary preference.
            module.state_weights.data.fill_(1.0 / module.state_weights.shape[1])
            module.layer_embedding.data.zero_()
            if module.kind == "attention":
                module.query.data.zero_()
        elif isinstance(module, CRSMStateDelta):
            # `state` starts at zero so the correction is exactly zero before training (a freshly
            # added module never disturbs a trained backbone); `channel` is random so the product
            # still has a gradient.
            nn.init.normal_(module.channel.weight, std=std)
            nn.init.zeros_(module.channel.bias)
            nn.init.zeros_(module.state.weight)
            nn.init.zeros_(module.state.bias)
        elif isinstance(module, nn.Linear):
            if not getattr(module.weight, "_no_reinit", False):
                nn.init.normal_(module.weight, std=std)
            if module.bias is not None and not getattr(module.bias, "_no_reinit", False):
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
        elif isinstance(module, (MambaRMSNorm,)):
            module.weight.data.fill_(1.0)
        elif isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()


class CRSMModel(CRSMPreTrainedModel):
    """The bare Mamba backbone plus the state aggregator (`summarize`)."""

    def __init__(self, config: CRSMConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([MambaBlock(config, layer_idx=i) for i in range(config.num_hidden_layers)])
        self.norm_f = MambaRMSNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.aggregator = CRSMStateAggregator(config)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings

    def set_input_embeddings(self, new_embeddings):
        self.embeddings = new_embeddings

    def new_cache(self, batch_size: int) -> CRSMCache:
        return CRSMCache(
            self.config, batch_size, dtype=self.embeddings.weight.dtype, device=self.embeddings.weight.device
        )

    def summarize(
        self, ssm_states: Union[CRSMCache, CRSMCacheState, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """State summary `(B, summary_size)` and layer weights `(B, L)` of a cache, snapshot or stacked states."""
        if not isinstance(ssm_states, torch.Tensor):
            ssm_states = ssm_states.stacked_ssm_states()
        return self.aggregator(ssm_states)

    def forward(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        inputs_embeds: Optional[torch.FloatTensor] = None,
        cache_params: Optional[CRSMCache] = None,
        use_cache: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        cache_position: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.LongTensor] = None,
        **kwargs,
    ) -> Union[tuple, CRSMModelOutput]:
        r"""
        cache_params (`CRSMCache`, *optional*): the recurrent state to continue from. From a
            non-empty cache, feed one token at a time with `cache_position` > 0 (Mamba's
            single-token path); a multi-token chunk is only exact from an empty cache.
        cache_position (`torch.LongTensor`, *optional*): `arange(conv_kernel)` for the first
            (prefill) call, then the position of the token being fed.
        """
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        use_cache = use_cache if use_cache is not None else (self.config.use_cache if not self.training else False)
        return_dict = return_dict if return_dict is not None else self.config.use_return_dict
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("You must specify exactly one of `input_ids` or `inputs_embeds`.")
        if inputs_embeds is None:
            input_ids = check_ids(input_ids, "input_ids", self.config.vocab_size, "vocab_size")
            inputs_embeds = self.embeddings(input_ids)
        if self.gradient_checkpointing and self.training and use_cache:
            use_cache = False
        if use_cache:
            if cache_params is None:
                cache_params = CRSMCache(
                    self.config, inputs_embeds.size(0), dtype=inputs_embeds.dtype, device=inputs_embeds.device
                )
                cache_position = torch.arange(0, self.config.conv_kernel, device=inputs_embeds.device)
            elif cache_position is None:
                raise ValueError(
                    "`cache_position` is required when `cache_params` is passed: `arange(config.conv_kernel)` for a "
                    "prefill, else the position of the fed token."
                )
        else:
            cache_params = None

        hidden_states = inputs_embeds
        all_hidden_states = () if output_hidden_states else None
        for block in self.layers:
            hidden_states = block(
                hidden_states, cache_params=cache_params, cache_position=cache_position, attention_mask=attention_mask
            )
            if output_hidden_states:
                all_hidden_states = all_hidden_states + (hidden_states,)
        hidden_states = self.norm_f(hidden_states)
        if output_hidden_states:
            all_hidden_states = all_hidden_states + (hidden_states,)
        if not return_dict:
            return tuple(v for v in (hidden_states, cache_params, all_hidden_states) if v is not None)
        return CRSMModelOutput(
            last_hidden_state=hidden_states, cache_params=cache_params, hidden_states=all_hidden_states
        )


class CRSMForCausalLM(CRSMPreTrainedModel, GenerationMixin):
    """CRSM language model with the value head, latent dynamics and state-delta module.

    `generate` works as for any causal LM; `generate(..., deliberation="mcts", ...)` searches over
    continuations from cached recurrent states before committing each token (see
    [`~hf_reason.models.crsm.mcts.mcts_generate`] for the arguments).
    """

    _tied_weights_keys = ["lm_head.weight"]

    def __init__(self, config: CRSMConfig):
        super().__init__(config)
        self.backbone = CRSMModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.value_head = CRSMValueHead(config)
        self.dynamics = CRSMLatentDynamics(config)
        self.state_delta = CRSMStateDelta(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.backbone.get_input_embeddings()

    def set_input_embeddings(self, new_embeddings):
        return self.backbone.set_input_embeddings(new_embeddings)

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, new_embeddings):
        self.lm_head = new_embeddings

    # --- the heads on the recurrent state -------------------------------------------------------
    def summarize(self, states) -> tuple[torch.Tensor, torch.Tensor]:
        """See [`CRSMModel.summarize`]."""
        return self.backbone.summarize(states)

    def predict_value(self, summary: torch.Tensor) -> torch.Tensor:
        """Expected reward `(B,)` of the states with these summaries."""
        return self.value_head(summary)

    def predict_next_summary(self, summary: torch.Tensor, tokens: torch.LongTensor) -> torch.Tensor:
        """Latent dynamics: the summary after feeding `tokens` `(B,)` to states with `summary` `(B, S)`."""
        return self.dynamics(summary, tokens)

    def apply_state_delta(self, cache: CRSMCache, summary: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Corrects the cache's SSM states: `h <- h + delta_damping * correction`; returns the correction.

        Out of place (the cache's tensors are replaced), so gradients reach the state-delta module.
        """
        if summary is None:
            summary, _ = self.summarize(cache)
        correction = self.state_delta(summary)
        for i in range(len(cache.ssm_states)):
            cache.ssm_states[i] = cache.ssm_states[i] + self.config.delta_damping * correction[:, i].to(
                cache.ssm_states[i].dtype
            )
        return correction

    def resize_token_embeddings(self, new_num_tokens=None, pad_to_multiple_of=None, mean_resizing: bool = True):
        """Also resizes the latent dynamics' token table, which reads every token the LM may emit."""
        embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        self.dynamics.token_embedding = self._get_resized_embeddings(
            self.dynamics.token_embedding, embeddings.weight.shape[0], mean_resizing=mean_resizing
        )
        return embeddings

    # --- generation -----------------------------------------------------------------------------
    def _update_model_kwargs_for_generation(
        self, outputs: ModelOutput, model_kwargs: dict[str, Any], num_new_tokens: int = 1, **kwargs
    ) -> dict[str, Any]:
        # As in `MambaForCausalLM`: the state lives in `cache_params`, the position advances by one.
        model_kwargs["cache_params"] = outputs.get("cache_params", None)
        if model_kwargs.get("use_cache", True) and model_kwargs.get("cache_position") is not None:
            model_kwargs["cache_position"] = model_kwargs["cache_position"][-1:] + num_new_tokens
        if "attention_mask" in model_kwargs:
            attention_mask = model_kwargs["attention_mask"]
            model_kwargs["attention_mask"] = torch.cat(
                [attention_mask, attention_mask.new_ones((attention_mask.shape[0], 1))], dim=-1
            )
        return model_kwargs

    def prepare_inputs_for_generation(
        self,
        input_ids,
        inputs_embeds=None,
        use_cache=None,
        cache_params: Optional[CRSMCache] = None,
        cache_position: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.LongTensor] = None,
        **kwargs,
    ):
        model_inputs = {"input_ids": input_ids.contiguous()}
        if use_cache and cache_params is None:
            # Prefill: Mamba's mixer recognises the first call by a `cache_position` of conv_kernel length.
            cache_position = torch.arange(0, self.config.conv_kernel, device=input_ids.device)
            if inputs_embeds is not None:
                model_inputs = {"inputs_embeds": inputs_embeds}
                batch_size = inputs_embeds.size(0)
            else:
                batch_size = input_ids.size(0)
            cache_params = self.backbone.new_cache(batch_size)
        if use_cache and cache_position[0] > 0:
            model_inputs["input_ids"] = input_ids[:, -1].unsqueeze(-1).contiguous()
            attention_mask = None
        if not use_cache and inputs_embeds is not None:
            model_inputs = {"inputs_embeds": inputs_embeds}
        model_inputs.update(
            {
                "cache_params": cache_params,
                "use_cache": use_cache,
                "cache_position": cache_position,
                "attention_mask": attention_mask,
            }
        )
        for key, value in kwargs.items():
            if key not in model_inputs:
                model_inputs[key] = value
        return model_inputs

    @torch.no_grad()
    def generate(self, inputs: Optional[torch.Tensor] = None, deliberation: Optional[str] = None, **kwargs):
        """`GenerationMixin.generate`, or MCTS deliberation with `deliberation="mcts"`.

        With `deliberation=None` every argument goes to `GenerationMixin.generate` unchanged. With
        `"mcts"`, the keyword arguments are those of [`~hf_reason.models.crsm.mcts.mcts_generate`]:
        the search settings as a `deliberation_config=CRSMDeliberationConfig(...)` or field by field
        (`num_simulations`, `c_puct`, `top_k_expansion`, `rollout`, `rollout_depth`,
        `leaf_batch_size`, `apply_state_delta`), and `max_new_tokens`, `eos_token_id`,
        `return_dict_in_generate`, `streamer`, `logits_processor` (masks the search's priors).

        Structured decoding, in both modes: `grammar=`, `json_schema=`, `regex=`, `python_code=True`,
        `hide_thoughts=`, `entropy_monitor=` (with `tokenizer=`) go to `hf_reason.decoding.generate`, as
        does a `tokenizer=` with `<thought>` / `</thought>` (their spans are withheld from the output).
        """
        structured = structured_generation(kwargs)
        if structured is not None:
            return structured(self, inputs, deliberation=deliberation, **kwargs)
        if deliberation is None:
            check_prompt_batch(inputs, **kwargs)
            return super().generate(inputs, **kwargs)
        if deliberation != "mcts":
            raise ValueError(f"`deliberation` must be None or 'mcts', got {deliberation!r}")
        if inputs is None:
            inputs = kwargs.pop("input_ids", None)
        if inputs is None:
            raise ValueError("`generate(deliberation='mcts')` needs `input_ids`")
        return mcts_generate(self, inputs, **kwargs)

    def forward(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.LongTensor] = None,
        inputs_embeds: Optional[torch.FloatTensor] = None,
        cache_params: Optional[CRSMCache] = None,
        labels: Optional[torch.LongTensor] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        use_cache: Optional[bool] = None,
        cache_position: Optional[torch.Tensor] = None,
        return_value: bool = False,
        logits_to_keep: Union[int, torch.Tensor] = 0,
        **kwargs,
    ) -> Union[tuple, CRSMCausalLMOutput]:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*): next-token
            targets, shifted inside the model as in transformers; `-100` is ignored.
        return_value (`bool`, defaults to `False`): also return the state summary and the value
            head's prediction for the state after the input (implies `use_cache=True`).
        logits_to_keep (`int` or `torch.Tensor`, defaults to 0): keep only the last `n` positions'
            logits (0 keeps all), as TRL's trainers ask for.
        """
        return_dict = return_dict if return_dict is not None else self.config.use_return_dict
        if return_value:
            use_cache = True
        outputs = self.backbone(
            input_ids,
            cache_params=cache_params,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            use_cache=use_cache,
            cache_position=cache_position,
            attention_mask=attention_mask,
        )
        hidden_states = outputs.last_hidden_state
        slice_indices = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden_states[:, slice_indices, :].to(self.lm_head.weight.dtype)).float()

        loss = None
        if labels is not None:
            labels = labels.to(logits.device)
            loss = nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100
            )
        summary = value = layer_weights = None
        if return_value:
            if outputs.cache_params is None:
                raise ValueError(
                    "`return_value=True` needs the recurrent state; it is off with gradient checkpointing"
                )
            summary, layer_weights = self.summarize(outputs.cache_params)
            value = self.predict_value(summary)
        output = CRSMCausalLMOutput(
            loss=loss,
            logits=logits,
            cache_params=outputs.cache_params,
            hidden_states=outputs.hidden_states,
            state_summary=summary,
            value=value,
            layer_weights=layer_weights,
        )
        return output if return_dict else output.to_tuple()


__all__ = [
    "CRSMCache",
    "CRSMCacheState",
    "CRSMCausalLMOutput",
    "CRSMDeliberationOutput",
    "CRSMForCausalLM",
    "CRSMModel",
    "CRSMModelOutput",
    "CRSMPreTrainedModel",
]
