"""TRM inference on ARC with augmentation voting (the TRM / HRM papers' protocol).

Each test input is solved in many augmented versions (a dihedral transform and a colour permutation,
each with the puzzle identifier the model knows it by); every prediction is mapped back to the
original frame and colours, identical grids pool their votes, and the two most voted grids are the
two attempts (ties broken by the mean halting confidence, `sigmoid(q_halt)`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import torch

from ..data.arc import (
    apply_arc_augmentation,
    decode_arc_grid,
    encode_arc_grid,
    invert_arc_augmentation,
)


__all__ = ["VoteCandidate", "predict_with_voting", "vote_on_predictions"]


@dataclass
class VoteCandidate:
    """
    One grid and its support.

    Args:
        grid (`np.ndarray`): the predicted grid, in the original task's frame and colours.
        votes (`int`): augmented versions that predicted it.
        total_votes (`int`): augmented versions that predicted a grid at all.
        confidence (`float`): mean `sigmoid(q_halt)` of its votes.
    """

    grid: np.ndarray
    votes: int
    total_votes: int
    confidence: float

    @property
    def share(self) -> float:
        """Its share of the votes (what the hybrid solver compares with the DSL's confidence)."""
        return self.votes / self.total_votes if self.total_votes else 0.0


def vote_on_predictions(
    predictions: Sequence[tuple[np.ndarray, str, float]], top_k: Optional[int] = 2
) -> list[VoteCandidate]:
    """Pools predictions made on augmented versions of one test input.

    Args:
        predictions: `(grid, augmentation, confidence)` per augmented version: the grid as predicted in
            the augmented frame (an empty grid counts as no prediction), the augmentation it was made
            under (`"d{k}_c{perm}"`), and a confidence in [0, 1].
        top_k: how many candidates to return (None: all), most votes first.
    """
    pooled: dict[tuple, list] = {}
    total = 0
    for grid, augmentation, confidence in predictions:
        grid = np.asarray(grid)
        if grid.size == 0:
            continue
        original = invert_arc_augmentation(grid, augmentation)
        key = (original.shape, original.astype(np.int64).tobytes())
        entry = pooled.setdefault(key, [original, 0, 0.0])
        entry[1] += 1
        entry[2] += float(confidence)
        total += 1
    candidates = [VoteCandidate(g, votes, total, score / votes) for g, votes, score in pooled.values()]
    candidates.sort(key=lambda c: (-c.votes, -c.confidence))
    return candidates if top_k is None else candidates[:top_k]


def _halting_confidence(q_halt_logits: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """sigmoid(q_halt) at the step where each row stopped (`q_halt_logits`: steps x batch, NaN after)."""
    index = (steps - 1).clamp_min(0).to(q_halt_logits.device)
    return torch.sigmoid(q_halt_logits.gather(0, index.view(1, -1)).squeeze(0))


@torch.no_grad()
def predict_with_voting(
    model,
    test_inputs: Sequence[np.ndarray],
    augmentations: Sequence[str],
    puzzle_identifiers: Union[int, Sequence[int], None] = None,
    max_steps: Optional[int] = None,
    batch_size: int = 64,
    top_k: Optional[int] = 2,
) -> list[list[VoteCandidate]]:
    """Runs a TRM on every augmented version of each test input and votes.

    Args:
        model: a `TRMForPuzzleSolving` trained on the 30x30 ARC encoding (`hf_reason.data.arc`).
        test_inputs: the task's test inputs (original frame).
        augmentations: the augmentations to vote over (`"d0_c0123456789"` is the original).
        puzzle_identifiers: the identifier of each augmentation (the rows of the puzzle embedding the model
            learned for that version of the task), one for all, or None (the blank identifier 0).
        max_steps: supervision steps at most (default: the model's `halt_max_steps`).
        batch_size: augmented inputs per forward batch.
        top_k: candidates kept per test input (None: all).

    Returns:
        Per test input, its candidates, most voted first.
    """
    if isinstance(puzzle_identifiers, Sequence) and len(puzzle_identifiers) != len(augmentations):
        raise ValueError(
            f"puzzle_identifiers must have one entry per augmentation ({len(augmentations)}), got {len(puzzle_identifiers)}"
        )
    if puzzle_identifiers is None or isinstance(puzzle_identifiers, int):
        identifiers = [puzzle_identifiers or 0] * len(augmentations)
    else:
        identifiers = list(puzzle_identifiers)
    device = next(model.parameters()).device
    results = []
    for test_input in test_inputs:
        rows = [encode_arc_grid(apply_arc_augmentation(test_input, a)) for a in augmentations]
        predictions = []
        for start in range(0, len(rows), batch_size):
            input_ids = torch.as_tensor(np.stack(rows[start : start + batch_size]), device=device)
            ids = torch.as_tensor(identifiers[start : start + batch_size], device=device)
            solved = model.solve(input_ids, puzzle_identifiers=ids, max_steps=max_steps)
            confidence = _halting_confidence(solved.q_halt_logits, solved.steps).float().cpu().numpy()
            for offset, tokens in enumerate(solved.predictions.cpu().numpy()):
                augmentation = augmentations[start + offset]
                predictions.append((decode_arc_grid(tokens), augmentation, float(confidence[offset])))
        results.append(vote_on_predictions(predictions, top_k=top_k))
    return results
