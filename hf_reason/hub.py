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
"""

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Optional, Union

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData

from .file_io import atomic_write, atomic_write_json


PathLike = Union[str, os.PathLike]

CARD_NAME = "README.md"
# The card's structured inputs, kept next to a saved model so `push` can re-render the card for
# the final repo id; local only: our upload folder leaves it out, and the leading underscore keeps
# `Trainer.push_to_hub` (ignore_patterns "_*") from uploading it too.
CARD_INPUTS_NAME = "_hf_reason_card.json"
ONNX_SUBFOLDER = "onnx"
ONNX_REPORT_NAME = "export_report.json"
# Report fields that describe the exporting machine (a local path), not the export.
_LOCAL_REPORT_KEYS = ("source",)

# Pickle-based files never travel to the Hub: loading them runs arbitrary code (weights must be
# safetensors) and training state belongs to checkpoints, not to a shared model.
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
_SKIPPED_DIRS = {".git", "runs", "ema", "__pycache__", ".ipynb_checkpoints"}
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
_ADAPTER_WEIGHT_FILES = ("adapter_model.safetensors",)
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json")

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


@dataclass(frozen=True)
class Family:
    """What a model family's card needs beyond its config: template, Hub task and tags."""

    template: str
    summary: str
    task_type: str
    task_name: str
    tags: tuple[str, ...]
    pipeline_tag: Optional[str] = None


FAMILIES: dict[str, Family] = {
    "trm": Family(
        template="trm.md",
        summary="A Tiny Recursive Model (TRM) that solves grid puzzles by recursive refinement with learned halting.",
        # transformers has no puzzle task; the checkpoint's trust_remote_code class is a token classifier.
        task_type="token-classification",
        task_name="Grid puzzle solving (one class per cell)",
        tags=("trm", "recursive-reasoning", "puzzle-solving"),
        # No pipeline tag: the Hub's token-classification widget would feed it text, not grids.
        pipeline_tag=None,
    ),
    "crsm": Family(
        template="crsm.md",
        summary="A Continuous Reasoning State Model (CRSM): a Mamba language model that deliberates with MCTS "
        "over its own recurrent state.",
        task_type="text-generation",
        task_name="Text generation",
        tags=("crsm", "mamba", "mcts", "reasoning"),
        pipeline_tag="text-generation",
    ),
    "meta_attention": Family(
        template="meta_attention.md",
        summary="A GPT-2 language model with meta-attention over its own attention maps, for grounded "
        "introspective reasoning reports.",
        task_type="text-generation",
        task_name="Text generation",
        tags=("gpt2", "meta-attention", "introspection", "reasoning"),
        pipeline_tag="text-generation",
    ),
}
ADAPTER_TEMPLATE = "adapter.md"
TOKENIZER_TEMPLATE = "tokenizer.md"
BASE_TAGS = ("hf-reason",)


def template_path(name: str) -> Path:
    """Path of a card template shipped in the package (`hf_reason.model_cards`)."""
    from importlib.resources import files

    path = Path(str(files("hf_reason.model_cards") / name))
    if not path.is_file():
        raise FileNotFoundError(f"Model card template {name!r} is missing from hf_reason.model_cards ({path}).")
    return path


def family_for(model_type: str) -> Family:
    if model_type not in FAMILIES:
        raise ValueError(
            f"`model_type` must be one of {', '.join(repr(k) for k in FAMILIES)} to build an hf-reason model card; "
            f"got {model_type!r}."
        )
    return FAMILIES[model_type]


