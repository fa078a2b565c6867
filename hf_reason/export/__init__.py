"""ONNX export and ONNX Runtime wrappers."""

from .exporter import EXPORTERS, TASKS, export_pretrained
from .ort import (
    OPTIMIZATION_LEVELS,
    ORTCRSMForCausalLM,
    ORTMetaAttentionForCausalLM,
    ORTTRMForPuzzleSolving,
    create_session,
)
from .quantization import PRECISIONS, quantize_int4, quantize_int8, rewrite_for_weight_only


__all__ = [
    "EXPORTERS",
    "OPTIMIZATION_LEVELS",
    "ORTCRSMForCausalLM",
    "ORTMetaAttentionForCausalLM",
    "ORTTRMForPuzzleSolving",
    "PRECISIONS",
    "TASKS",
    "create_session",
    "export_pretrained",
    "quantize_int4",
    "quantize_int8",
    "rewrite_for_weight_only",
]
