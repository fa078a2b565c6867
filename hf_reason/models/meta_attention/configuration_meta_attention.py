# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Meta-attention configuration: a GPT-2 configuration plus the settings of the meta-attention module."""

import math
from collections.abc import Sequence
from typing import Optional

from transformers.models.gpt2.configuration_gpt2 import GPT2Config


# The Auto classes a saved checkpoint maps to when loaded with `trust_remote_code=True`.
META_ATTENTION_AUTO_MAP = {
    "AutoConfig": "configuration_meta_attention.MetaAttentionConfig",
    "AutoModel": "modeling_meta_attention.MetaAttentionModel",
    "AutoModelForCausalLM": "modeling_meta_attention.MetaAttentionForCausalLM",
    "AutoModelForSequenceClassification": "modeling_meta_attention.MetaAttentionForSequenceScoring",
}

# Per-head summaries of an attention row the meta-attention module can read. Sizes are per head.
META_FEATURES = ("entropy", "top_k_weights", "top_k_distances", "mean_distance")

# Keys of a GPT-2 config dict that describe the checkpoint, not the architecture.
_NON_ARCHITECTURE_KEYS = ("model_type", "architectures", "auto_map", "_name_or_path", "transformers_version")


# Copied from hf_reason.models.trm.configuration_trm._check_int
def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")


# Copied from hf_reason.models.crsm.configuration_crsm._check_bool
def _check_bool(name: str, value) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False, got {value!r}.")


# Copied from hf_reason.models.trm.configuration_trm._check_float
def _check_float(name: str, value, low: float, high: Optional[float] = None, low_inclusive: bool = True) -> None:
    # NaN fails every comparison, but infinity passes a bound on one side: finiteness is checked too.
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = value >= low if low_inclusive else value > low
        ok = ok and (high is None or value <= high)
    if not ok:
        bound = f"{'>=' if low_inclusive else '>'} {low}" + (f" and <= {high}" if high is not None else "")
        raise ValueError(f"`{name}` must be a finite number {bound}, got {value!r}.")


# Copied from hf_reason.models.trm.configuration_trm.RequireConfigFileMixin
class RequireConfigFileMixin:
    """
    Loading that builds a config from a checkpoint only out of a config file of the class's own
    `model_type`, with a clear error otherwise.

    transformers builds a config from its defaults when a local folder has no `config.json`, and
    `AutoConfig` then picks the class by a model type found in the folder's *name*: a `my-trm` folder
    without its config would load as a default-sized TRM (and fail later, on the weights' shapes, or
    not at all). Mixed in before `PretrainedConfig` (or a subclass of it).
    """

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs):
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        cls._check_checkpoint_config(config_dict, pretrained_model_name_or_path)
        return config_dict, kwargs

    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs):
        # `AutoConfig` reads a checkpoint's dict with the base class's `get_config_dict` (empty without
        # a config file) and passes it here with the checkpoint's `name_or_path`.
        if "name_or_path" in kwargs:
            cls._check_checkpoint_config(config_dict, kwargs["name_or_path"])
        return super().from_dict(config_dict, **kwargs)

    @classmethod
    def _check_checkpoint_config(cls, config_dict: dict, source) -> None:
        if not config_dict:
            raise FileNotFoundError(
                f"{source} has no config.json: a {cls.__name__} checkpoint loads only with its config "
                "(`save_pretrained` writes it)."
            )
        if config_dict.get("model_type") != cls.model_type:
            raise ValueError(
                f"The config.json of {source} has model_type {config_dict.get('model_type')!r}; a "
                f"{cls.__name__} loads only a config of model_type {cls.model_type!r}."
            )


