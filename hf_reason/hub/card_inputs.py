# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""What a card is rendered from besides the model: the training hyperparameters (`training_summary`),
the datasets (`describe_datasets`) and the evaluation results, as a caller gives them and as they are
saved next to a model for a later push; and the card's *Training* section that shows the first two.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Optional

from .card_helpers import _json_safe
from .results import EvaluationResult, _as_results


# TrainingArguments fields worth a reader's attention; subclass fields (the trainer's own) are
# always shown.
_TRAINING_KEYS = (
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "warmup_ratio",
    "weight_decay",
    "optim",
    "adam_beta1",
    "adam_beta2",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_steps",
    "num_train_epochs",
    "seed",
    "bf16",
    "fp16",
    "gradient_checkpointing",
    "max_grad_norm",
)


def training_summary(training_args) -> dict:
    """The hyperparameters a card shows: the trainer config's own fields plus the usual ones.

    Accepts a `TrainingArguments` (or subclass, e.g. `DeepSupervisionConfig`) or a plain dict.
    """
    if training_args is None:
        return {}
    if isinstance(training_args, Mapping):
        return {str(k): _json_safe(v) for k, v in training_args.items()}
    from transformers import TrainingArguments

    if not isinstance(training_args, TrainingArguments):
        raise ValueError(
            f"`training_args` must be a TrainingArguments, a dict or None; got {type(training_args).__name__}."
        )
    base = {f.name for f in fields(TrainingArguments)}
    summary = {"trainer_config": type(training_args).__name__}
    for f in fields(training_args):
        if f.name not in base:
            summary[f.name] = _json_safe(getattr(training_args, f.name))
    for key in _TRAINING_KEYS:
        value = getattr(training_args, key, None)
        if key == "max_steps" and value is not None and value <= 0:
            continue
        if key == "num_train_epochs" and getattr(training_args, "max_steps", -1) > 0:
            continue
        if value is not None:
            summary[key] = _json_safe(value)
    try:
        processes = training_args.world_size
    except Exception:  # world_size needs an initialised accelerator state; it is only informative here
        processes = None
    if processes:
        summary["processes"] = processes
    return summary


def describe_datasets(datasets) -> list[dict]:
    """Rows describing the datasets used: Hub ids (strings) or `datasets.Dataset`s, optionally by role.

    `datasets` is a sequence of items or a mapping role -> item (e.g. `{"train": ds, "eval": ds_eval}`).
    A string is a Hub dataset id and goes into the card's metadata; an in-memory dataset is
    described by its name, size and columns.
    """
    if datasets is None:
        return []
    items = list(datasets.items()) if isinstance(datasets, Mapping) else [(None, d) for d in datasets]
    rows = []
    for role, item in items:
        if item is None:
            continue
        if isinstance(item, Mapping) and "name" in item:  # already a row (from a saved card's inputs)
            rows.append(dict(item))
            continue
        if isinstance(item, str):
            rows.append({"role": role, "name": item, "hub_id": item})
            continue
        num_rows = getattr(item, "num_rows", None)
        info = getattr(item, "info", None)
        if num_rows is None or info is None:
            raise ValueError(
                f"`datasets` items must be Hub dataset ids (str) or datasets.Dataset; got {type(item).__name__}."
            )
        name = info.dataset_name or info.description or "in-memory `datasets.Dataset` (generated)"
        rows.append(
            {
                "role": role,
                "name": name,
                "hub_id": None,
                "num_rows": int(num_rows),
                "columns": list(getattr(item, "column_names", []) or []),
            }
        )
    return rows


def _training_section(training: Mapping, dataset_rows: Sequence[Mapping]) -> str:
    """The card's *Training* section: the datasets as a list, the hyperparameters as a table."""
    parts = []
    if dataset_rows:
        parts.append("Datasets:\n")
        for row in dataset_rows:
            name = (
                f"[{row['name']}](https://huggingface.co/datasets/{row['hub_id']})"
                if row.get("hub_id")
                else row["name"]
            )
            details = []
            if row.get("num_rows") is not None:
                details.append(f"{row['num_rows']} examples")
            if row.get("columns"):
                details.append("columns " + ", ".join(f"`{c}`" for c in row["columns"]))
            role = f"**{row['role']}**: " if row.get("role") else ""
            parts.append(f"- {role}{name}" + (f" ({'; '.join(details)})" if details else ""))
        parts.append("")
    if training:
        parts.append("Hyperparameters:\n")
        parts.append("| argument | value |\n| --- | --- |")
        parts.extend(f"| `{k}` | `{json.dumps(v)}` |" for k, v in training.items())
    if not parts:
        return "No training arguments or datasets were recorded for this checkpoint."
    return "\n".join(parts)


def _card_sources(training_args, datasets, eval_results) -> tuple[dict, list[dict], list[EvaluationResult]]:
    """(training summary, dataset rows, evaluation results) of a card, from what its builder was given."""
    results = _as_results(eval_results)
    dataset_rows = describe_datasets(datasets)
    return training_summary(training_args), dataset_rows, results


def _saved_inputs(training_args, datasets, results: Sequence[EvaluationResult], base_model: Optional[str]) -> dict:
    """The card's inputs as saved next to a model (`CARD_INPUTS_NAME`), for a later push to re-render it."""
    return {
        "training": training_summary(training_args),
        "datasets": describe_datasets(datasets),
        "eval_results": [r.to_dict() for r in results],
        "base_model": base_model,
    }
