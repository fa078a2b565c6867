"""Trainers for reasoning models, importable as `hf_reason.trainers`.

Each trainer follows TRL's layout: `X_config.py` holds its config dataclass and `X_trainer.py` the
trainer; `utils.py` and `rl_utils.py` hold what they share, `rewards.py` the reward functions.
"""

from hf_reason.evaluation.halting import HaltingTrajectories, collect_trajectories, evaluate_halting

from ._model_card import training_state_files
from .cadence import CadenceConfig, TrainingCadenceCallback
from .curriculum import CosineRewardCurriculum, cosine_structure_weight
from .deep_supervision_config import DeepSupervisionConfig
from .deep_supervision_trainer import DeepSupervisionTrainer, SignSGD, last_complete_checkpoint
from .dpo_config import LengthBalancedDPOConfig
from .dpo_trainer import LengthBalancedDPOTrainer, LengthBalancedSampler
from .dqn_halting_config import DQNHaltingConfig
from .dqn_halting_trainer import DQNHaltingTrainer
from .grpo_config import ReasoningGRPOConfig
from .grpo_trainer import ReasoningGRPOTrainer
from .hierarchical_reward_trainer import HierarchicalRewardConfig, HierarchicalRewardTrainer
from .quantile_reward_config import QuantileRegressionConfig, QuantileRewardConfig
from .quantile_reward_trainer import QuantileRegressionTrainer, QuantileRewardTrainer
from .rewards import (
    ArithmeticAnswerReward,
    CombinedReward,
    ExactAnswerReward,
    FormatReward,
    PlanReward,
    TheoryOfMindReward,
)
from .rl_utils import ReplayBuffer
from .star import StarConfig, run_star
from .utils import is_complete_checkpoint, resolve_resume_checkpoint


__all__ = ["DeepSupervisionConfig", "DeepSupervisionTrainer", "SignSGD", "last_complete_checkpoint"]
__all__ += ["DQNHaltingConfig", "DQNHaltingTrainer", "HaltingTrajectories", "ReplayBuffer"]
__all__ += ["collect_trajectories", "evaluate_halting"]
__all__ += ["ReasoningGRPOConfig", "ReasoningGRPOTrainer"]
__all__ += ["LengthBalancedDPOConfig", "LengthBalancedDPOTrainer", "LengthBalancedSampler"]
__all__ += ["ArithmeticAnswerReward", "CombinedReward", "ExactAnswerReward", "FormatReward", "PlanReward"]
__all__ += ["TheoryOfMindReward", "training_state_files"]
__all__ += ["is_complete_checkpoint", "resolve_resume_checkpoint"]
__all__ += ["QuantileRegressionConfig", "QuantileRegressionTrainer", "QuantileRewardConfig", "QuantileRewardTrainer"]
__all__ += ["HierarchicalRewardConfig", "HierarchicalRewardTrainer"]
__all__ += ["StarConfig", "run_star"]
__all__ += ["CosineRewardCurriculum", "cosine_structure_weight"]
__all__ += ["CadenceConfig", "TrainingCadenceCallback"]
