# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""PyTorch meta-attention model: GPT-2 plus a module that reads the model's own attention maps.

Reads top-down as the model is built: the per-layer attention-implementation view (eager where maps
are read, the configured implementation elsewhere), the input checks, the meta-attention module
(it reads the attention summaries of `introspection.py`), `MetaAttentionPreTrainedModel`, output
dataclasses, the bare `MetaAttentionModel`, the causal LM with `introspect` (computed in
`introspection.py`), and the self-critic `MetaAttentionForSequenceScoring`. The GPT-2 blocks are
transformers' own (`GPT2Block`). Only torch, transformers and this folder are imported, so a
checkpoint saved with its code loads with `trust_remote_code=True` where hf-reason is not installed.
"""

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn
from transformers.cache_utils import Cache, DynamicCache
from transformers.generation import GenerationMixin
from transformers.masking_utils import create_causal_mask
from transformers.modeling_outputs import ModelOutput
from transformers.modeling_utils import PreTrainedModel
from transformers.models.gpt2.modeling_gpt2 import GPT2Block, GPT2PreTrainedModel
from transformers.utils import logging

from .configuration_meta_attention import MetaAttentionConfig
from .introspection import MetaAttentionIntrospectionOutput, attention_introspection, attention_summaries


logger = logging.get_logger(__name__)


class _AttentionImplementationView:
    """The model config as one layer's attention sees it: `"eager"` while `eager` is set.

    `GPT2Attention` dispatches on `self.config._attn_implementation`; giving each block a view lets
    the layers whose maps are read run eager attention (which returns probabilities) while the
    others keep SDPA. Everything else is read from the shared config, so later changes to it (e.g.
    `set_attn_implementation`) reach every layer.
    """

    def __init__(self, config: MetaAttentionConfig, eager: bool):
        self._config = config
        self.eager = eager

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "_config":  # keeps copy / pickle from recursing
            raise AttributeError(name)
        return getattr(self._config, name)

    @property
    def _attn_implementation(self) -> str:
        return "eager" if self.eager else self._config._attn_implementation


# Copied from hf_reason.models.trm.supervision.check_ids
def check_ids(ids: torch.Tensor, name: str, size: int, size_name: str) -> torch.LongTensor:
    """`ids` as a LongTensor for an embedding of `size` rows, or a `ValueError` that names `name` and
    the dtype (floats and bools are not ids), or the table's `size_name=size` and the first id out of
    range with its position.

    Skipped while tracing or compiling (ONNX export, `torch.compile`): a branch on the values would be
    baked into the graph. The ONNX Runtime wrappers run this same check on their inputs.
    """
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return ids
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise ValueError(f"`{name}` must hold integer ids; got dtype {ids.dtype}.")
    outside = (ids < 0) | (ids >= size)
    if outside.any():
        where = tuple(outside.nonzero()[0].tolist())
        raise ValueError(
            f"`{name}` must hold ids from 0 to {size - 1} ({size_name}={size}); got {ids[where].item()} at "
            f"position {where}."
        )
    return ids.long()


# Copied from hf_reason.models.crsm.mcts.check_prompt_batch
def check_prompt_batch(inputs=None, **kwargs) -> None:
    """A `ValueError` for an empty batch of prompts, in `inputs` or in `generate`'s `input_ids` /
    `inputs_embeds` (the other keyword arguments are ignored).

    Generation refuses an empty batch rather than return an empty result: transformers' decoding loop
    cannot run on one, and a batch that lost all its prompts upstream is a mistake better seen here.
    """
    for prompts in (inputs, kwargs.get("input_ids"), kwargs.get("inputs_embeds")):
        if prompts is not None and prompts.shape[0] == 0:
            raise ValueError(
                f"`generate` needs at least one prompt; got a batch of 0 (prompts of shape {tuple(prompts.shape)})."
            )


# Copied from hf_reason.models.crsm.modeling_crsm.structured_generation
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


class MetaAttentionModule(nn.Module):
    """Lets each position's hidden state attend over the summaries of its own attention rows.

    The `len(meta_layers) * n_head` summaries of a position are its memory slots: each is embedded
    (a projection of its features plus a learned embedding of its layer and head), the layer-normed
    hidden state queries them with `meta_num_heads` heads, and the result, projected back to the
    model width and scaled by `tanh(gate)`, is the residual update.
    """

    def __init__(self, config: MetaAttentionConfig):
        super().__init__()
        self.num_slots = len(config.meta_layers) * config.n_head
        self.num_heads = config.meta_num_heads
        self.head_dim = config.meta_hidden_size // config.meta_num_heads
        self.summary_proj = nn.Linear(config.num_summary_features, config.meta_hidden_size)
        self.slot_embedding = nn.Embedding(self.num_slots, config.meta_hidden_size)
        self.slot_norm = nn.LayerNorm(config.meta_hidden_size, eps=config.layer_norm_epsilon)
        self.ln = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.q_proj = nn.Linear(config.n_embd, config.meta_hidden_size)
        self.k_proj = nn.Linear(config.meta_hidden_size, config.meta_hidden_size)
        self.v_proj = nn.Linear(config.meta_hidden_size, config.meta_hidden_size)
        self.o_proj = nn.Linear(config.meta_hidden_size, config.n_embd)
        self.gate = nn.Parameter(torch.full((), float(config.meta_gate_init)))

    def forward(self, hidden_states: torch.Tensor, summaries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            hidden_states (`torch.Tensor` of shape `(batch, seq, n_embd)`): the residual stream.
            summaries (`torch.Tensor` of shape `(batch, seq, num_slots, num_summary_features)`).

        Returns:
            The residual update `(batch, seq, n_embd)` and the attention over the slots
            `(batch, meta_num_heads, seq, num_slots)`.
        """
        batch, seq = hidden_states.shape[:2]
        slots = self.summary_proj(summaries.to(hidden_states.dtype)) + self.slot_embedding.weight
        slots = self.slot_norm(slots)
        q = self.q_proj(self.ln(hidden_states)).view(batch, seq, self.num_heads, self.head_dim)
        k = self.k_proj(slots).view(batch, seq, self.num_slots, self.num_heads, self.head_dim)
        v = self.v_proj(slots).view(batch, seq, self.num_slots, self.num_heads, self.head_dim)
        scores = torch.einsum("bthd,btnhd->bhtn", q, k) / math.sqrt(self.head_dim)
        weights = scores.softmax(dim=-1)
        attended = torch.einsum("bhtn,btnhd->bthd", weights, v).reshape(batch, seq, -1)
        return torch.tanh(self.gate) * self.o_proj(attended), weights


