# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Writing a card next to a saved model, with the inputs a later push re-renders it from.

`write_model_card` is for any save; `write_trainer_model_card` is the hook our trainers call from
`save_model` and `create_model_card`, so that `Trainer.push_to_hub` and TRL's checkpoint saving
upload this card rather than their generic one.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional, Union

from huggingface_hub import ModelCard

from ..file_io import PathLike, atomic_write, atomic_write_json
from .adapter_card import _base_config_summary, build_adapter_card
from .card_helpers import _json_safe
from .card_inputs import _saved_inputs, describe_datasets
from .families import FAMILIES
from .file_names import CARD_INPUTS_NAME, CARD_NAME
from .model_card import build_model_card
from .results import EvaluationResult, _as_results, results_from_metrics


def write_model_card(
    output_dir: PathLike,
    model,
    *,
    repo_id: Optional[str] = None,
    training_args=None,
    datasets=None,
    eval_results: Optional[Sequence[Union[EvaluationResult, Mapping]]] = None,
    base_model: Optional[str] = None,
    **card_kwargs,
) -> ModelCard:
    """Writes `README.md` (the card) next to a saved model, and the card's inputs for a later push.

    Call it after `save_pretrained(output_dir)`; both files are written atomically.
    """
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        raise FileNotFoundError(f"`output_dir` {output_dir} does not exist; call save_pretrained first.")
    results = _as_results(eval_results)
    inputs = _saved_inputs(training_args, datasets, results, base_model)
    card = build_model_card(
        model,
        repo_id=repo_id,
        training_args=inputs["training"],
        datasets=inputs["datasets"],
        eval_results=results,
        base_model=base_model,
        **card_kwargs,
    )
    return _save_card(output_dir, card, inputs)


def _save_card(output_dir: Path, card: ModelCard, inputs: dict) -> ModelCard:
    """Writes the card's inputs and the card (`README.md`) into `output_dir`, each atomically."""
    atomic_write_json(output_dir / CARD_INPUTS_NAME, inputs, indent=2)
    atomic_write(output_dir / CARD_NAME, str(card))
    return card


def _trainer_datasets(trainer) -> dict:
    """The trainer's datasets by role, with anything `describe_datasets` cannot read named by its type.

    Trainers may hold a `torch` dataset, an `IterableDataset` (no length) or their own table
    (e.g. `HaltingTrajectories`); the card then names the type instead of failing the save.
    """
    items = {"train": trainer.train_dataset}
    if isinstance(trainer.eval_dataset, Mapping):
        items.update({f"eval ({k})": v for k, v in trainer.eval_dataset.items()})
    else:
        items["eval"] = trainer.eval_dataset
    rows = {}
    for role, item in items.items():
        if item is None:
            continue
        try:
            rows[role] = describe_datasets({role: item})[0]
        except ValueError:
            rows[role] = {"role": role, "name": f"`{type(item).__name__}`", "hub_id": None}
    return rows


def write_trainer_model_card(
    trainer,
    output_dir: Optional[PathLike] = None,
    *,
    tags: Union[str, Sequence[str], None] = None,
    language=None,
    license: Optional[str] = None,
    finetuned_from: Optional[str] = None,
    **ignored,
) -> Optional[ModelCard]:
    """The card for a `transformers.Trainer`'s saved model: its args, datasets and latest evaluation.

    Our trainers call this at the end of a user-facing `save_model` and from `create_model_card`
    (which `Trainer.push_to_hub` and TRL's checkpoint saving call), so the pushed `README.md` is
    this card rather than the generic Trainer / TRL one. It accepts `create_model_card`'s
    arguments: `tags`, `language`, `license` and `finetuned_from` (the base model) go into the
    card; the others (`model_name`, `dataset_name`, `tasks`, ...) are covered by the card's own
    sources (`hub_model_id`, the trainer's datasets, the family's task).

    Returns None, writing nothing, on processes that do not save and for models that are not an
    hf-reason family (e.g. a stock GPT-2 under a TRL trainer): their card is left to the trainer.
    A PEFT-wrapped hf-reason model gets the adapter card.
    """
    if not trainer.args.should_save:
        return None
    model = trainer.accelerator.unwrap_model(trainer.model)
    peft_config = getattr(model, "peft_config", None)
    base = model.get_base_model() if peft_config and hasattr(model, "get_base_model") else model
    if getattr(getattr(base, "config", None), "model_type", None) not in FAMILIES:
        return None
    output_dir = Path(output_dir or trainer.args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)  # create_model_card may run before the first save
    metrics = next(
        (log for log in reversed(trainer.state.log_history) if any(k.startswith("eval_") for k in log)), None
    )
    datasets = _trainer_datasets(trainer)
    eval_name = datasets["eval"]["name"] if "eval" in datasets else "evaluation set"
    results = results_from_metrics(metrics, dataset_name=eval_name, dataset_split="eval") if metrics else []
    tags = [tags] if isinstance(tags, str) else list(tags or [])
    tags += [t for t in getattr(trainer, "_tag_names", None) or () if t not in tags]
    card_kwargs = {
        "repo_id": getattr(trainer, "hub_model_id", None) or trainer.args.hub_model_id,
        "training_args": trainer.args,
        "datasets": datasets,
        "eval_results": results,
        "base_model": finetuned_from,
        "tags": tags,
        "license": license or "apache-2.0",
        "language": language,
    }
    if peft_config:
        return _write_trainer_adapter_card(output_dir, model, base, **card_kwargs)
    return write_model_card(output_dir, model, **card_kwargs)


def _write_trainer_adapter_card(
    output_dir: Path, peft_model, base, *, repo_id, training_args, datasets, eval_results, base_model, **card_kwargs
) -> ModelCard:
    adapter_name = getattr(peft_model, "active_adapter", None) or "default"
    adapter_name = adapter_name if isinstance(adapter_name, str) else adapter_name[0]
    adapter_config = _json_safe(peft_model.peft_config[adapter_name].to_dict())
    base_config = base.config.to_dict()
    base_config["architectures"] = [type(base).__name__]
    # A base built from a config in memory has no Hub id; the card then shows a placeholder to replace.
    base_model = (
        base_model
        or adapter_config.get("base_model_name_or_path")
        or f"<your-org>/{base_config['model_type'].replace('_', '-')}"
    )
    trainable = sum(p.numel() for n, p in peft_model.named_parameters() if p.requires_grad)
    inputs = _saved_inputs(training_args, datasets, eval_results, base_model)
    # so that a later push knows the base needs trust_remote_code, with no base download
    inputs["base_config"] = _base_config_summary(base_config)
    card = build_adapter_card(
        adapter_config,
        base_model=base_model,
        repo_id=repo_id,
        base_config=base_config,
        training_args=inputs["training"],
        datasets=inputs["datasets"],
        eval_results=eval_results,
        num_parameters=trainable,
        **card_kwargs,
    )
    return _save_card(output_dir, card, inputs)
