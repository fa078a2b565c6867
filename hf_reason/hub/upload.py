# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The exact folder uploaded to the Hub (`prepare_upload_folder`) and the upload in one commit (`push_to_hub`)."""

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from huggingface_hub import HfApi, ModelCard

from ..file_io import PathLike, atomic_write, check_saved_weights
from .adapter_card import _base_config_summary, build_adapter_card
from .card_helpers import _read_json, _version, count_safetensors_parameters
from .file_names import CARD_INPUTS_NAME, CARD_NAME, ONNX_SUBFOLDER
from .model_card import build_model_card
from .tokenizer_card import build_tokenizer_card
from .upload_files import (
    ALLOWED_FILES,
    LINK_REASONS,
    ONNX_ALLOWED_KINDS,
    copy_allowed_files,
    copy_card_assets,
    place,
)


_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
_ADAPTER_WEIGHT_FILES = ("adapter_model.safetensors",)
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json")
_MODULE_RE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


@dataclass
class UploadPlan:
    """The exact folder `push_to_hub` uploads, and what was left out of it and why.

    Attributes:
        folder: the folder, uploaded as it is.
        kind: what it holds: `"model"`, `"adapter"`, `"onnx"` (an ONNX export without PyTorch weights)
            or `"tokenizer"`.
        repo_id: the repository it is built for (the card's loading code names it).
        files: the files in `folder`, as sorted POSIX paths relative to it.
        excluded: `(path, reason)` for each file or folder of the source that is left out.
        card: the card written to `README.md`, or None.
    """

    folder: Path
    kind: str
    repo_id: str
    files: list[str] = field(default_factory=list)
    excluded: list[tuple[str, str]] = field(default_factory=list)
    card: Optional[ModelCard] = None


def _own_json(folder: Path, name: str) -> Optional[dict]:
    """The JSON object in `folder`'s file `name`, None when absent or a symbolic link (never followed)."""
    return None if (folder / name).is_symlink() else _read_json(folder / name)


def _code_files(source: Path, config: Mapping) -> dict[str, Path]:
    """The modules named by `auto_map` and their relative imports, as `{file name: where to copy it from}`.

    Each module comes from the saved folder when it is a regular file there, else from the installed
    family package.
    """
    from transformers.dynamic_module_utils import get_relative_imports

    model_type = str(config.get("model_type"))
    family_dir = Path(__file__).parents[1] / "models" / model_type
    pending = []
    for ref in (config.get("auto_map") or {}).values():
        ref = ref[0] if isinstance(ref, (list, tuple)) else ref
        if ref and "--" not in ref:  # "other/repo--module.Class" lives in another repository
            pending.append(ref.rsplit(".", 1)[0])
    files: dict[str, Path] = {}
    while pending:
        module = pending.pop()
        if not isinstance(module, str) or not _MODULE_RE.fullmatch(module) or not _MODULE_RE.fullmatch(model_type):
            raise ValueError(
                f"{source}/config.json: `auto_map` names the module {module!r} of model type {model_type!r}; "
                "expected dotted Python names."
            )
        name = module.replace(".", "/") + ".py"
        if name in files:
            continue
        own = source / name
        origin = own if own.is_file() and not own.is_symlink() else family_dir / name
        if not origin.is_file():
            raise FileNotFoundError(f"`auto_map` needs {name}, which is neither in {source} nor in {family_dir}.")
        files[name] = origin
        pending.extend(get_relative_imports(origin))
    return files


def _base_config(base_model: Optional[str]) -> Optional[dict]:
    """The base model's config.json, if it is available locally (a folder or the Hub cache); no code runs."""
    if not base_model:
        return None
    if Path(base_model, "config.json").is_file():
        return _read_json(Path(base_model, "config.json"))
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(base_model, "config.json")
    return _read_json(Path(cached)) if isinstance(cached, str) else None


