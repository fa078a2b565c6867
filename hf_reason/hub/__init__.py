# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Hub-ready checkpoints: model cards, the exact folder to upload, and `push_to_hub`.

Everything is generic over the model family (`config.model_type`): a family needs only a card
template in `model_cards/` and an entry in `FAMILIES`. Cards are `huggingface_hub.ModelCard`s
rendered from those templates with `ModelCardData` metadata (library_name, tags, datasets,
metrics, model-index), so the Hub shows the evaluation results and the loading widget.

The flow is:

- at save time, `write_model_card(output_dir, model, training_args=..., datasets=..., eval_results=...)`
  writes `README.md` and keeps the card's inputs in `_hf_reason_card.json` (never uploaded) so a
  later push can re-render the card for its repo id. Our trainers call `write_trainer_model_card`
  from `save_model` and from `create_model_card`, the hook through which `Trainer.push_to_hub`
  (`TrainingArguments.push_to_hub=True`) and TRL's checkpoint saving write their generic card;
- at push time, `prepare_upload_folder` builds the exact folder that is uploaded (weights,
  tokenizer, the `auto_map` code files, the card, an optional ONNX export under `onnx/` with its
  `export_report.json`) and `push_to_hub` uploads it in one commit through `HfApi`. A PEFT adapter
  gets the adapter card, a tokenizer pushed alone a tokenizer card (`build_tokenizer_card`).
  Only what a model needs is uploaded (an allow-list); pickles, the training state files that
  trainers declare (`training_state_files`), credentials-like files, subfolders and symbolic
  links stay out, each listed with the reason.

The modules:

- `families`: the model families (`Family`, `FAMILIES`, `family_for`) and their card templates;
- `results`: `EvaluationResult`, `results_from_metrics` and the card's results table;
- `citations`: the training and PEFT method papers (`CITATIONS`, read from `citations.bib`);
- `card_inputs`: what a card records besides the model (hyperparameters, datasets, results);
- `model_card`, `adapter_card`, `tokenizer_card`: the three card builders, and `card_helpers`,
  what they share (metadata, the Auto class a checkpoint loads with);
- `card_writers`: writing a card at save time, from a model or a trainer;
- `upload`: the upload folder and `push_to_hub`; `upload_files`, which files go (the allow-list)
  and why the others stay;
- `file_names`: the names of the files written and uploaded.
"""

from .adapter_card import build_adapter_card
from .card_helpers import auto_class_for, count_safetensors_parameters
from .card_inputs import describe_datasets, training_summary
from .card_writers import write_model_card, write_trainer_model_card
from .citations import CITATIONS, load_citations, peft_methods, training_methods
from .families import ADAPTER_TEMPLATE, BASE_TAGS, FAMILIES, TOKENIZER_TEMPLATE, Family, family_for, template_path
from .file_names import CARD_INPUTS_NAME, CARD_NAME, ONNX_SUBFOLDER
from .model_card import build_model_card
from .results import BINARY_METRICS, EvaluationResult, results_from_metrics
from .tokenizer_card import build_tokenizer_card
from .upload import UploadPlan, prepare_upload_folder, push_to_hub


__all__ = [
    "ADAPTER_TEMPLATE",
    "BASE_TAGS",
    "BINARY_METRICS",
    "CARD_INPUTS_NAME",
    "CARD_NAME",
    "CITATIONS",
    "EvaluationResult",
    "FAMILIES",
    "Family",
    "ONNX_SUBFOLDER",
    "TOKENIZER_TEMPLATE",
    "UploadPlan",
    "auto_class_for",
    "build_adapter_card",
    "build_model_card",
    "build_tokenizer_card",
    "count_safetensors_parameters",
    "describe_datasets",
    "family_for",
    "load_citations",
    "peft_methods",
    "prepare_upload_folder",
    "push_to_hub",
    "results_from_metrics",
    "template_path",
    "training_methods",
    "training_summary",
    "write_model_card",
    "write_trainer_model_card",
]
