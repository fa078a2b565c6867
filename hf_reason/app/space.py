# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The files that make a model folder a Hugging Face Space running the app: `app.py`, `requirements.txt`
and the Space keys in `README.md`'s metadata (the model card's own keys stay)."""

import os
from pathlib import Path
from typing import Union

from ..file_io import atomic_write, read_json_object
from ..hub.file_names import CARD_NAME, ONNX_SUBFOLDER


SPACE_APP_NAME = "app.py"
SPACE_REQUIREMENTS_NAME = "requirements.txt"
# `hf-reason app`'s option for each family's folder.
_FAMILY_OPTIONS = {"trm": "trm", "crsm": "crsm", "meta_attention": "meta"}
SPACE_APP = '''"""A Hugging Face Space: the hf-reason app on the model in this folder (written by hf_reason.app.space)."""

from pathlib import Path

from hf_reason.app import launch_app
from hf_reason.app.space import space_model_folders


if __name__ == "__main__":
    # Spaces route their public port (GRADIO_SERVER_PORT, default 7860) on every interface.
    launch_app(**space_model_folders(Path(__file__).resolve().parent), host="0.0.0.0")
'''


def space_model_folders(folder: Union[str, os.PathLike]) -> dict:
    """The `launch_app` folder option for the model in `folder`: its weights at the root, or, for an
    ONNX-only folder, the `hf-reason export` folder under `onnx/` (run on ONNX Runtime)."""
    folder = Path(folder)
    candidates = [folder, folder / ONNX_SUBFOLDER]
    for candidate in candidates:
        config = candidate / "config.json"
        if not config.is_file():
            continue
        has_model = any(candidate.glob("*.safetensors")) or any(candidate.glob("*.onnx"))
        if not has_model:
            continue
        model_type = read_json_object(config).get("model_type")
        if model_type not in _FAMILY_OPTIONS:
            raise ValueError(
                f"{config}: model_type {model_type!r} has no tab in the app (expected one of {sorted(_FAMILY_OPTIONS)})."
            )
        return {_FAMILY_OPTIONS[model_type]: str(candidate)}
    raise ValueError(f"{folder} holds no model for the app: no config.json with safetensors or ONNX weights.")


def _space_metadata(family: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    metadata = {
        "title": f"hf-reason {family} demo",
        "emoji": "🧩",
        "colorFrom": "blue",
        "colorTo": "indigo",
        "sdk": "gradio",
        "app_file": SPACE_APP_NAME,
        "pinned": False,
    }
    try:
        metadata["sdk_version"] = version("gradio")
    except PackageNotFoundError:
        pass  # the Space then runs the Hub's default Gradio
    return metadata


def write_space_files(folder: Union[str, os.PathLike]) -> list[str]:
    """Makes `folder` (a model folder ready to upload) a Space: writes `app.py` and `requirements.txt`, and
    adds the Space keys (`sdk: gradio`, `app_file`, title, ...) to `README.md`'s metadata (a card is created
    when there is none). Returns the names of the files written.

    Raises `ValueError` when the folder holds no model the app shows (see `space_model_folders`).
    """
    from huggingface_hub import ModelCard, ModelCardData

    from .. import __version__

    folder = Path(folder)
    options = space_model_folders(folder)
    family = next(name for name, option in _FAMILY_OPTIONS.items() if option in options)
    atomic_write(folder / SPACE_APP_NAME, SPACE_APP)
    requirement = "hf-reason[app]" if "dev" in __version__ else f"hf-reason[app]>={__version__}"
    atomic_write(folder / SPACE_REQUIREMENTS_NAME, f"{requirement}\n")
    card_path = folder / CARD_NAME
    if card_path.is_file():
        card = ModelCard.load(card_path)
    else:
        card = ModelCard(f"---\n{ModelCardData().to_yaml()}\n---\n# hf-reason {family} demo\n")
    for key, value in _space_metadata(family).items():
        setattr(card.data, key, value)
    atomic_write(card_path, str(card))
    return [SPACE_APP_NAME, SPACE_REQUIREMENTS_NAME, CARD_NAME]
