"""Meta-attention: a GPT-2 language model that reads its own attention maps, reports what it attended to
(`introspect`) and scores its own episodes (the self-critic head)."""

from .configuration_meta_attention import MetaAttentionConfig
from .modeling_meta_attention import (
    MetaAttentionCausalLMOutput,
    MetaAttentionForCausalLM,
    MetaAttentionForSequenceScoring,
    MetaAttentionIntrospectionOutput,
    MetaAttentionModel,
    MetaAttentionModelOutput,
    MetaAttentionPreTrainedModel,
    MetaAttentionScoringOutput,
)


# `save_pretrained` copies the config and modeling files next to the weights, so the checkpoint
# loads with `trust_remote_code=True` where hf-reason is not installed.
MetaAttentionConfig.register_for_auto_class()
MetaAttentionModel.register_for_auto_class("AutoModel")
MetaAttentionForCausalLM.register_for_auto_class("AutoModelForCausalLM")
MetaAttentionForSequenceScoring.register_for_auto_class("AutoModelForSequenceClassification")

__all__ = [
    "MetaAttentionCausalLMOutput",
    "MetaAttentionConfig",
    "MetaAttentionForCausalLM",
    "MetaAttentionForSequenceScoring",
    "MetaAttentionIntrospectionOutput",
    "MetaAttentionModel",
    "MetaAttentionModelOutput",
    "MetaAttentionPreTrainedModel",
    "MetaAttentionScoringOutput",
]
