# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The TRM supervision loop, solving on it, the scoring of cells, and the checks of a step's inputs.

`supervision_steps` is the one loop over supervision steps that solving (`solve_puzzles`),
evaluation, halting rollouts, ONNX Runtime and the export's parity check all run, each with its own
step function and halting rule. Only torch and transformers are imported (this file travels with the
checkpoint's remote code).
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional

import torch
from transformers.utils import ModelOutput

from .configuration_trm import TRMConfig


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


def check_ids(ids: torch.Tensor, name: str, size: int, size_name: str) -> torch.LongTensor:
    """`ids` as a LongTensor for an embedding of `size` rows, or a `ValueError` that names `name` and
    the dtype (floats and bools are not ids), or the table's `size_name=size` and the first id out of
    range with its position.

    Skipped while tracing or compiling (ONNX export, `torch.compile`): a branch on the values would be
    baked into the graph. The ONNX Runtime wrappers run this same check on their inputs.
    """
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return ids
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise ValueError(f"`{name}` must hold integer ids; got dtype {ids.dtype}.")
    outside = (ids < 0) | (ids >= size)
    if outside.any():
        where = tuple(outside.nonzero()[0].tolist())
        raise ValueError(
            f"`{name}` must hold ids from 0 to {size - 1} ({size_name}={size}); got {ids[where].item()} at "
            f"position {where}."
        )
    return ids.long()


def check_puzzle_inputs(
    config: TRMConfig, input_ids, puzzle_identifiers=None, carry=None
) -> tuple[torch.LongTensor, Optional[torch.LongTensor]]:
    """The inputs of one supervision step, checked: `input_ids` `(batch_size, seq_len)` of ids below
    `vocab_size` (any integer dtype), `puzzle_identifiers` `(batch_size,)` below
    `num_puzzle_identifiers` (read only with a puzzle embedding), and a carry of `batch_size` rows.

    The model and its ONNX Runtime wrapper both run it, so they refuse the same inputs with the same
    errors. Returns the ids as LongTensors; skipped while tracing or compiling, as `check_ids`.
    """
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return input_ids, puzzle_identifiers
    input_ids = torch.as_tensor(input_ids)
    if input_ids.dim() != 2 or input_ids.shape[1] != config.seq_len:
        raise ValueError(
            f"`input_ids` must have shape (batch_size, seq_len={config.seq_len}); got {tuple(input_ids.shape)}."
        )
    input_ids = check_ids(input_ids, "input_ids", config.vocab_size, "vocab_size")
    batch_size = input_ids.shape[0]
    if puzzle_identifiers is not None and config.puzzle_emb_ndim:
        puzzle_identifiers = torch.as_tensor(puzzle_identifiers)
        if tuple(puzzle_identifiers.shape) != (batch_size,):
            raise ValueError(
                f"`puzzle_identifiers` must have shape (batch_size,) = ({batch_size},); "
                f"got {tuple(puzzle_identifiers.shape)}."
            )
        puzzle_identifiers = check_ids(
            puzzle_identifiers, "puzzle_identifiers", config.num_puzzle_identifiers, "num_puzzle_identifiers"
        )
    if carry is not None:
        rows = {key: value.shape[0] for key, value in carry.items() if isinstance(value, torch.Tensor)}
        if set(rows.values()) != {batch_size}:
            # Broadcasting would otherwise run a one-row batch against every row of the carry.
            sizes = set(rows.values())
            carry_rows = f"{sizes.pop()} rows" if len(sizes) == 1 else f"rows {rows}"
            raise ValueError(
                f"The carry has {carry_rows} and `input_ids` {batch_size}: pass the carry the previous step "
                "returned for this batch, or `carry=None` to start afresh."
            )
    return input_ids, puzzle_identifiers


@dataclass
class TRMSolveOutput(ModelOutput):
    """
    Args:
        predictions (`torch.LongTensor` of shape `(batch_size, seq_len)`):
            Each example's answer at the step where it halted.
        step_predictions (`torch.LongTensor` of shape `(num_steps_run, batch_size, seq_len)`):
            The answer after every supervision step (frozen once an example halted).
        steps (`torch.LongTensor` of shape `(batch_size,)`):
            Supervision steps each example used.
        q_halt_logits (`torch.FloatTensor` of shape `(num_steps_run, batch_size)`):
            Halting logits per step (NaN after an example halted).
    """

    predictions: Optional[torch.LongTensor] = None
    step_predictions: Optional[torch.LongTensor] = None
    steps: Optional[torch.LongTensor] = None
    q_halt_logits: Optional[torch.FloatTensor] = None


def solve_puzzles(
    step_fn, input_ids: torch.LongTensor, puzzle_identifiers=None, *, max_steps: int, use_halting: bool = True
) -> TRMSolveOutput:
    """`TRMForPuzzleSolving.solve` for any step function with a `halt_decision` (the model or its ONNX
    Runtime wrapper): the answer of each row at the step where it halted, and every step's answers."""
    input_ids = torch.as_tensor(input_ids)
    batch_size, device = input_ids.shape[0], input_ids.device
    # Long whatever the ids' integer dtype: the answers are token ids as the logits' argmax gives them.
    predictions = torch.zeros(input_ids.shape, dtype=torch.long, device=device)
    steps_used = torch.zeros(batch_size, dtype=torch.long, device=device)
    step_predictions, step_q_halt = [], []

    def halt(output):
        return step_fn.halt_decision(output.q_halt_logits, output.q_continue_logits)

    for record in supervision_steps(
        step_fn,
        max_steps,
        halt=halt if use_halting else None,
        input_ids=input_ids,
        puzzle_identifiers=torch.as_tensor(puzzle_identifiers) if puzzle_identifiers is not None else None,
    ):
        rows = record.rows.to(device)
        predictions[rows] = record.output.logits.argmax(-1).to(device)
        steps_used[rows] = record.step
        q_halt = torch.full((batch_size,), float("nan"), device=device)
        q_halt[rows] = record.output.q_halt_logits.to(device)
        step_predictions.append(predictions.clone())
        step_q_halt.append(q_halt)
    return TRMSolveOutput(
        predictions=predictions,
        step_predictions=torch.stack(step_predictions),
        steps=steps_used,
        q_halt_logits=torch.stack(step_q_halt),
    )


__all__ = [
    "IGNORE_INDEX",
    "CellScores",
    "TRMSolveOutput",
    "TRMSupervisionStep",
    "check_ids",
    "check_puzzle_inputs",
    "score_cells",
    "solve_puzzles",
    "supervision_steps",
]
