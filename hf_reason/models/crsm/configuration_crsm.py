# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""CRSM (Continuous Reasoning State Model) configuration."""

import math
from typing import Optional, Union

from transformers.configuration_utils import PretrainedConfig


CRSM_AUTO_MAP = {
    "AutoConfig": "configuration_crsm.CRSMConfig",
    "AutoModel": "modeling_crsm.CRSMModel",
    "AutoModelForCausalLM": "modeling_crsm.CRSMForCausalLM",
}

CRSM_AGGREGATORS = ("attention", "gated")


# Copied from hf_reason.models.trm.configuration_trm._check_int
def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")


# Copied from hf_reason.models.trm.configuration_trm._check_choice
def _check_choice(name: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(repr(c) for c in choices)}; got {value!r}.")


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


def _check_bool(name: str, value) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False, got {value!r}.")


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


class CRSMConfig(RequireConfigFileMixin, PretrainedConfig):
    r"""
    Configuration of a [`CRSMModel`] / [`CRSMForCausalLM`]: a Mamba (selective state-space) language
    model that can deliberate with Monte-Carlo tree search over its own recurrent state.

    The backbone is transformers' own Mamba (`MambaBlock` / `MambaMixer` / `MambaRMSNorm`), so the
    backbone arguments mean exactly what they mean in [`~transformers.MambaConfig`]. On top of it:

    * a *state aggregator* summarises the per-layer SSM states into one vector of `summary_size`
      (learned attention pooling over layers, or learned gates; never a plain mean);
    * a *value head* predicts the expected task reward from that summary;
    * a *latent dynamics* model predicts the next summary from (summary, token) without running
      the backbone, for cheap look-ahead;
    * a *state-delta* module proposes a bounded correction `delta_scale * tanh(...)` to each
      layer's SSM state; it is applied as `h <- h + delta_damping * correction`.

    Every argument is validated: a bad value raises `ValueError` naming the argument.

    Args:
        vocab_size (`int`, *optional*, defaults to 1024): tokens in the vocabulary.
        hidden_size (`int`, *optional*, defaults to 256): width of the residual stream.
        state_size (`int`, *optional*, defaults to 16): SSM state size `N` per channel.
        num_hidden_layers (`int`, *optional*, defaults to 4): Mamba blocks.
        expand (`int`, *optional*, defaults to 2): the mixer's inner width is `expand * hidden_size`.
        conv_kernel (`int`, *optional*, defaults to 4): causal depthwise convolution width (>= 2).
        time_step_rank (`int` or `"auto"`, *optional*, defaults to `"auto"`): rank of the
            discretisation projection; `"auto"` is `ceil(hidden_size / 16)`.
        use_bias (`bool`, *optional*, defaults to `False`): bias in the mixer's in/out projections.
        use_conv_bias (`bool`, *optional*, defaults to `True`): bias in the convolution.
        hidden_act (`str`, *optional*, defaults to `"silu"`): mixer activation (a key of `ACT2FN`).
        initializer_range (`float`, *optional*, defaults to 0.02): std of linear/embedding inits (> 0).
        layer_norm_epsilon (`float`, *optional*, defaults to 1e-5): RMSNorm epsilon (> 0).
        residual_in_fp32 (`bool`, *optional*, defaults to `True`): keep the residual in float32.
        time_step_scale (`float`, *optional*, defaults to 1.0), time_step_min (defaults to 0.001),
        time_step_max (defaults to 0.1), time_step_floor (defaults to 1e-4),
        time_step_init_scheme (`"random"` or `"constant"`, defaults to `"random"`): the Mamba
            discretisation initialisation (`0 < time_step_min <= time_step_max`).
        rescale_prenorm_residual (`bool`, *optional*, defaults to `False`): GPT-2 style
            `1/sqrt(num_layers)` scaling of the mixer output projection at init.
        use_mambapy (`bool`, *optional*, defaults to `False`): use the parallel scan of the
            `mambapy` package in training (needs `pip install mambapy`); inference is unchanged.
        summary_size (`int`, *optional*): width of the state summary; defaults to `hidden_size`.
        aggregator (`str`, *optional*, defaults to `"attention"`): how the per-layer states are
            combined: `"attention"` (a learned query attends over the layers) or `"gated"`
            (learned sigmoid gate per layer, normalised).
        value_hidden_size (`int`, *optional*): hidden width of the value MLP; defaults to `summary_size`.
        dynamics_hidden_size (`int`, *optional*): hidden width of the latent dynamics MLP;
            defaults to `2 * summary_size`.
        delta_scale (`float`, *optional*, defaults to 0.1): bound of the state correction
            (`|correction| <= delta_scale` elementwise, through a tanh); > 0.
        delta_damping (`float`, *optional*, defaults to 0.5): fraction of the proposed correction
            that is applied, in [0, 1] (0 switches the correction off).
        pad_token_id, bos_token_id, eos_token_id (`int`, *optional*): special token ids.
        tie_word_embeddings (`bool`, *optional*, defaults to `True`): tie the LM head to the embeddings.
        use_cache (`bool`, *optional*, defaults to `True`): return the recurrent cache.
    """

    model_type = "crsm"

    def __init__(
        self,
        vocab_size: int = 1024,
        hidden_size: int = 256,
        state_size: int = 16,
        num_hidden_layers: int = 4,
        expand: int = 2,
        conv_kernel: int = 4,
        time_step_rank: Union[int, str] = "auto",
        use_bias: bool = False,
        use_conv_bias: bool = True,
        hidden_act: str = "silu",
        initializer_range: float = 0.02,
        layer_norm_epsilon: float = 1e-5,
        residual_in_fp32: bool = True,
        time_step_scale: float = 1.0,
        time_step_min: float = 0.001,
        time_step_max: float = 0.1,
        time_step_init_scheme: str = "random",
        time_step_floor: float = 1e-4,
        rescale_prenorm_residual: bool = False,
        use_mambapy: bool = False,
        summary_size: Optional[int] = None,
        aggregator: str = "attention",
        value_hidden_size: Optional[int] = None,
        dynamics_hidden_size: Optional[int] = None,
        delta_scale: float = 0.1,
        delta_damping: float = 0.5,
        pad_token_id: Optional[int] = None,
        bos_token_id: Optional[int] = None,
        eos_token_id: Optional[int] = None,
        tie_word_embeddings: bool = True,
        use_cache: bool = True,
        **kwargs,
    ):
        from transformers.activations import ACT2FN

        # Derived from hidden_size * expand; a saved config.json carries it, and it must not disagree.
        kwargs.pop("intermediate_size", None)

        _check_int("vocab_size", vocab_size, 2)
        _check_int("hidden_size", hidden_size, 1)
        _check_int("state_size", state_size, 1)
        _check_int("num_hidden_layers", num_hidden_layers, 1)
        _check_int("expand", expand, 1)
        _check_int("conv_kernel", conv_kernel, 2)
        if time_step_rank != "auto":
            _check_int("time_step_rank", time_step_rank, 1)
        for name, value in (
            ("use_bias", use_bias),
            ("use_conv_bias", use_conv_bias),
            ("residual_in_fp32", residual_in_fp32),
            ("rescale_prenorm_residual", rescale_prenorm_residual),
            ("use_mambapy", use_mambapy),
            ("tie_word_embeddings", tie_word_embeddings),
            ("use_cache", use_cache),
        ):
            _check_bool(name, value)
        _check_choice("hidden_act", hidden_act, tuple(sorted(ACT2FN.keys())))
        _check_float("initializer_range", initializer_range, 0.0, low_inclusive=False)
        _check_float("layer_norm_epsilon", layer_norm_epsilon, 0.0, low_inclusive=False)
        _check_float("time_step_scale", time_step_scale, 0.0, low_inclusive=False)
        _check_float("time_step_min", time_step_min, 0.0, low_inclusive=False)
        _check_float("time_step_max", time_step_max, time_step_min)
        _check_float("time_step_floor", time_step_floor, 0.0)
        _check_choice("time_step_init_scheme", time_step_init_scheme, ("random", "constant"))
        summary_size = hidden_size if summary_size is None else summary_size
        _check_int("summary_size", summary_size, 1)
        _check_choice("aggregator", aggregator, CRSM_AGGREGATORS)
        value_hidden_size = summary_size if value_hidden_size is None else value_hidden_size
        _check_int("value_hidden_size", value_hidden_size, 1)
        dynamics_hidden_size = 2 * summary_size if dynamics_hidden_size is None else dynamics_hidden_size
        _check_int("dynamics_hidden_size", dynamics_hidden_size, 1)
        _check_float("delta_scale", delta_scale, 0.0, low_inclusive=False)
        _check_float("delta_damping", delta_damping, 0.0, 1.0)
        for name, value in (("pad_token_id", pad_token_id), ("bos_token_id", bos_token_id)):
            if value is not None:
                _check_int(name, value, 0)
                if value >= vocab_size:
                    raise ValueError(f"`{name}` must be < vocab_size ({vocab_size}), got {value}.")
        eos_ids = eos_token_id if isinstance(eos_token_id, list) else [eos_token_id]
        for value in eos_ids:
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < vocab_size
            ):
                raise ValueError(
                    f"`eos_token_id` must be an int (or list of ints) in [0, {vocab_size}), got {eos_token_id!r}."
                )

        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.state_size = state_size
        self.num_hidden_layers = num_hidden_layers
        self.expand = expand
        self.intermediate_size = expand * hidden_size
        self.conv_kernel = conv_kernel
        self.time_step_rank = math.ceil(hidden_size / 16) if time_step_rank == "auto" else time_step_rank
        self.use_bias = use_bias
        self.use_conv_bias = use_conv_bias
        self.hidden_act = hidden_act
        self.initializer_range = initializer_range
        self.layer_norm_epsilon = layer_norm_epsilon
        self.residual_in_fp32 = residual_in_fp32
        self.time_step_scale = time_step_scale
        self.time_step_min = time_step_min
        self.time_step_max = time_step_max
        self.time_step_init_scheme = time_step_init_scheme
        self.time_step_floor = time_step_floor
        self.rescale_prenorm_residual = rescale_prenorm_residual
        self.use_mambapy = use_mambapy
        self.summary_size = summary_size
        self.aggregator = aggregator
        self.value_hidden_size = value_hidden_size
        self.dynamics_hidden_size = dynamics_hidden_size
        self.delta_scale = float(delta_scale)
        self.delta_damping = float(delta_damping)
        self.use_cache = use_cache
        # Stock TRL trainers read `config.auto_map` when they rebuild a reference model, so it is
        # set before the first save too.
        kwargs.setdefault("auto_map", dict(CRSM_AUTO_MAP))
        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )
