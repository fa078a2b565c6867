# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""PyTorch TRM (Tiny Recursive Model).

Reads top-down as the model is built: initialisation helper, norm, rotary embedding, attention,
SwiGLU, block, the recursion core (`TRMModel`), the puzzle-solving head with halting
(`TRMForPuzzleSolving`). Only torch, transformers and this folder are imported, so a checkpoint
saved with its code loads with `trust_remote_code=True` where hf-reason is not installed.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import ModelOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, eager_attention_forward
from transformers.utils import logging

from .configuration_trm import TRMConfig, _round_up
from .memory_trm import TRMMemoryRead, TRMPatternMemory, init_memory
from .q_heads import TRMHaltingHead, build_q_head, init_q_head  # noqa: F401  (TRMHaltingHead is importable from here too)
from .supervision import (
    IGNORE_INDEX,
    CellScores,
    TRMSolveOutput,
    TRMSupervisionStep,
    check_ids,
    check_puzzle_inputs,
    score_cells,
    solve_puzzles,
    supervision_steps,
)


logger = logging.get_logger(__name__)

# Standard deviation of a unit normal truncated to [-2, 2]; dividing by it makes the *truncated*
# distribution have the requested std, as JAX's initialisers (and the TRM reference) do.
_TRUNC_NORMAL_STD_AT_2 = 0.87962566103423978


def trunc_normal_(tensor: torch.Tensor, std: float) -> torch.Tensor:
    """Truncated (at 2 sigma) normal init whose std after truncation is `std`."""
    if std == 0:
        return tensor.zero_()
    sigma = std / _TRUNC_NORMAL_STD_AT_2
    return nn.init.trunc_normal_(tensor, mean=0.0, std=sigma, a=-2 * sigma, b=2 * sigma)


def rms_norm(hidden_states: torch.Tensor, eps: float) -> torch.Tensor:
    # Weightless post-norm, computed in float32 as in the method: the recursion applies the same
    # block dozens of times, and a learnable scale there was found to destabilise training.
    dtype = hidden_states.dtype
    hidden_states = hidden_states.float()
    hidden_states = hidden_states * torch.rsqrt(hidden_states.square().mean(-1, keepdim=True) + eps)
    return hidden_states.to(dtype)


def stablemax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-token stablemax cross-entropy (Prieto et al., 2025), zero where `mask` is False.

    `s(x) = x + 1` for `x >= 0` and `1 / (1 - x)` otherwise replaces `exp`: it grows linearly, so
    confident logits do not blow up in low precision. Computed in float64, as in the method.
    """
    logits = logits.to(torch.float64)
    s = torch.where(logits < 0, 1 / (1 - logits + 1e-30), logits + 1)
    log_probs = torch.log(s / s.sum(dim=-1, keepdim=True))
    picked = log_probs.gather(-1, torch.where(mask, labels, 0).unsqueeze(-1)).squeeze(-1)
    return -torch.where(mask, picked, 0.0)


def softmax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-token softmax cross-entropy in float32, zero where `mask` is False."""
    loss = F.cross_entropy(
        logits.float().flatten(0, -2), torch.where(mask, labels, IGNORE_INDEX).flatten(), reduction="none"
    )
    return loss.view(labels.shape)


TOKEN_LOSSES: dict[str, Callable] = {"stablemax": stablemax_cross_entropy, "softmax": softmax_cross_entropy}


