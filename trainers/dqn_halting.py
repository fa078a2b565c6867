# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Learned halting as reinforcement learning: a DQN trainer for TRM's halting Q-head.

The environment is a TRM solving puzzles one supervision step at a time. After step `t` the agent
sees the answer state (summarised by the Q-head, `q_head.summarize`) and either halts (the
episode ends with a terminal reward if the whole answer is right) or continues (step `t + 1`
runs; reward = weighted change in cell accuracy minus a per-step cost). At `halt_max_steps` the
episode ends by itself. The Q-head (`TRMConfig.q_head_type`) is trained with Double-DQN targets
from a soft-updated target network, a Huber loss, uniform replay and epsilon-greedy exploration.

Two ways to produce the transitions, chosen by the config:

- `freeze_trm=True, precompute_trajectories=True` (the default): the frozen TRM is deterministic
  given its inputs, so every supervision step of every training puzzle is run once up front
  (`collect_trajectories`) and episodes replay from that table. Every rollout step then costs a
  table lookup instead of a TRM forward, which is what makes thousands of episodes affordable
  on a CPU; the agent still acts epsilon-greedily and learns only from the transitions it takes.
  The replay buffer then stores a transition's states as (trajectory, step) pairs and looks
  them up in the table when it samples: the attention head's states are whole token-state
  matrices, and a buffer of 50k transitions holding two of them each would take gigabytes.
- otherwise the TRM runs online, one supervision step per rollout step with the carry kept per
  puzzle (as in deep supervision); with `freeze_trm=False` its own token loss is added, so TRM
  and head train jointly.

