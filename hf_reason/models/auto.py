"""Registration of hf-reason's models with the transformers Auto classes."""

from collections import OrderedDict

from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification
from transformers.models.auto.auto_factory import _BaseAutoModelClass, _LazyAutoMapping

from .trm import TRMConfig, TRMForPuzzleSolving, TRMModel


class AutoModelForPuzzleSolving(_BaseAutoModelClass):
    """Auto class for grid-puzzle solvers (`TRMForPuzzleSolving`, ...), used like any `AutoModelFor*`.

    transformers has no puzzle-solving task, so checkpoints also map their solver to
    `AutoModelForTokenClassification` (one class per input cell), which is what a
    `trust_remote_code=True` load without hf-reason uses.
    """

    _model_mapping = _LazyAutoMapping(OrderedDict(), OrderedDict())


def register_auto_classes() -> None:
    """Registers every hf-reason model with the Auto classes (idempotent)."""
    AutoConfig.register(TRMConfig.model_type, TRMConfig, exist_ok=True)
    AutoModel.register(TRMConfig, TRMModel, exist_ok=True)
    AutoModelForTokenClassification.register(TRMConfig, TRMForPuzzleSolving, exist_ok=True)
    AutoModelForPuzzleSolving.register(TRMConfig, TRMForPuzzleSolving, exist_ok=True)
