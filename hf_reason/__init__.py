"""hf-reason: reasoning models and their trainers for the Hugging Face stack.

Importing the package registers every model with the transformers Auto classes.
"""

__version__ = "0.1.0.dev0"

from .models.auto import AutoModelForPuzzleSolving, register_auto_classes
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
    "TRMCarry",
    "TRMConfig",
    "TRMForPuzzleSolving",
    "TRMModel",
    "TRMPreTrainedModel",
    "TRMPuzzleSolvingOutput",
    "TRMSolveOutput",
    "register_auto_classes",
]