# --------------------------------------------------------------------------- evaluation results
@dataclass
class EvaluationResult:
    """One evaluation number for the card, with its uncertainty.

    It becomes an `huggingface_hub.EvalResult` in the card's `model-index` (the Hub's results
    widget) and a row of the card's results table, where the interval and sample size are shown.

    Args:
        metric_type: Hub metric id, e.g. `"accuracy"`, `"perplexity"`, `"loss"`.
        value: the estimate.
        dataset_name: human-readable dataset name, e.g. `"Sudoku (45 givens, held out)"`.
        dataset_type: Hub dataset id, or a short id for generated data (e.g. `"generated-sudoku"`).
        metric_name: human-readable metric name (defaults to `metric_type`).
        interval: `(low, high)` confidence interval containing `value`, or None.
        interval_method: how the interval was computed, e.g. `"Wilson 95%"`.
        num_samples: number of evaluated examples, or None.
        dataset_split: split evaluated, e.g. `"test"`.
        task_type: Hub task id; defaults to the family's.
    """

    metric_type: str
    value: float
    dataset_name: str
    dataset_type: str
    metric_name: Optional[str] = None
    interval: Optional[tuple[float, float]] = None
    interval_method: Optional[str] = None
    num_samples: Optional[int] = None
    dataset_split: Optional[str] = None
    task_type: Optional[str] = None

    def __post_init__(self):
        for name in ("metric_type", "dataset_name", "dataset_type"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"`{name}` must be a non-empty string, got {getattr(self, name)!r}.")
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)) or not math.isfinite(self.value):
            raise ValueError(f"`value` must be a finite number, got {self.value!r}.")
        if self.interval is not None:
            low, high = (float(v) for v in self.interval)
            if not low <= self.value <= high:
                raise ValueError(
                    f"`interval` must be (low, high) with low <= value <= high; got {self.interval!r} "
                    f"for value {self.value!r}."
                )
            self.interval = (low, high)
        if self.num_samples is not None and (
            isinstance(self.num_samples, bool) or not isinstance(self.num_samples, int) or self.num_samples < 1
        ):
            raise ValueError(f"`num_samples` must be an integer >= 1 or None, got {self.num_samples!r}.")

    def to_eval_result(self, default_task_type: str, task_name: Optional[str] = None) -> EvalResult:
        return EvalResult(
            task_type=self.task_type or default_task_type,
            task_name=task_name,
            dataset_type=self.dataset_type,
            dataset_name=self.dataset_name,
            dataset_split=self.dataset_split,
            metric_type=self.metric_type,
            metric_name=self.metric_name or self.metric_type,
            metric_value=self.value,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> "EvaluationResult":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"Unknown evaluation-result fields {sorted(unknown)}; allowed: {sorted(known)}.")
        data = dict(data)
        if data.get("interval") is not None:
            data["interval"] = tuple(data["interval"])
        return cls(**data)


# Trainer metrics that are a mean of one 0/1 outcome per example, so a binomial (Wilson) interval
# is valid for them; a mean of per-cell fractions is not binomial and gets no interval.
BINARY_METRICS = ("exact_accuracy", "exact_accuracy_max_steps", "accuracy")
_COUNT_KEYS = ("num_puzzles", "num_samples", "num_examples")
_SKIPPED_METRICS = ("runtime", "samples_per_second", "steps_per_second", "epoch")


def results_from_metrics(
    metrics: Mapping[str, float],
    dataset_name: str,
    dataset_type: str = "generated",
    dataset_split: Optional[str] = "test",
    prefix: str = "eval_",
    binary_metrics: Sequence[str] = BINARY_METRICS,
) -> list[EvaluationResult]:
    """Turns a `trainer.evaluate()` dict into `EvaluationResult`s, with Wilson 95% intervals where valid.

    Metrics in `binary_metrics` (a mean of one 0/1 outcome per example) get a Wilson interval when
    the dict also holds the example count (`{prefix}num_puzzles`, `num_samples` or `num_examples`).
    """
    from hf_reason.evaluation.statistics import wilson_interval

    values = {k[len(prefix) :]: v for k, v in metrics.items() if k.startswith(prefix)}
    count = next((int(values[k]) for k in _COUNT_KEYS if k in values), None)
    results = []
    for name, value in values.items():
        if name in _COUNT_KEYS or name.startswith("num_") or name in _SKIPPED_METRICS:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        metric_type = "accuracy" if "accuracy" in name else ("perplexity" if "perplexity" in name else name)
        interval, method = None, None
        if name in binary_metrics and count:
            successes = round(value * count)
            interval, method = wilson_interval(successes, count), "Wilson 95%"
            interval = (min(interval[0], value), max(interval[1], value))
        results.append(
            EvaluationResult(
                metric_type=metric_type,
                value=float(value),
                metric_name=name.replace("_", " "),
                dataset_name=dataset_name,
                dataset_type=dataset_type,
                dataset_split=dataset_split,
                interval=interval,
                interval_method=method,
                num_samples=count,
            )
        )
    return results


