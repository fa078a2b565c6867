"""Learned reward models: the multi-attribute quantile RM, with scoring, calibration and reward-function adapters."""

from .configuration_quantile_rm import QuantileRewardModelConfig
from .modeling_quantile_rm import (
    QuantileRewardModel,
    QuantileRewardOutput,
    QuantileRewardPreTrainedModel,
    pinball_loss,
)
from .scoring import RewardModelReward, best_of_n, quantile_coverage, score_texts


def _register() -> None:
    from transformers import AutoConfig, AutoModelForSequenceClassification

    AutoConfig.register(QuantileRewardModelConfig.model_type, QuantileRewardModelConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(QuantileRewardModelConfig, QuantileRewardModel, exist_ok=True)
    # the saved folder carries its code (`auto_map`), for `trust_remote_code=True` where hf-reason is not installed
    QuantileRewardModelConfig.register_for_auto_class()
    QuantileRewardModel.register_for_auto_class("AutoModelForSequenceClassification")


_register()


__all__ = [
    "QuantileRewardModel",
    "QuantileRewardModelConfig",
    "QuantileRewardOutput",
    "QuantileRewardPreTrainedModel",
    "RewardModelReward",
    "best_of_n",
    "pinball_loss",
    "quantile_coverage",
    "score_texts",
]