class MetaAttentionPreTrainedModel(PreTrainedModel):
    config_class = MetaAttentionConfig
    config: MetaAttentionConfig
    base_model_prefix = "transformer"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["GPT2Block"]
    _skip_keys_device_placement = "past_key_values"
    _supports_sdpa = True
    _supports_attention_backend = True
    # GPT-2's causal-mask buffers are rebuilt from the config, never stored.
    _keys_to_ignore_on_load_unexpected = [r"attn\.masked_bias", r"attn\.bias"]

    def _init_weights(self, module: nn.Module):
        # GPT-2's own scheme (N(0, initializer_range), residual projections scaled by 1/sqrt(2 n_layer)),
        # so a model built here trains like a GPT-2 and `from_gpt2` only initialises what is new.
        GPT2PreTrainedModel._init_weights(self, module)
        if isinstance(module, MetaAttentionModule):
            # The gate, not a zero projection, keeps the module silent at start: with `o_proj` random
            # and tanh(gate) = 0 the gate still receives a gradient, so the module can switch itself on.
            module.gate.data.fill_(self.config.meta_gate_init)


@dataclass
class MetaAttentionModelOutput(ModelOutput):
    """
    Outputs of [`MetaAttentionModel`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch, seq, n_embd)`):
            Final hidden states (after the final layer norm).
        past_key_values (`Cache`, *optional*):
            Key / value cache, returned when `use_cache=True`.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Embeddings and each block's output (`output_hidden_states=True`); the injection block's
            entry includes the meta-attention update.
        attentions (`tuple(torch.FloatTensor)`, *optional*):
            Per layer `(batch, n_head, seq, keys)` attention probabilities (`output_attentions=True`).
        meta_attentions (`torch.FloatTensor` of shape `(batch, meta_num_heads, seq, num_slots)`, *optional*):
            How each position weighted its attention summaries (slot `i * n_head + h` is head `h` of
            the `i`-th layer of `meta_layers`); returned with `output_attentions=True`.
    """

    last_hidden_state: Optional[torch.FloatTensor] = None
    past_key_values: Optional[Cache] = None
    hidden_states: Optional[tuple[torch.FloatTensor, ...]] = None
    attentions: Optional[tuple[torch.FloatTensor, ...]] = None
    meta_attentions: Optional[torch.FloatTensor] = None