class MetaAttentionConfig(RequireConfigFileMixin, GPT2Config):
    r"""
    Configuration of a [`MetaAttentionModel`] / [`MetaAttentionForCausalLM`] /
    [`MetaAttentionForSequenceScoring`]: a GPT-2 language model plus a *meta-attention module* that
    reads the model's own attention maps.

    The class *subclasses* [`GPT2Config`] rather than holding one as a sub-config: every GPT-2 field
    (`n_embd`, `n_layer`, `activation_function`, ...) stays a top-level attribute, so transformers'
    GPT-2 modules (`GPT2Block`, `GPT2Attention`) take this config as is, generic tooling (TRL, PEFT,
    `generate`, device maps) finds `hidden_size` / `num_hidden_layers` where it looks, and the saved
    `config.json` is one flat dict that round-trips through `AutoConfig` without nested-config
    bookkeeping. All GPT-2 arguments are accepted and documented in [`GPT2Config`].

    The meta-attention module: after block `meta_inject_layer`, for every position and every head of
    each layer in `meta_layers`, the attention row of that position is summarised (`meta_features`:
    normalised entropy, the `meta_top_k` largest weights, their relative distances, the mean relative
    distance). The hidden state attends over these `len(meta_layers) * n_head` summaries and the
    result is added to the residual stream through `tanh(gate)`, the gate starting at
    `meta_gate_init` (0: a GPT-2's outputs are unchanged at start).

    Args:
        use_meta_attention (`bool`, *optional*, defaults to `True`):
            Build the meta-attention module. `False` gives a plain GPT-2 (all layers on the configured
            attention implementation): the ablation baseline.
        meta_layers (`list[int]`, *optional*):
            Layers whose attention maps are summarised (these layers run eager attention). Indices in
            `[0, n_layer)`, at most the injection layer. Defaults to every layer up to
            `meta_inject_layer`.
        meta_inject_layer (`int`, *optional*, defaults to -1):
            The block after which the module's output joins the residual stream; negative counts from
            the end (-1: after the last block, just before the final layer norm). In `[-n_layer, n_layer)`.
        meta_top_k (`int`, *optional*, defaults to 4):
            Attended positions per head kept in the summaries (>= 1).
        meta_features (`list[str]`, *optional*):
            Summary features, a non-empty subset of `"entropy"`, `"top_k_weights"`,
            `"top_k_distances"`, `"mean_distance"` (defaults to all four).
        meta_hidden_size (`int`, *optional*, defaults to 64):
            Width of the summary embeddings and of the module's attention (>= 1).
        meta_num_heads (`int`, *optional*, defaults to 2):
            Heads of the module's attention over the summaries; must divide `meta_hidden_size`.
        meta_gate_init (`float`, *optional*, defaults to 0.0):
            Initial value of the gate parameter (output is scaled by `tanh(gate)`); in [-3, 3]. Any
            non-zero value changes the base model's outputs at start.
        meta_detach_attention (`bool`, *optional*, defaults to `True`):
            Summaries read a detached copy of the attention maps, so the language-model loss cannot
            reshape attention to suit the module: the maps stay what the base computation needs,
            which keeps them an honest record for introspection.
        critic_loss (`str`, *optional*, defaults to `"bce"`):
            Loss of [`MetaAttentionForSequenceScoring`]: `"bce"` (labels are pass / fail in {0, 1},
            scores are probabilities) or `"mse"` (labels are evaluator scores in [0, 1]).

    Example:

    ```python
    >>> from hf_reason import MetaAttentionConfig, MetaAttentionForCausalLM
    >>> config = MetaAttentionConfig(vocab_size=512, n_positions=128, n_embd=64, n_layer=2, n_head=2)
    >>> model = MetaAttentionForCausalLM(config)
    ```
    """

    model_type = "meta_attention"

    def __init__(
        self,
        use_meta_attention: bool = True,
        meta_layers: Optional[Sequence[int]] = None,
        meta_inject_layer: int = -1,
        meta_top_k: int = 4,
        meta_features: Optional[Sequence[str]] = None,
        meta_hidden_size: int = 64,
        meta_num_heads: int = 2,
        meta_gate_init: float = 0.0,
        meta_detach_attention: bool = True,
        critic_loss: str = "bce",
        **kwargs,
    ):
        # Stock TRL trainers read `config.auto_map` when they rebuild a reference model, so it is
        # present from construction, not only after `save_pretrained`.
        kwargs.setdefault("auto_map", dict(META_ATTENTION_AUTO_MAP))
        super().__init__(**kwargs)
        _check_int("vocab_size", self.vocab_size, 1)
        _check_int("n_positions", self.n_positions, 1)
        _check_int("n_embd", self.n_embd, 1)
        _check_int("n_layer", self.n_layer, 1)
        _check_int("n_head", self.n_head, 1)
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"`n_embd` ({self.n_embd}) must be divisible by `n_head` ({self.n_head}).")
        if self.add_cross_attention:
            raise ValueError("`add_cross_attention` must be False: meta-attention models are decoder-only.")
        for name in ("resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_first_dropout"):
            _check_float(name, getattr(self, name), 0.0, 1.0)
        _check_float("layer_norm_epsilon", self.layer_norm_epsilon, 0.0, low_inclusive=False)
        _check_float("initializer_range", self.initializer_range, 0.0)

        _check_bool("use_meta_attention", use_meta_attention)
        if (
            isinstance(meta_inject_layer, bool)
            or not isinstance(meta_inject_layer, int)
            or not -self.n_layer <= meta_inject_layer < self.n_layer
        ):
            raise ValueError(
                f"`meta_inject_layer` must be in [{-self.n_layer}, {self.n_layer}) for n_layer={self.n_layer}, "
                f"got {meta_inject_layer!r}."
            )
        inject = meta_inject_layer % self.n_layer
        if meta_layers is None:
            meta_layers = list(range(inject + 1))
        meta_layers = list(meta_layers)
        if (
            not meta_layers
            or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i <= inject for i in meta_layers)
            or len(set(meta_layers)) != len(meta_layers)
        ):
            raise ValueError(
                f"`meta_layers` must be a non-empty list of distinct layer indices in [0, {inject}] (the "
                f"injection layer; the module can only read maps computed before it), got {meta_layers!r}."
            )
        _check_int("meta_top_k", meta_top_k, 1)
        meta_features = list(META_FEATURES if meta_features is None else meta_features)
        if (
            not meta_features
            or any(f not in META_FEATURES for f in meta_features)
            or len(set(meta_features)) != len(meta_features)
        ):
            raise ValueError(
                f"`meta_features` must be a non-empty list of distinct names from {list(META_FEATURES)}, "
                f"got {meta_features!r}."
            )
        _check_int("meta_hidden_size", meta_hidden_size, 1)
        _check_int("meta_num_heads", meta_num_heads, 1)
        if meta_hidden_size % meta_num_heads != 0:
            raise ValueError(
                f"`meta_hidden_size` ({meta_hidden_size}) must be divisible by `meta_num_heads` ({meta_num_heads})."
            )
        _check_float("meta_gate_init", meta_gate_init, -3.0, 3.0)
        _check_bool("meta_detach_attention", meta_detach_attention)
        if critic_loss not in ("bce", "mse"):
            raise ValueError(f"`critic_loss` must be one of 'bce', 'mse'; got {critic_loss!r}.")

        self.use_meta_attention = use_meta_attention
        self.meta_layers = sorted(meta_layers)
        self.meta_inject_layer = meta_inject_layer
        self.meta_top_k = meta_top_k
        self.meta_features = [f for f in META_FEATURES if f in meta_features]  # canonical order
        self.meta_hidden_size = meta_hidden_size
        self.meta_num_heads = meta_num_heads
        self.meta_gate_init = float(meta_gate_init)
        self.meta_detach_attention = meta_detach_attention
        self.critic_loss = critic_loss

    @property
    def meta_inject_index(self) -> int:
        """`meta_inject_layer` as a non-negative block index."""
        return self.meta_inject_layer % self.n_layer

    @property
    def num_summary_features(self) -> int:
        """Size of one head's summary vector."""
        sizes = {
            "entropy": 1,
            "top_k_weights": self.meta_top_k,
            "top_k_distances": self.meta_top_k,
            "mean_distance": 1,
        }
        return sum(sizes[f] for f in self.meta_features)

    @classmethod
    def from_gpt2_config(cls, gpt2_config: GPT2Config, **meta_kwargs) -> "MetaAttentionConfig":
        """The configuration of a GPT-2 checkpoint with meta-attention settings added."""
        values = {k: v for k, v in gpt2_config.to_dict().items() if k not in _NON_ARCHITECTURE_KEYS}
        values.update(meta_kwargs)
        return cls(**values)


__all__ = ["MetaAttentionConfig"]
