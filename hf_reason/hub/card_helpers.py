# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""What the model, adapter and tokenizer cards share: their metadata, the class a checkpoint loads with,
and small readers and formatters.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Optional

from huggingface_hub import ModelCardData

from ..file_io import PathLike, check_safetensors, read_json_object
from .results import EvaluationResult


def _json_safe(value):
    """`value` as JSON types (enums by value, sets sorted, unknown objects as strings), for tables and card inputs."""
    if isinstance(value, Enum):  # before str: PEFT's and transformers' enums subclass str
        return _json_safe(value.value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (set, frozenset)):
        return sorted(_json_safe(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return getattr(value, "value", None) if hasattr(value, "value") else str(value)


def _read_json(path: Path) -> Optional[dict]:
    """The JSON object in the file at `path`, or None when there is no such file (`read_json_object`)."""
    return read_json_object(path) if path.is_file() else None


def _version() -> str:
    """hf-reason's version, as cards and commit messages name it."""
    import hf_reason

    return hf_reason.__version__


def count_safetensors_parameters(paths: Iterable[PathLike]) -> int:
    """Parameters in safetensors files, from their headers only (no tensor is read)."""
    from safetensors import safe_open

    total = 0
    for path in paths:
        with safe_open(str(check_safetensors(path)), framework="pt") as f:
            for key in f.keys():
                total += math.prod(f.get_slice(key).get_shape())
    return total


def _architecture(config: Mapping) -> str:
    """The class a checkpoint holds: `config.architectures[0]`, else the task head its `auto_map` names."""
    archs = config.get("architectures") or []
    if archs:
        return archs[0]
    auto_map = config.get("auto_map") or {}
    heads = [ref for key, ref in auto_map.items() if key not in ("AutoConfig", "AutoModel")]
    ref = heads[0] if heads else auto_map.get("AutoModel")
    if not ref:
        raise ValueError(
            "`config.architectures` and `config.auto_map` are both empty: cannot tell which class to load."
        )
    return ref.split(".")[-1]


def auto_class_for(config: Mapping) -> str:
    """The transformers Auto class that loads this checkpoint with `trust_remote_code=True`."""
    auto_map = config.get("auto_map") or {}
    if not auto_map:
        raise ValueError(
            "`config.auto_map` is empty: the checkpoint cannot load with trust_remote_code. The model family must call "
            "`register_for_auto_class` (see hf_reason/models/trm/__init__.py)."
        )
    arch = _architecture(config)
    for key, ref in auto_map.items():
        if key != "AutoConfig" and ref.split(".")[-1] == arch:
            return key
    heads = [key for key in auto_map if key not in ("AutoConfig", "AutoModel")]
    return heads[0] if heads else "AutoModel"


def _hf_reason_import(class_name: str, model_type: str) -> str:
    """The shortest import line of an hf-reason class: from the top-level package, else from its family."""
    import hf_reason

    from .families import FAMILIES

    if hasattr(hf_reason, class_name):
        return f"from hf_reason import {class_name}"
    family = FAMILIES.get(model_type)
    module = family.module if family is not None and family.module else f"hf_reason.models.{model_type}"
    return f"from {module} import {class_name}"


def _metadata(
    *,
    model_name: str,
    library_name: str,
    tags: Sequence[str],
    dataset_rows: Sequence[Mapping],
    results: Sequence[EvaluationResult],
    task_type: str,
    task_name: Optional[str],
    license: str,
    pipeline_tag: Optional[str],
    base_model: Optional[str],
    language,
) -> ModelCardData:
    """The card's YAML metadata: Hub datasets, metrics and results (`model-index`) from the card's rows."""
    hub_datasets = sorted({row["hub_id"] for row in dataset_rows if row.get("hub_id")})
    metrics = sorted({r.metric_type for r in results})
    return ModelCardData(
        model_name=model_name,
        library_name=library_name,
        license=license,
        language=language,
        tags=list(dict.fromkeys(tags)),
        datasets=hub_datasets or None,
        metrics=metrics or None,
        pipeline_tag=pipeline_tag,
        base_model=base_model,
        eval_results=[r.to_eval_result(task_type, task_name) for r in results] or None,
    )
