# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""ONNX Runtime wrappers with the PyTorch models' interface, and the sessions they run on.

- `ORTTRMForPuzzleSolving` (`ort_trm`) takes torch tensors and returns the PyTorch model's own
  outputs (`TRMPuzzleSolvingOutput`, `TRMSolveOutput`).
- `ORTMetaAttentionForCausalLM` (`ort_meta_attention`): `forward` returns torch logits and a list
  of numpy `(key, value)` pairs as the cache.
- `ORTCRSMForCausalLM` (`ort_crsm`): `prefill` / `step` return dicts of numpy arrays, the recurrent
  states as plain arrays that deliberation copies and branches.
- Every `generate` returns a torch tensor of prompt + new tokens, as `model.generate(...)` does.

`from_pretrained` loads exactly the graphs `export_report.json` lists (an earlier export's leftover
file is never picked up) with the graph optimisation level the export was checked at. Sessions and
the helpers the wrappers share live in `sessions`; this module is the wrappers' import path.
"""

from .ort_crsm import ORTCRSMForCausalLM
from .ort_meta_attention import ORTMetaAttentionForCausalLM
from .ort_trm import ORTTRMForPuzzleSolving
from .sessions import OPTIMIZATION_LEVELS, REPORT_NAME, create_session, read_export_report


__all__ = [
    "OPTIMIZATION_LEVELS",
    "ORTCRSMForCausalLM",
    "ORTMetaAttentionForCausalLM",
    "ORTTRMForPuzzleSolving",
    "REPORT_NAME",
    "create_session",
    "read_export_report",
]
