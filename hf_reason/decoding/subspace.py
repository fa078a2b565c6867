# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""An optional private embedding subspace for thoughts (off by default).

The hidden space is partitioned: the last `private_dims` dimensions are private. A token inside a
thought (its tags included) enters the model as a learned projection of its embedding into the
private dimensions only; every other token enters with its private dimensions zeroed. Thought
content therefore starts in a part of the residual stream that answer tokens never write, and
reaches the answer only through what attention carries across. Whether that lowers pollution is
an empirical question: bench/decoding.py trains the same model with and without it and reports
both (docs/decoding.md).

It works on any model with `get_input_embeddings()`, through a forward hook on the embedding, so
the model's own code is unchanged. Whether a position is inside a thought is read from the ids of
the call; for cached decoding (one token per call) the nesting depth at the end of the previous
call carries over. A call with more than one token, or with another batch size, starts a new
sequence. (MCTS, which feeds tokens of different branches, is not supported.)
"""

from typing import Optional

import torch
from torch import nn


class PrivateThoughtSubspace(nn.Module):
    """The projection into the private dimensions and the hook that applies the partition.

    Args:
        hidden_size (`int`): the embedding width.
        private_dims (`int`): the private dimensions (the last ones), in [1, hidden_size).
        thought_start_id, thought_end_id (`int`): the tag ids.
    """

    def __init__(self, hidden_size: int, private_dims: int, thought_start_id: int, thought_end_id: int):
        super().__init__()
        if isinstance(private_dims, bool) or not isinstance(private_dims, int) or not 0 < private_dims < hidden_size:
            raise ValueError(f"`private_dims` must be an integer in [1, {hidden_size}), got {private_dims!r}")
        self.private_dims = private_dims
        self.thought_ids = (thought_start_id, thought_end_id)
        self.proj = nn.Linear(hidden_size, private_dims, bias=False)
        # Starts as "keep the private coordinates": a thought token's embedding keeps its own last
        # `private_dims` values, so the model sees a sensible input before the projection learns.
        with torch.no_grad():
            self.proj.weight.zero_()
            self.proj.weight[:, hidden_size - private_dims :] = torch.eye(private_dims)
        self._carry: Optional[torch.Tensor] = None
        self._handle = None

    def inside_thoughts(self, input_ids: torch.LongTensor) -> torch.BoolTensor:
        """`(batch, seq)`: True at thought tags and at every token between them (nesting counted)."""
        start, end = self.thought_ids
        opens = (input_ids == start).long()
        closes = (input_ids == end).long()
        fresh = input_ids.shape[1] > 1 or self._carry is None or self._carry.shape[0] != input_ids.shape[0]
        carry = torch.zeros(input_ids.shape[0], dtype=torch.long, device=input_ids.device) if fresh else self._carry
        # Depth after each token; a stray close never goes below zero (clamped per step).
        depth_after = []
        depth = carry
        for t in range(input_ids.shape[1]):
            depth = (depth + opens[:, t] - closes[:, t]).clamp_min(0)
            depth_after.append(depth)
        depth_after = torch.stack(depth_after, 1)
        self._carry = depth_after[:, -1].detach()
        return (depth_after > 0) | (closes > 0)

    def partition(self, input_ids: torch.LongTensor, embeddings: torch.Tensor) -> torch.Tensor:
        """The embeddings with thought positions moved into the private dimensions and the others out of them."""
        inside = self.inside_thoughts(input_ids).unsqueeze(-1)
        hidden = embeddings.shape[-1]
        public_mask = torch.ones(hidden, dtype=embeddings.dtype, device=embeddings.device)
        public_mask[hidden - self.private_dims :] = 0
        public = embeddings * public_mask
        private = torch.cat(
            [embeddings.new_zeros(*embeddings.shape[:-1], hidden - self.private_dims), self.proj(embeddings)], -1
        )
        return torch.where(inside, private, public)

    def _hook(self, module, args, output):
        input_ids = args[0] if args else None
        if input_ids is None or not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            return output
        return self.partition(input_ids, output)


def enable_private_thought_subspace(model, tokenizer, private_dims: int) -> PrivateThoughtSubspace:
    """Adds the private subspace to `model` (as `model.thought_subspace`, so it trains and saves with it).

    Args:
        model: a model with `get_input_embeddings()`.
        tokenizer: has the `<thought>` / `</thought>` tokens (`add_control_tokens`).
        private_dims (`int`): the width of the private partition.
    """
    from .thoughts import thought_token_ids

    ids = thought_token_ids(tokenizer)
    if ids is None:
        raise ValueError("The private subspace needs a tokenizer with <thought> and </thought> (add_control_tokens).")
    if getattr(model, "thought_subspace", None) is not None:
        raise ValueError("`model` already has a private thought subspace.")
    embedding = model.get_input_embeddings()
    subspace = PrivateThoughtSubspace(embedding.weight.shape[1], private_dims, *ids).to(embedding.weight.device)
    model.thought_subspace = subspace
    subspace._handle = embedding.register_forward_hook(subspace._hook)
    return subspace


def disable_private_thought_subspace(model) -> None:
    """Removes the hook and the module added by `enable_private_thought_subspace`."""
    subspace = getattr(model, "thought_subspace", None)
    if subspace is None:
        raise ValueError("`model` has no private thought subspace.")
    subspace._handle.remove()
    del model.thought_subspace


__all__ = ["PrivateThoughtSubspace", "disable_private_thought_subspace", "enable_private_thought_subspace"]
