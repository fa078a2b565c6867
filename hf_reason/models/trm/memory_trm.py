# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The pattern memory bank of TRM (`TRMConfig.memory_slots > 0`).

An associative memory read by attention inside the recursion: the query is the latent state `z`
pooled over positions (mean, then unit length), the keys are pooled latent states written during
training, and each slot's value is a learned vector. Each H-cycle reads the `memory_top_k` slots
most similar to its query (softmax of cosine / `memory_temperature`) and adds the weighted values to
the input of its latent updates, `z <- net(z + y + x + read)`.

Writing happens in training only, at the end of every supervision step, from the pooled final
`z`: a key at least `memory_write_threshold` similar to a slot refreshes that slot (its key moves
towards the new one); among the others, the `memory_writes_per_step` most novel take a slot each,
the empty ones first, then the least recently used (LRU: a slot is used when a read attends to it
or a write refreshes it). An evicted slot's value is reset to zero, since it was learned for
another pattern; a new slot so adds nothing until training gives it a value. In evaluation the
bank is read-only, so inference and the ONNX export (keys and values are constants of the graph)
are deterministic. Under several processes every rank gathers the keys and touched slots of all
ranks before it writes, so the bank (and the reset values) stay identical everywhere.

Retrieval is exact (`memory_retrieval="exact"`: every slot scored) or approximate
(`"lsh"`, for large banks): SimHash locality-sensitive hashing (Charikar, 2002) with
`memory_lsh_tables` tables of `memory_lsh_bits` random hyperplanes each. A slot is a candidate
when its code equals the query's in at least one table; at most `memory_lsh_candidates` candidates
are scored exactly. Comparing codes costs `tables` integer operations per slot instead of
`hidden_size` multiply-adds, and it traces to ONNX (equality, any, top-k, gather). It is written
here because the folder must stay torch-only (checkpoints load with `trust_remote_code` where
hf-reason is not installed) and exportable; faiss indexes are neither.

