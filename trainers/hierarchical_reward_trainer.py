# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Training the hierarchical (process + outcome) reward model on step-labelled chains."""

from dataclasses import dataclass, field
from typing import Optional

from transformers import Trainer, TrainingArguments

from hf_reason.reward_models.hierarchical import StepRewardCollator

from ._model_card import ModelCardMixin


__all__ = ["HierarchicalRewardConfig", "HierarchicalRewardTrainer"]


@dataclass
class HierarchicalRewardConfig(TrainingArguments):
    r"""
    Configuration for [`HierarchicalRewardTrainer`]: every option of `transformers.TrainingArguments`, plus:

    Parameters:
        max_length (`int`, *optional*, defaults to `512`):
            Longest chain in tokens; a longer one raises (cutting it would drop labelled steps). `None`: no limit.

    `remove_unused_columns` defaults to `False`: the collator reads `prompt`, `steps`, `final`, `step_labels` and
    `outcome_label`, which the model's forward does not name.
    """

    max_length: Optional[int] = field(default=512, metadata={"help": "Longest chain in tokens (longer ones raise)."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Kept False: the collator needs the columns."}
    )


class HierarchicalRewardTrainer(ModelCardMixin, Trainer):
    """`transformers.Trainer` for a [`HierarchicalRewardModel`] on rows of `generate_step_labelled_chains` (or any
    dataset with the same columns): the loss is the step BCE plus the outcome BCE (the model's own `loss`)."""

    def __init__(self, model, args: Optional[HierarchicalRewardConfig] = None, data_collator=None, **kwargs):
        if args is None:
            args = HierarchicalRewardConfig("hierarchical-reward-model")
        if data_collator is None:
            tokenizer = kwargs.get("processing_class")
            if tokenizer is None:
                raise ValueError(
                    "HierarchicalRewardTrainer needs `processing_class` (the tokenizer) or a data_collator"
                )
            data_collator = StepRewardCollator(
                tokenizer, separator=model.config.step_separator, max_length=getattr(args, "max_length", None)
            )
        super().__init__(model, args=args, data_collator=data_collator, **kwargs)
