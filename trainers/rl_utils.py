# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Reinforcement-learning parts that do not depend on the model: a replay buffer, count-based and RND
exploration bonuses, epsilon schedules and the soft update of a target network."""

import torch
from torch import nn

from .utils import check_value


__all__ = ["CountBonus", "RNDBonus", "ReplayBuffer", "epsilon_at", "soft_update"]


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
        check_value(isinstance(capacity, int) and capacity >= 1, "capacity", capacity, "an integer >= 1")
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
