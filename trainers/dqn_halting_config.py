# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
from dataclasses import dataclass, field

from transformers import TrainingArguments

from .utils import check_value


__all__ = ["DQNHaltingConfig"]


@dataclass
class DQNHaltingConfig(TrainingArguments):
    r"""
    Configuration for [`DQNHaltingTrainer`]. Every `TrainingArguments` field applies;
    `per_device_train_batch_size` is the number of puzzles rolled out in parallel (one supervision
    step each per rollout step). One rollout step (a micro-batch) is one supervision step of every
    puzzle in flight plus one Q-loss; one optimizer step (`global_step`) is
    `gradient_accumulation_steps` rollout steps plus one Q-update.

    Parameters:
        buffer_capacity (`int`, defaults to `50000`):
            Transitions the replay buffer holds (pre-allocated ring; the oldest are overwritten). >= 1.
        buffer_bf16 (`bool`, defaults to `False`):
            Store state vectors (summaries, token states, GRU states) in bfloat16: half the memory,
            relative error <= 2^-8 per value. Rewards, actions and flags stay exact. With
            precomputed trajectories the buffer holds (trajectory, step) pairs instead of the
            Q-head's inputs, and the inputs looked up in the table are rounded to bfloat16 in the
            same way, so a sample holds the values a stored state would have.
        dqn_batch_size (`int`, defaults to `256`):
            Transitions sampled (uniformly) per Q-update. >= 1.
        learning_starts (`int`, defaults to `256`):
            Q-updates begin once the buffer holds this many transitions. >= 1.
        gamma (`float`, defaults to `1.0`):
            Discount. Episodes last at most `halt_max_steps`, so the undiscounted return
            (accuracy minus step costs) is the quantity the policy should trade. In [0, 1].
        tau (`float`, defaults to `0.005`):
            Soft update of the target network after every optimizer step,
            `target <- tau * online + (1 - tau) * target` (about a 200-step horizon). In (0, 1].
        double_dqn (`bool`, defaults to `True`):
            Double-DQN targets: the online network picks the next action, the target network
            values it (less over-estimation than `max` over the target network).
        huber_delta (`float`, defaults to `1.0`):
            Delta of the Huber (smooth L1) loss on the TD error. > 0.
        entropy_coef (`float`, defaults to `0.0`):
            Weight of an entropy bonus on `softmax(Q(s, .))` over the two actions of the sampled
            states, subtracted from the loss: `loss = huber - entropy_coef * mean(H)` (keeps the
            two Q-values from separating too early). >= 0; 0 turns it off.
        epsilon_schedule (`str`, defaults to `"linear"`):
            `"linear"` or `"exponential"` (geometric) decay of epsilon from `epsilon_start` to
            `epsilon_end` over `epsilon_steps` optimizer steps (`state.global_step`; each is
            `gradient_accumulation_steps` rollout steps), then constant.
        epsilon_start (`float`, defaults to `0.5`), epsilon_end (`float`, defaults to `0.05`):
            Exploration probability at the start and end of the schedule. In [0, 1]; both > 0
            for `"exponential"`.
        epsilon_steps (`int`, defaults to `1000`):
            Optimizer steps of the decay. >= 1.
        reward_accuracy_delta (`float`, defaults to `0.1`):
            Weight of the change in cell accuracy from one step to the next (on "continue").
        reward_step_cost (`float`, defaults to `0.01`):
            Cost subtracted per extra supervision step (on "continue"). >= 0.
        reward_terminal_correct (`float`, defaults to `1.0`):
            Reward when the episode ends (halt, or the step limit) with the whole answer right.
        intrinsic (`str`, defaults to `"none"`):
            Exploration bonus added to "continue" rewards for reaching novel states: `"none"`,
            `"count"` (`1/sqrt(n)` over SimHash codes of the state) or `"rnd"` (Random Network
            Distillation: normalised error of a predictor of a fixed random network).
        intrinsic_weight (`float`, defaults to `0.01`):
            Weight of the intrinsic bonus. >= 0.
        count_hash_bits (`int`, defaults to `16`):
            SimHash code length for `intrinsic="count"` (2^bits counters). In [1, 24].
        memory_bonus_weight (`float`, defaults to `0.0`):
            Memory-use bonus, for a TRM with a pattern memory bank (`TRMConfig.memory_slots > 0`):
            "continue" rewards get `memory_bonus_weight * memory_use` of the state reached, where
            `memory_use` in [0, 1] is how closely the bank's slots match that state (the
            attention-weighted cosine similarity of the slots read). It favours steps that reach
            patterns the bank recognises. Counted with the intrinsic rewards in `intrinsic_share`.
            >= 0; 0 turns it off.
        freeze_trm (`bool`, defaults to `True`):
            Train only the Q-head. `False` trains the TRM jointly (its token loss is added; online
            rollouts, since the trajectories change as the TRM learns).
        precompute_trajectories (`bool`, defaults to `True`):
            With `freeze_trm=True`, run every supervision step of every training puzzle once up
            front and replay episodes from that table (see `hf_reason.trainers.dqn_halting_trainer`). Ignored when
            the TRM is trained.
        lm_loss_weight (`float`, defaults to `1.0`):
            Weight of the TRM's own loss when `freeze_trm=False`. >= 0.

    Not saved in checkpoints: the replay buffer (it refills after `learning_starts` steps) and the
    puzzles in flight (a resumed run starts fresh episodes). Saved: the Q-head and TRM weights,
    optimizer and schedule (the Trainer's), the target network and the intrinsic-bonus state.
    """

    buffer_capacity: int = field(default=50_000, metadata={"help": "Replay buffer capacity (transitions). >= 1."})
    buffer_bf16: bool = field(
        default=False, metadata={"help": "Store state vectors in bfloat16 (relative error <= 2^-8)."}
    )
    dqn_batch_size: int = field(default=256, metadata={"help": "Transitions sampled per Q-update. >= 1."})
    learning_starts: int = field(default=256, metadata={"help": "Buffer fill before Q-updates start. >= 1."})
    gamma: float = field(default=1.0, metadata={"help": "Discount factor, in [0, 1]."})
    tau: float = field(default=0.005, metadata={"help": "Target-network soft-update rate, in (0, 1]."})
    double_dqn: bool = field(default=True, metadata={"help": "Double-DQN targets (online argmax, target value)."})
    huber_delta: float = field(default=1.0, metadata={"help": "Huber loss delta. > 0."})
    entropy_coef: float = field(default=0.0, metadata={"help": "Entropy bonus weight on softmax(Q). >= 0."})
    epsilon_schedule: str = field(default="linear", metadata={"help": "'linear' or 'exponential' epsilon decay."})
    epsilon_start: float = field(default=0.5, metadata={"help": "Initial epsilon, in [0, 1]."})
    epsilon_end: float = field(default=0.05, metadata={"help": "Final epsilon, in [0, 1]."})
    epsilon_steps: int = field(
        default=1000, metadata={"help": "Optimizer steps (global_step) of epsilon decay. >= 1."}
    )
    reward_accuracy_delta: float = field(default=0.1, metadata={"help": "Weight of the cell-accuracy change."})
    reward_step_cost: float = field(default=0.01, metadata={"help": "Cost per extra supervision step. >= 0."})
    reward_terminal_correct: float = field(default=1.0, metadata={"help": "Reward for ending with a right answer."})
    intrinsic: str = field(default="none", metadata={"help": "Exploration bonus: 'none', 'count' or 'rnd'."})
    intrinsic_weight: float = field(default=0.01, metadata={"help": "Weight of the intrinsic bonus. >= 0."})
    count_hash_bits: int = field(default=16, metadata={"help": "SimHash bits for intrinsic='count', in [1, 24]."})
    memory_bonus_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of the memory-use bonus on 'continue' rewards (needs memory_slots > 0). >= 0."},
    )
    freeze_trm: bool = field(default=True, metadata={"help": "Train only the Q-head (False: joint training)."})
    precompute_trajectories: bool = field(
        default=True, metadata={"help": "With a frozen TRM, precompute all supervision steps and replay them."}
    )
    lm_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the TRM loss when freeze_trm=False."})
    # Defaults suited to a small Q-network, overriding TrainingArguments'.
    learning_rate: float = field(default=1e-3, metadata={"help": "Learning rate of the Q-head optimizer."})
    lr_scheduler_type: str = field(default="constant", metadata={"help": "Learning-rate schedule."})
    max_grad_norm: float = field(default=10.0, metadata={"help": "Gradient clipping norm."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep dataset columns (trajectory indices are not forward() arguments)."}
    )
    dataloader_drop_last: bool = field(
        default=True, metadata={"help": "Keep every batch the same size: episodes run per batch row."}
    )
    logging_steps: float = field(default=10, metadata={"help": "Log every N steps."})

    def __post_init__(self):
        super().__post_init__()
        check_value(self.buffer_capacity >= 1, "buffer_capacity", self.buffer_capacity, "an integer >= 1")
        check_value(self.dqn_batch_size >= 1, "dqn_batch_size", self.dqn_batch_size, "an integer >= 1")
        check_value(self.learning_starts >= 1, "learning_starts", self.learning_starts, "an integer >= 1")
        check_value(0.0 <= self.gamma <= 1.0, "gamma", self.gamma, "in [0, 1]")
        check_value(0.0 < self.tau <= 1.0, "tau", self.tau, "in (0, 1]")
        check_value(self.huber_delta > 0, "huber_delta", self.huber_delta, "> 0")
        check_value(self.entropy_coef >= 0, "entropy_coef", self.entropy_coef, ">= 0")
        check_value(
            self.epsilon_schedule in ("linear", "exponential"),
            "epsilon_schedule",
            self.epsilon_schedule,
            "one of 'linear', 'exponential'",
        )
        check_value(0.0 <= self.epsilon_start <= 1.0, "epsilon_start", self.epsilon_start, "in [0, 1]")
        check_value(0.0 <= self.epsilon_end <= 1.0, "epsilon_end", self.epsilon_end, "in [0, 1]")
        if self.epsilon_schedule == "exponential":
            check_value(
                self.epsilon_start > 0 and self.epsilon_end > 0,
                "epsilon_start",
                (self.epsilon_start, self.epsilon_end),
                "> 0 together with `epsilon_end` > 0 for the 'exponential' schedule",
            )
        check_value(self.epsilon_steps >= 1, "epsilon_steps", self.epsilon_steps, "an integer >= 1")
        check_value(self.reward_step_cost >= 0, "reward_step_cost", self.reward_step_cost, ">= 0")
        check_value(
            self.intrinsic in ("none", "count", "rnd"), "intrinsic", self.intrinsic, "one of 'none', 'count', 'rnd'"
        )
        check_value(self.intrinsic_weight >= 0, "intrinsic_weight", self.intrinsic_weight, ">= 0")
        check_value(1 <= self.count_hash_bits <= 24, "count_hash_bits", self.count_hash_bits, "in [1, 24]")
        check_value(self.memory_bonus_weight >= 0, "memory_bonus_weight", self.memory_bonus_weight, ">= 0")
        check_value(self.lm_loss_weight >= 0, "lm_loss_weight", self.lm_loss_weight, ">= 0")
