"""Learned reward models: the multi-attribute quantile RM, the branch-and-rethink RM (BR-RM) and the
hierarchical (process + outcome) RM, with
scoring, calibration, per-step scores for search and TRL reward-function adapters."""

from .configuration_branch_rethink_rm import BranchRethinkRewardModelConfig
from .configuration_hierarchical_rm import HierarchicalRewardModelConfig
from .configuration_quantile_rm import QuantileRewardModelConfig
from .hierarchical import HierarchicalReward, StepRewardCollator, StepScorer, encode_steps, split_steps, step_accuracy
from .modeling_branch_rethink_rm import BranchRethinkRewardModel, branch_rethink_examples, select_branches
from .modeling_hierarchical_rm import HierarchicalRewardModel, HierarchicalRewardOutput
from .modeling_quantile_rm import (
    QuantileRewardModel,
    QuantileRewardOutput,
    QuantileRewardPreTrainedModel,
    pinball_loss,
)
from .scoring import BranchRethinkReward, RewardModelReward, best_of_n, quantile_coverage, score_texts


def _register() -> None:
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    AutoConfig.register(QuantileRewardModelConfig.model_type, QuantileRewardModelConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(QuantileRewardModelConfig, QuantileRewardModel, exist_ok=True)
    # the saved folder carries its code (`auto_map`), for `trust_remote_code=True` where hf-reason is not installed
    QuantileRewardModelConfig.register_for_auto_class()
    QuantileRewardModel.register_for_auto_class("AutoModelForSequenceClassification")
    AutoConfig.register(HierarchicalRewardModelConfig.model_type, HierarchicalRewardModelConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(HierarchicalRewardModelConfig, HierarchicalRewardModel, exist_ok=True)
    HierarchicalRewardModelConfig.register_for_auto_class()
    HierarchicalRewardModel.register_for_auto_class("AutoModelForSequenceClassification")
    AutoConfig.register(BranchRethinkRewardModelConfig.model_type, BranchRethinkRewardModelConfig, exist_ok=True)
    AutoModel.register(BranchRethinkRewardModelConfig, BranchRethinkRewardModel, exist_ok=True)
    BranchRethinkRewardModelConfig.register_for_auto_class()
    BranchRethinkRewardModel.register_for_auto_class("AutoModel")


_register()


__all__ = [
    "BranchRethinkReward",
    "BranchRethinkRewardModel",
    "BranchRethinkRewardModelConfig",
    "branch_rethink_examples",
    "select_branches",
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
