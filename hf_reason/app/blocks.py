# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The app's page (`build_app`) and its server (`launch_app`)."""

import os
from typing import Optional, Union

from .common import AppModels, load_app_models, require_gradio
from .crsm_tab import build_crsm_tab
from .meta_tab import build_meta_tab
from .trm_tab import build_trm_tabs


TITLE = "hf-reason: see the models reason"
INTRO = (
    "# See the models reason\n"
    "TRM refines a puzzle over supervision steps and learns when to stop; CRSM searches over its recurrent "
    "state with MCTS; the meta-attention GPT-2 reads its own attention maps. Everything runs on this "
    "machine's CPU."
)


def build_app(models: Optional[AppModels] = None, **model_folders):
    """The Gradio Blocks page: one tab per family.

    Args:
        models (`AppModels`, *optional*): the models to run; default `load_app_models(**model_folders)`.
        model_folders: `trm`, `crsm`, `meta`, `critic` folders for `load_app_models`.

    Returns:
        The `gradio.Blocks`, with `.parts` (the components by name) and `.models`.
    """
    gr = require_gradio()
    models = models if models is not None else load_app_models(**model_folders)
    with gr.Blocks(title=TITLE) as app:
        gr.Markdown(INTRO)
        parts = {}
        with gr.Tabs():
            parts.update(build_trm_tabs(gr, models))
            parts.update(build_crsm_tab(gr, models))
            parts.update(build_meta_tab(gr, models))
    app.parts, app.models = parts, models
    return app


def launch_app(
    trm: Union[None, str, list] = None,
    crsm: Optional[str] = None,
    meta: Optional[str] = None,
    critic: Optional[str] = None,
    host: str = "127.0.0.1",
    port: Optional[int] = None,
    block: bool = True,
):
    """Builds the app and serves it at `http://host:port` (`port` None: `GRADIO_SERVER_PORT` or 7860).

    With `block=False` the server runs in a background thread and the `gradio.Blocks` is returned (call
    `.close()` to stop it); its `.local_url` is the address.
    """
    app = build_app(trm=trm, crsm=crsm, meta=meta, critic=critic)
    if port is None:
        port = int(os.environ.get("GRADIO_SERVER_PORT", 7860))
    app.queue().launch(server_name=host, server_port=port, prevent_thread_lock=not block, quiet=not block)
    return app
