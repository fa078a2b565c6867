# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""A cosine curriculum from structure to semantics for RL rewards, as a `TrainerCallback`.

Early in RL a policy must learn the output's *structure* (tags, answer format) before its *semantics*
(the answer's correctness) can be rewarded at all; rewarding structure late invites reward hacking on format
alone. The callback moves reward weight from the structural rewards to the semantic ones along a cosine:

    structure_weight(p) = end + (start - end) * (1 + cos(pi * p)) / 2,   p = step / max_steps in [0, 1]
    semantic_weight(p)  = 1 - structure_weight(p)

and writes the weights into the training reward before every step: a [`CombinedReward`]'s `weights` (any of
our trainers that takes reward functions), or TRL GRPO's `reward_weights` tensor (pass the trainer).
"""

import math
from collections.abc import Sequence

import torch
from transformers import TrainerCallback


__all__ = ["CosineRewardCurriculum", "cosine_structure_weight"]


def cosine_structure_weight(progress: float, start: float = 1.0, end: float = 0.0) -> float:
    """The structural reward's weight at `progress` (clipped to [0, 1]): `start` at 0, `end` at 1, cosine between."""
    progress = min(max(float(progress), 0.0), 1.0)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


class CosineRewardCurriculum(TrainerCallback):
    """Sets structural / semantic reward weights on the cosine schedule before each optimisation step.

    Args:
        target: a `CombinedReward` (its `weights` list is set) or a trainer / object with a `reward_weights`
            tensor (TRL's `GRPOTrainer`; ours inherits it).
        structure_indices (`Sequence[int]`): positions of the structural rewards (e.g. `FormatReward`).
        semantic_indices (`Sequence[int]`): positions of the semantic rewards (e.g. `ArithmeticAnswerReward`).
        start (`float`, defaults to 1.0) / end (`float`, defaults to 0.0): the structural weight at the first
            and the last step, in [0, 1]; the semantic weight is one minus it. Each index group shares its weight.
    """

    def __init__(
        self,
        target,
        structure_indices: Sequence[int],
        semantic_indices: Sequence[int],
        start: float = 1.0,
        end: float = 0.0,
    ):
        if not 0.0 <= start <= 1.0 or not 0.0 <= end <= 1.0:
            raise ValueError(f"start and end must be in [0, 1], got {start}, {end}")
        count = len(self._weights(target))
        indices = list(structure_indices) + list(semantic_indices)
        if len(set(indices)) != len(indices) or any(not 0 <= i < count for i in indices):
            raise ValueError(f"structure / semantic indices must be distinct positions < {count}, got {indices}")
        self.target, self.start, self.end = target, float(start), float(end)
        self.structure_indices, self.semantic_indices = list(structure_indices), list(semantic_indices)
        self.history: list[tuple[int, float]] = []

    @staticmethod
    def _weights(target):
        if hasattr(target, "reward_weights"):
            return target.reward_weights
        if hasattr(target, "weights"):
            return target.weights
        raise ValueError(
            "the curriculum's target must have `reward_weights` (a GRPO trainer) or `weights` (a CombinedReward)"
        )

    def apply(self, progress: float) -> float:
        """Writes the weights for `progress` into the target; returns the structural weight."""
        structure = cosine_structure_weight(progress, self.start, self.end)
        weights = self._weights(self.target)
        for i in self.structure_indices:
            weights[i] = structure
        for i in self.semantic_indices:
            weights[i] = 1.0 - structure
        if isinstance(weights, torch.Tensor):
            self.target.reward_weights = weights
        return structure

    def on_step_begin(self, args, state, control, **kwargs):
        progress = state.global_step / state.max_steps if state.max_steps else 0.0
        self.history.append((state.global_step, self.apply(progress)))
