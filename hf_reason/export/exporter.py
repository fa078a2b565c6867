# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The import path of `export_pretrained` and the family registry (`EXPORTERS`, `TASKS`).

The pipeline lives in `pipeline`, each family's export in its own module (`trm`, `crsm`,
`meta_attention`), which registers itself when `hf_reason.export` is imported.
"""

from .crsm import export_crsm
from .meta_attention import export_meta_attention
from .pipeline import EXPORTERS, TASKS, export_pretrained
from .quantization import PRECISIONS
from .sessions import REPORT_NAME
from .trm import export_trm


__all__ = [
    "EXPORTERS",
    "PRECISIONS",
    "REPORT_NAME",
    "TASKS",
    "export_crsm",
    "export_meta_attention",
    "export_pretrained",
    "export_trm",
]
