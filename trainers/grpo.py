# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""GRPO with one prompt prefill per group, under one name: the config (`grpo_config`) and the trainer
with its generation helpers (`grpo_trainer`)."""

from .grpo_config import ReasoningGRPOConfig
from .grpo_trainer import ReasoningGRPOTrainer, can_share_prefill, shared_prefill_generate
from .utils import check_4bit_weights_trainable, keep_4bit_weights_trainable


__all__ = [
    "ReasoningGRPOConfig",
    "ReasoningGRPOTrainer",
    "can_share_prefill",
    "check_4bit_weights_trainable",
    "keep_4bit_weights_trainable",
    "shared_prefill_generate",
]
