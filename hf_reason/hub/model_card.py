# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The model card of an hf-reason model (`build_model_card`), from its family's template in `model_cards/`."""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional, Union

from huggingface_hub import ModelCard

from .card_helpers import _architecture, _hf_reason_import, _json_safe, _metadata, _version, auto_class_for
from .card_inputs import _card_sources, _training_section
from .citations import _citations, training_methods
from .families import BASE_TAGS, family_for, template_path
from .results import EvaluationResult, _eval_table


# Report fields that describe the exporting machine (a local path), not the export.
_LOCAL_REPORT_KEYS = ("source",)
_CONFIG_BOILERPLATE = {
    "architectures",
    "auto_map",
    "transformers_version",
    "torch_dtype",
    "dtype",
    "model_type",
    "_name_or_path",
    "output_attentions",
    "output_hidden_states",
    "return_dict",
    "use_cache",
}


def _config_table(config: Mapping) -> str:
    """The config's own fields as a collapsed table (what every config carries is left out)."""
    rows = [
        f"| `{k}` | `{json.dumps(_json_safe(v))}` |"
        for k, v in sorted(config.items())
        if k not in _CONFIG_BOILERPLATE and not k.startswith("_") and not isinstance(v, Mapping)
    ]
    return (
        "<details><summary>Configuration</summary>\n\n| field | value |\n| --- | --- |\n"
        + "\n".join(rows)
        + "\n\n</details>"
    )


def _human_count(n: Optional[int]) -> str:
    """A parameter count as the card shows it: `11.1K`, `124.4M`."""
    if n is None:
        return "unknown number of"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _config_dict(model_or_config) -> tuple[dict, Optional[int]]:
    """(config as a dict, parameter count or None) from a model, a config or a config dict."""
    from transformers import PretrainedConfig, PreTrainedModel

    if isinstance(model_or_config, PreTrainedModel):
        config = model_or_config.config.to_dict()
        config["architectures"] = [type(model_or_config).__name__]
        return config, sum(p.numel() for p in model_or_config.parameters())
    if isinstance(model_or_config, PretrainedConfig):
        return model_or_config.to_dict(), None
    if isinstance(model_or_config, Mapping):
        return dict(model_or_config), None
    raise ValueError(
        f"`model` must be a PreTrainedModel, a PretrainedConfig or a config dict; got "
        f"{type(model_or_config).__name__}."
    )


def _model_loading_code(config: Mapping, model_id: str) -> str:
    """How to load the checkpoint: with `trust_remote_code` where hf-reason is not installed, and with it."""
    auto_class = auto_class_for(config)
    arch = _architecture(config)
    return (
        "Where hf-reason is not installed (the code ships with the checkpoint):\n\n"
        "```python\n"
        f"from transformers import {auto_class}\n\n"
        f"model = {auto_class}.from_pretrained({model_id!r}, trust_remote_code=True)\n"
        "```\n\n"
        "With hf-reason installed (`pip install hf-reason`; no remote code is run):\n\n"
        "```python\n"
        f"{_hf_reason_import(arch, config['model_type'])}\n\n"
        f"model = {arch}.from_pretrained({model_id!r})\n"
        "```"
    )


def _onnx_only_loading_code(config: Mapping, model_id: str, onnx_files: Sequence[str]) -> str:
    """How to load a repository that holds only an ONNX export (no PyTorch weights to `from_pretrained`)."""
    if not onnx_files:
        raise ValueError("`onnx_only=True` needs the `onnx_files` of the export.")
    import hf_reason.export

    folder = str(Path(onnx_files[0]).parent).replace("\\", "/")
    path = "path" if folder in ("", ".") else f"path + {'/' + folder!r}"
    text = (
        "This repository holds an ONNX export only (no PyTorch weights). Where hf-reason is not installed, run it "
        "with ONNX Runtime as shown under *ONNX Runtime* below."
    )
    wrapper = f"ORT{_architecture(config)}"
    if hasattr(hf_reason.export, wrapper):
        text += (
            " With hf-reason installed, its ONNX Runtime wrapper has the PyTorch model's interface:\n\n"
            "```python\n"
            "from huggingface_hub import snapshot_download\n\n"
            f"from hf_reason.export import {wrapper}\n\n"
            f"path = snapshot_download({model_id!r})\n"
            f"model = {wrapper}.from_pretrained({path})\n"
            "```"
        )
    return text