def _eval_table(results: Sequence[EvaluationResult]) -> str:
    lines = ["| dataset | split | metric | value | 95% interval | n |", "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        interval = "—"
        if r.interval is not None:
            interval = f"[{_fmt(r.interval[0])}, {_fmt(r.interval[1])}]"
            if r.interval_method and r.interval_method != "Wilson 95%":
                interval += f" ({r.interval_method})"
        lines.append(
            f"| {r.dataset_name} | {r.dataset_split or '—'} | {r.metric_name or r.metric_type} | "
            f"{_fmt(r.value)} | {interval} | {r.num_samples if r.num_samples is not None else '—'} |"
        )
    if any(r.interval_method == "Wilson 95%" for r in results):
        lines.append(
            "\nIntervals are Wilson 95% score intervals over independent examples; metrics without an "
            "interval are means of per-example fractions, for which a binomial interval does not hold."
        )
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------- training and datasets
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


def _json_safe(value):
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


# --------------------------------------------------------------------------- papers to cite
# BibTeX of the training methods and PEFT methods a card may have to cite (entries as TRL's own
# trainers cite them where TRL has one).
CITATIONS = {
    "grpo": """@article{shao2024deepseekmath,
  title   = {DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models},
  author  = {Shao, Zhihong and Wang, Peiyi and Zhu, Qihao and Xu, Runxin and Song, Junxiao and Zhang, Mingchuan
             and Li, Y. K. and Wu, Y. and Guo, Daya},
  journal = {arXiv preprint arXiv:2402.03300},
  year    = {2024}
}""",
    "dpo": """@inproceedings{rafailov2023direct,
  title     = {Direct Preference Optimization: Your Language Model is Secretly a Reward Model},
  author    = {Rafailov, Rafael and Sharma, Archit and Mitchell, Eric and Manning, Christopher D. and Ermon, Stefano
               and Finn, Chelsea},
  booktitle = {Advances in Neural Information Processing Systems},
  year      = {2023}
}""",
    "ld-dpo": """@article{liu2024lddpo,
  title   = {Length Desensitization in Direct Preference Optimization},
  author  = {Liu, Wei and Bai, Yang and Han, Chengcheng and Weng, Rongxiang and Xu, Jun and Cao, Xuezhi
             and Wang, Jingang and Cai, Xunliang},
  journal = {arXiv preprint arXiv:2409.06411},
  year    = {2024}
}""",
    "LORA": """@inproceedings{hu2022lora,
  title     = {LoRA: Low-Rank Adaptation of Large Language Models},
  author    = {Hu, Edward J. and Shen, Yelong and Wallis, Phillip and Allen-Zhu, Zeyuan and Li, Yuanzhi
               and Wang, Shean and Wang, Lu and Chen, Weizhu},
  booktitle = {International Conference on Learning Representations},
  year      = {2022}
}""",
    "DORA": """@inproceedings{liu2024dora,
  title     = {DoRA: Weight-Decomposed Low-Rank Adaptation},
  author    = {Liu, Shih-Yang and Wang, Chien-Yi and Yin, Hongxu and Molchanov, Pavlo and Wang, Yu-Chiang Frank
               and Cheng, Kwang-Ting and Chen, Min-Hung},
  booktitle = {International Conference on Machine Learning},
  year      = {2024}
}""",
    "ADALORA": """@inproceedings{zhang2023adalora,
  title     = {Adaptive Budget Allocation for Parameter-Efficient Fine-Tuning},
  author    = {Zhang, Qingru and Chen, Minshuo and Bukharin, Alexander and He, Pengcheng and Cheng, Yu
               and Chen, Weizhu and Zhao, Tuo},
  booktitle = {International Conference on Learning Representations},
  year      = {2023}
}""",
    "IA3": """@inproceedings{liu2022ia3,
  title     = {Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper than In-Context Learning},
  author    = {Liu, Haokun and Tam, Derek and Muqeeth, Mohammed and Mohta, Jay and Huang, Tenghao and Bansal, Mohit
               and Raffel, Colin},
  booktitle = {Advances in Neural Information Processing Systems},
  year      = {2022}
}""",
    "PREFIX_TUNING": """@inproceedings{li2021prefix,
  title     = {Prefix-Tuning: Optimizing Continuous Prompts for Generation},
  author    = {Li, Xiang Lisa and Liang, Percy},
  booktitle = {Proceedings of the 59th Annual Meeting of the Association for Computational Linguistics},
  year      = {2021}
}""",
    "PROMPT_TUNING": """@inproceedings{lester2021prompt,
  title     = {The Power of Scale for Parameter-Efficient Prompt Tuning},
  author    = {Lester, Brian and Al-Rfou, Rami and Constant, Noah},
  booktitle = {Proceedings of the 2021 Conference on Empirical Methods in Natural Language Processing},
  year      = {2021}
}""",
    "P_TUNING": """@article{liu2021ptuning,
  title   = {GPT Understands, Too},
  author  = {Liu, Xiao and Zheng, Yanan and Du, Zhengxiao and Ding, Ming and Qian, Yujie and Yang, Zhilin and Tang, Jie},
  journal = {arXiv preprint arXiv:2103.10385},
  year    = {2021}
}""",
    "VERA": """@inproceedings{kopiczko2024vera,
  title     = {VeRA: Vector-based Random Matrix Adaptation},
  author    = {Kopiczko, Dawid J. and Blankevoort, Tijmen and Asano, Yuki M.},
  booktitle = {International Conference on Learning Representations},
  year      = {2024}
}""",
    "LOHA": """@inproceedings{hyeonwoo2022fedpara,
  title     = {FedPara: Low-Rank Hadamard Product for Communication-Efficient Federated Learning},
  author    = {Hyeon-Woo, Nam and Ye-Bin, Moon and Oh, Tae-Hyun},
  booktitle = {International Conference on Learning Representations},
  year      = {2022}
}""",
}


def training_methods(training: Optional[Mapping]) -> list[str]:
    """The training methods to cite for a card's training summary (`training_summary`), by its config class.

    GRPO for `GRPOConfig` and subclasses (ours: `ReasoningGRPOConfig`); DPO for `DPOConfig` and
    subclasses, plus LD-DPO when stock `ld_alpha` is set or for `LengthBalancedDPOConfig` (its
    segment-wise weights extend LD-DPO's). Summaries without a config class name cite nothing.
    """
    training = training or {}
    config = str(training.get("trainer_config") or "")
    methods = []
    if config.endswith("GRPOConfig"):
        methods.append("grpo")
    elif config.endswith("DPOConfig"):
        methods.append("dpo")
        if config == "LengthBalancedDPOConfig" or training.get("ld_alpha") is not None:
            methods.append("ld-dpo")
    return methods


def peft_methods(adapter_config: Mapping) -> list[str]:
    """The PEFT method papers to cite for an adapter config: by `peft_type` (DoRA too when `use_dora`)."""
    peft_type = str(adapter_config.get("peft_type") or "").upper()
    methods = [peft_type] if peft_type in CITATIONS else []
    if peft_type == "LORA" and adapter_config.get("use_dora"):
        methods.append("DORA")
    return methods


def _citations(keys: Sequence[str]) -> str:
    return "".join(CITATIONS[k] + "\n" for k in dict.fromkeys(keys))


# --------------------------------------------------------------------------- model description
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
    if n is None:
        return "unknown number of"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def count_safetensors_parameters(paths: Iterable[PathLike]) -> int:
    """Parameters in safetensors files, from their headers only (no tensor is read)."""
    from safetensors import safe_open

    total = 0
    for path in paths:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                total += math.prod(f.get_slice(key).get_shape())
    return total


def _architecture(config: Mapping) -> str:
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
    import hf_reason

    if hasattr(hf_reason, class_name):
        return f"from hf_reason import {class_name}"
    return f"from hf_reason.models.{model_type} import {class_name}"


def _model_loading_code(config: Mapping, model_id: str) -> str:
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
        lines += ["", f"Export report (`{ONNX_REPORT_NAME}`):", ""]
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


def _as_results(eval_results) -> list[EvaluationResult]:
    out = []
    for r in eval_results or []:
        if isinstance(r, EvaluationResult):
            out.append(r)
        elif isinstance(r, Mapping):
            out.append(EvaluationResult.from_dict(r))
        else:
            raise ValueError(f"`eval_results` items must be EvaluationResult or dict; got {type(r).__name__}.")
    return out


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
    results = _as_results(eval_results)
    dataset_rows = describe_datasets(datasets)
    training = training_summary(training_args)
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
    results = _as_results(eval_results)
    dataset_rows = describe_datasets(datasets)
    training = training_summary(training_args)
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


def _tokenizer_algorithm(tokenizer_json: Mapping) -> tuple[str, bool]:
    """(the `tokenizers` model type, whether it works on bytes) from a `tokenizer.json`."""

    def types(node) -> list[str]:
        if not isinstance(node, Mapping):
            return []
        nested = node.get("pretokenizers") or node.get("normalizers") or []
        return [str(node.get("type"))] + [t for n in nested for t in types(n)]

    model = tokenizer_json.get("model") or {}
    byte_level = "ByteLevel" in types(tokenizer_json.get("pre_tokenizer")) or bool(model.get("byte_fallback"))
    return str(model.get("type") or "unknown"), byte_level


def build_tokenizer_card(
    tokenizer_dir: PathLike,
    *,
    repo_id: Optional[str] = None,
    datasets=None,
    license: str = "apache-2.0",
    language=None,
    tags: Sequence[str] = (),
    model_summary: Optional[str] = None,
    build_description: Optional[str] = None,
) -> ModelCard:
    """The card of a tokenizer pushed on its own: what it is, how it was built and how to load it.

    Reads only the saved JSON files of `tokenizer_dir` (`tokenizer_config.json`, `tokenizer.json`);
    no tokenizer code runs. `datasets` (Hub ids) are the texts it was trained on, when known;
    `build_description` replaces the generic "how it was built" paragraph.
    """
    folder = Path(tokenizer_dir)
    config = _read_json(folder / "tokenizer_config.json") or {}
    tokenizer_json = _read_json(folder / "tokenizer.json")
    tokenizer_class = config.get("tokenizer_class") or "unknown"
    rows = {"tokenizer_class": tokenizer_class}
    algorithm, byte_level = ("unknown", False)
    if tokenizer_json is not None:
        from tokenizers import Tokenizer

        algorithm, byte_level = _tokenizer_algorithm(tokenizer_json)
        rows["algorithm"] = algorithm + (" (byte-level)" if byte_level else "")
        rows["vocab_size"] = Tokenizer.from_file(str(folder / "tokenizer.json")).get_vocab_size(with_added_tokens=True)
    elif (folder / "vocab.json").is_file():
        rows["vocab_size"] = len(_read_json(folder / "vocab.json"))
    special = {k: v for k, v in config.items() if k.endswith("_token") and isinstance(v, str)}
    rows.update(special)
    extra = config.get("additional_special_tokens") or config.get("extra_special_tokens")
    if extra:
        rows["additional_special_tokens"] = list(extra)
    max_length = config.get("model_max_length")
    if isinstance(max_length, int) and max_length < 10**9:  # transformers writes ~1e30 for "no limit"
        rows["model_max_length"] = max_length
    for key in ("padding_side", "add_bos_token", "add_eos_token"):
        if key in config:
            rows[key] = config[key]
    dataset_rows = describe_datasets(datasets)
    model_id = repo_id or "<your-org>/tokenizer"
    if build_description is None:
        kind = f"a `{algorithm}` model" if algorithm != "unknown" else "a tokenizer model"
        build_description = (
            f"Built with the 🤗 [`tokenizers`](https://github.com/huggingface/tokenizers) library as {kind}"
            + (" over bytes (GPT-2 style), so every string encodes without unknown tokens" if byte_level else "")
            + f", and saved through transformers as `{tokenizer_class}`. hf-reason trains its tokenizers locally "
            "with `hf_reason.data.text.build_tokenizer(vocab_size, texts, extra_special_tokens)`, which is "
            "deterministic: the same texts and size give the same vocabulary."
        )
    if dataset_rows:
        build_description += "\n\n" + _training_section({}, dataset_rows)
    unk = config.get("unk_token")
    coverage = (
        "Byte-level: every string encodes, but text unlike the training texts splits into many short tokens."
        if byte_level
        else f"Text outside the vocabulary maps to the unknown token{f' `{unk}`' if unk else ''} and loses information."
    )
    card_data = _metadata(
        model_name=model_id.split("/")[-1],
        library_name="transformers",
        tags=[*BASE_TAGS, "tokenizer", *tags],
        dataset_rows=dataset_rows,
        results=[],
        task_type="other",
        task_name=None,
        license=license,
        pipeline_tag=None,
        base_model=None,
        language=language,
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path(TOKENIZER_TEMPLATE)),
        model_name=model_id.split("/")[-1],
        model_summary=model_summary or f"A {rows.get('vocab_size', 'unknown')}-token `{tokenizer_class}` tokenizer.",
        hf_reason_version=_version(),
        details_table="| field | value |\n| --- | --- |\n"
        + "\n".join(f"| `{k}` | `{json.dumps(v)}` |" for k, v in rows.items()),
        build_section=build_description,
        repo_id_literal=repr(model_id),
        coverage_note=coverage,
    )


