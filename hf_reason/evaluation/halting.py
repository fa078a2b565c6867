"""Offline evaluation of halting rules: every supervision step of a set of puzzles as a table
(`HaltingTrajectories`), the halting step a Q-head's greedy policy picks on it, and the metrics of
halting at given steps."""

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from tqdm.auto import tqdm

from ..models.trm.modeling_trm import score_cells, supervision_steps
from .puzzles import PUZZLE_KEYS


__all__ = [
    "HaltingTrajectories",
    "collect_trajectories",
    "evaluate_halting",
    "greedy_halting_steps",
    "halting_metrics",
]


@dataclass
class HaltingTrajectories:
    """Every supervision step of a set of puzzles under a fixed TRM.

    Args:
        observations (`torch.Tensor` of shape `(num_puzzles, max_steps, *state_shape)`):
            The Q-head's input after each step (`q_head.summarize` of the answer state).
        cell_accuracy (`torch.FloatTensor` of shape `(num_puzzles, max_steps)`):
            Fraction of target cells right after each step.
        exact (`torch.BoolTensor` of shape `(num_puzzles, max_steps)`):
            Whether the whole answer is right after each step.
        memory_use (`torch.FloatTensor` of shape `(num_puzzles, max_steps)`, *optional*):
            With a memory bank, the model's `memory_use` after each step (None without one).
    """

    observations: torch.Tensor
    cell_accuracy: torch.Tensor
    exact: torch.Tensor
    memory_use: Optional[torch.Tensor] = None

    def __post_init__(self):
        if self.observations.shape[:2] != self.exact.shape or self.cell_accuracy.shape != self.exact.shape:
            raise ValueError(
                "`observations` must have shape (num_puzzles, max_steps, ...) and `cell_accuracy` / `exact` "
                f"(num_puzzles, max_steps); got {tuple(self.observations.shape)}, "
                f"{tuple(self.cell_accuracy.shape)}, {tuple(self.exact.shape)}."
            )
        if self.memory_use is not None and self.memory_use.shape != self.exact.shape:
            raise ValueError(
                f"`memory_use` must have shape (num_puzzles, max_steps) = {tuple(self.exact.shape)}; got "
                f"{tuple(self.memory_use.shape)}."
            )

    @property
    def num_puzzles(self) -> int:
        return self.exact.shape[0]

    @property
    def max_steps(self) -> int:
        return self.exact.shape[1]


def _puzzle_batches(model, dataset, batch_size: int, progress: bool = False, desc: Optional[str] = None):
    """`(inputs, labels)` per batch of `dataset`, on the model's device; `inputs` without the labels,
    so that the steps compute no loss."""
    columns = [c for c in PUZZLE_KEYS if c in dataset.column_names]
    for start in tqdm(range(0, len(dataset), batch_size), desc=desc, disable=not progress):
        rows = dataset[start : start + batch_size]
        inputs = {c: torch.as_tensor(rows[c], device=model.device) for c in columns}
        yield inputs, inputs.pop("labels")


@torch.no_grad()
def collect_trajectories(model, dataset, batch_size: int = 64, state_dtype=torch.float32, desc="trajectories"):
    """Runs all `halt_max_steps` supervision steps of `model` on every puzzle of `dataset`."""
    was_training = model.training
    model.eval()
    observations, cell_accuracy, exact, memory_use = [], [], [], []
    for inputs, labels in _puzzle_batches(model, dataset, batch_size, progress=True, desc=desc):
        obs, cells, right, use = [], [], [], []
        # no halting rule: every puzzle is followed to the last step
        for record in supervision_steps(model, model.config.halt_max_steps, **inputs):
            obs.append(model.q_head.summarize(record.output.carry.y).to(state_dtype).cpu())
            scores = score_cells(record.output.logits.argmax(-1), labels)
            cells.append(scores.accuracy.cpu())
            right.append(scores.exact.cpu())
            if getattr(record.output, "memory_use", None) is not None:
                use.append(record.output.memory_use.float().cpu())
        observations.append(torch.stack(obs, 1))
        cell_accuracy.append(torch.stack(cells, 1))
        exact.append(torch.stack(right, 1))
        if use:
            memory_use.append(torch.stack(use, 1))
    model.train(was_training)
    return HaltingTrajectories(
        torch.cat(observations),
        torch.cat(cell_accuracy),
        torch.cat(exact),
        memory_use=torch.cat(memory_use) if memory_use else None,
    )


