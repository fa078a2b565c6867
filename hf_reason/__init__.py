"""hf-reason: reasoning models and their trainers for the Hugging Face stack.

Importing the package registers every model with the transformers Auto classes.
"""

__version__ = "0.1.0.dev0"

from .models.auto import AutoModelForPuzzleSolving, register_auto_classes
from .models.crsm import (
    CRSMCache,
    CRSMConfig,
    CRSMDeliberationConfig,
    CRSMDeliberationOutput,
    CRSMForCausalLM,
    CRSMModel,
    CRSMPreTrainedModel,
)
from .models.meta_attention import (
    MetaAttentionConfig,
    MetaAttentionForCausalLM,
    MetaAttentionForSequenceScoring,
    MetaAttentionIntrospectionOutput,
    MetaAttentionModel,
    MetaAttentionPreTrainedModel,
)
from .models.trm import (
    TRMCarry,
    TRMConfig,
    TRMForPuzzleSolving,
    TRMModel,
    TRMPreTrainedModel,
    TRMPuzzleSolvingOutput,
    TRMSolveOutput,
)


register_auto_classes()

__all__ = [
    "AutoModelForPuzzleSolving",
    "CRSMCache",
    "CRSMConfig",
    "CRSMDeliberationConfig",
    "CRSMDeliberationOutput",
    "CRSMForCausalLM",
    "CRSMModel",
    "CRSMPreTrainedModel",
    "MetaAttentionConfig",
    "MetaAttentionForCausalLM",
    "MetaAttentionForSequenceScoring",
    "MetaAttentionIntrospectionOutput",
    "MetaAttentionModel",
    "MetaAttentionPreTrainedModel",
    "TRMCarry",
    "TRMConfig",
    "TRMForPuzzleSolving",
    "TRMModel",
    "TRMPreTrainedModel",
    "TRMPuzzleSolvingOutput",
    "TRMSolveOutput",
    "register_auto_classes",
]