Only torch and transformers are imported (the folder must load with `trust_remote_code=True`).
"""

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_trm import TRMConfig


@dataclass
class TRMMemoryRead:
    """One read of the bank.

    Args:
        read (`torch.FloatTensor` of shape `(batch_size, 1, hidden_size)`): what is added to the input.
        slots (`torch.LongTensor` of shape `(batch_size, top_k)`): the slots read.
        weights (`torch.FloatTensor` of shape `(batch_size, top_k)`): their attention weights (0 for
            empty or non-candidate slots).
        use (`torch.FloatTensor` of shape `(batch_size,)`): the attention-weighted cosine similarity of
            the slots read, clamped to [0, 1]: how familiar the state is to the bank (0 when empty).
    """

    read: torch.Tensor
    slots: torch.Tensor
    weights: torch.Tensor
    use: torch.Tensor


def pool_states(states: torch.Tensor) -> torch.Tensor:
    """Unit-length mean over positions, `(batch, positions, hidden) -> (batch, hidden)`, in float32."""
    return F.normalize(states.float().mean(1), dim=-1)


class TRMPatternMemory(nn.Module):
    """The bank: `keys` (written), `values` (learned), LRU bookkeeping and, for `"lsh"`, hash planes."""

    def __init__(self, config: TRMConfig):
        super().__init__()
        slots, hidden = config.memory_slots, config.hidden_size
        self.top_k = min(config.memory_top_k, slots)
        self.temperature = config.memory_temperature
        self.write_threshold = config.memory_write_threshold
        self.writes_per_step = config.memory_writes_per_step
        self.lsh = config.memory_retrieval == "lsh"
        self.values = nn.Parameter(torch.zeros(slots, hidden))
        self.register_buffer("keys", torch.zeros(slots, hidden))
        self.register_buffer("filled", torch.zeros(slots, dtype=torch.bool))
        # Step of the last use of each slot (0: never); `clock` counts the writes (supervision steps).
        self.register_buffer("last_used", torch.zeros(slots, dtype=torch.long))
        self.register_buffer("clock", torch.zeros((), dtype=torch.long))
        if self.lsh:
            self.candidates = min(config.memory_lsh_candidates, slots)
            generator = torch.Generator().manual_seed(config.memory_lsh_seed)
            planes = torch.randn(config.memory_lsh_tables, config.memory_lsh_bits, hidden, generator=generator)
            self.register_buffer("planes", planes)
            self.register_buffer("bit_values", 2 ** torch.arange(config.memory_lsh_bits), persistent=False)
            self.register_buffer("codes", torch.zeros(slots, config.memory_lsh_tables, dtype=torch.long))

    # ----------------------------------------------------------------- retrieval
    def hash(self, keys: torch.Tensor) -> torch.Tensor:
        """SimHash codes `(batch, tables)` of unit keys `(batch, hidden)`."""
        bits = torch.einsum("bh,tkh->btk", keys, self.planes.to(keys.dtype)) > 0
        return (bits.long() * self.bit_values).sum(-1)

    def scores(self, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(similarities, slots)` of the candidate slots of each query, `-inf` where a slot is empty or
        (LSH) not a candidate: all slots for exact retrieval, at most `memory_lsh_candidates` for LSH."""
        keys = self.keys.to(queries.dtype)
        if not self.lsh:
            sims = queries @ keys.T
            slots = torch.arange(keys.shape[0], device=queries.device).expand_as(sims)
            return sims.masked_fill(~self.filled, float("-inf")), slots
        matches = (self.codes.unsqueeze(0) == self.hash(queries).unsqueeze(1)).any(-1) & self.filled
        hit, slots = matches.to(queries.dtype).topk(self.candidates, dim=-1)
        sims = torch.einsum("bh,bch->bc", queries, keys[slots])
        return sims.masked_fill(hit == 0, float("-inf")), slots

    def read(self, latent: torch.Tensor) -> TRMMemoryRead:
        """Reads the bank for latent states `(batch, positions, hidden)`."""
        queries = pool_states(latent)
        sims, slots = self.scores(queries)
        top, index = sims.topk(self.top_k, dim=-1)
        slots = slots.gather(1, index)
        valid = torch.isfinite(top)
        logits = torch.where(valid, top / self.temperature, torch.zeros_like(top))
        weights = torch.where(valid, logits, torch.full_like(top, float("-inf"))).softmax(-1)
        # A query with no valid slot (empty bank) would softmax to NaN: it reads nothing instead.
        weights = torch.where(valid, weights, torch.zeros_like(weights))
        read = torch.einsum("bk,bkh->bh", weights, self.values[slots].float())
        use = (weights * torch.where(valid, top, torch.zeros_like(top))).sum(-1).clamp(0.0, 1.0)
        return TRMMemoryRead(read=read.unsqueeze(1).to(latent.dtype), slots=slots, weights=weights, use=use)

    # ----------------------------------------------------------------- writing
    @torch.no_grad()
    def write(self, latent: torch.Tensor, touched: Optional[TRMMemoryRead] = None) -> None:
        """Writes the pooled `latent` `(batch, positions, hidden)` and marks the slots `touched` read
        (see the module docstring); gathers both from every process first."""
        keys = pool_states(latent)
        slots = touched.slots if touched is not None else keys.new_zeros((keys.shape[0], 0), dtype=torch.long)
        used = touched.weights > 0 if touched is not None else slots.bool()
        keys, slots, used = _gather_from_all_ranks(keys, slots, used)
        self.clock += 1
        self.last_used[slots[used]] = self.clock
        bank = self.keys
        sims = (keys @ bank.T).masked_fill(~self.filled, float("-inf"))
        best, best_slot = sims.max(-1)
        matched = best >= self.write_threshold
        if matched.any():
            refreshed = torch.zeros_like(bank).index_add_(0, best_slot[matched], keys[matched])
            hit = refreshed.norm(dim=-1) > 0
            bank[hit] = F.normalize(bank[hit] + refreshed[hit], dim=-1)
            self.last_used[hit] = self.clock
            if self.lsh:
                self.codes[hit] = self.hash(bank[hit])
        novel = (~matched).nonzero().squeeze(-1)
        count = min(novel.numel(), self.writes_per_step, bank.shape[0])
        if count == 0:
            return
        novel = novel[best[novel].argsort()[:count]]  # the least similar first
        # LRU: empty slots (-1) first, then the longest unused; slots used at this step come last.
        age = torch.where(self.filled, self.last_used, torch.full_like(self.last_used, -1))
        victims = age.topk(count, largest=False).indices
        bank[victims] = keys[novel]
        self.filled[victims] = True
        self.last_used[victims] = self.clock
        self.values[victims] = 0.0
        if self.lsh:
            self.codes[victims] = self.hash(keys[novel])


def _gather_from_all_ranks(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """`tensors` concatenated over the processes (rank order); unchanged in a single process."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return tensors
    world = torch.distributed.get_world_size()
    if world == 1:
        return tensors
    out = []
    for tensor in tensors:
        parts = [torch.empty_like(tensor) for _ in range(world)]
        torch.distributed.all_gather(parts, tensor.contiguous())
        out.append(torch.cat(parts))
    return tuple(out)


def init_memory(module: nn.Module) -> None:
    """The bank's initialisation rule (`TRMPreTrainedModel._init_weights`): zero values, so that a
    memory-enabled model starts exactly as the same model without memory."""
    if isinstance(module, TRMPatternMemory):
        module.values.data.zero_()


__all__ = ["TRMMemoryRead", "TRMPatternMemory", "init_memory", "pool_states"]
