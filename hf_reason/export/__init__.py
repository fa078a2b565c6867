"""ONNX export and ONNX Runtime wrappers.

`export_pretrained` (`pipeline`) exports any registered family; each family's module (`trm`,
`meta_attention`, `crsm`) holds its graphs, options, quantization defaults and parity check, and
registers itself on import, and its ONNX Runtime wrapper lives in `ort_<family>`. Importing this
package also registers hf-reason's ONNX configs with Optimum's `TasksManager` (`configs`), so
`TasksManager.get_exporter_config_constructor("onnx", model_type="trm", ...)` works after
`import hf_reason.export` alone.
"""

from . import configs  # noqa: F401  (registers the ONNX configs with Optimum's TasksManager)
from .configs import onnx_config
from .crsm import CRSMExportOptions
from .external_data import save_graphs
from .meta_attention import MetaAttentionExportOptions
from .ort import ORTCRSMForCausalLM, ORTMetaAttentionForCausalLM, ORTTRMForPuzzleSolving
from .pipeline import EXPORTERS, FAMILY_EXPORTERS, TASKS, ExportOptions, FamilyExporter, export_pretrained
from .quantization import PRECISIONS, quantize_int4, quantize_int8, rewrite_for_weight_only
from .sessions import OPTIMIZATION_LEVELS, REPORT_NAME, create_session, read_export_report
from .trm import TRMExportOptions


__all__ = [
    "EXPORTERS",
    "FAMILY_EXPORTERS",
    "OPTIMIZATION_LEVELS",
    "ORTCRSMForCausalLM",
    "ORTMetaAttentionForCausalLM",
    "ORTTRMForPuzzleSolving",
    "PRECISIONS",
    "REPORT_NAME",
    "TASKS",
    "CRSMExportOptions",
    "ExportOptions",
    "FamilyExporter",
    "MetaAttentionExportOptions",
    "TRMExportOptions",
    "create_session",
    "export_pretrained",
    "onnx_config",
    "quantize_int4",
    "quantize_int8",
    "read_export_report",
    "rewrite_for_weight_only",
    "save_graphs",
]