A rollout step is one `compute_loss` call (one micro-batch): every puzzle in flight advances one
supervision step and one Q-loss is taken on a replay sample. With `gradient_accumulation_steps=k`
an optimizer step (`state.global_step`, what `max_steps`, the epsilon schedule and the target
network's soft updates count) covers `k` rollout steps.
"""

import copy
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from datasets import Dataset
from safetensors.torch import load_file
from torch import nn
from tqdm.auto import tqdm
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging

from hf_reason.file_io import save_safetensors_atomic
from hf_reason.models.trm.modeling_trm import IGNORE_INDEX

from ._model_card import ModelCardMixin


logger = logging.get_logger(__name__)

STATE_FILE = "dqn_halting_state_rank{rank}.safetensors"
HALT, CONTINUE = 0, 1  # action indices, in the order the Q-heads return (Q_halt, Q_continue)
PUZZLE_KEYS = ("input_ids", "labels", "puzzle_identifiers")


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
        freeze_trm (`bool`, defaults to `True`):
            Train only the Q-head. `False` trains the TRM jointly (its token loss is added; online
            rollouts, since the trajectories change as the TRM learns).
        precompute_trajectories (`bool`, defaults to `True`):
            With `freeze_trm=True`, run every supervision step of every training puzzle once up
            front and replay episodes from that table (see the module docstring). Ignored when
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
        _check(self.buffer_capacity >= 1, "buffer_capacity", self.buffer_capacity, "an integer >= 1")
        _check(self.dqn_batch_size >= 1, "dqn_batch_size", self.dqn_batch_size, "an integer >= 1")
        _check(self.learning_starts >= 1, "learning_starts", self.learning_starts, "an integer >= 1")
        _check(0.0 <= self.gamma <= 1.0, "gamma", self.gamma, "in [0, 1]")
        _check(0.0 < self.tau <= 1.0, "tau", self.tau, "in (0, 1]")
        _check(self.huber_delta > 0, "huber_delta", self.huber_delta, "> 0")
        _check(self.entropy_coef >= 0, "entropy_coef", self.entropy_coef, ">= 0")
        _check(
            self.epsilon_schedule in ("linear", "exponential"),
            "epsilon_schedule",
            self.epsilon_schedule,
            "one of 'linear', 'exponential'",
        )
        _check(0.0 <= self.epsilon_start <= 1.0, "epsilon_start", self.epsilon_start, "in [0, 1]")
        _check(0.0 <= self.epsilon_end <= 1.0, "epsilon_end", self.epsilon_end, "in [0, 1]")
        if self.epsilon_schedule == "exponential":
            _check(
                self.epsilon_start > 0 and self.epsilon_end > 0,
                "epsilon_start",
                (self.epsilon_start, self.epsilon_end),
                "> 0 together with `epsilon_end` > 0 for the 'exponential' schedule",
            )
        _check(self.epsilon_steps >= 1, "epsilon_steps", self.epsilon_steps, "an integer >= 1")
        _check(self.reward_step_cost >= 0, "reward_step_cost", self.reward_step_cost, ">= 0")
        _check(
            self.intrinsic in ("none", "count", "rnd"), "intrinsic", self.intrinsic, "one of 'none', 'count', 'rnd'"
        )
        _check(self.intrinsic_weight >= 0, "intrinsic_weight", self.intrinsic_weight, ">= 0")
        _check(1 <= self.count_hash_bits <= 24, "count_hash_bits", self.count_hash_bits, "in [1, 24]")
        _check(self.lm_loss_weight >= 0, "lm_loss_weight", self.lm_loss_weight, ">= 0")


def _check(ok: bool, name: str, value, allowed: str) -> None:
    if not ok:
        raise ValueError(f"`{name}` must be {allowed}, got {value!r}.")


# --------------------------------------------------------------------------- building blocks
def epsilon_at(step: int, schedule: str, start: float, end: float, num_steps: int) -> float:
    """Epsilon after `step` steps: `start` at 0, `end` from `num_steps` on (linear or geometric)."""
    progress = min(max(step, 0) / num_steps, 1.0)
    if schedule == "linear":
        return start + (end - start) * progress
    if schedule == "exponential":
        return start * (end / start) ** progress
    raise ValueError(f"`epsilon_schedule` must be one of 'linear', 'exponential', got {schedule!r}.")


@torch.no_grad()
def soft_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """`target <- tau * online + (1 - tau) * target`, parameter by parameter (buffers copied)."""
    target_params, online_params = list(target.parameters()), list(online.parameters())
    torch._foreach_lerp_(target_params, online_params, tau)
    for target_buffer, online_buffer in zip(target.buffers(), online.buffers()):
        target_buffer.copy_(online_buffer)


class ReplayBuffer:
    """Fixed-capacity ring buffer of transitions, pre-allocated on the first `add`.

    Fields are named tensors with a leading batch dimension. Floating fields with per-item
    feature dimensions (states) are stored in `state_dtype` (e.g. bfloat16 to halve memory);
    per-item scalars (reward, done, step fraction) and integer fields are stored exactly.
    Written here rather than taken from torchrl/stable-baselines3: neither is a dependency, and a
    ring of tensors with uniform sampling is a few lines.
    """

    def __init__(self, capacity: int, state_dtype: torch.dtype = torch.float32, device="cpu", seed: int = 0):
        _check(isinstance(capacity, int) and capacity >= 1, "capacity", capacity, "an integer >= 1")
        self.capacity = capacity
        self.state_dtype = state_dtype
        self.device = torch.device(device)
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.storage: dict[str, torch.Tensor] = {}
        self.position = 0  # next slot to write
        self.size = 0
        self.added = 0  # total transitions ever added

    def __len__(self) -> int:
        return self.size

    def _storage_dtype(self, value: torch.Tensor) -> torch.dtype:
        if value.is_floating_point() and value.dim() > 1:
            return self.state_dtype
        return torch.float32 if value.is_floating_point() else value.dtype

    def add(self, **fields: torch.Tensor) -> None:
        sizes = {v.shape[0] for v in fields.values()}
        if len(sizes) != 1:
            raise ValueError(
                f"All fields need the same leading size, got { {k: v.shape[0] for k, v in fields.items()} }."
            )
        count = sizes.pop()
        if count == 0:
            return
        if not self.storage:
            self.storage = {
                k: torch.empty((self.capacity, *v.shape[1:]), dtype=self._storage_dtype(v), device=self.device)
                for k, v in fields.items()
            }
        elif set(fields) != set(self.storage):
            raise ValueError(f"Fields {sorted(fields)} differ from the buffer's {sorted(self.storage)}.")
        if count > self.capacity:  # only the newest `capacity` would survive anyway
            fields = {k: v[-self.capacity :] for k, v in fields.items()}
            self.added += count - self.capacity
            count = self.capacity
        index = (self.position + torch.arange(count)) % self.capacity
        for key, value in fields.items():
            self.storage[key][index.to(self.device)] = value.detach().to(self.device, self.storage[key].dtype)
        self.position = (self.position + count) % self.capacity
        self.size = min(self.size + count, self.capacity)
        self.added += count

    def sample(self, batch_size: int, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
        """`batch_size` transitions drawn uniformly with replacement; states returned in `dtype`."""
        if self.size == 0:
            raise ValueError("Cannot sample from an empty replay buffer.")
        index = torch.randint(0, self.size, (batch_size,), generator=self.generator).to(self.device)
        return {k: (v[index].to(dtype) if v.is_floating_point() else v[index]) for k, v in self.storage.items()}


class CountBonus:
    """Count-based bonus `1 / sqrt(n(code))` over SimHash codes (Tang et al., 2017) of the states."""

    def __init__(self, feature_dim: int, bits: int, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.projection = torch.randn(feature_dim, bits, generator=generator)
        self.powers = 2 ** torch.arange(bits)
        self.counts = torch.zeros(2**bits, dtype=torch.long)

    def __call__(self, states: torch.Tensor) -> torch.Tensor:
        codes = ((states.flatten(1).float().cpu() @ self.projection) > 0).long() @ self.powers
        self.counts.index_add_(0, codes, torch.ones_like(codes))
        return self.counts[codes].float().rsqrt().to(states.device)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"counts": self.counts, "projection": self.projection}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.counts.copy_(state["counts"])
        self.projection.copy_(state["projection"])


class RNDBonus(nn.Module):
    """Random Network Distillation (Burda et al., 2018): the error of a predictor trained to match a
    fixed random network is large on rarely seen states; normalised by its running mean."""

    def __init__(self, feature_dim: int, embed_dim: int = 64, lr: float = 1e-3, seed: int = 0):
        super().__init__()
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        self.target = nn.Sequential(nn.Linear(feature_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, embed_dim))
        self.predictor = nn.Sequential(nn.Linear(feature_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, embed_dim))
        torch.random.set_rng_state(generator_state)  # the caller's random stream is not perturbed
        self.target.requires_grad_(False)
        self.register_buffer("error_mean", torch.ones(()))
        self.optimizer = torch.optim.Adam(self.predictor.parameters(), lr=lr)

    def __call__(self, states: torch.Tensor) -> torch.Tensor:
        states = states.flatten(1).float()
        with torch.no_grad():
            target = self.target(states)
        error = (self.predictor(states) - target).square().mean(-1)
        self.optimizer.zero_grad(set_to_none=True)
        error.mean().backward()
        self.optimizer.step()
        error = error.detach()
        self.error_mean.mul_(0.99).add_(0.01 * error.mean())
        return error / self.error_mean.clamp_min(1e-8)


# --------------------------------------------------------------------------- trajectories
@dataclass
class HaltingTrajectories:
    """Every supervision step of a set of puzzles under a fixed TRM.

    Args:
        observations (`torch.Tensor` of shape `(num_puzzles, max_steps, *state_shape)`):
            The Q-head's input after each step (`q_head.summarize` of the answer state).
        cell_accuracy (`torch.FloatTensor` of shape `(num_puzzles, max_steps)`):
            Fraction of target cells right after each step.
        exact (`torch.BoolTensor` of shape `(num_puzzles, max_steps)`):
            Whether the whole answer is right after each step.
    """

    observations: torch.Tensor
    cell_accuracy: torch.Tensor
    exact: torch.Tensor

    def __post_init__(self):
        if self.observations.shape[:2] != self.exact.shape or self.cell_accuracy.shape != self.exact.shape:
            raise ValueError(
                "`observations` must have shape (num_puzzles, max_steps, ...) and `cell_accuracy` / `exact` "
                f"(num_puzzles, max_steps); got {tuple(self.observations.shape)}, "
                f"{tuple(self.cell_accuracy.shape)}, {tuple(self.exact.shape)}."
            )

    @property
    def num_puzzles(self) -> int:
        return self.exact.shape[0]

    @property
    def max_steps(self) -> int:
        return self.exact.shape[1]


@torch.no_grad()
def collect_trajectories(model, dataset, batch_size: int = 64, state_dtype=torch.float32, desc="trajectories"):
    """Runs all `halt_max_steps` supervision steps of `model` on every puzzle of `dataset`."""
    was_training = model.training
    model.eval()
    observations, cell_accuracy, exact = [], [], []
    columns = [c for c in PUZZLE_KEYS if c in dataset.column_names]
    for start in tqdm(range(0, len(dataset), batch_size), desc=desc):
        rows = dataset[start : start + batch_size]
        batch = {c: torch.as_tensor(rows[c], device=model.device) for c in columns}
        labels = batch.pop("labels")
        mask = labels != IGNORE_INDEX
        carry, obs, cells, right = None, [], [], []
        for _ in range(model.config.halt_max_steps):
            out = model(**batch, carry=carry, return_dict=True)
            carry = out.carry
            carry.halted = torch.zeros_like(carry.halted)  # follow every puzzle to the last step
            obs.append(model.q_head.summarize(carry.y).to(state_dtype).cpu())
            correct = ((out.logits.argmax(-1) == labels) & mask).sum(-1)
            cells.append((correct.float() / mask.sum(-1).clamp_min(1)).cpu())
            right.append((correct == mask.sum(-1)).cpu())
        observations.append(torch.stack(obs, 1))
        cell_accuracy.append(torch.stack(cells, 1))
        exact.append(torch.stack(right, 1))
    model.train(was_training)
    return HaltingTrajectories(torch.cat(observations), torch.cat(cell_accuracy), torch.cat(exact))


@torch.no_grad()
def greedy_halting_steps(q_head: nn.Module, trajectories: HaltingTrajectories, batch_size: int = 1024):
    """The step (1-based) at which the greedy policy of `q_head` halts on each trajectory."""
    steps = []
    max_steps = trajectories.max_steps
    dtype = next(q_head.parameters()).dtype
    for start in range(0, trajectories.num_puzzles, batch_size):
        obs = trajectories.observations[start : start + batch_size]
        halted_at = torch.full((obs.shape[0],), max_steps, dtype=torch.long)
        done = torch.zeros(obs.shape[0], dtype=torch.bool)
        hidden = None
        for t in range(max_steps - 1):
            fraction = torch.full((obs.shape[0],), (t + 1) / max_steps)
            q_halt, q_continue, hidden = q_head.q_values(obs[:, t].to(dtype), fraction, hidden)
            halt = (q_halt > q_continue) & ~done
            halted_at[halt] = t + 1
            done |= halt
        steps.append(halted_at)
    return torch.cat(steps)


def halting_metrics(halt_steps: torch.Tensor, exact: torch.Tensor) -> dict[str, float]:
    """Accuracy at halt, mean steps, premature-halt rate (halted wrong though a later step was
    right), accuracy at the maximum step, for halting steps `halt_steps` (1-based)."""
    rows = torch.arange(exact.shape[0])
    right_at_halt = exact[rows, halt_steps - 1]
    later = torch.arange(exact.shape[1]).unsqueeze(0) >= halt_steps.unsqueeze(1)
    right_later = (exact & later).any(1)
    n = exact.shape[0]
    return {
        "exact_accuracy": right_at_halt.float().mean().item(),
        "num_exact": int(right_at_halt.sum()),
        "num_puzzles": n,
        "mean_steps": halt_steps.float().mean().item(),
        "premature_halt_rate": (~right_at_halt & right_later).float().mean().item(),
        "exact_accuracy_max_steps": exact[:, -1].float().mean().item(),
        "num_exact_max_steps": int(exact[:, -1].sum()),
    }


@torch.no_grad()
def evaluate_halting(model, dataset, batch_size: int = 100, max_steps: Optional[int] = None) -> dict[str, float]:
    """Runs `model` (its own configured halting rule, e.g. `halting="dqn"`) on puzzles of `dataset`
    for every supervision step and scores where its rule halts (see `halting_metrics`)."""
    max_steps = max_steps or model.config.halt_max_steps
    was_training = model.training
    model.eval()
    columns = [c for c in PUZZLE_KEYS if c in dataset.column_names]
    all_steps, all_exact = [], []
    for start in range(0, len(dataset), batch_size):
        rows = dataset[start : start + batch_size]
        batch = {c: torch.as_tensor(rows[c], device=model.device) for c in columns}
        labels = batch.pop("labels")
        mask = labels != IGNORE_INDEX
        carry, exact = None, []
        halt_steps = torch.full((labels.shape[0],), max_steps, dtype=torch.long)
        done = torch.zeros(labels.shape[0], dtype=torch.bool)
        for step in range(1, max_steps + 1):
            out = model(**batch, carry=carry, return_dict=True)
            carry = out.carry
            carry.halted = torch.zeros_like(carry.halted)
            exact.append((((out.logits.argmax(-1) == labels) & mask).sum(-1) == mask.sum(-1)).cpu())
            halt = model.halt_decision(out.q_halt_logits, out.q_continue_logits).cpu() & ~done
            halt_steps[halt] = step
            done |= halt
        all_steps.append(halt_steps)
        all_exact.append(torch.stack(exact, 1))
    model.train(was_training)
    return halting_metrics(torch.cat(all_steps), torch.cat(all_exact))


# --------------------------------------------------------------------------- trainer
class _AfterOptimizerStep(TrainerCallback):
    def __init__(self, trainer: "DQNHaltingTrainer"):
        self.trainer = trainer

    def on_optimizer_step(self, args, state, control, **kwargs):
        soft_update(self.trainer.target_q_head, self.trainer.q_head, self.trainer.args.tau)


class DQNHaltingTrainer(ModelCardMixin, Trainer):
    """
    Trains the halting Q-head of a [`TRMForPuzzleSolving`] with DQN (see the module docstring).

    The model's `config.halting` is set to `"dqn"`: `solve()` and evaluation then halt where
    `Q_halt > Q_continue`, and the model's own loss drops its halting terms. The train dataset
    holds puzzles (`input_ids`, `labels`, optionally `puzzle_identifiers`); alternatively pass
    `trajectories` (a [`HaltingTrajectories`]) to learn from a given table of supervision steps.
    `eval_dataset` may be puzzles (scored with the model's forward, `evaluate_halting`) or a
    `HaltingTrajectories` (scored on the table).

    Logged during training: `loss` (TD), `q_halt_mean`, `q_continue_mean`, `q_max`, `q_min`,
    `td_error`, `epsilon`, `buffer_fill`, `intrinsic_share` (intrinsic part of all rewards, in
    absolute value), and over the episodes that ended since the last log: `mean_steps`,
    `exact_accuracy` (at halt), `premature_halt_rate` (table rollouts only: an online rollout
    replaces a halted puzzle at once, so whether a later step would have been right is never
    computed; `evaluate()` runs every step and reports it in both modes), `episodes`.
    """

    training_state_files = (STATE_FILE.format(rank="*"),)

    def __init__(
        self,
        model=None,
        args: Optional[DQNHaltingConfig] = None,
        train_dataset=None,
        eval_dataset=None,
        trajectories: Optional[HaltingTrajectories] = None,
        **kwargs,
    ):
        if args is None:
            args = DQNHaltingConfig(output_dir="trm-dqn-halting")
        if not isinstance(args, DQNHaltingConfig):
            raise ValueError(f"`args` must be a DQNHaltingConfig, got {type(args).__name__}.")
        if model is None or not hasattr(model, "q_head") or not hasattr(model, "q_values"):
            raise ValueError("`model` must be a TRMForPuzzleSolving (a model with `q_head` and `q_values`).")
        if model.config.halt_max_steps < 2:
            raise ValueError("`config.halt_max_steps` must be >= 2: with one step there is no halting decision.")
        if trajectories is None and train_dataset is None:
            raise ValueError("Pass `train_dataset` (puzzles) or `trajectories` (a HaltingTrajectories).")
        if model.config.q_head_type == "linear":
            logger.warning(
                "DQN with the 'linear' Q-head: it reads only the first position, has no step input and starts "
                "at the method's -5 bias, so it learns slowly; 'mlp', 'gru' or 'attention' heads are recommended "
                "(`model.replace_q_head('mlp')`)."
            )
        model.config.halting = "dqn"
        if args.freeze_trm:
            model.requires_grad_(False)
            model.q_head.requires_grad_(True)
        self.use_table = trajectories is not None or (args.freeze_trm and args.precompute_trajectories)
        if self.use_table:
            if trajectories is None:
                trajectories = collect_trajectories(
                    model, train_dataset, args.per_device_train_batch_size, desc="precomputing trajectories"
                )
            if trajectories.max_steps != model.config.halt_max_steps:
                raise ValueError(
                    f"`trajectories` have {trajectories.max_steps} steps; the model's halt_max_steps is "
                    f"{model.config.halt_max_steps}."
                )
            train_dataset = Dataset.from_dict({"trajectory_index": list(range(trajectories.num_puzzles))})
        else:
            train_dataset = train_dataset.select_columns([c for c in PUZZLE_KEYS if c in train_dataset.column_names])
        self.trajectories = trajectories
        super().__init__(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset, **kwargs)
        # TRM's forward takes **kwargs, which makes Trainer assume the loss is already normalised by
        # `num_items_in_batch` and skip dividing it by the accumulation steps. Our loss is a mean
        # per rollout step (the TD loss plus the TRM's per-example loss): let Trainer scale it.
        self.model_accepts_loss_kwargs = False
        self.q_head = model.q_head
        self.target_q_head = copy.deepcopy(model.q_head).requires_grad_(False).eval()
        self.buffer = ReplayBuffer(
            args.buffer_capacity,
            torch.bfloat16 if args.buffer_bf16 else torch.float32,
            seed=args.seed + args.process_index,
        )
        self.intrinsic_bonus = None
        self._generator = torch.Generator().manual_seed(args.seed + 1000 * args.process_index)
        self._slots: Optional[dict] = None
        self._pending_intrinsic_state: Optional[dict] = None
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self.add_callback(_AfterOptimizerStep(self))

    # ----------------------------------------------------------------- rollouts
    def current_epsilon(self) -> float:
        a = self.args
        return epsilon_at(self.state.global_step, a.epsilon_schedule, a.epsilon_start, a.epsilon_end, a.epsilon_steps)

    def _environment_step(
        self, model, slots: dict
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """One supervision step for every slot: (observations, cell accuracy, exact, TRM loss or None)."""
        if self.use_table:
            index, t = slots["puzzle"]["trajectory_index"], slots["steps"] - 1
            table = self.trajectories
            obs = table.observations[index.cpu(), t.cpu()].to(self.args.device, self.q_head_dtype)
            return obs, table.cell_accuracy[index.cpu(), t.cpu()], table.exact[index.cpu(), t.cpu()], None
        puzzle = slots["puzzle"]
        with torch.set_grad_enabled(not self.args.freeze_trm):
            out = model(**puzzle, carry=slots["carry"], return_dict=True)
        slots["carry"] = out.carry
        slots["carry"].halted = torch.zeros_like(out.carry.halted)  # the trainer decides when episodes end
        obs = self.q_head.summarize(out.carry.y).detach()
        labels = puzzle["labels"]
        mask = labels != IGNORE_INDEX
        correct = ((out.logits.detach().argmax(-1) == labels) & mask).sum(-1)
        cells = correct.float() / mask.sum(-1).clamp_min(1)
        lm_loss = out.loss if not self.args.freeze_trm else None
        return obs, cells.cpu(), (correct == mask.sum(-1)).cpu(), lm_loss

    @property
    def q_head_dtype(self) -> torch.dtype:
        return next(self.q_head.parameters()).dtype

    def _start_episodes(self, model, slots: Optional[dict], batch: dict) -> dict:
        """Rows whose episode ended take the new batch's puzzles (as deep supervision replaces halted rows)."""
        size = next(iter(batch.values())).shape[0]
        if slots is None or slots["done"].shape[0] != size:
            slots = {
                "puzzle": dict(batch),
                "done": torch.ones(size, dtype=torch.bool),
                "steps": torch.zeros(size, dtype=torch.long),
            }
            if not self.use_table:
                slots["carry"] = self.accelerator.unwrap_model(model).model.initial_carry(size)
            slots["hidden"] = None
            slots["pending"] = None
            return slots
        done = slots["done"]
        device_done = done.to(self.args.device)
        slots["puzzle"] = {
            k: torch.where(device_done.view(-1, *([1] * (v.dim() - 1))), batch[k], v)
            for k, v in slots["puzzle"].items()
        }
        slots["steps"] = torch.where(done, 0, slots["steps"])
        if not self.use_table:
            slots["carry"].halted = device_done
        if slots["hidden"] is not None:  # the GRU head's memory restarts with the puzzle
            slots["hidden"] = torch.where(device_done.view(-1, 1), 0.0, slots["hidden"])
        return slots

    def _push(self, obs, hidden, action, reward, next_obs, next_hidden, fraction, next_fraction, done):
        """Stores transitions; with the table, `obs` / `next_obs` are `(trajectory, step)` pairs."""
        key = "obs_ref" if self.use_table else "obs"
        fields = {
            key: obs,
            f"next_{key}": next_obs,
            "action": action,
            "reward": reward,
            "done": done.float(),
            "step_fraction": fraction,
            "next_step_fraction": next_fraction,
        }
        if hidden is not None:
            fields.update(hidden=hidden, next_hidden=next_hidden)
        self.buffer.add(**{k: v.detach().cpu() for k, v in fields.items()})

    @torch.no_grad()
    def _rollout(self, model, batch: dict) -> Optional[torch.Tensor]:
        """Advances every episode by one supervision step, acts epsilon-greedily, stores transitions."""
        a = self.args
        slots = self._slots = self._start_episodes(model, self._slots, batch)
        slots["steps"] += 1
        steps, max_steps = slots["steps"], self.model.config.halt_max_steps
        with torch.enable_grad() if not a.freeze_trm else torch.no_grad():
            obs, cells, exact, lm_loss = self._environment_step(model, slots)
        obs = obs.to(self.q_head_dtype)
        fraction = steps.float() / max_steps
        if slots["hidden"] is None and hasattr(self.q_head, "initial_hidden"):
            slots["hidden"] = self.q_head.initial_hidden(obs.shape[0], obs.device, obs.dtype)
        hidden_in = slots["hidden"]
        q_halt, q_continue, hidden_out = self.q_head.q_values(obs, fraction.to(obs.device), hidden_in)
        slots["hidden"] = hidden_out
        last = steps >= max_steps
        q_halt, q_continue = q_halt.cpu(), q_continue.cpu()
        # Transitions are assembled on the CPU, where the replay buffer lives. With the table they
        # refer to their states by (trajectory, step), looked up again when sampled (`_lookup_states`).
        if self.use_table:
            obs_cpu = torch.stack((slots["puzzle"]["trajectory_index"].cpu(), steps - 1), dim=-1)
        else:
            obs_cpu = obs.cpu()
        hidden_in = hidden_in.cpu() if hidden_in is not None else None
        hidden_out = hidden_out.cpu() if hidden_out is not None else None

        # Finish the transitions of rows that continued at the previous step.
        pending = slots["pending"]
        if pending is not None and pending["rows"].any():
            rows = pending["rows"]
            extrinsic = a.reward_accuracy_delta * (cells - pending["cells"]) - a.reward_step_cost
            extrinsic = extrinsic + a.reward_terminal_correct * (last & exact).float()
            intrinsic = self._intrinsic(obs)
            reward = extrinsic + a.intrinsic_weight * intrinsic
            self._metrics["_extrinsic_abs"].append(extrinsic[rows].abs().sum().item())
            self._metrics["_intrinsic_abs"].append((a.intrinsic_weight * intrinsic[rows]).abs().sum().item())
            has_hidden = pending["hidden"] is not None
            self._push(
                pending["obs"][rows],
                pending["hidden"][rows] if has_hidden else None,
                torch.full((int(rows.sum()),), CONTINUE),
                reward[rows],
                obs_cpu[rows],
                pending["next_hidden"][rows] if has_hidden else None,
                pending["fraction"][rows],
                fraction[rows],
                last[rows],
            )

        # Epsilon-greedy decisions (none at the step limit: the episode ends there).
        greedy_halt = q_halt > q_continue
        explore = torch.rand(steps.shape, generator=self._generator) < self.current_epsilon()
        random_halt = torch.rand(steps.shape, generator=self._generator) < 0.5
        halt = torch.where(explore, random_halt, greedy_halt) & ~last
        if halt.any():
            reward = a.reward_terminal_correct * exact[halt].float()
            self._metrics["_extrinsic_abs"].append(reward.abs().sum().item())
            self._push(
                obs_cpu[halt],
                hidden_in[halt] if hidden_in is not None else None,
                torch.full((int(halt.sum()),), HALT),
                reward,
                obs_cpu[halt],
                hidden_out[halt] if hidden_out is not None else None,
                fraction[halt],
                fraction[halt],
                torch.ones(int(halt.sum()), dtype=torch.bool),
            )
        continuing = ~halt & ~last
        slots["pending"] = {
            "rows": continuing,
            "obs": obs_cpu,
            "cells": cells,
            "fraction": fraction,
            "hidden": hidden_in,
            "next_hidden": hidden_out,
        }
        ended = halt | last
        slots["done"] = ended
        self._record_episodes(slots, ended, exact, steps)
        self._metrics["q_halt_mean"].append(q_halt.mean().item())
        self._metrics["q_continue_mean"].append(q_continue.mean().item())
        self._metrics["q_max"].append(torch.maximum(q_halt, q_continue).max().item())
        self._metrics["q_min"].append(torch.minimum(q_halt, q_continue).min().item())
        return lm_loss

    def _intrinsic(self, obs: torch.Tensor) -> torch.Tensor:
        if self.args.intrinsic == "none":
            return torch.zeros(obs.shape[0])
        if self.intrinsic_bonus is None:
            features = math.prod(obs.shape[1:])
            seed = self.args.seed + 7
            if self.args.intrinsic == "count":
                self.intrinsic_bonus = CountBonus(features, self.args.count_hash_bits, seed=seed)
            else:
                self.intrinsic_bonus = RNDBonus(features, seed=seed).to(obs.device)
            if self._pending_intrinsic_state is not None:
                self.intrinsic_bonus.load_state_dict(self._pending_intrinsic_state)
        with torch.enable_grad():
            return self.intrinsic_bonus(obs.float()).detach().cpu()

    def _record_episodes(self, slots, ended, exact, steps):
        if not ended.any():
            return
        self._metrics["mean_steps"].append(steps[ended].float().mean().item())
        self._metrics["exact_accuracy"].append(exact[ended].float().mean().item())
        self._metrics["episodes"].append(float(ended.sum()))
        if self.use_table:
            index = slots["puzzle"]["trajectory_index"][ended.to(self.args.device)].cpu()
            later = torch.arange(self.trajectories.max_steps).unsqueeze(0) >= steps[ended].unsqueeze(1)
            right_later = (self.trajectories.exact[index] & later).any(1)
            self._metrics["premature_halt_rate"].append((~exact[ended] & right_later).float().mean().item())

    # Logged means; a fixed list so that every process reduces the same tensor.
    METRIC_KEYS = (
        "buffer_fill",
        "epsilon",
        "exact_accuracy",
        "mean_steps",
        "premature_halt_rate",
        "q_continue_mean",
        "q_halt_mean",
        "q_max",
        "q_min",
        "td_error",
    )

    # ----------------------------------------------------------------- loss
    def _lookup_states(self, sample: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Replaces a sample's `(trajectory, step)` references by the table's states, rounded to the
        buffer's storage dtype (what storing them would have done) and cast to the Q-head's."""
        if "obs_ref" not in sample:
            return sample
        table = self.trajectories.observations
        for key in ("obs", "next_obs"):
            ref = sample.pop(f"{key}_ref").cpu()
            states = table[ref[:, 0], ref[:, 1]]
            if states.is_floating_point():
                states = states.to(self.buffer.state_dtype)
            sample[key] = states.to(self.q_head_dtype)
        return sample

    def dqn_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Huber loss between Q(s, a) and the (Double-)DQN target; minus the optional entropy bonus."""
        a = self.args
        hidden, next_hidden = batch.get("hidden"), batch.get("next_hidden")
        q_halt, q_continue, _ = self.q_head.q_values(batch["obs"], batch["step_fraction"], hidden)
        q = torch.stack((q_halt, q_continue), -1)
        q_taken = q.gather(1, batch["action"].long().unsqueeze(1)).squeeze(1)
        with torch.no_grad():
            target_halt, target_continue, _ = self.target_q_head.q_values(
                batch["next_obs"], batch["next_step_fraction"], next_hidden
            )
            target_q = torch.stack((target_halt, target_continue), -1)
            if a.double_dqn:
                online_halt, online_continue, _ = self.q_head.q_values(
                    batch["next_obs"], batch["next_step_fraction"], next_hidden
                )
                best = torch.stack((online_halt, online_continue), -1).argmax(-1, keepdim=True)
                next_value = target_q.gather(1, best).squeeze(1)
            else:
                next_value = target_q.max(-1).values
            target = batch["reward"] + a.gamma * (1.0 - batch["done"]) * next_value
        loss = F.huber_loss(q_taken, target, delta=a.huber_delta)
        if a.entropy_coef > 0:
            entropy = -(F.softmax(q, -1) * F.log_softmax(q, -1)).sum(-1).mean()
            loss = loss - a.entropy_coef * entropy
        return loss, {"td_error": (q_taken - target).abs().mean().item()}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:
            raise ValueError("DQNHaltingTrainer's loss has no model outputs to return.")
        batch = {k: v for k, v in inputs.items() if k in PUZZLE_KEYS or k == "trajectory_index"}
        lm_loss = self._rollout(model, batch)
        a = self.args
        self._metrics["epsilon"].append(self.current_epsilon())
        self._metrics["buffer_fill"].append(len(self.buffer) / self.buffer.capacity)
        if len(self.buffer) >= a.learning_starts:
            sample = self._lookup_states(self.buffer.sample(a.dqn_batch_size, dtype=self.q_head_dtype))
            sample = {k: v.to(a.device) for k, v in sample.items()}
            loss, stats = self.dqn_loss(sample)
            for key, value in stats.items():
                self._metrics[key].append(value)
        else:
            # No update yet, but every trainable parameter still gets a (zero) gradient so the
            # optimizer step and, under DDP, the gradient reduction stay uniform across steps.
            loss = sum(p.sum() * 0.0 for p in model.parameters() if p.requires_grad)
        if lm_loss is not None:
            loss = loss + a.lm_loss_weight * lm_loss
        return loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.accelerator.num_processes > 1 and self.args.freeze_trm:
            # The Q-head is called outside the DDP wrapper's forward, so DDP does not average its
            # gradients: average them here so every process takes the same step.
            for param in self.q_head.parameters():
                if param.grad is not None:
                    torch.distributed.all_reduce(param.grad, op=torch.distributed.ReduceOp.AVG)
        return loss

    def log(self, logs: dict[str, float], start_time: Optional[float] = None) -> None:
        if self._metrics and "loss" in logs:
            extrinsic = sum(self._metrics.pop("_extrinsic_abs", []))
            intrinsic = sum(self._metrics.pop("_intrinsic_abs", []))
            episodes = sum(self._metrics.pop("episodes", []))
            keys = list(self.METRIC_KEYS)
            sums = torch.tensor(
                [sum(self._metrics[k]) for k in keys] + [extrinsic, intrinsic, episodes], dtype=torch.float64
            )
            counts = torch.tensor([len(self._metrics[k]) for k in keys] + [1, 1, 1], dtype=torch.float64)
            if self.accelerator.num_processes > 1:
                sums = self.accelerator.reduce(sums.to(self.accelerator.device), "sum").cpu()
                counts = self.accelerator.reduce(counts.to(self.accelerator.device), "sum").cpu()
            logs.update({k: round((s / c).item(), 6) for k, s, c in zip(keys, sums, counts) if c > 0})
            extrinsic, intrinsic, episodes = sums[-3:].tolist()
            logs["intrinsic_share"] = round(intrinsic / (extrinsic + intrinsic), 6) if extrinsic + intrinsic else 0.0
            logs["episodes"] = episodes
            self._metrics.clear()
        super().log(logs, start_time)

    # ----------------------------------------------------------------- evaluation
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Greedy-policy halting metrics: `exact_accuracy` at halt, `mean_steps`,
        `premature_halt_rate`, `exact_accuracy_max_steps`, `num_exact`, `num_exact_max_steps`,
        `num_puzzles`."""
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if dataset is None:
            raise ValueError("`evaluate` needs an `eval_dataset` (puzzles or HaltingTrajectories).")
        model = self.accelerator.unwrap_model(self.model)
        was_training = self.q_head.training
        self.q_head.eval()
        if isinstance(dataset, HaltingTrajectories):
            results = halting_metrics(greedy_halting_steps(self.q_head, dataset), dataset.exact)
        else:
            results = evaluate_halting(model, dataset, self.args.per_device_eval_batch_size)
        self.q_head.train(was_training)
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in results.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    # ----------------------------------------------------------------- checkpoints
    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        output_dir = os.path.join(
            self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        )
        state = {f"target.{k}": v.contiguous() for k, v in self.target_q_head.state_dict().items()}
        if self.intrinsic_bonus is not None:
            state.update({f"intrinsic.{k}": v.contiguous() for k, v in self.intrinsic_bonus.state_dict().items()})
        path = os.path.join(output_dir, STATE_FILE.format(rank=self.args.process_index))
        save_safetensors_atomic(state, path)  # written last: its presence marks the checkpoint complete

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = os.path.join(resume_from_checkpoint, STATE_FILE.format(rank=self.args.process_index))
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} is missing: {resume_from_checkpoint} is incomplete (interrupted while saving) or was not "
                "written by DQNHaltingTrainer. Resume from an earlier checkpoint."
            )
        state = load_file(path)
        self.target_q_head.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("target.")})
        intrinsic = {k[10:]: v for k, v in state.items() if k.startswith("intrinsic.")}
        self._pending_intrinsic_state = intrinsic or None


__all__ = [
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
