# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The TRM supervision loop and the scoring of cells.

`supervision_steps` is the one loop over supervision steps that solving, evaluation, halting
rollouts, ONNX Runtime and the export's parity check all run, each with its own step function and
halting rule. Only torch is imported (this file travels with the checkpoint's remote code).
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional

import torch


# Label of a position without a target (padding, given cells where only blanks are scored); the
# value transformers' losses ignore, used by every hf-reason puzzle dataset.
IGNORE_INDEX = -100


class CellScores(NamedTuple):
    """Per-example counts of `score_cells`: `correct` cells and `total` cells with a target."""

    correct: torch.LongTensor
    total: torch.LongTensor

    @property
    def accuracy(self) -> torch.FloatTensor:
        """Fraction of target cells right (0 for an example without targets)."""
        return self.correct.float() / self.total.clamp_min(1)

    @property
    def exact(self) -> torch.BoolTensor:
        """Whether every target cell is right."""
        return self.correct == self.total


def score_cells(predictions: torch.LongTensor, labels: torch.LongTensor) -> CellScores:
    """Right cells of `predictions` against `labels` `(batch, seq_len)`, positions labelled
    `IGNORE_INDEX` left out."""
    mask = labels != IGNORE_INDEX
    return CellScores(correct=((predictions == labels) & mask).sum(-1), total=mask.sum(-1))


@dataclass
class TRMSupervisionStep:
    """
    One supervision step of `supervision_steps`.

    Args:
        step (`int`): the step's number, from 1.
        rows (`torch.LongTensor` of shape `(num_rows,)`): the rows of the batch this step computed
            (all of them, or those the halting rule has not stopped yet).
        output (`TRMPuzzleSolvingOutput`): the step's output for `rows`.
        halted (`torch.BoolTensor` of shape `(num_rows,)`): the rows the halting rule stopped at this
            step (all False without a rule); they are not computed again.
    """

    step: int
    rows: torch.LongTensor
    output: Any  # the step function's output: a TRMPuzzleSolvingOutput
    halted: torch.BoolTensor


def supervision_steps(
    step_fn: Callable[..., Any],
    max_steps: int,
    halt: Optional[Callable[[Any], torch.BoolTensor]] = None,
    carry=None,
    **inputs: Optional[torch.Tensor],
) -> Iterator[TRMSupervisionStep]:
    """
    The supervision loop: runs `step_fn` step after step and yields each step's outputs.

    Every way of running a TRM over its steps (solving, evaluation, halting rollouts, ONNX Runtime,
    export parity) is this loop with its own step function and halting rule.

    Args:
        step_fn: one supervision step, called as `step_fn(**inputs, carry=carry)` on the rows still
            running: a `TRMForPuzzleSolving`, its ONNX Runtime wrapper, or a function around one.
        max_steps (`int`): steps to run at most (>= 1).
        halt: the halting rule, `halt(output) -> BoolTensor` of the rows that stop; they leave the
            batch, and the loop ends when none is left. `None`: every row runs `max_steps` steps.
        carry (`TRMCarry`, *optional*): where to continue from; `None` starts every row afresh.
        inputs: the batch-first tensors `step_fn` takes (`input_ids`, `puzzle_identifiers`,
            `labels`, ...); `None` values are passed on as they are.
    """
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"`max_steps` must be an integer >= 1, got {max_steps!r}.")
    batch_size = next(v for v in inputs.values() if v is not None).shape[0]
    rows = torch.arange(batch_size)
    for step in range(1, max_steps + 1):
        output = step_fn(**inputs, carry=carry)
        halted = halt(output) if halt is not None else torch.zeros(rows.shape[0], dtype=torch.bool)
        yield TRMSupervisionStep(step=step, rows=rows, output=output, halted=halted)
        carry = output.carry.continued()
        if halted.any():
            if halted.all():
                return
            keep = (~halted).cpu()
            rows = rows[keep]
            carry = carry.select(keep.to(carry.steps.device))
            inputs = {k: v[keep.to(v.device)] if v is not None else None for k, v in inputs.items()}


__all__ = ["IGNORE_INDEX", "CellScores", "TRMSupervisionStep", "score_cells", "supervision_steps"]
