# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Halting Q-heads of TRM: each maps the answer state after a supervision step to (Q_halt, Q_continue).

Selected by `TRMConfig.q_head_type`:

- `"linear"`: one linear layer on the first position (the method's head; `TRMHaltingHead`).
- `"mlp"`: a two-layer MLP on a pooled summary (first position + mean over positions) and the
  step fraction.
- `"gru"`: a GRU cell over the same summary whose hidden state is carried across supervision
  steps in `TRMCarry.q_hidden` (reset with `y` and `z` where a puzzle restarts), so the head sees
  how the answer evolved, not only where it is now.
- `"attention"`: a learned query attending over all token states, then an MLP: it can look at
  individual uncertain cells instead of a pooled summary.

Every head exposes the same two calls, which the DQN halting trainer uses on stored states:
`summarize(answer_states)` (what is stored per step: detached and small where possible) and
`q_values(observation, step_fraction, hidden) -> (q_halt, q_continue, new_hidden)`.
Only torch and transformers are imported (the folder must load with `trust_remote_code=True`).
"""

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_trm import TRMConfig


Q_HEAD_INIT_BIAS = -5.0


class TRMHaltingHead(nn.Module):
    """Reads the first position of the answer state and outputs (Q_halt, Q_continue) logits."""

    def __init__(self, config: TRMConfig):
        super().__init__()
        self.proj = nn.Linear(config.hidden_size, 2, bias=True)

    def forward(self, first_position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.proj(first_position).float()
        return q[..., 0], q[..., 1]

    def summarize(self, answer_states: torch.Tensor) -> torch.Tensor:
        return answer_states[:, 0]

    def q_values(self, observation, step_fraction=None, hidden=None):
        q_halt, q_continue = self(observation)
        return q_halt, q_continue, None


def _pooled_summary(answer_states: torch.Tensor) -> torch.Tensor:
    # First position (where the linear head reads, the puzzle-embedding prefix when there is one)
    # plus the mean over positions, which carries what the whole board looks like.
    return torch.cat((answer_states[:, 0], answer_states.mean(dim=1)), dim=-1)


class TRMMLPQHead(nn.Module):
    """Two-layer MLP on (first position, mean over positions, step fraction)."""

    def __init__(self, config: TRMConfig):
        super().__init__()
        self.hidden = nn.Linear(2 * config.hidden_size + 1, config.q_head_hidden_size)
        self.output_proj = nn.Linear(config.q_head_hidden_size, 2)

    def summarize(self, answer_states: torch.Tensor) -> torch.Tensor:
        return _pooled_summary(answer_states)

    def q_values(self, observation, step_fraction, hidden=None):
        features = torch.cat((observation, step_fraction.to(observation.dtype).unsqueeze(-1)), dim=-1)
        q = self.output_proj(F.gelu(self.hidden(features))).float()
        return q[..., 0], q[..., 1], None

    def forward(self, observation, step_fraction, hidden=None):
        return self.q_values(observation, step_fraction, hidden)


class TRMGRUQHead(nn.Module):
    """GRU cell over the pooled summary; its hidden state lives in the carry between steps."""

    def __init__(self, config: TRMConfig):
        super().__init__()
        self.hidden_size = config.q_head_hidden_size
        self.cell = nn.GRUCell(2 * config.hidden_size + 1, config.q_head_hidden_size)
        self.output_proj = nn.Linear(config.q_head_hidden_size, 2)

    def summarize(self, answer_states: torch.Tensor) -> torch.Tensor:
        return _pooled_summary(answer_states)

    def initial_hidden(self, batch_size: int, device=None, dtype=torch.float32) -> torch.Tensor:
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def q_values(self, observation, step_fraction, hidden=None):
        if hidden is None:
            hidden = self.initial_hidden(observation.shape[0], observation.device, observation.dtype)
        features = torch.cat((observation, step_fraction.to(observation.dtype).unsqueeze(-1)), dim=-1)
        new_hidden = self.cell(features, hidden.to(observation.dtype))
        q = self.output_proj(new_hidden).float()
        return q[..., 0], q[..., 1], new_hidden

    def forward(self, observation, step_fraction, hidden=None):
        return self.q_values(observation, step_fraction, hidden)


class TRMAttentionQHead(nn.Module):
    """A learned query attends over the token states (torch's multi-head attention), then an MLP."""

    def __init__(self, config: TRMConfig):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.attention = nn.MultiheadAttention(config.hidden_size, config.num_heads, batch_first=True)
        self.hidden = nn.Linear(config.hidden_size + 1, config.q_head_hidden_size)
        self.output_proj = nn.Linear(config.q_head_hidden_size, 2)

    def summarize(self, answer_states: torch.Tensor) -> torch.Tensor:
        return answer_states

    def q_values(self, observation, step_fraction, hidden=None):
        query = self.query.to(observation.dtype).expand(observation.shape[0], -1, -1)
        pooled, _ = self.attention(query, observation, observation, need_weights=False)
        features = torch.cat((pooled[:, 0], step_fraction.to(observation.dtype).unsqueeze(-1)), dim=-1)
        q = self.output_proj(F.gelu(self.hidden(features))).float()
        return q[..., 0], q[..., 1], None

    def forward(self, observation, step_fraction, hidden=None):
        return self.q_values(observation, step_fraction, hidden)


Q_HEAD_CLASSES = {
    "linear": TRMHaltingHead,
    "mlp": TRMMLPQHead,
    "gru": TRMGRUQHead,
    "attention": TRMAttentionQHead,
}


def build_q_head(config: TRMConfig) -> nn.Module:
    return Q_HEAD_CLASSES[config.q_head_type](config)


def init_q_head(module: nn.Module, trunc_normal_) -> None:
    """Head-specific initialisation (called by `TRMPreTrainedModel._init_weights`)."""
    if isinstance(module, TRMHaltingHead):
        # Q close to zero with a strong "don't halt" bias: early steps keep recursing while the
        # answers are still wrong, which bootstraps the halting target.
        module.proj.weight.data.zero_()
        module.proj.bias.data.fill_(Q_HEAD_INIT_BIAS)
    elif isinstance(module, (TRMMLPQHead, TRMGRUQHead, TRMAttentionQHead)):
        # Both values exactly 0: no rule halts before training ("bce" needs q_halt > 0, the Q rules
        # a strict q_halt > q_continue), and DQN starts from neutral values instead of bootstrapping
        # for hundreds of target-network updates out of a pessimistic -5.
        module.output_proj.weight.data.zero_()
        module.output_proj.bias.data.zero_()
        if isinstance(module, TRMAttentionQHead):
            # A unit-scale query, like the unit-scale token states it is compared with.
            trunc_normal_(module.query.data, std=1.0)


__all__ = ["TRMAttentionQHead", "TRMGRUQHead", "TRMHaltingHead", "TRMMLPQHead", "build_q_head"]