@torch.no_grad()
def greedy_halting_steps(q_head: nn.Module, trajectories: HaltingTrajectories, batch_size: int = 1024):
    """The step (1-based) at which the greedy policy of `q_head` halts on each trajectory."""
    steps = []
    max_steps = trajectories.max_steps
    dtype = next(q_head.parameters()).dtype
    for start in range(0, trajectories.num_puzzles, batch_size):
        obs = trajectories.observations[start : start + batch_size]
        halted_at = torch.full((obs.shape[0],), max_steps, dtype=torch.long)
        done = torch.zeros(obs.shape[0], dtype=torch.bool)
        hidden = None
        for t in range(max_steps - 1):
            fraction = torch.full((obs.shape[0],), (t + 1) / max_steps)
            q_halt, q_continue, hidden = q_head.q_values(obs[:, t].to(dtype), fraction, hidden)
            halt = (q_halt > q_continue) & ~done
            halted_at[halt] = t + 1
            done |= halt
        steps.append(halted_at)
    return torch.cat(steps)


def halting_metrics(halt_steps: torch.Tensor, exact: torch.Tensor) -> dict[str, float]:
    """Accuracy at halt, mean steps, premature-halt rate (halted wrong though a later step was
    right), accuracy at the maximum step, for halting steps `halt_steps` (1-based)."""
    rows = torch.arange(exact.shape[0])
    right_at_halt = exact[rows, halt_steps - 1]
    later = torch.arange(exact.shape[1]).unsqueeze(0) >= halt_steps.unsqueeze(1)
    right_later = (exact & later).any(1)
    n = exact.shape[0]
    return {
        "exact_accuracy": right_at_halt.float().mean().item(),
        "num_exact": int(right_at_halt.sum()),
        "num_puzzles": n,
        "mean_steps": halt_steps.float().mean().item(),
        "premature_halt_rate": (~right_at_halt & right_later).float().mean().item(),
        "exact_accuracy_max_steps": exact[:, -1].float().mean().item(),
        "num_exact_max_steps": int(exact[:, -1].sum()),
    }


@torch.no_grad()
def evaluate_halting(model, dataset, batch_size: int = 100, max_steps: Optional[int] = None) -> dict[str, float]:
    """Runs `model` (its own configured halting rule, e.g. `halting="dqn"`) on puzzles of `dataset`
    for every supervision step and scores where its rule halts (see `halting_metrics`)."""
    max_steps = max_steps or model.config.halt_max_steps
    was_training = model.training
    model.eval()
    all_steps, all_exact = [], []
    for inputs, labels in _puzzle_batches(model, dataset, batch_size):
        exact = []
        halt_steps = torch.full((labels.shape[0],), max_steps, dtype=torch.long)
        done = torch.zeros(labels.shape[0], dtype=torch.bool)
        # every step runs (the rule is scored, not applied), so that later steps' answers are known
        for record in supervision_steps(model, max_steps, **inputs):
            out = record.output
            exact.append(score_cells(out.logits.argmax(-1), labels).exact.cpu())
            halt = model.halt_decision(out.q_halt_logits, out.q_continue_logits).cpu() & ~done
            halt_steps[halt] = record.step
            done |= halt
        all_steps.append(halt_steps)
        all_exact.append(torch.stack(exact, 1))
    model.train(was_training)
    return halting_metrics(torch.cat(all_steps), torch.cat(all_exact))
