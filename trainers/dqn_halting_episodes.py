# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The state of DQN halting rollouts: the episodes in flight, the "continue" steps that wait for their
next state, and the transitions stored in the replay buffer."""

from dataclasses import dataclass
from typing import Optional

import torch

from hf_reason.models.trm.modeling_trm import TRMCarry


__all__ = ["CONTINUE", "HALT", "HaltingEpisodes", "PendingContinue", "Transitions"]

HALT, CONTINUE = 0, 1  # action indices, in the order the Q-heads return (Q_halt, Q_continue)


@dataclass
class Transitions:
    """
    Transitions for the replay buffer, batch first (all on the CPU).

    Args:
        obs (`torch.Tensor`): the state acted in: the Q-head's input, or with precomputed
            trajectories a `(trajectory, step)` pair per transition, looked up when sampled.
        action (`torch.LongTensor`): `HALT` or `CONTINUE`.
        reward (`torch.FloatTensor`): the reward of the action, intrinsic bonus included.
        next_obs (`torch.Tensor`): the state after the action (`obs` itself after halting).
        step_fraction, next_step_fraction (`torch.FloatTensor`): step / `halt_max_steps` of the two states.
        done (`torch.BoolTensor`): whether the episode ended with the action.
        hidden, next_hidden (`torch.Tensor`, *optional*): the GRU head's memory entering the two states.
    """

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    step_fraction: torch.Tensor
    next_step_fraction: torch.Tensor
    done: torch.Tensor
    hidden: Optional[torch.Tensor] = None
    next_hidden: Optional[torch.Tensor] = None

    def buffer_fields(self, state_key: str) -> dict[str, torch.Tensor]:
        """The replay buffer's fields, the states under `state_key` and `next_<state_key>`."""
        fields = {
            state_key: self.obs,
            f"next_{state_key}": self.next_obs,
            "action": self.action,
            "reward": self.reward,
            "done": self.done.float(),
            "step_fraction": self.step_fraction,
            "next_step_fraction": self.next_step_fraction,
        }
        if self.hidden is not None:
            fields.update(hidden=self.hidden, next_hidden=self.next_hidden)
        return {k: v.detach().cpu() for k, v in fields.items()}


@dataclass
class PendingContinue:
    """
    The step at which rows chose "continue": their transitions are completed at the next rollout
    step, once the state they reach and its reward are known. Tensors cover every row (CPU).

    Args:
        rows (`torch.BoolTensor`): the rows that continued.
        obs (`torch.Tensor`): every row's state (or table reference) at that step.
        cells (`torch.FloatTensor`): cell accuracy at that step (the reward counts its change).
        fraction (`torch.FloatTensor`): step / `halt_max_steps` at that step.
        hidden, next_hidden (`torch.Tensor`, *optional*): the GRU head's memory entering and leaving that step.
    """

    rows: torch.Tensor
    obs: torch.Tensor
    cells: torch.Tensor
    fraction: torch.Tensor
    hidden: Optional[torch.Tensor] = None
    next_hidden: Optional[torch.Tensor] = None


@dataclass
class HaltingEpisodes:
    """
    The episodes in flight, one per batch row.

    Args:
        puzzle (`dict[str, torch.Tensor]`): each row's puzzle on the device: the model's inputs, or
            `trajectory_index` with precomputed trajectories.
        done (`torch.BoolTensor`): rows whose episode ended at the last rollout step (CPU); the next
            batch's puzzles replace them.
        steps (`torch.LongTensor`): supervision steps taken in each row's episode (CPU).
        carry (`TRMCarry`, *optional*): the TRM's carry in online rollouts.
        hidden (`torch.Tensor`, *optional*): the GRU head's memory, on the device.
        pending (`PendingContinue`, *optional*): the rows whose "continue" awaits its next state.
    """

    puzzle: dict[str, torch.Tensor]
    done: torch.Tensor
    steps: torch.Tensor
    carry: Optional[TRMCarry] = None
    hidden: Optional[torch.Tensor] = None
    pending: Optional[PendingContinue] = None

    def replace_finished(self, batch: dict[str, torch.Tensor], device) -> None:
        """Rows whose episode ended take `batch`'s puzzles (as deep supervision replaces halted rows)."""
        done = self.done.to(device)
        self.puzzle = {
            k: torch.where(done.view(-1, *([1] * (v.dim() - 1))), batch[k], v) for k, v in self.puzzle.items()
        }
        self.steps = torch.where(self.done, 0, self.steps)
        if self.carry is not None:
            self.carry.halted = done  # the next forward starts these rows afresh
        if self.hidden is not None:  # the GRU head's memory restarts with the puzzle
            self.hidden = torch.where(done.view(-1, 1), 0.0, self.hidden)