@dataclass
class MetaAttentionCausalLMOutput(ModelOutput):
    """
    Outputs of [`MetaAttentionForCausalLM`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*):
            Next-token cross-entropy, returned when `labels` is given (`-100` labels are ignored).
        logits (`torch.FloatTensor` of shape `(batch, kept_positions, vocab_size)`):
            Next-token scores for the positions kept by `logits_to_keep`.
        past_key_values, hidden_states, attentions, meta_attentions:
            As in [`MetaAttentionModelOutput`].
    """

    loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    past_key_values: Optional[Cache] = None
    hidden_states: Optional[tuple[torch.FloatTensor, ...]] = None
    attentions: Optional[tuple[torch.FloatTensor, ...]] = None
    meta_attentions: Optional[torch.FloatTensor] = None


@dataclass
class MetaAttentionScoringOutput(ModelOutput):
    """
    Outputs of [`MetaAttentionForSequenceScoring`] (the self-critic).

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*):
            `critic_loss` against `labels`: binary cross-entropy on pass / fail, or the squared error
            between `scores` and evaluator scores in [0, 1].
        logits (`torch.FloatTensor` of shape `(batch, 1)`):
            The episode's score logit, read at its last non-padding token (TRL reward-model layout).
        scores (`torch.FloatTensor` of shape `(batch,)`):
            `sigmoid(logits)`: the predicted probability that the episode passes / its evaluator score.
        past_key_values, hidden_states, attentions:
            As in [`MetaAttentionModelOutput`].
    """

    loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    scores: Optional[torch.FloatTensor] = None
    past_key_values: Optional[Cache] = None
    hidden_states: Optional[tuple[torch.FloatTensor, ...]] = None
    attentions: Optional[tuple[torch.FloatTensor, ...]] = None


