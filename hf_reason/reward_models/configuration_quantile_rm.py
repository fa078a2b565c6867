"""Configuration of the multi-attribute quantile reward model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional, Union

from transformers import AutoConfig, PretrainedConfig


AGGREGATES = ("mean", "quantile")
DEFAULT_ATTRIBUTES = ("correctness", "helpfulness", "format", "verbosity")
DEFAULT_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def backbone_config_from(value: Optional[Union[dict, PretrainedConfig]]) -> PretrainedConfig:
    """A reward model's backbone configuration from a config, a dict with its `model_type`, or None (a small GPT-2)."""
    if value is None:
        return AutoConfig.for_model("gpt2", n_embd=64, n_layer=2, n_head=2)
    if isinstance(value, Mapping):
        value = dict(value)
        if "model_type" not in value:
            raise ValueError("`backbone_config` given as a dict needs its `model_type` (e.g. 'gpt2')")
        return AutoConfig.for_model(value.pop("model_type"), **value)
    if not isinstance(value, PretrainedConfig):
        raise ValueError(f"`backbone_config` must be a dict or a PretrainedConfig, got {type(value).__name__}")
    return value


class QuantileRewardModelConfig(PretrainedConfig):
    r"""Configuration of [`QuantileRewardModel`]: a sequence-scoring head on a language-model backbone that predicts,
    per attribute, a set of quantiles of that attribute's score.

    Args:
        backbone_config (`dict` or `PretrainedConfig`, *optional*):
            Configuration of the backbone (any model `AutoModel.from_config` builds: GPT-2, Llama, our
            meta-attention or CRSM models, ...). A dict needs its `model_type`. Defaults to a small GPT-2.
        attributes (`Sequence[str]`, defaults to `("correctness", "helpfulness", "format", "verbosity")`):
            Names of the scored attributes, one output group each (at least one, no duplicates).
        quantiles (`Sequence[float]`, defaults to `(0.1, 0.25, 0.5, 0.75, 0.9)`):
            Quantile levels predicted per attribute, strictly increasing inside (0, 1). The head predicts them
            ordered by construction (a base value plus non-negative increments), so they never cross.
        aggregate (`str`, defaults to `"mean"`):
            How one attribute's quantiles become its score: `"mean"` averages them (an estimate of the mean);
            `"quantile"` takes the `aggregate_quantile` level (risk-aware: a lower quantile rewards responses
            that are good even in the pessimistic case).
        aggregate_quantile (`float`, defaults to 0.1):
            The level `aggregate="quantile"` reads; must be one of `quantiles`.
        attribute_weights (`Sequence[float]` or `Mapping[str, float]`, *optional*):
            Weights combining attribute scores into the scalar reward (a mapping names attributes; missing ones get
            0). Negative weights penalise (e.g. verbosity). Defaults to equal weights summing to 1.
        initializer_range (`float`, defaults to 0.02): standard deviation of the head's initial weights.
    """

    model_type = "quantile_reward_model"
    sub_configs = {"backbone_config": AutoConfig}

    def __init__(
        self,
        backbone_config: Optional[Union[dict, PretrainedConfig]] = None,
        attributes: Sequence[str] = DEFAULT_ATTRIBUTES,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        aggregate: str = "mean",
        aggregate_quantile: float = 0.1,
        attribute_weights: Optional[Union[Sequence[float], Mapping[str, float]]] = None,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        backbone_config = backbone_config_from(backbone_config)
        attributes = [str(a) for a in attributes]
        if not attributes or len(set(attributes)) != len(attributes):
            raise ValueError(f"`attributes` must be a non-empty list of distinct names, got {attributes}")
        quantiles = [float(q) for q in quantiles]
        if not quantiles or any(not 0.0 < q < 1.0 for q in quantiles) or sorted(set(quantiles)) != quantiles:
            raise ValueError(f"`quantiles` must be strictly increasing levels inside (0, 1), got {quantiles}")
        if aggregate not in AGGREGATES:
            raise ValueError(f"`aggregate` must be one of {AGGREGATES}, got {aggregate!r}")
        if aggregate == "quantile" and float(aggregate_quantile) not in quantiles:
            raise ValueError(f"`aggregate_quantile` must be one of `quantiles` {quantiles}, got {aggregate_quantile}")
        if attribute_weights is None:
            weights = [1.0 / len(attributes)] * len(attributes)
        elif isinstance(attribute_weights, Mapping):
            unknown = set(attribute_weights) - set(attributes)
            if unknown:
                raise ValueError(
                    f"`attribute_weights` names unknown attributes {sorted(unknown)}; known: {attributes}"
                )
            weights = [float(attribute_weights.get(a, 0.0)) for a in attributes]
        else:
            weights = [float(w) for w in attribute_weights]
            if len(weights) != len(attributes):
                raise ValueError(
                    f"`attribute_weights` needs one weight per attribute ({len(attributes)}), got {weights}"
                )
        kwargs["num_labels"] = 1  # one scalar reward per sequence: what TRL's RewardTrainer reads from `logits`
        super().__init__(**kwargs)
        self.backbone_config = backbone_config
        self.attributes = attributes
        self.quantiles = quantiles
        self.aggregate = aggregate
        self.aggregate_quantile = float(aggregate_quantile)
        self.attribute_weights = weights
        self.initializer_range = initializer_range
        if self.pad_token_id is None:
            self.pad_token_id = getattr(backbone_config, "pad_token_id", None)


__all__ = ["QuantileRewardModelConfig", "backbone_config_from"]
