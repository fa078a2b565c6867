"""Trainers for reasoning models, importable as `hf_reason.trainers`."""