class MetaAttentionModel(MetaAttentionPreTrainedModel):
    """
    GPT-2 (embeddings, `GPT2Block`s, final layer norm, with GPT-2's parameter names, so GPT-2 state
    dicts load as they are) plus the meta-attention module after block `meta_inject_layer`.
    """

    _supports_param_buffer_assignment = False

    def __init__(self, config: MetaAttentionConfig):
        super().__init__(config)
        self.embed_dim = config.n_embd
        self.wte = nn.Embedding(config.vocab_size, self.embed_dim)
        self.wpe = nn.Embedding(config.n_positions, self.embed_dim)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([GPT2Block(config, layer_idx=i) for i in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(self.embed_dim, eps=config.layer_norm_epsilon)
        self.meta = MetaAttentionModule(config) if config.use_meta_attention else None
        self.meta_layers = list(config.meta_layers) if config.use_meta_attention else []
        self._eager_view = _AttentionImplementationView(config, eager=True)
        for i, block in enumerate(self.h):
            block.attn.config = _AttentionImplementationView(config, eager=i in self.meta_layers)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.wte

    def set_input_embeddings(self, new_embeddings: nn.Embedding):
        self.wte = new_embeddings

    @contextmanager
    def _attention_maps_from_every_layer(self, enabled: bool):
        """Runs every layer eager for one call (for `output_attentions`), then restores the split."""
        views = [block.attn.config for block in self.h]
        before = [view.eager for view in views]
        try:
            if enabled:
                for view in views:
                    view.eager = True
            yield
        finally:
            for view, eager in zip(views, before):
                view.eager = eager

    def forward(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        past_key_values: Optional[Cache] = None,
        cache_position: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.LongTensor] = None,
        inputs_embeds: Optional[torch.FloatTensor] = None,
        use_cache: Optional[bool] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        **kwargs,
    ) -> MetaAttentionModelOutput:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch, seq)`): token ids (only the new ones when
                `past_key_values` holds the earlier positions).
            past_key_values (`Cache`, *optional*): key / value cache (a `DynamicCache` is created when
                `use_cache=True`).
            cache_position (`torch.LongTensor` of shape `(seq,)`, *optional*): indices of the new
                positions in the cache.
            attention_mask (`torch.Tensor` of shape `(batch, past + seq)`, *optional*): 1 for tokens,
                0 for padding.
            position_ids (`torch.LongTensor` of shape `(batch, seq)`, *optional*): GPT-2 positions;
                by default counted over the non-padding tokens of `attention_mask`.
            inputs_embeds (`torch.FloatTensor` of shape `(batch, seq, n_embd)`, *optional*).
            output_attentions (`bool`, *optional*): return every layer's attention probabilities
                (every layer runs eager for the call; under gradient checkpointing in training only
                the layers in `meta_layers`, the others give `None`).
        """
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        use_cache = use_cache if use_cache is not None else self.config.use_cache
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of `input_ids` and `inputs_embeds`.")
        if inputs_embeds is None:
            input_ids = check_ids(input_ids, "input_ids", self.config.vocab_size, "vocab_size")
            self.warn_if_padding_and_no_attention_mask(input_ids, attention_mask)
            inputs_embeds = self.wte(input_ids)
        batch, seq = inputs_embeds.shape[:2]
        if self.gradient_checkpointing and self.training and use_cache:
            logger.warning_once(
                "`use_cache=True` is incompatible with gradient checkpointing; using `use_cache=False`."
            )
            use_cache = False
        if use_cache and past_key_values is None:
            past_key_values = DynamicCache(config=self.config)
        past_seen = past_key_values.get_seq_length() if past_key_values is not None else 0
        if cache_position is None:
            cache_position = torch.arange(past_seen, past_seen + seq, device=inputs_embeds.device)
        if attention_mask is not None and attention_mask.ndim < 4:
            attention_mask = attention_mask.view(batch, -1)
        if position_ids is None:
            position_ids = self._position_ids(attention_mask, cache_position, seq)
        hidden_states = self.drop(inputs_embeds + self.wpe(position_ids).to(inputs_embeds.device))
        causal_mask, eager_mask = self._causal_masks(
            inputs_embeds, attention_mask, cache_position, past_key_values, position_ids, output_attentions
        )
        visible_keys = None
        if self.meta is not None:
            visible_keys = self._visible_keys(attention_mask, cache_position, batch)

        hidden_states, all_hidden_states, all_attentions, meta_attentions = self._run_blocks(
            hidden_states,
            past_key_values,
            cache_position,
            causal_mask,
            eager_mask,
            visible_keys,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            **kwargs,
        )
        hidden_states = self.ln_f(hidden_states)
        if output_hidden_states:
            all_hidden_states += (hidden_states,)
        output = MetaAttentionModelOutput(
            last_hidden_state=hidden_states,
            past_key_values=past_key_values if use_cache else None,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
            meta_attentions=meta_attentions if output_attentions else None,
        )
        return output if return_dict is not False else output.to_tuple()

    @staticmethod
    def _position_ids(attention_mask, cache_position: torch.LongTensor, seq: int) -> torch.LongTensor:
        if attention_mask is not None and attention_mask.ndim == 2:
            # Positions count real tokens only, as `generate` does: a left-padded episode gets the
            # same position embeddings, hence the same outputs, as the unpadded one (TRL pads left).
            return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -seq:]
        return cache_position.unsqueeze(0)

    def _causal_masks(
        self, inputs_embeds, attention_mask, cache_position, past_key_values, position_ids, output_attentions
    ):
        """The mask for the configured attention, and the one for the eager layers whose maps are read
        (the same mask when everything runs eager)."""
        mask_kwargs = dict(
            input_embeds=inputs_embeds,
            attention_mask=attention_mask,
            cache_position=cache_position,
            past_key_values=past_key_values,
            position_ids=position_ids,
        )
        causal_mask = create_causal_mask(config=self.config, **mask_kwargs)
        eager_mask = causal_mask
        if self.config._attn_implementation != "eager" and (self.meta_layers or output_attentions):
            eager_mask = create_causal_mask(config=self._eager_view, **mask_kwargs)
        return causal_mask, eager_mask

    @staticmethod
    def _visible_keys(attention_mask, cache_position: torch.LongTensor, batch: int) -> torch.Tensor:
        """How many non-padding keys each new position sees `(batch, seq)`: what the attention
        summaries normalise their distances by."""
        if attention_mask is not None and attention_mask.ndim == 2:
            keys_total = attention_mask.shape[-1]
            index = cache_position[None, :].expand(batch, -1).clamp(max=keys_total - 1)
            return attention_mask.to(torch.long).cumsum(-1).gather(1, index)
        return (cache_position + 1)[None, :].expand(batch, -1)

    def _run_blocks(
        self,
        hidden_states,
        past_key_values,
        cache_position,
        causal_mask,
        eager_mask,
        visible_keys,
        use_cache: bool,
        output_attentions: bool,
        output_hidden_states: bool,
        **kwargs,
    ):
        """The GPT-2 blocks, with the attention maps of `meta_layers` summarised on the way and the
        meta-attention module's update added after block `meta_inject_index`."""
        checkpointed = self.gradient_checkpointing and self.training
        all_hidden_states = () if output_hidden_states else None
        all_attentions = () if output_attentions else None
        summaries, meta_attentions = [], None
        with self._attention_maps_from_every_layer(output_attentions and not checkpointed):
            for i, block in enumerate(self.h):
                if output_hidden_states:
                    all_hidden_states += (hidden_states,)
                eager = block.attn.config._attn_implementation == "eager"
                needs_map = i in self.meta_layers or (output_attentions and eager)
                outputs = block(
                    hidden_states,
                    past_key_values if not checkpointed else None,
                    cache_position,
                    eager_mask if eager else causal_mask,
                    None,
                    use_cache=use_cache,
                    output_attentions=needs_map,
                    **kwargs,
                )
                hidden_states = outputs[0]
                attn_probs = outputs[1] if needs_map else None
                if output_attentions:
                    all_attentions += (attn_probs,)
                if i in self.meta_layers:
                    probs = attn_probs.detach() if self.config.meta_detach_attention else attn_probs
                    summaries.append(
                        attention_summaries(
                            probs, visible_keys, cache_position, self.config.meta_top_k, self.config.meta_features
                        )
                    )
                if self.meta is not None and i == self.config.meta_inject_index:
                    update, meta_attentions = self.meta(hidden_states, torch.cat(summaries, dim=2))
                    hidden_states = hidden_states + update
        return hidden_states, all_hidden_states, all_attentions, meta_attentions


def _load_gpt2_weights(model: MetaAttentionPreTrainedModel, gpt2_model: PreTrainedModel) -> None:
    """Copies a GPT-2's weights into `model`; only the meta-attention module may stay as initialised."""
    source = gpt2_model.state_dict()
    if getattr(gpt2_model, "base_model_prefix", None) == "transformer" and not hasattr(gpt2_model, "transformer"):
        source = {f"transformer.{k}": v for k, v in source.items()}  # a bare GPT2Model
    target_keys = set(model.state_dict())
    source = {k: v for k, v in source.items() if k in target_keys}
    missing, _ = model.load_state_dict(source, strict=False)
    not_new = [k for k in missing if not k.startswith("transformer.meta.") and k != "lm_head.weight"]
    if not_new:
        raise ValueError(f"The GPT-2 checkpoint lacks weights the model needs: {not_new[:5]}")
    if model.config.tie_word_embeddings:
        model.tie_weights()


class MetaAttentionForCausalLM(MetaAttentionPreTrainedModel, GenerationMixin):
    """The meta-attention model with GPT-2's language-model head (tied to the input embeddings)."""

    _tied_weights_keys = ["lm_head.weight"]

    def __init__(self, config: MetaAttentionConfig):
        super().__init__(config)
        self.transformer = MetaAttentionModel(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.transformer.wte

    def set_input_embeddings(self, value: nn.Embedding):
        self.transformer.wte = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Linear):
        self.lm_head = new_embeddings

    def generate(self, inputs: Optional[torch.Tensor] = None, **kwargs):
        """`GenerationMixin.generate`, with a clear error for an empty batch of prompts (`check_prompt_batch`);
        `grammar=`, `json_schema=`, ... (with `tokenizer=`) go to `hf_reason.decoding.generate`, as does a
        `tokenizer=` with `<thought>` / `</thought>` (their spans are withheld from the output)."""
        structured = structured_generation(kwargs)
        if structured is not None:
            return structured(self, inputs, **kwargs)
        check_prompt_batch(inputs, **kwargs)
        return super().generate(inputs, **kwargs)

    @classmethod
    def from_gpt2(
        cls, gpt2_model_or_path: Union[str, os.PathLike, PreTrainedModel], **meta_kwargs
    ) -> "MetaAttentionForCausalLM":
        """Builds a meta-attention model from a GPT-2 (a `GPT2LMHeadModel` / `GPT2Model` or a path).

        The GPT-2 weights are kept; the meta-attention module is freshly initialised (gate at
        `meta_gate_init`, 0 by default, so the logits start equal to the GPT-2's). `meta_kwargs` are
        `MetaAttentionConfig` meta-attention arguments (`meta_top_k=...`, ...).
        """
        if isinstance(gpt2_model_or_path, (str, os.PathLike)):
            from transformers import GPT2LMHeadModel  # local: only this path needs the loader

            gpt2_model_or_path = GPT2LMHeadModel.from_pretrained(gpt2_model_or_path)
        gpt2 = gpt2_model_or_path
        config = MetaAttentionConfig.from_gpt2_config(gpt2.config, **meta_kwargs)
        config._attn_implementation_internal = gpt2.config._attn_implementation
        model = cls(config)
        _load_gpt2_weights(model, gpt2)
        if getattr(gpt2, "generation_config", None) is not None and hasattr(gpt2, "lm_head"):
            model.generation_config = gpt2.generation_config
        return model.to(dtype=next(gpt2.parameters()).dtype)

    def forward(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        past_key_values: Optional[Cache] = None,
        cache_position: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.LongTensor] = None,
        inputs_embeds: Optional[torch.FloatTensor] = None,
        labels: Optional[torch.LongTensor] = None,
        use_cache: Optional[bool] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        logits_to_keep: Union[int, torch.Tensor] = 0,
        **kwargs,
    ) -> MetaAttentionCausalLMOutput:
        r"""
        Args:
            labels (`torch.LongTensor` of shape `(batch, seq)`, *optional*): the input ids as targets
                (shifted inside, as in transformers); `-100` is ignored.
            logits_to_keep (`int` or `torch.Tensor`, defaults to 0): compute logits for the last
                `logits_to_keep` positions only (0: all), or for the given indices; generation and
                TRL use it to skip the vocabulary projection of the prompt.
            Other arguments: see [`MetaAttentionModel.forward`].
        """
        outputs = self.transformer(
            input_ids,
            past_key_values=past_key_values,
            cache_position=cache_position,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden_states[:, keep, :])
        loss = None
        if labels is not None:
            loss = self.loss_function(logits, labels, vocab_size=self.config.vocab_size, **kwargs)
        output = MetaAttentionCausalLMOutput(
            loss=loss,
            logits=logits,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            meta_attentions=outputs.meta_attentions,
        )
        return output if return_dict is not False else output.to_tuple()

    @torch.no_grad()
    def introspect(
        self,
        input_ids: torch.LongTensor,
        attention_mask: Optional[torch.Tensor] = None,
        start: int = 1,
        top_k: int = 5,
        layers: Optional[list[int]] = None,
    ) -> MetaAttentionIntrospectionOutput:
        """What the model attended to while writing each position of `input_ids` from `start` on.

        Runs one forward pass with every layer's attention maps (eager attention for this call) and,
        for each position `p >= max(start, 1)`, keeps the `top_k` largest probabilities of query row
        `p - 1` over the chosen `layers` (default: all), heads and keys. Pass the prompt length as
        `start` to describe the generated part of a `generate` output.

        Args:
            input_ids (`torch.LongTensor` of shape `(batch, seq)`): prompt plus generated tokens.
            attention_mask (`torch.Tensor` of shape `(batch, seq)`, *optional*): 0 marks padding
                (padding positions are flagged `valid=False` and left out of `to_json`).
            start (`int`, defaults to 1): first described position (>= 1; position 0 has no writer).
            top_k (`int`, defaults to 5): entries kept per position (>= 1).
            layers (`list[int]`, *optional*): restrict to these layers.
        """
        return attention_introspection(self, input_ids, attention_mask, start, top_k, layers)


class MetaAttentionForSequenceScoring(MetaAttentionPreTrainedModel):
    """
    The self-critic: a scalar score of an episode (prompt + report) read from the final hidden state
    of its last non-padding token, trained against evaluator verdicts (`critic_loss`). It shares the
    base-model weights' layout with [`MetaAttentionForCausalLM`], so
    `MetaAttentionForSequenceScoring.from_pretrained(causal_lm_checkpoint)` starts the critic from a
    trained policy (only `score` is new). Registered as `AutoModelForSequenceClassification` with
    one logit per episode, the layout TRL expects of a reward model.
    """

    def __init__(self, config: MetaAttentionConfig):
        super().__init__(config)
        self.transformer = MetaAttentionModel(config)
        self.score = nn.Linear(config.n_embd, 1)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.transformer.wte

    def set_input_embeddings(self, value: nn.Embedding):
        self.transformer.wte = value

    def forward(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.LongTensor] = None,
        inputs_embeds: Optional[torch.FloatTensor] = None,
        labels: Optional[torch.Tensor] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        **kwargs,
    ) -> MetaAttentionScoringOutput:
        r"""
        Args:
            labels (`torch.Tensor` of shape `(batch,)`, *optional*): evaluator verdicts, pass (1) /
                fail (0) for `critic_loss="bce"`, scores in [0, 1] for `"mse"`.
            Other arguments: see [`MetaAttentionModel.forward`].
        """
        outputs = self.transformer(
            input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=False,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        batch, seq = hidden_states.shape[:2]
        if attention_mask is not None:
            # works for left and right padding: the last position whose mask is 1
            last = (attention_mask.to(torch.long) * torch.arange(seq, device=hidden_states.device)).argmax(-1)
        else:
            last = torch.full((batch,), seq - 1, device=hidden_states.device)
        logits = self.score(hidden_states[torch.arange(batch, device=hidden_states.device), last])
        scores = torch.sigmoid(logits.squeeze(-1).float())
        loss = None
        if labels is not None:
            labels = labels.to(logits.device).float().view(-1)
            if self.config.critic_loss == "bce":
                loss = F.binary_cross_entropy_with_logits(logits.squeeze(-1).float(), labels)
            else:
                loss = F.mse_loss(scores, labels)
        output = MetaAttentionScoringOutput(
            loss=loss,
            logits=logits,
            scores=scores,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return output if return_dict is not False else output.to_tuple()


__all__ = [
    "MetaAttentionCausalLMOutput",
    "MetaAttentionForCausalLM",
    "MetaAttentionForSequenceScoring",
    "MetaAttentionIntrospectionOutput",
    "MetaAttentionModel",
    "MetaAttentionModelOutput",
    "MetaAttentionModule",
    "MetaAttentionPreTrainedModel",
    "MetaAttentionScoringOutput",
    "attention_summaries",
]
