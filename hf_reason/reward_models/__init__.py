"""Learned reward models: the multi-attribute quantile RM and the hierarchical (process + outcome) RM, with
scoring, calibration, per-step scores for search and TRL reward-function adapters."""

from .configuration_hierarchical_rm import HierarchicalRewardModelConfig
from .configuration_quantile_rm import QuantileRewardModelConfig
from .hierarchical import HierarchicalReward, StepRewardCollator, StepScorer, encode_steps, split_steps, step_accuracy
from .modeling_hierarchical_rm import HierarchicalRewardModel, HierarchicalRewardOutput
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
    AutoConfig.register(HierarchicalRewardModelConfig.model_type, HierarchicalRewardModelConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(HierarchicalRewardModelConfig, HierarchicalRewardModel, exist_ok=True)
    HierarchicalRewardModelConfig.register_for_auto_class()
    HierarchicalRewardModel.register_for_auto_class("AutoModelForSequenceClassification")


_register()


__all__ = [
    "HierarchicalReward",
    "HierarchicalRewardModel",
    "HierarchicalRewardModelConfig",
    "HierarchicalRewardOutput",
    "StepRewardCollator",
    "StepScorer",
    "encode_steps",
    "split_steps",
    "step_accuracy",
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
