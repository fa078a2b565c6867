# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""TRM graphs for ONNX export: one supervision step with an explicit carry, or the whole solve.

Both wrap a `TRMForPuzzleSolving` without copying weights. They exist because ONNX graphs take
and return plain tensors: the `TRMCarry` dataclass is spread into named inputs / outputs, and the
solve's "finished puzzles leave the batch" becomes masking with `torch.where` (a Python `break`
would be unrolled by the TorchScript tracer to the dummy input's depth and give wrong results).
"""

from typing import Optional

import torch
from torch import nn

from ..models.trm import TRMCarry, TRMForPuzzleSolving


class TRMStepForExport(nn.Module):
    """One supervision step (the full H/L recursion) with the carry as plain tensors.

    Inputs `carry_y`, `carry_z` of shape `(batch, prefix + seq_len, hidden)`, `carry_steps` (int64)
    and `carry_halted` (bool) of shape `(batch,)`; rows with `carry_halted=True` restart from the
    model's initial states, exactly as `TRMForPuzzleSolving.forward` does with a `TRMCarry`.
    """

    def __init__(self, model: TRMForPuzzleSolving):
        super().__init__()
        self.model = model
        self.config = model.config  # Optimum reads and sets `model.config`

    def forward(
        self,
        input_ids: torch.LongTensor,
        carry_y: torch.Tensor,
        carry_z: torch.Tensor,
        carry_steps: torch.LongTensor,
        carry_halted: torch.BoolTensor,
        puzzle_identifiers: Optional[torch.LongTensor] = None,
        carry_q_hidden: Optional[torch.Tensor] = None,
    ) -> dict:
        carry = TRMCarry(y=carry_y, z=carry_z, steps=carry_steps, halted=carry_halted)
        if carry_q_hidden is not None:  # the recurrent ("gru") halting head's memory
            carry.q_hidden = carry_q_hidden
        out = self.model(input_ids, puzzle_identifiers=puzzle_identifiers, carry=carry, return_dict=True)
        outputs = {
            "logits": out.logits,
            "q_halt_logits": out.q_halt_logits,
            "q_continue_logits": out.q_continue_logits,
            "next_y": out.carry.y,
            "next_z": out.carry.z,
            "next_steps": out.carry.steps,
            "next_halted": out.carry.halted,
        }
        if carry_q_hidden is not None:
            outputs["next_q_hidden"] = out.carry.q_hidden
        return outputs


def has_recurrent_q_head(config) -> bool:
    return getattr(config, "q_head_type", "linear") == "gru"


def _q_values(model: TRMForPuzzleSolving, answer: torch.Tensor, steps: torch.Tensor, q_hidden):
    # TRM builds without pluggable Q-heads have only `q_head(answer[:, 0])`.
    if hasattr(model, "q_values"):
        return model.q_values(answer, steps, q_hidden)
    q_halt, q_continue = model.q_head(answer[:, 0])
    return q_halt, q_continue, None


class TRMSolveForExport(nn.Module):
    """`TRMForPuzzleSolving.solve` with a fixed step budget as one graph.

    Every row runs all `max_steps` steps; a row that halted keeps its prediction and step count
    (masking), so the outputs equal `solve`'s. `step_predictions` and `q_halt_logits` always have
    `max_steps` rows (`solve` stops early when every puzzle halted; compare the first rows).
    """

    def __init__(self, model: TRMForPuzzleSolving, max_steps: Optional[int] = None, use_halting: bool = True):
        super().__init__()
        max_steps = model.config.halt_max_steps if max_steps is None else max_steps
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"`max_steps` must be an integer >= 1, got {max_steps!r}.")
        self.model = model
        self.config = model.config
        self.max_steps = max_steps
        self.use_halting = use_halting

    def forward(self, input_ids: torch.LongTensor, puzzle_identifiers: Optional[torch.LongTensor] = None) -> dict:
        core, prefix = self.model.model, self.model.model.puzzle_prefix_len
        batch_size = input_ids.shape[0]
        # The input embedding does not change between steps: computed once (the step graph
        # recomputes it each call, which is one reason the fused graph is cheaper per step).
        x = core.embed_inputs(input_ids, puzzle_identifiers)
        y = core.y_init.to(x.dtype).expand_as(x)
        z = core.z_init.to(x.dtype).expand_as(x)
        active = torch.ones(batch_size, dtype=torch.bool, device=input_ids.device)
        predictions = torch.zeros_like(input_ids)
        steps = torch.zeros_like(input_ids[:, 0])
        step_predictions, step_q_halt = [], []
        nan = torch.tensor(float("nan"), device=input_ids.device)
        q_hidden = None
        if has_recurrent_q_head(self.config):
            q_hidden = torch.zeros(batch_size, self.config.q_head_hidden_size, dtype=x.dtype, device=x.device)
        for step in range(self.max_steps):
            y, z = core.recursion(x, y, z)
            logits = self.model.lm_head(y[:, prefix:])
            q_halt, q_continue, q_hidden = _q_values(self.model, y, torch.full_like(steps, step + 1), q_hidden)
            predictions = torch.where(active.unsqueeze(-1), logits.argmax(-1), predictions)
            steps = torch.where(active, step + 1, steps)
            step_predictions.append(predictions)
            step_q_halt.append(torch.where(active, q_halt, nan))
            if self.use_halting:
                active = active & ~self.model.halt_decision(q_halt, q_continue)
        return {
            "predictions": predictions,
            "steps": steps,
            "step_predictions": torch.stack(step_predictions),
            "q_halt_logits": torch.stack(step_q_halt),
        }


__all__ = ["TRMSolveForExport", "TRMStepForExport", "has_recurrent_q_head"]
