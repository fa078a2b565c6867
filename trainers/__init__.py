"""Trainers for reasoning models, importable as `hf_reason.trainers`."""

from ._model_card import training_state_files
from .deep_supervision import DeepSupervisionConfig, DeepSupervisionTrainer, SignSGD, last_complete_checkpoint
from .dpo import LengthBalancedDPOConfig, LengthBalancedDPOTrainer, LengthBalancedSampler
from .dqn_halting import (
    DQNHaltingConfig,
    DQNHaltingTrainer,
    HaltingTrajectories,
    ReplayBuffer,
    collect_trajectories,
    evaluate_halting,
)
from .grpo import ReasoningGRPOConfig, ReasoningGRPOTrainer
from .rewards import (
    ArithmeticAnswerReward,
    CombinedReward,
    ExactAnswerReward,
    FormatReward,
    PlanReward,
    TheoryOfMindReward,
)


__all__ = ["DeepSupervisionConfig", "DeepSupervisionTrainer", "SignSGD", "last_complete_checkpoint"]
__all__ += ["DQNHaltingConfig", "DQNHaltingTrainer", "HaltingTrajectories", "ReplayBuffer"]
__all__ += ["collect_trajectories", "evaluate_halting"]
__all__ += ["ReasoningGRPOConfig", "ReasoningGRPOTrainer"]
__all__ += ["LengthBalancedDPOConfig", "LengthBalancedDPOTrainer", "LengthBalancedSampler"]
__all__ += ["ArithmeticAnswerReward", "CombinedReward", "ExactAnswerReward", "FormatReward", "PlanReward"]
__all__ += ["TheoryOfMindReward", "training_state_files"]