class TRMRotaryEmbedding(nn.Module):
    """RoPE tables for the fixed puzzle length (puzzle-embedding prefix included)."""

    def __init__(self, config: TRMConfig):
        super().__init__()
        head_dim = config.hidden_size // config.num_heads
        inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        positions = torch.arange(config.seq_len + config.puzzle_prefix_len, dtype=torch.float32)
        freqs = torch.outer(positions, inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos", emb.cos()[None], persistent=False)
        self.register_buffer("sin", emb.sin()[None], persistent=False)

    def forward(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cos.to(dtype), self.sin.to(dtype)


class TRMAttention(nn.Module):
    """Non-causal multi-head self-attention dispatched through transformers' attention functions."""

    def __init__(self, config: TRMConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.num_heads = config.num_heads
        self.head_dim = config.hidden_size // config.num_heads
        self.num_key_value_groups = 1
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        self.qkv_proj = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: Optional[tuple[torch.Tensor, torch.Tensor]] = None,
    ) -> torch.Tensor:
        batch_size, seq_len, _ = hidden_states.shape
        qkv = self.qkv_proj(hidden_states).view(batch_size, seq_len, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (batch, heads, seq, head_dim)
        if position_embeddings is not None:
            cos, sin = position_embeddings
            query, key = apply_rotary_pos_emb(query, key, cos, sin)

        attention_interface = eager_attention_forward
        if self.config._attn_implementation != "eager":
            attention_interface = ALL_ATTENTION_FUNCTIONS[self.config._attn_implementation]
        attn_output, _ = attention_interface(
            self, query, key, value, attention_mask=None, dropout=0.0, scaling=self.scaling, is_causal=False
        )
        return self.o_proj(attn_output.reshape(batch_size, seq_len, -1))


class TRMSwiGLU(nn.Module):
    def __init__(self, size: int, intermediate_size: int):
        super().__init__()
        self.gate_up_proj = nn.Linear(size, 2 * intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, size, bias=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(hidden_states).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class TRMBlock(GradientCheckpointingLayer):
    """Post-norm block: token mixing (attention or an MLP across positions), then a SwiGLU."""

    def __init__(self, config: TRMConfig, layer_idx: int):
        super().__init__()
        self.eps = config.rms_norm_eps
        self.mixer = config.mixer
        if config.mixer == "attention":
            self.self_attn = TRMAttention(config, layer_idx)
        else:
            total_len = config.seq_len + config.puzzle_prefix_len
            self.token_mixer = TRMSwiGLU(total_len, _round_up(round(config.expansion * total_len * 2 / 3), 256))
        self.mlp = TRMSwiGLU(config.hidden_size, config.swiglu_intermediate_size)

    def __call__(self, *args, **kwargs):
        # The no-grad H-cycles have nothing to recompute: skip checkpointing there (it would only
        # warn that no input requires grad).
        if not torch.is_grad_enabled():
            return nn.Module.__call__(self, *args, **kwargs)
        return super().__call__(*args, **kwargs)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: Optional[tuple[torch.Tensor, torch.Tensor]] = None,
    ) -> torch.Tensor:
        if self.mixer == "attention":
            hidden_states = rms_norm(hidden_states + self.self_attn(hidden_states, position_embeddings), self.eps)
        else:
            # As in the method, the token-mixing residual is normalised along the sequence axis.
            transposed = hidden_states.transpose(1, 2)
            transposed = rms_norm(transposed + self.token_mixer(transposed), self.eps)
            hidden_states = transposed.transpose(1, 2)
        return rms_norm(hidden_states + self.mlp(hidden_states), self.eps)


class TRMPuzzleEmbedding(nn.Embedding):
    """Per-puzzle learned embedding (its own class so it gets its own init and optimizer group)."""


@dataclass
class TRMCarry(ModelOutput):
    """
    State carried between supervision steps.

    Args:
        y (`torch.FloatTensor` of shape `(batch_size, puzzle_prefix_len + seq_len, hidden_size)`):
            The answer state (`z_H` in the reference code).
        z (`torch.FloatTensor` of the same shape):
            The latent reasoning state (`z_L` in the reference code).
        steps (`torch.LongTensor` of shape `(batch_size,)`):
            Supervision steps already taken by each example.
        halted (`torch.BoolTensor` of shape `(batch_size,)`):
            Examples that finished at the previous step. The next forward starts them afresh (the
            caller replaces their inputs with new examples, as deep supervision does).
        q_hidden (`torch.FloatTensor` of shape `(batch_size, q_head_hidden_size)`, *optional*):
            Hidden state of the `"gru"` Q-head (None for the other heads); reset with `y` and `z`.
    """

    y: Optional[torch.Tensor] = None
    z: Optional[torch.Tensor] = None
    steps: Optional[torch.Tensor] = None
    halted: Optional[torch.Tensor] = None
    q_hidden: Optional[torch.Tensor] = None

    def select(self, index: torch.Tensor) -> "TRMCarry":
        """Rows `index` of the carry (a bool mask or integer indices)."""
        q_hidden = self.q_hidden[index] if self.q_hidden is not None else None
        return TRMCarry(
            y=self.y[index], z=self.z[index], steps=self.steps[index], halted=self.halted[index], q_hidden=q_hidden
        )

    def continued(self) -> "TRMCarry":
        """This carry with no row marked halted, so the next forward continues every row instead of
        restarting the ones the halting rule stopped (for callers that decide themselves when a
        puzzle ends: inference, evaluation, RL rollouts)."""
        return TRMCarry(
            y=self.y, z=self.z, steps=self.steps, halted=torch.zeros_like(self.halted), q_hidden=self.q_hidden
        )


@dataclass
class TRMModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, puzzle_prefix_len + seq_len, hidden_size)`):
            The answer state `y` after this supervision step, with gradient through the last H-cycle.
        carry (`TRMCarry`):
            The detached `(y, z)` to continue from, with the step counters of the input carry (after
            halted rows were reset).
        memory_use (`torch.FloatTensor` of shape `(batch_size,)`, *optional*):
            With a memory bank: how familiar the last H-cycle's latent state was to the bank (the
            attention-weighted cosine similarity of the slots read, in [0, 1]).
    """

    last_hidden_state: Optional[torch.FloatTensor] = None
    carry: Optional[TRMCarry] = None
    memory_use: Optional[torch.FloatTensor] = None


@dataclass
class TRMPuzzleSolvingOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` is given):
            `lm_loss + halt_loss_weight * (q_halt_loss + q_continue_loss)`, averaged over the batch.
        logits (`torch.FloatTensor` of shape `(batch_size, seq_len, vocab_size)`):
            Token predictions of this supervision step.
        q_halt_logits (`torch.FloatTensor` of shape `(batch_size,)`):
            Halting head's "halt" logit.
        q_continue_logits (`torch.FloatTensor` of shape `(batch_size,)`):
            Halting head's "continue" logit (trained only with `halting="q_learning"`).
        carry (`TRMCarry`):
            The state for the next supervision step; `carry.halted` says which examples are done.
        lm_loss, q_halt_loss, q_continue_loss (`torch.FloatTensor` of shape `()`, *optional*):
            The parts of `loss`, for logging.
        target_q_continue (`torch.FloatTensor` of shape `(batch_size,)`, *optional*):
            Bootstrapped Q-learning target (`halting="q_learning"` with labels, in training mode only:
            it costs an extra supervision step, so in eval mode it is None and `q_continue_loss` is 0).
        is_correct (`torch.BoolTensor` of shape `(batch_size,)`, *optional*):
            Whether each example's prediction is entirely right at this step (given labels).
        memory_use (`torch.FloatTensor` of shape `(batch_size,)`, *optional*):
            See `TRMModelOutput.memory_use` (None without a memory bank).
    """

    loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    q_halt_logits: Optional[torch.FloatTensor] = None
    q_continue_logits: Optional[torch.FloatTensor] = None
    carry: Optional[TRMCarry] = None
    lm_loss: Optional[torch.FloatTensor] = None
    q_halt_loss: Optional[torch.FloatTensor] = None
    q_continue_loss: Optional[torch.FloatTensor] = None
    target_q_continue: Optional[torch.FloatTensor] = None
    is_correct: Optional[torch.BoolTensor] = None
    memory_use: Optional[torch.FloatTensor] = None


class TRMPreTrainedModel(PreTrainedModel):
    config_class = TRMConfig
    config: TRMConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["TRMBlock"]
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    def _init_weights(self, module: nn.Module):
        # Modules are visited children first, so a head's own rule below overrides the generic
        # Linear rule applied to its projection.
        hidden = self.config.hidden_size
        if isinstance(module, nn.Linear):
            # LeCun normal (std 1/sqrt(fan_in)), truncated: keeps activations at unit scale through
            # the dozens of block applications of one supervision step.
            trunc_normal_(module.weight.data, std=module.in_features**-0.5)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, TRMPuzzleEmbedding):
            # Zero: an unseen puzzle identifier must not perturb the input at start.
            module.weight.data.zero_()
        elif isinstance(module, nn.Embedding):
            # std 1/sqrt(hidden), then scaled by sqrt(hidden) in the forward: unit-scale inputs.
            trunc_normal_(module.weight.data, std=hidden**-0.5)
        init_q_head(module, trunc_normal_)  # the halting heads' rules live beside them (q_heads.py)
        init_memory(module)  # and the memory bank's (memory_trm.py)
        if isinstance(module, TRMModel):
            trunc_normal_(module.y_init, std=1.0)
            trunc_normal_(module.z_init, std=1.0)


class TRMModel(TRMPreTrainedModel):
    """
    The recursion core. One call is one supervision step:

        for _ in range(H_cycles):          # all but the last under no_grad
            for _ in range(L_cycles):
                z = net(z + y + x)
            y = net(y + z)

    It returns the answer state `y` and the detached carry to continue from.
    """

    def __init__(self, config: TRMConfig):
        super().__init__(config)
        self.embed_scale = math.sqrt(config.hidden_size)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=None)
        self.puzzle_prefix_len = config.puzzle_prefix_len
        if config.puzzle_emb_ndim > 0:
            self.puzzle_embedding = TRMPuzzleEmbedding(config.num_puzzle_identifiers, config.puzzle_emb_ndim)
        if config.pos_encodings == "rope":
            self.rotary_emb = TRMRotaryEmbedding(config)
        elif config.pos_encodings == "learned":
            self.embed_positions = nn.Embedding(config.seq_len + self.puzzle_prefix_len, config.hidden_size)
        self.layers = nn.ModuleList([TRMBlock(config, i) for i in range(config.L_layers)])
        self.memory = TRMPatternMemory(config) if config.memory_slots else None
        # Initial y and z are fixed random vectors (buffers, not learned), as in the method.
        self.register_buffer("y_init", torch.empty(config.hidden_size), persistent=True)
        self.register_buffer("z_init", torch.empty(config.hidden_size), persistent=True)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding):
        self.embed_tokens = value

    def embed_inputs(
        self, input_ids: torch.LongTensor, puzzle_identifiers: Optional[torch.LongTensor]
    ) -> torch.Tensor:
        """`x`: token (and puzzle) embeddings, scaled to unit variance."""
        embedding = self.embed_tokens(input_ids)
        if self.puzzle_prefix_len:
            if puzzle_identifiers is None:
                # Identifier 0 is the "blank" puzzle (the data modules never assign it to a task).
                puzzle_identifiers = torch.zeros(input_ids.shape[0], dtype=torch.long, device=input_ids.device)
            puzzle = self.puzzle_embedding(puzzle_identifiers).to(embedding.dtype)
            pad = self.puzzle_prefix_len * self.config.hidden_size - puzzle.shape[-1]
            puzzle = F.pad(puzzle, (0, pad)).view(-1, self.puzzle_prefix_len, self.config.hidden_size)
            embedding = torch.cat((puzzle, embedding), dim=1)
        if self.config.pos_encodings == "learned":
            # 1/sqrt(2) keeps the sum of two unit-variance embeddings at unit variance.
            embedding = 0.707106781 * (embedding + self.embed_positions.weight.to(embedding.dtype))
        return self.embed_scale * embedding

    def initial_carry(self, batch_size: int) -> TRMCarry:
        """A carry whose rows all start afresh at the next forward."""
        shape = (batch_size, self.config.seq_len + self.puzzle_prefix_len, self.config.hidden_size)
        device, dtype = self.y_init.device, self.embed_tokens.weight.dtype
        q_hidden = None
        if self.config.q_head_type == "gru":
            q_hidden = torch.zeros(batch_size, self.config.q_head_hidden_size, device=device, dtype=dtype)
        return TRMCarry(
            y=self.y_init.to(dtype).expand(shape),
            z=self.z_init.to(dtype).expand(shape),
            steps=torch.zeros(batch_size, dtype=torch.long, device=device),
            halted=torch.ones(batch_size, dtype=torch.bool, device=device),
            q_hidden=q_hidden,
        )

    def reset_carry(self, carry: TRMCarry) -> TRMCarry:
        """Rows that halted at the previous step restart from the initial states with 0 steps."""
        reset = carry.halted.view(-1, 1, 1)
        dtype = carry.y.dtype
        q_hidden = carry.q_hidden
        if q_hidden is not None:  # the GRU head's memory belongs to the puzzle: it restarts too
            q_hidden = torch.where(carry.halted.view(-1, 1), 0.0, q_hidden)
        return TRMCarry(
            y=torch.where(reset, self.y_init.to(dtype), carry.y),
            z=torch.where(reset, self.z_init.to(dtype), carry.z),
            steps=torch.where(carry.halted, 0, carry.steps),
            halted=carry.halted,
            q_hidden=q_hidden,
        )

    def net(self, hidden_states: torch.Tensor, injection: torch.Tensor, position_embeddings) -> torch.Tensor:
        """The one small network, applied to `hidden_states + injection`."""
        hidden_states = hidden_states + injection
        for layer in self.layers:
            hidden_states = layer(hidden_states, position_embeddings)
        return hidden_states

    def recursion(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One supervision step of the method: H-cycles of (L_cycles z-updates, one y-update)."""
        y, z, _ = self.recursion_with_memory(x, y, z)
        return y, z

    def recursion_with_memory(
        self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, Optional[TRMMemoryRead]]:
        """`recursion`, also returning the last H-cycle's read of the memory bank (None without one)."""
        rope = self.rotary_emb(x.dtype) if self.config.pos_encodings == "rope" else None
        with torch.no_grad():
            for _ in range(self.config.H_cycles - 1):
                y, z, read = self.cycle(x, y, z, rope)
        y, z, read = self.cycle(x, y, z, rope)
        return y, z, read

    def cycle(self, x, y, z, rope) -> tuple[torch.Tensor, torch.Tensor, Optional[TRMMemoryRead]]:
        """One H-cycle: `L_cycles` updates of z, then one of y; the memory read, if any, joins x."""
        read = self.memory.read(z) if self.memory is not None else None
        injection = x + read.read if read is not None else x
        for _ in range(self.config.L_cycles):
            z = self.net(z, y + injection, rope)
        y = self.net(y, z, rope)
        return y, z, read

    def forward(
        self,
        input_ids: torch.LongTensor,
        puzzle_identifiers: Optional[torch.LongTensor] = None,
        carry: Optional[TRMCarry] = None,
        return_dict: Optional[bool] = None,
        **kwargs,
    ) -> TRMModelOutput:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch_size, seq_len)`):
            The puzzle tokens `x` (any integer dtype).
        puzzle_identifiers (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Puzzle ids for the puzzle embedding; `None` means identifier 0, the blank puzzle.
        carry (`TRMCarry`, *optional*):
            State from the previous supervision step (of this batch); `None` starts every example afresh.

        Ids out of range, a float or bool dtype, a wrong shape or a carry of another batch size raise a
        `ValueError` naming the input (`check_puzzle_inputs`).
        """
        input_ids, puzzle_identifiers = check_puzzle_inputs(self.config, input_ids, puzzle_identifiers, carry)
        if carry is None:
            carry = self.initial_carry(input_ids.shape[0])
        carry = self.reset_carry(carry)
        x = self.embed_inputs(input_ids, puzzle_identifiers)
        y, z, read = self.recursion_with_memory(x, carry.y, carry.z)
        if read is not None and self.training:
            self.memory.write(z.detach(), touched=read)
        new_carry = TRMCarry(
            y=y.detach(), z=z.detach(), steps=carry.steps, halted=carry.halted, q_hidden=carry.q_hidden
        )
        memory_use = read.use.detach() if read is not None else None
        output = TRMModelOutput(last_hidden_state=y, carry=new_carry, memory_use=memory_use)
        return output if return_dict is not False else output.to_tuple()


class TRMForPuzzleSolving(TRMPreTrainedModel):
    """TRM with the token head and the halting head: one forward is one supervision step."""

    def __init__(self, config: TRMConfig):
        super().__init__(config)
        self.model = TRMModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.q_head = build_q_head(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding):
        self.model.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def halt_decision(self, q_halt_logits: torch.Tensor, q_continue_logits: torch.Tensor) -> torch.Tensor:
        """The configured halting rule, without the step limit or exploration."""
        if self.config.halting == "bce":
            return q_halt_logits > 0
        return q_halt_logits > q_continue_logits  # "q_learning" and "dqn": the greedy action

    def replace_q_head(self, q_head_type: Optional[str] = None, q_head_hidden_size: Optional[int] = None) -> nn.Module:
        """Swaps in a freshly initialised halting head (default: the configured type), e.g. to learn a
        new halting policy on an already trained TRM; updates the config so the model saves and
        reloads with the new head."""
        head_type = self.config.q_head_type if q_head_type is None else q_head_type
        hidden = self.config.q_head_hidden_size if q_head_hidden_size is None else q_head_hidden_size
        # Validated by the config's own rules (the same error messages as TRMConfig(...)).
        TRMConfig(**{**self.config.to_dict(), "q_head_type": head_type, "q_head_hidden_size": hidden})
        self.config.q_head_type, self.config.q_head_hidden_size = head_type, hidden
        reference = next(self.parameters())
        self.q_head = build_q_head(self.config).to(device=reference.device, dtype=reference.dtype)
        self.q_head.apply(self._init_weights)
        return self.q_head

    def q_values(self, answer: torch.Tensor, steps: torch.Tensor, q_hidden: Optional[torch.Tensor] = None):
        """`(q_halt, q_continue, new_q_hidden)` of the configured Q-head for answer states `answer`
        after `steps` supervision steps (`q_hidden`: the GRU head's state, else None)."""
        step_fraction = steps.float() / self.config.halt_max_steps
        return self.q_head.q_values(self.q_head.summarize(answer), step_fraction, q_hidden)

    def forward(
        self,
        input_ids: torch.LongTensor,
        labels: Optional[torch.LongTensor] = None,
        puzzle_identifiers: Optional[torch.LongTensor] = None,
        carry: Optional[TRMCarry] = None,
        return_dict: Optional[bool] = None,
        **kwargs,
    ) -> TRMPuzzleSolvingOutput:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch_size, seq_len)`):
            The puzzles. With a carry, rows whose `carry.halted` is True must hold new examples.
        labels (`torch.LongTensor` of shape `(batch_size, seq_len)`, *optional*):
            Target tokens; `-100` marks positions without a target.
        puzzle_identifiers (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Puzzle ids for the puzzle embedding.
        carry (`TRMCarry`, *optional*):
            The carry returned by the previous supervision step, or `None` to start afresh.
        """
        core = self.model(input_ids, puzzle_identifiers=puzzle_identifiers, carry=carry, return_dict=True)
        answer = core.last_hidden_state
        logits = self.lm_head(answer[:, self.model.puzzle_prefix_len :])
        steps = core.carry.steps + 1
        q_halt_logits, q_continue_logits, q_hidden = self.q_values(answer, steps, core.carry.q_hidden)

        with torch.no_grad():
            is_last_step = steps >= self.config.halt_max_steps
            halted = is_last_step
            if self.config.halt_max_steps > 1:
                halted = halted | self.halt_decision(q_halt_logits, q_continue_logits)
                if self.training and self.config.halt_exploration_prob > 0:
                    explore = torch.rand_like(q_halt_logits) < self.config.halt_exploration_prob
                    min_steps = explore * torch.randint_like(steps, low=2, high=self.config.halt_max_steps + 1)
                    halted = halted & (steps >= min_steps)
        if q_hidden is not None:
            q_hidden = q_hidden.detach()
        new_carry = TRMCarry(y=core.carry.y, z=core.carry.z, steps=steps, halted=halted, q_hidden=q_hidden)

        loss = lm_loss = q_halt_loss = q_continue_loss = target_q_continue = is_correct = None
        if labels is not None:
            # The bootstrap target costs one more supervision step; it only trains the head, so it
            # is computed in training mode only (evaluation's loss then has no continue term).
            if self.config.halting == "q_learning" and self.training:
                target_q_continue = self._q_learning_target(input_ids, puzzle_identifiers, new_carry, is_last_step)
            lm_loss, q_halt_loss, q_continue_loss, is_correct = self.loss_terms(
                logits, labels, q_halt_logits, q_continue_logits, target_q_continue
            )
            loss = lm_loss + self.config.halt_loss_weight * (q_halt_loss + q_continue_loss)

        output = TRMPuzzleSolvingOutput(
            loss=loss,
            logits=logits,
            q_halt_logits=q_halt_logits,
            q_continue_logits=q_continue_logits,
            carry=new_carry,
            lm_loss=lm_loss,
            q_halt_loss=q_halt_loss,
            q_continue_loss=q_continue_loss,
            target_q_continue=target_q_continue,
            is_correct=is_correct,
            memory_use=core.memory_use,
        )
        return output if return_dict is not False else output.to_tuple()

    @torch.no_grad()
    def _q_learning_target(self, input_ids, puzzle_identifiers, carry: TRMCarry, is_last_step) -> torch.Tensor:
        # HRM's bootstrapped target: run the next supervision step from the new carry (no reset,
        # no gradient) and take the value of its best action; at the last step only halting is left.
        # No replay buffer or target network: a large batch acts as many parallel environments.
        # The step's forward checked the ids; they reach the embedding as long, whatever their integer dtype.
        if puzzle_identifiers is not None:
            puzzle_identifiers = puzzle_identifiers.long()
        x = self.model.embed_inputs(input_ids.long(), puzzle_identifiers)
        next_y, _ = self.model.recursion(x, carry.y, carry.z)
        next_halt, next_continue, _ = self.q_values(next_y, carry.steps + 1, carry.q_hidden)
        return torch.sigmoid(torch.where(is_last_step, next_halt, torch.maximum(next_halt, next_continue)))

    def loss_terms(self, logits, labels, q_halt_logits, q_continue_logits, target_q_continue=None):
        """Token loss (mean per example, then over the batch) and halting losses."""
        mask = labels != IGNORE_INDEX
        counts = mask.sum(-1)
        per_token = TOKEN_LOSSES[self.config.loss_type](logits, labels, mask)
        lm_loss = (per_token / counts.clamp_min(1).unsqueeze(-1)).sum(-1).mean().to(logits.dtype)
        with torch.no_grad():
            is_correct = score_cells(logits.argmax(-1), labels).exact
        q_halt_loss = F.binary_cross_entropy_with_logits(q_halt_logits, is_correct.to(q_halt_logits.dtype))
        if self.config.halting == "dqn":  # the head is trained by the DQN halting trainer, not here
            q_halt_loss = torch.zeros_like(q_halt_loss)
        q_continue_loss = torch.zeros_like(q_halt_loss)
        if target_q_continue is not None:
            q_continue_loss = F.binary_cross_entropy_with_logits(q_continue_logits, target_q_continue)
        return lm_loss, q_halt_loss, q_continue_loss, is_correct

    @torch.no_grad()
    def solve(
        self,
        input_ids: torch.LongTensor,
        puzzle_identifiers: Optional[torch.LongTensor] = None,
        max_steps: Optional[int] = None,
        use_halting: bool = True,
    ) -> TRMSolveOutput:
        """
        Runs supervision steps at inference until each example halts (or `max_steps`).

        Halted examples leave the batch, so later steps only compute the unfinished ones.

        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, seq_len)`): the puzzles.
            puzzle_identifiers (`torch.LongTensor` of shape `(batch_size,)`, *optional*).
            max_steps (`int`, *optional*): step budget; defaults to `config.halt_max_steps`.
            use_halting (`bool`, defaults to `True`): apply the halting rule; `False` runs all steps.
        """
        max_steps = self.config.halt_max_steps if max_steps is None else max_steps
        was_training = self.training
        self.eval()
        try:
            return solve_puzzles(self, input_ids, puzzle_identifiers, max_steps=max_steps, use_halting=use_halting)
        finally:
            self.train(was_training)


__all__ = [
    "IGNORE_INDEX",
    "CellScores",
    "TRMCarry",
    "TRMForPuzzleSolving",
    "TRMMemoryRead",
    "TRMPatternMemory",
    "TRMModel",
    "TRMModelOutput",
    "TRMPreTrainedModel",
    "TRMPuzzleSolvingOutput",
    "TRMSolveOutput",
    "TRMSupervisionStep",
    "check_ids",
    "check_puzzle_inputs",
    "solve_puzzles",
    "score_cells",
    "supervision_steps",
]
