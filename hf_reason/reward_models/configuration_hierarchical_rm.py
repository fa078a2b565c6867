"""Configuration of the hierarchical (process + outcome) reward model."""

from __future__ import annotations

from typing import Optional, Union

from transformers import AutoConfig, PretrainedConfig

from .configuration_quantile_rm import backbone_config_from


PROCESS_AGGREGATES = ("min", "mean", "product")


class HierarchicalRewardModelConfig(PretrainedConfig):
    r"""Configuration of [`HierarchicalRewardModel`]: a process head scoring each reasoning step's soundness and an
    outcome head scoring the whole response, on one backbone.

    The scalar reward is ``process_weight * P + (1 - process_weight) * O``, where ``O`` is the outcome head's
    probability that the response is right end to end and ``P`` aggregates the steps' soundness probabilities
    (`process_aggregate`): `"min"` (default: a chain is as sound as its weakest step), `"mean"` or `"product"`
    (the probability that every step is sound, if steps erred independently). A response without steps gets
    ``P = O``.

    Args:
        backbone_config (`dict` or `PretrainedConfig`, *optional*): as in `QuantileRewardModelConfig`; defaults to a
            small GPT-2.
        process_weight (`float`, defaults to 0.5): weight of the process score, in [0, 1].
        process_aggregate (`str`, defaults to `"min"`): one of `"min"`, `"mean"`, `"product"`.
        step_separator (`str`, defaults to `"\n"`): what separates steps in a response (for reward functions that
            receive whole completions).
        outcome_prefix (`str`, defaults to `"####"`): a line starting with it is the final answer, not a step.
        initializer_range (`float`, defaults to 0.02): standard deviation of the heads' initial weights.
    """

    model_type = "hierarchical_reward_model"
    sub_configs = {"backbone_config": AutoConfig}

    def __init__(
        self,
        backbone_config: Optional[Union[dict, PretrainedConfig]] = None,
        process_weight: float = 0.5,
        process_aggregate: str = "min",
        step_separator: str = "\n",
        outcome_prefix: str = "####",
        initializer_range: float = 0.02,
        **kwargs,
    ):
        backbone_config = backbone_config_from(backbone_config)
        if not 0.0 <= float(process_weight) <= 1.0:
            raise ValueError(f"`process_weight` must be in [0, 1], got {process_weight}")
        if process_aggregate not in PROCESS_AGGREGATES:
            raise ValueError(f"`process_aggregate` must be one of {PROCESS_AGGREGATES}, got {process_aggregate!r}")
        if not step_separator:
            raise ValueError("`step_separator` must be a non-empty string")
        kwargs["num_labels"] = 1
        super().__init__(**kwargs)
        self.backbone_config = backbone_config
        self.process_weight = float(process_weight)
        self.process_aggregate = process_aggregate
        self.step_separator = step_separator
        self.outcome_prefix = outcome_prefix
        self.initializer_range = initializer_range
        if self.pad_token_id is None:
            self.pad_token_id = getattr(backbone_config, "pad_token_id", None)


__all__ = ["HierarchicalRewardModelConfig"]