def _onnx_section(onnx_files: Sequence[str], onnx_report: Optional[Mapping], model_id: str) -> str:
    """The card's *ONNX Runtime* section: the files, how to run them, and the export report (empty without files)."""
    if not onnx_files:
        return ""
    folder = str(Path(onnx_files[0]).parent).replace("\\", "/")
    folder = "" if folder == "." else folder
    first = next((f for f in onnx_files if f.endswith(".onnx")), onnx_files[0])
    sub = f"/{folder}" if folder else ""
    lines = [
        "## ONNX Runtime",
        "",
        f"An ONNX export is included{f' in `{folder}/`' if folder else ''}: "
        + ", ".join(f"`{f}`" for f in onnx_files)
        + ".",
        "",
        "```python",
        "import onnxruntime as ort",
        "from huggingface_hub import snapshot_download",
        "",
        f"path = snapshot_download({model_id!r}" + (f", allow_patterns=[{folder + '/*'!r}]" if folder else "") + ")",
        f"session = ort.InferenceSession(path + {sub + '/' + Path(first).name!r})",
        "```",
        "",
        f"With hf-reason, the ONNX Runtime wrappers in `hf_reason.export` load the folder (`from_pretrained(path + {sub!r})`)"
        if folder
        else "With hf-reason, the ONNX Runtime wrappers in `hf_reason.export` load the folder (`from_pretrained(path)`).",
    ]
    if onnx_report:
        onnx_report = {k: v for k, v in onnx_report.items() if k not in _LOCAL_REPORT_KEYS}
        scalars = {k: v for k, v in onnx_report.items() if isinstance(v, (str, int, float, bool))}
        from ..export.sessions import REPORT_NAME  # only a card with an export pays the export package's import

        lines += ["", f"Export report (`{REPORT_NAME}`):", ""]
        if scalars:
            lines += ["| field | value |", "| --- | --- |"] + [
                f"| `{k}` | `{json.dumps(v)}` |" for k, v in scalars.items()
            ]
        nested = {k: v for k, v in onnx_report.items() if k not in scalars}
        if nested:
            lines += [
                "",
                "<details><summary>Full report</summary>",
                "",
                "```json",
                json.dumps(_json_safe(nested), indent=2),
                "```",
                "",
                "</details>",
            ]
    return "\n".join(lines) + "\n"


def build_model_card(
    model,
    *,
    repo_id: Optional[str] = None,
    training_args=None,
    datasets=None,
    eval_results: Optional[Sequence[Union[EvaluationResult, Mapping]]] = None,
    base_model: Optional[str] = None,
    license: str = "apache-2.0",
    language=None,
    tags: Sequence[str] = (),
    num_parameters: Optional[int] = None,
    onnx_files: Sequence[str] = (),
    onnx_report: Optional[Mapping] = None,
    model_summary: Optional[str] = None,
    onnx_only: bool = False,
) -> ModelCard:
    """The model card of an hf-reason model, from its family's template in `model_cards/`.

    Args:
        model: the model, its config, or the config as a dict (`config.json`).
        repo_id: Hub id the loading code names (defaults to `"<your-org>/<model_type>"`).
        training_args: a `TrainingArguments` (subclass) or a dict of hyperparameters.
        datasets: Hub ids or `datasets.Dataset`s used, optionally as a mapping role -> dataset.
        eval_results: `EvaluationResult`s (see `results_from_metrics` for a Trainer's metrics).
        base_model: Hub id this model was fine-tuned from.
        onnx_files / onnx_report: files of an included ONNX export and its `export_report.json`.
        onnx_only: the repository holds the ONNX export and no PyTorch weights: the card loads it
            with ONNX Runtime only.
    """
    config, counted = _config_dict(model)
    model_type = config.get("model_type")
    family = family_for(model_type)
    training, dataset_rows, results = _card_sources(training_args, datasets, eval_results)
    model_id = repo_id or f"<your-org>/{model_type.replace('_', '-')}"
    card_data = _metadata(
        model_name=model_id.split("/")[-1],
        library_name="transformers",
        tags=[*BASE_TAGS, *family.tags, "custom_code", *tags],
        dataset_rows=dataset_rows,
        results=results,
        task_type=family.task_type,
        task_name=family.task_name,
        license=license,
        pipeline_tag=family.pipeline_tag,
        base_model=base_model,
        language=language,
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path(family.template)),
        model_name=model_id.split("/")[-1],
        model_summary=model_summary or family.summary,
        architecture=_architecture(config),
        num_parameters=_human_count(num_parameters if num_parameters is not None else counted),
        hf_reason_version=_version(),
        base_model=base_model,
        config_table=_config_table(config),
        loading_code=_onnx_only_loading_code(config, model_id, onnx_files)
        if onnx_only
        else _model_loading_code(config, model_id),
        onnx_section=_onnx_section(list(onnx_files), onnx_report, model_id),
        training_section=_training_section(training, dataset_rows),
        eval_table=_eval_table(results) if results else "",
        method_citations=_citations(training_methods(training)),
        onnx_only=onnx_only,
    )
