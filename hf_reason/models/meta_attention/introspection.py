# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Reading a meta-attention model's attention maps: the per-row summaries the meta-attention module
attends over (`attention_summaries`), and introspection, what the causal LM attended to while writing
each token (`attention_introspection`).

Only torch and transformers are imported (this file travels with the checkpoint's remote code).
"""

from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F
from transformers.modeling_outputs import ModelOutput


def attention_summaries(
    attn_probs: torch.Tensor,
    visible_keys: torch.Tensor,
    query_index: torch.Tensor,
    top_k: int,
    features: list[str],
) -> torch.Tensor:
    """Per-head summaries of each query position's attention row.

    Args:
        attn_probs (`torch.Tensor` of shape `(batch, heads, queries, keys)`): attention probabilities.
        visible_keys (`torch.Tensor` of shape `(batch, queries)`): number of non-padding keys a query
            can see (itself included); normalises entropy and distances so that left padding and
            sequence length do not change the summaries.
        query_index (`torch.Tensor` of shape `(queries,)`): key index of each query (cache included).
        top_k (`int`): attended positions kept per head.
        features (`list[str]`): which summaries, in `META_FEATURES` order.

    Returns:
        `torch.Tensor` of shape `(batch, queries, heads, num_summary_features)`.
    """
    probs = attn_probs.float().transpose(1, 2)  # (B, T, H, S)
    num_keys = probs.shape[-1]
    n = visible_keys.to(probs.dtype).clamp(min=1.0)[:, :, None, None]  # (B, T, 1, 1)
    # distance of every key to its query, in units of the visible context
    offsets = (query_index[:, None] - torch.arange(num_keys, device=probs.device)[None, :]).to(probs.dtype)
    offsets = offsets.clamp(min=0.0)[None, :, None, :]  # (1, T, 1, S); future keys have probability 0
    out = []
    if "entropy" in features:
        # log of clamped probabilities: xlogy's gradient is infinite at the exact zeros of masked keys
        entropy = -(probs * torch.log(probs.clamp(min=1e-12))).sum(-1, keepdim=True)
        out.append(entropy / torch.log(n.clamp(min=2.0)))
    if "top_k_weights" in features or "top_k_distances" in features:
        if num_keys < top_k:  # the first positions see fewer keys than top_k
            probs_k = F.pad(probs, (0, top_k - num_keys))
            offsets_k = F.pad(offsets.expand(*probs.shape[:-1], -1), (0, top_k - num_keys))
        else:
            probs_k, offsets_k = probs, offsets.expand(*probs.shape[:-1], -1)
        top_weights, top_index = probs_k.topk(top_k, dim=-1)
        if "top_k_weights" in features:
            out.append(top_weights)
        if "top_k_distances" in features:
            distances = offsets_k.gather(-1, top_index) / n
            out.append(torch.where(top_weights > 0, distances, torch.zeros_like(distances)))
    if "mean_distance" in features:
        out.append((probs * offsets).sum(-1, keepdim=True) / n)
    return torch.cat(out, dim=-1)


@dataclass
class MetaAttentionIntrospectionOutput(ModelOutput):
    """
    What the model attended to, from [`MetaAttentionForCausalLM.introspect`].

    For a position `p`, the entries describe the attention row of query `p - 1`: what the model
    looked at while writing the token at `p`. Entries are the `top_k` largest probabilities over
    all layers, heads and keys, largest first.

    Args:
        positions (`torch.LongTensor` of shape `(num_positions,)`): the described positions.
        token_ids (`torch.LongTensor` of shape `(batch, num_positions)`): the token at each position.
        attended_positions (`torch.LongTensor` of shape `(batch, num_positions, top_k)`): attended keys.
        attended_token_ids (`torch.LongTensor` of shape `(batch, num_positions, top_k)`): their tokens.
        layers (`torch.LongTensor` of shape `(batch, num_positions, top_k)`): layer of each entry.
        heads (`torch.LongTensor` of shape `(batch, num_positions, top_k)`): head of each entry.
        weights (`torch.FloatTensor` of shape `(batch, num_positions, top_k)`): attention probability.
        valid (`torch.BoolTensor` of shape `(batch, num_positions)`): False where the position is padding.
        num_layers (`int`, *optional*): the model's number of layers (what "early / middle / late"
            layer bands of a report's focus claims are thirds of, whichever `layers` were kept).
    """

    positions: Optional[torch.LongTensor] = None
    token_ids: Optional[torch.LongTensor] = None
    attended_positions: Optional[torch.LongTensor] = None
    attended_token_ids: Optional[torch.LongTensor] = None
    layers: Optional[torch.LongTensor] = None
    heads: Optional[torch.LongTensor] = None
    weights: Optional[torch.FloatTensor] = None
    valid: Optional[torch.BoolTensor] = None
    num_layers: Optional[int] = None

    def to_json(self, tokenizer: Any = None, batch_index: int = 0) -> list[dict]:
        """Plain-JSON form of one sequence for the report evaluator.

        Returns a list of `{"position", "token", "attended": [{"token", "position", "layer",
        "head", "weight"}]}` (plus `"num_layers"` in each record when known); tokens are strings
        when a tokenizer is given, ids otherwise.
        """

        def token(token_id: int):
            return tokenizer.decode([token_id]) if tokenizer is not None else token_id

        records = []
        for j, position in enumerate(self.positions.tolist()):
            if not bool(self.valid[batch_index, j]):
                continue
            attended = [
                {
                    "token": token(int(self.attended_token_ids[batch_index, j, r])),
                    "position": int(self.attended_positions[batch_index, j, r]),
                    "layer": int(self.layers[batch_index, j, r]),
                    "head": int(self.heads[batch_index, j, r]),
                    "weight": float(self.weights[batch_index, j, r]),
                }
                for r in range(self.weights.shape[-1])
            ]
            record = {"position": position, "token": token(int(self.token_ids[batch_index, j])), "attended": attended}
            if self.num_layers is not None:
                record["num_layers"] = int(self.num_layers)
            records.append(record)
        return records


@torch.no_grad()
def attention_introspection(
    model, input_ids: torch.LongTensor, attention_mask=None, start: int = 1, top_k: int = 5, layers=None
) -> MetaAttentionIntrospectionOutput:
    """[`MetaAttentionForCausalLM.introspect`] of `model` (see there for the arguments)."""
    if input_ids.ndim != 2:
        raise ValueError(f"`input_ids` must have shape (batch, seq), got {tuple(input_ids.shape)}.")
    seq = input_ids.shape[1]
    if isinstance(start, bool) or not isinstance(start, int) or not 1 <= start < max(seq, 2):
        raise ValueError(f"`start` must be an integer in [1, {seq - 1}] for a sequence of {seq}, got {start!r}.")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"`top_k` must be an integer >= 1, got {top_k!r}.")
    layers = list(range(model.config.n_layer)) if layers is None else list(layers)
    if not layers or any(not isinstance(i, int) or not 0 <= i < model.config.n_layer for i in layers):
        raise ValueError(
            f"`layers` must be a non-empty list of indices in [0, {model.config.n_layer}), got {layers!r}."
        )
    was_training = model.training
    model.eval()
    try:
        out = model(input_ids, attention_mask=attention_mask, output_attentions=True, use_cache=False)
    finally:
        model.train(was_training)
    maps = torch.stack([out.attentions[i] for i in layers], dim=1)  # (B, L, H, T, S)
    batch, num_layers, num_heads = maps.shape[:3]
    positions = torch.arange(start, seq, device=input_ids.device)
    rows = maps[:, :, :, positions - 1, :].permute(0, 3, 1, 2, 4)  # (B, P, L, H, S)
    k = min(top_k, num_layers * num_heads * seq)
    weights, flat = rows.reshape(batch, len(positions), -1).topk(k, dim=-1)
    key = flat % seq
    head = (flat // seq) % num_heads
    layer = torch.tensor(layers, device=input_ids.device)[flat // (seq * num_heads)]
    valid = torch.ones(batch, len(positions), dtype=torch.bool, device=input_ids.device)
    if attention_mask is not None:
        valid = attention_mask[:, positions].bool() & attention_mask[:, positions - 1].bool()
    return MetaAttentionIntrospectionOutput(
        positions=positions,
        token_ids=input_ids[:, positions],
        attended_positions=key,
        attended_token_ids=input_ids.gather(1, key.flatten(1)).view_as(key),
        layers=layer,
        heads=head,
        weights=weights,
        valid=valid,
        num_layers=model.config.n_layer,
    )