def _base_config_from_adapter(adapter_config: Mapping) -> Optional[dict]:
    """The base's config when PEFT recorded an hf-reason class as the base (`auto_mapping`).

    Only hf-reason's own installed modules are imported here, never code from a checkpoint.
    """
    import importlib

    mapping = adapter_config.get("auto_mapping") or {}
    library, class_name = mapping.get("parent_library") or "", mapping.get("base_model_class")
    if not (library.startswith("hf_reason.") and class_name):
        return None
    model_cls = getattr(importlib.import_module(library), class_name)
    config = model_cls.config_class().to_dict()
    config["architectures"] = [class_name]
    return config


def prepare_upload_folder(
    source_dir: PathLike,
    repo_id: str,
    upload_dir: Optional[PathLike] = None,
    *,
    onnx_dir: Optional[PathLike] = None,
    base_model: Optional[str] = None,
    space: bool = False,
    **card_kwargs,
) -> UploadPlan:
    """Builds, in `upload_dir`, the exact folder that `push_to_hub` uploads, and returns its plan.

    `source_dir` is a `save_pretrained` folder of an hf-reason model (weights, config, tokenizer)
    or of a PEFT adapter (`adapter_config.json`). Only what a model needs is uploaded, an allow-list
    (`hf_reason.hub.upload_files`): config, generation config, safetensors weights (sharded too),
    tokenizer files and chat template, the `auto_map` code files, adapter files, ONNX graphs with
    their external data and report, the card and the images it shows. Everything else is left out
    and listed in `plan.excluded` with the reason: pickles, training state (every file that a trainer
    class, ours or a user's subclass, declares in its `training_state_files`, and `Trainer`'s
    `trainer_state.json`), files that may hold credentials, subfolders, other files, and symbolic
    links, which are never followed.
    The `auto_map` code files are added when missing; the card is rendered for `repo_id` from the
    inputs `write_model_card` kept (explicit `card_kwargs`, e.g. `eval_results=...`, take
    precedence); `onnx_dir` (an `hf-reason export` folder) goes to `onnx/` with its
    `export_report.json`. An adapter card loads its base with `trust_remote_code=True` when
    the base's config has an `auto_map`; that config comes from `card_kwargs["base_config"]`, the
    saved card inputs, the base's folder or Hub cache, or PEFT's record of an hf-reason base class.
    With `space=True` the folder is also a Hugging Face Space running the app on the model
    (`hf_reason.app.write_space_files`: `app.py`, `requirements.txt`, the Space keys in the card).
    """
    # Imported here: the trainers import this package for their cards, and importing them (TRL) and the
    # export package (Optimum) costs seconds that only building an upload folder needs to pay.
    from transformers.trainer import TRAINER_STATE_NAME

    from ..export.sessions import REPORT_NAME
    from ..trainers import training_state_files

    source = Path(source_dir)
    if not source.is_dir():
        raise FileNotFoundError(f"`source_dir` {source} is not a directory.")
    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"`repo_id` must look like 'org/name', got {repo_id!r}.")
    if onnx_dir is not None and not Path(onnx_dir).is_dir():
        raise FileNotFoundError(f"`onnx_dir` {onnx_dir} is not a directory (an `hf-reason export` folder).")

    state_files = (*training_state_files(), TRAINER_STATE_NAME)
    folder = Path(upload_dir) if upload_dir is not None else Path(tempfile.mkdtemp(prefix="hf-reason-upload-"))
    if folder.exists() and any(folder.iterdir()):
        raise ValueError(f"`upload_dir` {folder} must be empty or not exist.")
    folder.mkdir(parents=True, exist_ok=True)
    plan = UploadPlan(folder=folder, kind="", repo_id=repo_id)
    own_config = _own_json(source, "config.json")
    code_files = _code_files(source, own_config) if own_config is not None else {}
    copy_allowed_files(
        source,
        folder,
        plan.excluded,
        allowed_kinds=tuple(ALLOWED_FILES),
        state_files=state_files,
        code_files={name for name, origin in code_files.items() if origin.parent == source},
        skip=(CARD_NAME, CARD_INPUTS_NAME),  # the card is rendered anew for the repo id
    )
    check_saved_weights(folder, shown_as=source)  # the weights uploaded, named as the user knows them

    saved = _own_json(source, CARD_INPUTS_NAME) or {}
    inputs = {
        "training_args": saved.get("training") or None,
        "datasets": saved.get("datasets") or None,
        "eval_results": saved.get("eval_results") or None,
    }
    inputs.update(card_kwargs)
    explicit_base_config = inputs.pop("base_config", None)

    adapter_config = _read_json(folder / "adapter_config.json")
    config = _read_json(folder / "config.json")
    if adapter_config is not None:
        plan.kind = "adapter"
        if not any((folder / name).is_file() for name in _ADAPTER_WEIGHT_FILES):
            raise ValueError(
                f"{source} has adapter_config.json but no adapter_model.safetensors (pickled "
                "adapter_model.bin is not uploaded: save with safe_serialization=True)."
            )
        base = base_model or saved.get("base_model") or adapter_config.get("base_model_name_or_path")
        if not base:
            raise ValueError("`base_model` is needed for an adapter card: adapter_config.json names no base model.")
        weights = [folder / n for n in _ADAPTER_WEIGHT_FILES if (folder / n).is_file()]
        base_config = (
            explicit_base_config
            or saved.get("base_config")
            or _base_config(base)
            or _base_config_from_adapter(adapter_config)
        )
        plan.card = build_adapter_card(
            adapter_config,
            base_model=base,
            repo_id=repo_id,
            base_config=base_config,
            num_parameters=count_safetensors_parameters(weights),
            **inputs,
        )
    elif config is not None:
        plan.kind = "model"
        onnx_only = not any((folder / n).is_file() for n in _WEIGHT_FILES) and any(folder.glob("*.onnx"))
        if not onnx_only and not any((folder / n).is_file() for n in _WEIGHT_FILES):
            linked = [name for name, reason in plan.excluded if name in _WEIGHT_FILES and reason in LINK_REASONS]
            raise ValueError(
                f"{source} holds no model.safetensors (pickled weights are never uploaded: save with "
                "safe_serialization=True)."
                + (
                    f" {linked[0]} is a symbolic link, never followed: copy the file in (a Hub cache snapshot: "
                    "`snapshot_download(repo_id, local_dir=...)`)."
                    if linked
                    else ""
                )
            )
        for name, origin in code_files.items():
            if not (folder / name).exists():
                place(origin, folder / name)
        if onnx_dir is not None:
            onnx_source = Path(onnx_dir).resolve()
            onnx_config = _own_json(onnx_source, "config.json")
            onnx_code = _code_files(onnx_source, onnx_config) if onnx_config is not None else {}
            copy_allowed_files(
                onnx_source,
                folder / ONNX_SUBFOLDER,
                plan.excluded,
                allowed_kinds=ONNX_ALLOWED_KINDS,
                state_files=state_files,
                code_files={name for name, origin in onnx_code.items() if origin.parent == onnx_source},
                prefix=f"{ONNX_SUBFOLDER}/",
            )
            if not any((folder / ONNX_SUBFOLDER).glob("*.onnx")):
                raise ValueError(f"`onnx_dir` {onnx_dir} holds no .onnx file.")
        onnx_files = sorted(
            p.relative_to(folder).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and (p.suffix in (".onnx", ".onnx_data") or p.name == REPORT_NAME)
        )
        report_path = next((folder / f for f in onnx_files if Path(f).name == REPORT_NAME), None)
        weights = (
            [folder / "model.safetensors"]
            if (folder / "model.safetensors").is_file()
            else sorted(folder.glob("model-*.safetensors"))
        )
        plan.card = build_model_card(
            config,
            repo_id=repo_id,
            base_model=base_model or saved.get("base_model"),
            num_parameters=count_safetensors_parameters(weights) if weights else None,
            onnx_files=onnx_files,
            onnx_report=_read_json(report_path) if report_path else None,
            onnx_only=onnx_only,
            **inputs,
        )
        if onnx_only:
            plan.kind = "onnx"
    elif any((folder / n).is_file() for n in _TOKENIZER_FILES):
        plan.kind = "tokenizer"
        plan.card = build_tokenizer_card(folder, repo_id=repo_id, **card_kwargs)
    else:
        raise ValueError(
            f"{source} is not a save_pretrained folder: no config.json, adapter_config.json or tokenizer."
        )
    if plan.card is not None:
        copy_card_assets(str(plan.card), source, folder, plan.excluded)
        atomic_write(folder / CARD_NAME, str(plan.card))
    if space:
        from ..app.space import write_space_files

        write_space_files(folder)
        plan.card = ModelCard.load(folder / CARD_NAME)  # the card with the Space's keys, as uploaded
    plan.excluded.sort()
    plan.files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return plan


