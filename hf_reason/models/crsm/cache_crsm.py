# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The CRSM recurrent cache: transformers' `MambaCache` whose states can be snapshotted and restored."""

from dataclasses import dataclass

import torch
from transformers.models.mamba.modeling_mamba import MambaCache


@dataclass
class CRSMCacheState:
    """A detached copy of a `CRSMCache` (per layer: conv state `(B, D, K)`, SSM state `(B, D, N)`)."""

    conv_states: list[torch.Tensor]
    ssm_states: list[torch.Tensor]

    @property
    def batch_size(self) -> int:
        return self.ssm_states[0].shape[0]

    def index_select(self, index: torch.LongTensor) -> "CRSMCacheState":
        """Rows `index` of every state (repeat an index to branch one state into several)."""
        return CRSMCacheState(
            [s.index_select(0, index) for s in self.conv_states], [s.index_select(0, index) for s in self.ssm_states]
        )

    @classmethod
    def cat(cls, states: list["CRSMCacheState"]) -> "CRSMCacheState":
        """Stacks several states along the batch (one batched step then advances all of them)."""
        num_layers = len(states[0].ssm_states)
        return cls(
            [torch.cat([s.conv_states[i] for s in states]) for i in range(num_layers)],
            [torch.cat([s.ssm_states[i] for s in states]) for i in range(num_layers)],
        )

    def stacked_ssm_states(self) -> torch.Tensor:
        return torch.stack(self.ssm_states, dim=1)


class CRSMCache(MambaCache):
    """`MambaCache` whose states can be read, snapshotted and restored, and that keeps gradients.

    Two differences from the parent: the dtype defaults to float32 (the parent's float16 default
    silently rounds CPU states), and the convolution state is updated out of place, because the
    parent's in-place update breaks autograd when a loss is taken through several cached steps
    (stage 4 trains the state-delta module through the recurrence).
    """

    def __init__(self, config, max_batch_size: int, dtype: torch.dtype = torch.float32, device=None):
        super().__init__(config, max_batch_size, dtype=dtype, device=device)

    def update_conv_state(self, layer_idx: int, new_conv_state: torch.Tensor, cache_position: torch.LongTensor):
        conv_state = self.conv_states[layer_idx].roll(shifts=-1, dims=-1)
        cache_position = cache_position.clamp(0, self.conv_kernel_size - 1)
        conv_state[:, :, cache_position] = new_conv_state.to(device=conv_state.device, dtype=conv_state.dtype)
        self.conv_states[layer_idx] = conv_state
        return conv_state

    def update_ssm_state(self, layer_idx: int, new_ssm_state: torch.Tensor):
        self.ssm_states[layer_idx] = new_ssm_state.to(self.ssm_states[layer_idx].device)
        return self.ssm_states[layer_idx]

    def snapshot(self) -> CRSMCacheState:
        """A detached copy: the forward mutates the cache, so branch from a snapshot."""
        return CRSMCacheState(
            [s.detach().clone() for s in self.conv_states], [s.detach().clone() for s in self.ssm_states]
        )

    def restore(self, state: CRSMCacheState) -> "CRSMCache":
        """Makes the cache hold `state` again (exactly: the tensors are copied, not recomputed)."""
        if state.batch_size != self.ssm_states[0].shape[0]:
            raise ValueError(f"state has batch size {state.batch_size}, the cache {self.ssm_states[0].shape[0]}")
        with torch.no_grad():
            for i in range(len(self.ssm_states)):
                self.conv_states[i] = self.conv_states[i].detach()
                self.ssm_states[i] = self.ssm_states[i].detach()
                self.conv_states[i].copy_(state.conv_states[i])
                self.ssm_states[i].copy_(state.ssm_states[i])
        return self

    @classmethod
    def from_state(cls, config, state: CRSMCacheState) -> "CRSMCache":
        ref = state.ssm_states[0]
        cache = cls(config, state.batch_size, dtype=ref.dtype, device=ref.device)
        return cache.restore(state)

    def stacked_ssm_states(self) -> torch.Tensor:
        """`(batch, num_layers, intermediate_size, state_size)`, with gradients if the states have them."""
        return torch.stack(self.ssm_states, dim=1)
