# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Trainers of the multi-attribute quantile reward model.

`QuantileRewardTrainer` is TRL's `RewardTrainer` for preference pairs: the stock Bradley-Terry loss on the scalar
reward (the model's `logits`), plus the pinball loss when the pairs carry per-attribute labels.
`QuantileRegressionTrainer` fits per-attribute labels directly (pinball loss only), from a text column.
"""

import math
from dataclasses import dataclass
from typing import Any, Optional

import torch
from transformers import Trainer
from trl import RewardTrainer
from trl.trainer.reward_trainer import DataCollatorForPreference

from ._model_card import ModelCardMixin
from .quantile_reward_config import QuantileRegressionConfig, QuantileRewardConfig


__all__ = [
    "AttributeRegressionCollator",
    "PreferenceWithLabelsCollator",
    "QuantileRegressionTrainer",
    "QuantileRewardTrainer",
]


def _labels(value, name: str) -> list[float]:
    if value is None:
        raise ValueError(f"`{name}` is missing from an example; give one float per attribute (NaN: unlabelled)")
    return [math.nan if v is None else float(v) for v in value]


@dataclass
class PreferenceWithLabelsCollator(DataCollatorForPreference):
    """TRL's preference collator (chosen rows, then rejected rows), plus `labels` stacked the same way from
    `chosen_labels` / `rejected_labels` when the examples have them."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        output = super().torch_call(examples)
        if "chosen_labels" in examples[0]:
            rows = [_labels(e.get("chosen_labels"), "chosen_labels") for e in examples]
            rows += [_labels(e.get("rejected_labels"), "rejected_labels") for e in examples]
            output["labels"] = torch.tensor(rows, dtype=torch.float)
        return output


class QuantileRewardTrainer(ModelCardMixin, RewardTrainer):
    """TRL's `RewardTrainer` for a [`QuantileRewardModel`] (or any model whose `logits` are the scalar reward).

    The loss is ``bradley_terry_weight * stock pairwise loss + pinball_weight * pinball loss``, the second only when
    the dataset has `chosen_labels` / `rejected_labels`. Arguments are `RewardTrainer`'s.
    """

    _tag_names = ["trl", "reward-trainer", "hf-reason", "quantile-reward-model"]

    def __init__(self, model, args: Optional[QuantileRewardConfig] = None, data_collator=None, **kwargs):
        if args is None:
            args = QuantileRewardConfig("quantile-reward-model")
        if data_collator is None and kwargs.get("processing_class") is not None:
            tokenizer = kwargs["processing_class"]
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
            data_collator = PreferenceWithLabelsCollator(pad_token_id=pad)
        super().__init__(model, args=args, data_collator=data_collator, **kwargs)

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            self._signature_columns = ["chosen_ids", "rejected_ids", "margin", "chosen_labels", "rejected_labels"]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        pairwise, outputs = super().compute_loss(model, inputs, return_outputs=True)
        loss = self.args.bradley_terry_weight * pairwise
        if outputs.loss is not None:  # the model saw `labels`: the pinball loss
            loss = loss + self.args.pinball_weight * outputs.loss
            mode = "train" if self.model.training else "eval"
            pinball = self.accelerator.gather_for_metrics(outputs.loss.detach()).mean().item()
            self._metrics[mode]["pinball_loss"].append(pinball)
        return (loss, outputs) if return_outputs else loss


@dataclass
class AttributeRegressionCollator:
    """Tokenises `text_field` (appending EOS, keeping the last `max_length` tokens), pads right and stacks `labels`.

    Args:
        tokenizer: the tokenizer (its pad token, else its EOS, pads).
        max_length (`int`, *optional*): longest kept sequence.
        text_field (`str`, defaults to `"text"`).
    """

    tokenizer: Any
    max_length: Optional[int] = None
    text_field: str = "text"

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        eos = self.tokenizer.eos_token or ""
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        sequences = []
        for example in examples:
            if self.text_field not in example:
                raise ValueError(f"an example has no `{self.text_field}` column; has {sorted(example)}")
            text = example[self.text_field]
            ids = self.tokenizer(text if text.endswith(eos) else text + eos, add_special_tokens=False)["input_ids"]
            sequences.append(ids[-self.max_length :] if self.max_length else ids)
        width = max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), width), pad, dtype=torch.long)
        attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, ids in enumerate(sequences):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention_mask[row, : len(ids)] = 1
        labels = torch.tensor([_labels(e.get("labels"), "labels") for e in examples], dtype=torch.float)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


class QuantileRegressionTrainer(ModelCardMixin, Trainer):
    """`transformers.Trainer` fitting a [`QuantileRewardModel`] to per-attribute labels with the pinball loss.

    The dataset has a text column (`args.text_field`) and `labels` (one float per attribute, NaN: unlabelled);
    the default collator is [`AttributeRegressionCollator`].
    """

    def __init__(self, model, args: Optional[QuantileRegressionConfig] = None, data_collator=None, **kwargs):
        if args is None:
            args = QuantileRegressionConfig("quantile-regression")
        tokenizer = kwargs.get("processing_class")
        if data_collator is None:
            if tokenizer is None:
                raise ValueError(
                    "QuantileRegressionTrainer needs `processing_class` (the tokenizer) or a data_collator"
                )
            max_length = getattr(args, "max_length", None)
            text_field = getattr(args, "text_field", "text")
            data_collator = AttributeRegressionCollator(tokenizer, max_length=max_length, text_field=text_field)
        super().__init__(model, args=args, data_collator=data_collator, **kwargs)
