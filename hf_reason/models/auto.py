"""Registration of hf-reason's models with the transformers Auto classes."""

from collections import OrderedDict

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)
from transformers.models.auto.auto_factory import _BaseAutoModelClass, _LazyAutoMapping

from .crsm import CRSMConfig, CRSMForCausalLM, CRSMModel
from .meta_attention import (
    MetaAttentionConfig,
    MetaAttentionForCausalLM,
    MetaAttentionForSequenceScoring,
    MetaAttentionModel,
)
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
    AutoConfig.register(MetaAttentionConfig.model_type, MetaAttentionConfig, exist_ok=True)
    AutoModel.register(MetaAttentionConfig, MetaAttentionModel, exist_ok=True)
    AutoModelForCausalLM.register(MetaAttentionConfig, MetaAttentionForCausalLM, exist_ok=True)
    AutoModelForSequenceClassification.register(MetaAttentionConfig, MetaAttentionForSequenceScoring, exist_ok=True)
    AutoConfig.register(CRSMConfig.model_type, CRSMConfig, exist_ok=True)
    AutoModel.register(CRSMConfig, CRSMModel, exist_ok=True)
    AutoModelForCausalLM.register(CRSMConfig, CRSMForCausalLM, exist_ok=True)