def _version() -> str:
    import hf_reason

    return hf_reason.__version__


# --------------------------------------------------------------------------- writing at save time
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
    inputs = {
        "training": training_summary(training_args),
        "datasets": describe_datasets(datasets),
        "eval_results": [r.to_dict() for r in results],
        "base_model": base_model,
    }
    card = build_model_card(
        model,
        repo_id=repo_id,
        training_args=inputs["training"],
        datasets=inputs["datasets"],
        eval_results=results,
        base_model=base_model,
        **card_kwargs,
    )
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
    card_kwargs = {"tags": tags, "license": license or "apache-2.0", "language": language}
    repo_id = getattr(trainer, "hub_model_id", None) or trainer.args.hub_model_id
    if peft_config:
        return _write_trainer_adapter_card(
            output_dir,
            model,
            base,
            repo_id=repo_id,
            training_args=trainer.args,
            datasets=datasets,
            eval_results=results,
            base_model=finetuned_from,
            **card_kwargs,
        )
    return write_model_card(
        output_dir,
        model,
        repo_id=repo_id,
        training_args=trainer.args,
        datasets=datasets,
        eval_results=results,
        base_model=finetuned_from,
        **card_kwargs,
    )


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
    inputs = {
        "training": training_summary(training_args),
        "datasets": describe_datasets(datasets),
        "eval_results": [r.to_dict() for r in eval_results],
        "base_model": base_model,
        # so that a later push knows the base needs trust_remote_code, with no base download
        "base_config": _base_config_summary(base_config),
    }
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
    atomic_write_json(output_dir / CARD_INPUTS_NAME, inputs, indent=2)
    atomic_write(output_dir / CARD_NAME, str(card))
    return card


