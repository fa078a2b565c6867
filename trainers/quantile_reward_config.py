# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
from dataclasses import dataclass, field
from typing import Optional

from transformers import TrainingArguments
from trl import RewardConfig


__all__ = ["QuantileRegressionConfig", "QuantileRewardConfig"]


@dataclass
class QuantileRewardConfig(RewardConfig):
    r"""
    Configuration for [`QuantileRewardTrainer`] (preference pairs): every option of `trl.RewardConfig`, plus:

    Parameters:
        bradley_terry_weight (`float`, *optional*, defaults to `1.0`):
            Weight of TRL's pairwise (Bradley-Terry) loss on the scalar reward. >= 0.
        pinball_weight (`float`, *optional*, defaults to `1.0`):
            Weight of the pinball loss on per-attribute labels, used when the pair dataset has `chosen_labels` and
            `rejected_labels` columns (one float per attribute, NaN for unlabelled). >= 0; at least one weight > 0.
    """

    bradley_terry_weight: float = field(
        default=1.0, metadata={"help": "Weight of the pairwise (Bradley-Terry) loss on the scalar reward; >= 0."}
    )
    pinball_weight: float = field(
        default=1.0,
        metadata={"help": "Weight of the pinball loss on `chosen_labels` / `rejected_labels` when present; >= 0."},
    )

    def __post_init__(self):
        super().__post_init__()
        if (
            self.bradley_terry_weight < 0
            or self.pinball_weight < 0
            or self.bradley_terry_weight + self.pinball_weight == 0
        ):
            raise ValueError(
                "`bradley_terry_weight` and `pinball_weight` must be >= 0 with at least one > 0, got "
                f"{self.bradley_terry_weight} and {self.pinball_weight}"
            )


@dataclass
class QuantileRegressionConfig(TrainingArguments):
    r"""
    Configuration for [`QuantileRegressionTrainer`] (per-attribute labels): every option of
    `transformers.TrainingArguments`, plus:

    Parameters:
        max_length (`int`, *optional*, defaults to `512`):
            Longest tokenised text kept (its last tokens: the response and its EOS). `None`: no limit.
        text_field (`str`, *optional*, defaults to `"text"`):
            Dataset column holding the scored text (prompt + response); `labels` holds one float per attribute.

    `remove_unused_columns` defaults to `False` here: the collator reads the text column, which the model's forward
    does not name.
    """

    max_length: Optional[int] = field(default=512, metadata={"help": "Longest tokenised text kept (last tokens)."})
    text_field: str = field(default="text", metadata={"help": "Dataset column with the scored text."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Kept False: the collator needs the text column."}
    )
