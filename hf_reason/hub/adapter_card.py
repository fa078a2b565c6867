# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The card of a PEFT adapter (`build_adapter_card`): how to load it on its base, and what it adapts."""

import json
from collections.abc import Mapping, Sequence
from typing import Optional, Union

from huggingface_hub import ModelCard

from .card_helpers import _architecture, _hf_reason_import, _json_safe, _metadata, _version, auto_class_for
from .card_inputs import _card_sources, _training_section
from .citations import _citations, peft_methods, training_methods
from .families import ADAPTER_TEMPLATE, BASE_TAGS, FAMILIES, template_path
from .results import EvaluationResult, _eval_table


# PEFT task types and the transformers Auto class their base model loads with.
_PEFT_TASK_AUTO_CLASS = {
    "CAUSAL_LM": "AutoModelForCausalLM",
    "SEQ_CLS": "AutoModelForSequenceClassification",
    "TOKEN_CLS": "AutoModelForTokenClassification",
    "SEQ_2_SEQ_LM": "AutoModelForSeq2SeqLM",
    "QUESTION_ANS": "AutoModelForQuestionAnswering",
    "FEATURE_EXTRACTION": "AutoModel",
}
_PEFT_TASK_PIPELINE = {"CAUSAL_LM": "text-generation", "SEQ_2_SEQ_LM": "text2text-generation"}


def build_adapter_card(
    adapter_config: Mapping,
    *,
    base_model: str,
    repo_id: Optional[str] = None,
    base_config: Optional[Mapping] = None,
    training_args=None,
    datasets=None,
    eval_results: Optional[Sequence[Union[EvaluationResult, Mapping]]] = None,
    license: str = "apache-2.0",
    language=None,
    tags: Sequence[str] = (),
    num_parameters: Optional[int] = None,
    model_summary: Optional[str] = None,
) -> ModelCard:
    """The card of a PEFT adapter (`adapter_config.json` as a dict) trained on top of `base_model`.

    `base_config` (the base's `config.json` as a dict) picks the Auto class and whether the base
    needs `trust_remote_code`; without it the adapter's `task_type` decides.
    """
    if not isinstance(base_model, str) or not base_model:
        raise ValueError(f"`base_model` must be the base model's Hub id, got {base_model!r}.")
    adapter_config = {k: _json_safe(v) for k, v in dict(adapter_config).items()}
    peft_type = adapter_config.get("peft_type") or "adapter"
    task_type = adapter_config.get("task_type")
    remote = bool(base_config and base_config.get("auto_map"))
    if remote:
        auto_class = auto_class_for(base_config)
    else:
        auto_class = _PEFT_TASK_AUTO_CLASS.get(task_type, "AutoModel")
    family = FAMILIES.get((base_config or {}).get("model_type"))
    pipeline_tag = family.pipeline_tag if family else _PEFT_TASK_PIPELINE.get(task_type)
    hub_task = family.task_type if family else (pipeline_tag or "other")
    training, dataset_rows, results = _card_sources(training_args, datasets, eval_results)
    model_id = repo_id or f"<your-org>/{base_model.split('/')[-1]}-{str(peft_type).lower()}"
    card_data = _metadata(
        model_name=model_id.split("/")[-1],
        library_name="peft",
        tags=[*BASE_TAGS, "peft", str(peft_type).lower(), *(family.tags if family else ()), *tags],
        dataset_rows=dataset_rows,
        results=results,
        task_type=hub_task,
        task_name=family.task_name if family else None,
        license=license,
        pipeline_tag=pipeline_tag,
        base_model=base_model,
        language=language,
    )
    trust = ", trust_remote_code=True" if remote else ""
    loading_code = (
        "```python\n"
        "from peft import PeftModel\n"
        f"from transformers import {auto_class}\n\n"
        f"base = {auto_class}.from_pretrained({base_model!r}{trust})\n"
        f"model = PeftModel.from_pretrained(base, {model_id!r})\n"
        "```"
    )
    if family is not None:
        arch = _architecture(base_config)
        loading_code += (
            "\n\nWith hf-reason installed (no remote code is run):\n\n```python\nfrom peft import PeftModel\n"
            f"{_hf_reason_import(arch, base_config['model_type'])}\n\n"
            f"base = {arch}.from_pretrained({base_model!r})\n"
            f"model = PeftModel.from_pretrained(base, {model_id!r})\n```"
        )
    shown = {
        k: v
        for k, v in adapter_config.items()
        if k
        in (
            "peft_type",
            "task_type",
            "r",
            "lora_alpha",
            "lora_dropout",
            "target_modules",
            "bias",
            "modules_to_save",
            "use_dora",
            "use_rslora",
            "init_lora_weights",
        )
        and v is not None
    }
    if num_parameters is not None:
        shown["adapter parameters"] = num_parameters
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path(ADAPTER_TEMPLATE)),
        model_name=model_id.split("/")[-1],
        model_summary=model_summary or f"A {peft_type} adapter for {base_model}.",
        peft_type=peft_type,
        base_model=base_model,
        hf_reason_version=_version(),
        config_table="| field | value |\n| --- | --- |\n"
        + "\n".join(f"| `{k}` | `{json.dumps(v)}` |" for k, v in shown.items()),
        loading_code=loading_code,
        training_section=_training_section(training, dataset_rows),
        eval_table=_eval_table(results) if results else "",
        method_citations=_citations(peft_methods(adapter_config) + training_methods(training)),
    )


def _base_config_summary(config: Mapping) -> dict:
    """What an adapter card needs of its base's config: the family, the remote-code map and the class."""
    return {k: config[k] for k in ("model_type", "auto_map", "architectures") if config.get(k)}
