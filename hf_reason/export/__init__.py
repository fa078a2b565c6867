"""ONNX export and ONNX Runtime wrappers.

Importing this package registers hf-reason's ONNX configs with Optimum's `TasksManager`
(`configs`), so `TasksManager.get_exporter_config_constructor("onnx", model_type="trm", ...)`
works after `import hf_reason.export` alone.
"""

from . import configs  # noqa: F401  (registers the ONNX configs with Optimum's TasksManager)
from .configs import onnx_config
from .exporter import EXPORTERS, TASKS, export_pretrained
from .external_data import save_graphs
from .ort import (
    OPTIMIZATION_LEVELS,
    ORTCRSMForCausalLM,
    ORTMetaAttentionForCausalLM,
    ORTTRMForPuzzleSolving,
    create_session,
    read_export_report,
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
    "onnx_config",
    "quantize_int4",
    "quantize_int8",
    "read_export_report",
    "rewrite_for_weight_only",
    "save_graphs",
]
