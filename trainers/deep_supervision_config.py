# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
from dataclasses import dataclass, field
from typing import Optional

from transformers import TrainingArguments


__all__ = ["DeepSupervisionConfig"]


@dataclass
class DeepSupervisionConfig(TrainingArguments):
    r"""
    Configuration for [`DeepSupervisionTrainer`]. Every `TrainingArguments` field applies; the
    defaults below follow the TRM recipe (AdamW with beta2 0.95, warm-up then a constant learning
    rate, EMA of the weights).

    Parameters:
        ema_decay (`float`, defaults to `0.999`):
            Decay of the exponential moving average of the weights, updated after every optimizer
            step. The EMA weights are used for evaluation and written by `save_model` (and to
            `checkpoint-N/ema/`); the raw weights stay in `checkpoint-N/` to resume from. `0`
            turns the EMA off. Must be in [0, 1).
        puzzle_emb_lr (`float`, defaults to `1e-2`):
            Learning rate of the separate sign-SGD optimizer for puzzle-identifier embeddings
            (only used when the model has `puzzle_emb_ndim > 0`). It follows the same warm-up
            schedule as the main learning rate.
        puzzle_emb_weight_decay (`float`, defaults to `0.1`):
            Decoupled weight decay of the puzzle-embedding optimizer.
        eval_max_steps (`int` or `None`, defaults to `None`):
            Supervision steps run per puzzle at evaluation; `None` uses `config.halt_max_steps`.
        max_grad_norm (`float`, defaults to `0.0`):
            Gradient clipping threshold; `0` (the default) does not clip. TrainingArguments' default
            is 1.0, but the TRM reference (`pretrain.py`) never clips, so neither do we by default.
        gradient_accumulation_steps (`int`, defaults to `1`):
            Must be 1: the method takes one optimizer step per supervision step, and the carry
            moves on at every forward, so accumulated micro-steps would be different supervision
            steps of the same puzzles, not a larger batch. Use a larger batch (or more processes).
    """

    ema_decay: float = field(
        default=0.999,
        metadata={"help": "EMA decay of the weights (used for eval and saving); 0 disables. In [0, 1)."},
    )
    puzzle_emb_lr: float = field(
        default=1e-2, metadata={"help": "Learning rate of the sign-SGD optimizer for puzzle embeddings."}
    )
    puzzle_emb_weight_decay: float = field(
        default=0.1, metadata={"help": "Decoupled weight decay of the puzzle-embedding optimizer."}
    )
    eval_max_steps: Optional[int] = field(
        default=None, metadata={"help": "Supervision steps per puzzle at evaluation (default: halt_max_steps)."}
    )
    # Defaults of the method, overriding TrainingArguments'.
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak learning rate of AdamW."})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay."})
    adam_beta2: float = field(default=0.95, metadata={"help": "AdamW beta2."})
    lr_scheduler_type: str = field(
        default="constant_with_warmup",
        metadata={"help": "Learning-rate schedule (the method: warm-up, then constant)."},
    )
    dataloader_drop_last: bool = field(
        default=True, metadata={"help": "Keep every batch the same size: the carry is per batch row."}
    )
    logging_steps: float = field(default=10, metadata={"help": "Log every N steps."})
    max_grad_norm: float = field(
        default=0.0,
        metadata={
            "help": "Gradient clipping threshold; 0 disables clipping (the default: the TRM reference "
            "pretrain.py does not clip, unlike TrainingArguments' default of 1.0)."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"`ema_decay` must be in [0, 1) (0 disables the EMA), got {self.ema_decay!r}.")
        if self.puzzle_emb_lr < 0:
            raise ValueError(f"`puzzle_emb_lr` must be >= 0, got {self.puzzle_emb_lr!r}.")
        if self.puzzle_emb_weight_decay < 0:
            raise ValueError(f"`puzzle_emb_weight_decay` must be >= 0, got {self.puzzle_emb_weight_decay!r}.")
        if self.eval_max_steps is not None and self.eval_max_steps < 1:
            raise ValueError(f"`eval_max_steps` must be >= 1 or None, got {self.eval_max_steps!r}.")
        if self.gradient_accumulation_steps != 1:
            raise ValueError(
                "`gradient_accumulation_steps` must be 1 for deep supervision (one optimizer step per "
                f"supervision step; the carry advances at every forward), got {self.gradient_accumulation_steps!r}. "
                "Use a larger `per_device_train_batch_size` or more processes instead."
            )
