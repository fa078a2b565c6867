# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Deep supervision under one name: the config (`deep_supervision_config`) and the trainer with its
checkpoint helpers (`deep_supervision_trainer`)."""

from .deep_supervision_config import DeepSupervisionConfig
from .deep_supervision_trainer import (
    EMA_DIR,
    STATE_FILE,
    TRAIN_METRIC_KEYS,
    DeepSupervisionTrainer,
    SignSGD,
    last_complete_checkpoint,
)


__all__ = [
    "EMA_DIR",
    "STATE_FILE",
    "TRAIN_METRIC_KEYS",
    "DeepSupervisionConfig",
    "DeepSupervisionTrainer",
    "SignSGD",
    "last_complete_checkpoint",
]
