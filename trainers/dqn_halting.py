# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""DQN halting under one name: the config (`dqn_halting_config`), the trainer (`dqn_halting_trainer`) and
its rollout state (`dqn_halting_episodes`), its RL parts (`rl_utils`) and the offline halting evaluation
(`hf_reason.evaluation.halting`)."""

from hf_reason.evaluation.halting import (
    HaltingTrajectories,
    collect_trajectories,
    evaluate_halting,
    greedy_halting_steps,
    halting_metrics,
)
from hf_reason.evaluation.puzzles import PUZZLE_KEYS

from .dqn_halting_config import DQNHaltingConfig
from .dqn_halting_episodes import CONTINUE, HALT
from .dqn_halting_trainer import STATE_FILE, DQNHaltingTrainer
from .rl_utils import CountBonus, ReplayBuffer, RNDBonus, epsilon_at, soft_update


__all__ = [
    "CONTINUE",
    "HALT",
    "PUZZLE_KEYS",
    "STATE_FILE",
    "CountBonus",
    "DQNHaltingConfig",
    "DQNHaltingTrainer",
    "HaltingTrajectories",
    "RNDBonus",
    "ReplayBuffer",
    "collect_trajectories",
    "epsilon_at",
    "evaluate_halting",
    "greedy_halting_steps",
    "halting_metrics",
    "soft_update",
]
