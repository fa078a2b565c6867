# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""GRPO with each prompt run once per group, under one name: the config (`grpo_config`), the trainer
with its generation helpers (`grpo_trainer`) and the shared-prompt log-probabilities (`shared_prefix`)."""

from .grpo_config import ReasoningGRPOConfig
from .grpo_trainer import ReasoningGRPOTrainer, can_share_prefill, shared_prefill_generate
from .shared_prefix import shared_prefix_logps
from .utils import check_4bit_weights_trainable, keep_4bit_weights_trainable


__all__ = [
    "ReasoningGRPOConfig",
    "ReasoningGRPOTrainer",
    "can_share_prefill",
    "check_4bit_weights_trainable",
    "keep_4bit_weights_trainable",
    "shared_prefill_generate",
    "shared_prefix_logps",
]