# --------------------------------------------------------------------------- the upload folder
@dataclass
class UploadPlan:
    """The exact folder `push_to_hub` uploads, and what was left out of it and why."""

    folder: Path
    kind: str
    repo_id: str
    files: list[str] = field(default_factory=list)
    excluded: list[tuple[str, str]] = field(default_factory=list)
    card: Optional[ModelCard] = None


def _place(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:  # a hard link costs no disk for multi-GB weights; copy across file systems
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _copy_tree(src: Path, dst: Path, excluded: list, prefix: str = "") -> None:
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        shown = prefix + rel.as_posix()
        if any(part in _SKIPPED_DIRS or part.startswith("checkpoint-") for part in rel.parts[:-1]):
            continue
        if path.is_dir():
            if rel.name in _SKIPPED_DIRS or rel.name.startswith("checkpoint-"):
                excluded.append((shown + "/", "training output, not part of the model"))
            continue
        name = rel.name
        if name in (CARD_NAME, CARD_INPUTS_NAME) and len(rel.parts) == 1 and not prefix:
            continue  # the card is re-rendered for the repo id
        if name.endswith(_PICKLE_SUFFIXES):
            excluded.append((shown, "pickle file (weights travel as safetensors only)"))
            continue
        if name.endswith(".tmp") or name.startswith(".") or name.startswith("deep_supervision_state_"):
            excluded.append((shown, "temporary or training-state file"))
            continue
        _place(path, dst / rel)


def _code_files(folder: Path, source: Path, config: Mapping) -> None:
    """Puts the modules named by `auto_map` (and their relative imports) next to the weights.

    Each module comes from the saved folder when it is there, else from the installed family package.
    """
    from transformers.dynamic_module_utils import get_relative_imports

    family_dir = Path(__file__).parent / "models" / str(config.get("model_type"))
    pending = []
    for ref in (config.get("auto_map") or {}).values():
        ref = ref[0] if isinstance(ref, (list, tuple)) else ref
        if ref and "--" not in ref:  # "other/repo--module.Class" lives in another repository
            pending.append(ref.rsplit(".", 1)[0])
    seen = set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        name = module.replace(".", "/") + ".py"
        origin = source / name if (source / name).is_file() else family_dir / name
        if not origin.is_file():
            raise FileNotFoundError(f"`auto_map` needs {name}, which is neither in {source} nor in {family_dir}.")
        if not (folder / name).exists():
            _place(origin, folder / name)
        pending.extend(get_relative_imports(origin))


def _base_config_summary(config: Mapping) -> dict:
    """What an adapter card needs of its base's config: the family, the remote-code map and the class."""
    return {k: config[k] for k in ("model_type", "auto_map", "architectures") if config.get(k)}


def _read_json(path: Path) -> Optional[dict]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


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
    **card_kwargs,
) -> UploadPlan:
    """Builds, in `upload_dir`, the exact folder that `push_to_hub` uploads, and returns its plan.

    `source_dir` is a `save_pretrained` folder of an hf-reason model (weights, config, tokenizer)
    or of a PEFT adapter (`adapter_config.json`). Pickle files and training state are left out
    (listed in `plan.excluded`); the `auto_map` code files are added when missing; the card is
    rendered for `repo_id` from the inputs `write_model_card` kept (explicit `card_kwargs`, e.g.
    `eval_results=...`, take precedence); `onnx_dir` (an `hf-reason export` folder) goes to `onnx/`
    with its `export_report.json`. An adapter card loads its base with `trust_remote_code=True` when
    the base's config has an `auto_map`; that config comes from `card_kwargs["base_config"]`, the
    saved card inputs, the base's folder or Hub cache, or PEFT's record of an hf-reason base class.
    """
    source = Path(source_dir)
    if not source.is_dir():
        raise FileNotFoundError(f"`source_dir` {source} is not a directory.")
    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"`repo_id` must look like 'org/name', got {repo_id!r}.")
    folder = Path(upload_dir) if upload_dir is not None else Path(tempfile.mkdtemp(prefix="hf-reason-upload-"))
    if folder.exists() and any(folder.iterdir()):
        raise ValueError(f"`upload_dir` {folder} must be empty or not exist.")
    folder.mkdir(parents=True, exist_ok=True)
    plan = UploadPlan(folder=folder, kind="", repo_id=repo_id)
    _copy_tree(source, folder, plan.excluded)

    saved = _read_json(source / CARD_INPUTS_NAME) or {}
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
            raise ValueError(
                f"{source} holds no model.safetensors (pickled weights are never uploaded: save with "
                "safe_serialization=True)."
            )
        _code_files(folder, source, config)
        if onnx_dir is not None:
            onnx_excluded: list = []
            _copy_tree(Path(onnx_dir), folder / ONNX_SUBFOLDER, onnx_excluded, prefix=f"{ONNX_SUBFOLDER}/")
            plan.excluded.extend(onnx_excluded)
            if not any((folder / ONNX_SUBFOLDER).rglob("*.onnx")):
                raise ValueError(f"`onnx_dir` {onnx_dir} holds no .onnx file.")
        onnx_files = sorted(
            p.relative_to(folder).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and (p.suffix in (".onnx", ".onnx_data") or p.name == ONNX_REPORT_NAME)
        )
        report_path = next((folder / f for f in onnx_files if Path(f).name == ONNX_REPORT_NAME), None)
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
        atomic_write(folder / CARD_NAME, str(plan.card))
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
            source_dir, repo_id, Path(tmp, "upload"), onnx_dir=onnx_dir, base_model=base_model, **card_kwargs
        )
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        return api.upload_folder(
            repo_id=getattr(repo_url, "repo_id", None) or repo_id,
            folder_path=str(plan.folder),
            repo_type="model",
            revision=revision,
            create_pr=create_pr,
            commit_message=commit_message or f"Upload {plan.kind} with hf-reason {_version()}",
        )


def _is_tokenizer(obj) -> bool:
    from transformers import PreTrainedTokenizerBase

    return isinstance(obj, PreTrainedTokenizerBase)


__all__ = [
    "EvaluationResult",
    "FAMILIES",
    "Family",
    "UploadPlan",
    "auto_class_for",
    "build_adapter_card",
    "build_model_card",
    "build_tokenizer_card",
    "count_safetensors_parameters",
    "describe_datasets",
    "prepare_upload_folder",
    "push_to_hub",
    "results_from_metrics",
    "training_summary",
    "write_model_card",
    "write_trainer_model_card",
]
