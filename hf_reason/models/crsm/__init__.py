"""CRSM: the Continuous Reasoning State Model (a Mamba LM that deliberates over its own state)."""

from .cache_crsm import CRSMCache, CRSMCacheState
from .configuration_crsm import CRSMConfig
from .mcts import CRSMDeliberationConfig, CRSMDeliberationOutput, mcts_generate
from .modeling_crsm import (
    CRSMCausalLMOutput,
    CRSMForCausalLM,
    CRSMLatentDynamics,
    CRSMModel,
    CRSMModelOutput,
    CRSMPreTrainedModel,
    CRSMStateAggregator,
    CRSMStateDelta,
    CRSMValueHead,
)


# `save_pretrained` copies the config, modeling, cache and mcts files next to the weights, so the
# checkpoint loads with `trust_remote_code=True` where hf-reason is not installed.
CRSMConfig.register_for_auto_class()
CRSMModel.register_for_auto_class("AutoModel")
CRSMForCausalLM.register_for_auto_class("AutoModelForCausalLM")

__all__ = [
    "CRSMCache",
    "CRSMCacheState",
    "CRSMCausalLMOutput",
    "CRSMConfig",
    "CRSMDeliberationConfig",
    "CRSMDeliberationOutput",
    "CRSMForCausalLM",
    "CRSMLatentDynamics",
    "CRSMModel",
    "CRSMModelOutput",
    "CRSMPreTrainedModel",
    "CRSMStateAggregator",
    "CRSMStateDelta",
    "CRSMValueHead",
    "mcts_generate",
]
