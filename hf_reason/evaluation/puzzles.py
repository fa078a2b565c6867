"""Evaluation of recursive puzzle solvers over all supervision steps, with and without halting."""

from dataclasses import dataclass

import torch

from ..models.trm.modeling_trm import IGNORE_INDEX, score_cells, supervision_steps


__all__ = ["IGNORE_INDEX", "PUZZLE_KEYS", "SupervisionStats", "run_supervision_steps", "summarize"]

# The columns of a puzzle dataset that a puzzle solver's forward takes (`puzzle_identifiers` optional).
PUZZLE_KEYS = ("input_ids", "labels", "puzzle_identifiers")


@dataclass
class SupervisionStats:
    """Per-example results of running every supervision step on one batch (all tensors `(batch,)`)."""

    loss: torch.Tensor  # mean over steps of the model's loss terms for the example's batch
    cell_accuracy: torch.Tensor  # fraction of target cells right at the halting step
    exact_at_halt: torch.Tensor  # whole puzzle right at the step the halting rule stops
    exact_at_max: torch.Tensor  # whole puzzle right after all steps
    steps: torch.Tensor  # steps the halting rule uses (max when it never fires)
    halting_accuracy: torch.Tensor  # fraction of steps where the halt decision == "answer is right"

    def as_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.__dict__)


@torch.no_grad()
def run_supervision_steps(model, input_ids, labels, puzzle_identifiers=None, max_steps=None) -> SupervisionStats:
    """Runs `max_steps` supervision steps (no early exit) and scores the halting rule afterwards.

    Running every step costs the full budget but measures both the accuracy at the learned halting
    step and at the maximum, and how often the halting head was right.
    """
    max_steps = max_steps or model.config.halt_max_steps
    batch = input_ids.shape[0]
    halted = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
    steps = torch.full((batch,), max_steps, dtype=torch.long, device=input_ids.device)
    cell_at_halt = torch.zeros(batch, device=input_ids.device)
    exact_at_halt = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
    halt_hits = torch.zeros(batch, device=input_ids.device)
    losses = []
    for record in supervision_steps(
        model, max_steps, input_ids=input_ids, labels=labels, puzzle_identifiers=puzzle_identifiers
    ):
        out, step = record.output, record.step
        losses.append(out.loss.float())
        scores = score_cells(out.logits.argmax(-1), labels)
        head_says_halt = model.halt_decision(out.q_halt_logits, out.q_continue_logits)
        halt_hits += (head_says_halt == scores.exact).float()  # the head's own call, not the step limit
        decision = head_says_halt | (step == max_steps)
        newly = decision & ~halted
        steps = torch.where(newly, step, steps)
        cell_at_halt = torch.where(newly, scores.accuracy, cell_at_halt)
        exact_at_halt = torch.where(newly, scores.exact, exact_at_halt)
        halted |= decision
    return SupervisionStats(
        loss=torch.stack(losses).mean().expand(batch),
        cell_accuracy=cell_at_halt,
        exact_at_halt=exact_at_halt,
        exact_at_max=scores.exact,
        steps=steps,
        halting_accuracy=halt_hits / max_steps,
    )


def summarize(stats: list[SupervisionStats]) -> dict[str, float]:
    """Mean metrics over examples, plus the counts needed for intervals."""
    merged = {k: torch.cat([getattr(s, k).float() for s in stats]) for k in SupervisionStats.__annotations__}
    n = merged["loss"].numel()
    return {
        "loss": merged["loss"].mean().item(),
        "cell_accuracy": merged["cell_accuracy"].mean().item(),
        "exact_accuracy": merged["exact_at_halt"].mean().item(),
        "exact_accuracy_max_steps": merged["exact_at_max"].mean().item(),
        "mean_steps": merged["steps"].mean().item(),
        "halting_accuracy": merged["halting_accuracy"].mean().item(),
        "num_exact": int(merged["exact_at_halt"].sum().item()),
        "num_puzzles": n,
    }
