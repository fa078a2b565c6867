"""Trainers for reasoning models, importable as `hf_reason.trainers`."""

from .deep_supervision import DeepSupervisionConfig, DeepSupervisionTrainer, SignSGD, last_complete_checkpoint


__all__ = ["DeepSupervisionConfig", "DeepSupervisionTrainer", "SignSGD", "last_complete_checkpoint"]
