# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Length-balanced DPO under one name: the config (`dpo_config`), the trainer with its token weights and
sampler (`dpo_trainer`) and the 4-bit guards it shares with GRPO (`utils`)."""

from .dpo_config import LengthBalancedDPOConfig
from .dpo_trainer import LengthBalancedDPOTrainer, LengthBalancedSampler, segment_token_weights
from .utils import check_4bit_weights_trainable, keep_4bit_weights_trainable


__all__ = [
    "LengthBalancedDPOConfig",
    "LengthBalancedDPOTrainer",
    "LengthBalancedSampler",
    "check_4bit_weights_trainable",
    "keep_4bit_weights_trainable",
    "segment_token_weights",
]
