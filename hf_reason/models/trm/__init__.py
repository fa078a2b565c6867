"""TRM: the Tiny Recursive Model (Jolicoeur-Martineau, 2025)."""

from .configuration_trm import TRMConfig
from .modeling_trm import (
    TRMCarry,
    TRMForPuzzleSolving,
    TRMModel,
    TRMModelOutput,
    TRMPreTrainedModel,
    TRMPuzzleSolvingOutput,
    TRMSolveOutput,
)
from .q_heads import TRMAttentionQHead, TRMGRUQHead, TRMHaltingHead, TRMMLPQHead


# `save_pretrained` copies the config and modeling files next to the weights, so the checkpoint
# loads with `trust_remote_code=True` where hf-reason is not installed.
TRMConfig.register_for_auto_class()
TRMModel.register_for_auto_class("AutoModel")
TRMForPuzzleSolving.register_for_auto_class("AutoModelForTokenClassification")

__all__ = [
    "TRMAttentionQHead",
    "TRMCarry",
    "TRMGRUQHead",
    "TRMHaltingHead",
    "TRMMLPQHead",
    "TRMConfig",
    "TRMForPuzzleSolving",
    "TRMModel",
    "TRMModelOutput",
    "TRMPreTrainedModel",
    "TRMPuzzleSolvingOutput",
    "TRMSolveOutput",
]