def push_to_hub(
    source,
    repo_id: str,
    *,
    private: bool = False,
    onnx_dir: Optional[PathLike] = None,
    tokenizer=None,
    base_model: Optional[str] = None,
    commit_message: Optional[str] = None,
    revision: Optional[str] = None,
    create_pr: bool = False,
    token: Optional[str] = None,
    api: Optional[HfApi] = None,
    space: bool = False,
    **card_kwargs,
):
    """Uploads a model, adapter, tokenizer or ONNX export to the Hub in one commit, with its card.

    Args:
        source: a `save_pretrained` folder, or an object with `save_pretrained` (a model, a
            `PeftModel`, a tokenizer), which is saved (safetensors) to a temporary folder first.
        repo_id: `"org/name"`; the repository is created if it does not exist.
        private: create the repository private.
        onnx_dir: an `hf-reason export` folder, uploaded under `onnx/` with its report.
        tokenizer: a tokenizer saved next to the model (when `source` is an object).
        base_model: for adapters, the base model's Hub id (default: from `adapter_config.json`).
        api: the `HfApi` to use (default: `HfApi(token=token)`).
        space: upload to a Hugging Face Space that runs the app on the model (see `prepare_upload_folder`).
        card_kwargs: passed to the card builder (e.g. `eval_results`, `datasets`, `training_args`).

    Returns:
        The `CommitInfo` of the upload.
    """
    api = api or HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="hf-reason-push-") as tmp:
        if isinstance(source, (str, os.PathLike)):
            source_dir = Path(source)
        else:
            if not hasattr(source, "save_pretrained"):
                raise ValueError(f"`source` must be a folder or have `save_pretrained`; got {type(source).__name__}.")
            source_dir = Path(tmp, "saved")
            if hasattr(source, "get_base_model"):  # a PeftModel: its base tells whether loading needs remote code
                base = source.get_base_model()
                card_kwargs.setdefault(
                    "base_config",
                    _base_config_summary({**base.config.to_dict(), "architectures": [type(base).__name__]}),
                )
            kwargs = {} if _is_tokenizer(source) else {"safe_serialization": True}
            source.save_pretrained(source_dir, **kwargs)
            if tokenizer is not None:
                tokenizer.save_pretrained(source_dir)
        plan = prepare_upload_folder(
            source_dir,
            repo_id,
            Path(tmp, "upload"),
            onnx_dir=onnx_dir,
            base_model=base_model,
            space=space,
            **card_kwargs,
        )
        repo_type = "space" if space else "model"
        create_kwargs = {"space_sdk": "gradio"} if space else {}
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type=repo_type, **create_kwargs)
        return api.upload_folder(
            repo_id=getattr(repo_url, "repo_id", None) or repo_id,
            folder_path=str(plan.folder),
            repo_type=repo_type,
            revision=revision,
            create_pr=create_pr,
            commit_message=commit_message or f"Upload {plan.kind} with hf-reason {_version()}",
        )


def _is_tokenizer(obj) -> bool:
    from transformers import PreTrainedTokenizerBase

    return isinstance(obj, PreTrainedTokenizerBase)
