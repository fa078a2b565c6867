# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""`hf-reason app`: a Gradio page to see the models reason, on CPU (needs `pip install hf-reason[app]`).

One tab per family: TRM refining a Sudoku over its supervision steps (and a maze with its path), CRSM's
greedy decoding next to its MCTS deliberation, and the meta-attention model's report with `introspect()`,
the evaluator's and the self-critic's scores. The modules:

- `common`: the Gradio import, the models (folders, ONNX exports, or small untrained demo models), images
  and the in-page messages;
- `trm_tab`, `crsm_tab`, `meta_tab`: each tab's handlers (plain functions of the page's values) and layout;
- `blocks`: the page and its server; `space`: the files that make a folder a Hugging Face Space.

Gradio is imported only when a page is built, so this package imports without it.
"""

from .blocks import build_app, launch_app
from .common import APP_EXTRA_HINT, AppInputError, AppModels, LoadedModel, load_app_models, load_model
from .space import write_space_files


__all__ = [
    "APP_EXTRA_HINT",
    "AppInputError",
    "AppModels",
    "LoadedModel",
    "build_app",
    "launch_app",
    "load_app_models",
    "load_model",
    "write_space_files",
]
