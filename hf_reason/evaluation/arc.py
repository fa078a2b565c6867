"""ARC-AGI scoring: the official pass@2 protocol, submission files and summaries with intervals.

A task has one or more test inputs. A solver gives up to two attempts per test input; a test output
counts as solved when one of its attempts equals it exactly (shape and every cell), and a task counts
as solved when every one of its test outputs is solved. The ARC Prize also reports the per-task
fraction of solved test outputs (`score`), given here beside the strict count.

Attempts are stored in the ARC Prize submission format, one JSON object for a whole run::

    {"<task_id>": [{"attempt_1": [[...]], "attempt_2": [[...]]},   # first test input
                   {"attempt_1": [[...]], "attempt_2": []}]}        # second; [] = no attempt

An empty list marks a missing attempt: it never equals a grid (grids have at least one cell).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ..file_io import atomic_write_json, read_json_object
from .statistics import mcnemar_from_outcomes, wilson_interval


__all__ = [
    "ARC_ATTEMPT_KEYS",
    "ArcTaskScore",
    "attempts_to_submission",
    "compare_arc_scores",
    "read_arc_submission",
    "score_arc_submission",
    "score_arc_task",
    "summarize_arc_scores",
    "write_arc_submission",
]

ARC_ATTEMPT_KEYS = ("attempt_1", "attempt_2")
ArcGrid = Union[np.ndarray, Sequence[Sequence[int]]]


def _grid_or_none(grid: Any, where: str) -> Optional[np.ndarray]:
    """A grid as an int array, None for a missing attempt (None or []), ValueError naming `where` otherwise."""
    if grid is None:
        return None
    expected = "a 2-D grid of colours 0-9 (a list of equally long rows)"
    try:
        array = np.asarray(grid)
    except ValueError:  # ragged rows
        raise ValueError(f"{where} must be {expected}, got {grid!r:.80}") from None
    if array.size == 0:
        return None
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer) or array.min() < 0 or array.max() > 9:
        raise ValueError(f"{where} must be {expected}, got {grid!r:.80}")
    return array


def _same_grid(a: Optional[np.ndarray], b: np.ndarray) -> bool:
    return a is not None and a.shape == b.shape and bool(np.array_equal(a, b))


@dataclass
class ArcTaskScore:
    """
    The score of one task.

    Args:
        task_id (`str`): the task's id.
        test_correct (`list[bool]`): per test input, whether one of its attempts matched.
        cpu_seconds (`float`): CPU seconds the solver spent on the task (`nan` when not measured).
        attempts_made (`int`): attempts given over all test inputs (0 to `2 * num_tests`).
        extra (`dict`): what the solver reports beside (e.g. the program found).
    """

    task_id: str
    test_correct: list[bool]
    cpu_seconds: float = float("nan")
    attempts_made: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def solved(self) -> bool:
        """Every test output matched (the count of the issue's and the papers' pass@2)."""
        return bool(self.test_correct) and all(self.test_correct)

    @property
    def score(self) -> float:
        """The ARC Prize's per-task score: the fraction of test outputs matched."""
        return sum(self.test_correct) / len(self.test_correct) if self.test_correct else 0.0


def score_arc_task(
    task_id: str,
    attempts: Sequence[Mapping[str, Any]],
    solutions: Sequence[ArcGrid],
    cpu_seconds: float = float("nan"),
    extra: Optional[dict] = None,
) -> ArcTaskScore:
    """Scores one task's attempts against its test outputs.

    Args:
        task_id: the task's id (named in errors).
        attempts: one mapping per test input with keys `attempt_1` / `attempt_2` (either may be missing,
            None or `[]`); fewer entries than test inputs leave the remaining test inputs unanswered.
        solutions: the test outputs, in the order of the test inputs.
        cpu_seconds: the solver's CPU seconds for the task.
        extra: anything to keep beside the score (the program found, the votes, ...).
    """
    if len(attempts) > len(solutions):
        raise ValueError(f"task {task_id}: {len(attempts)} attempt entries for {len(solutions)} test inputs")
    test_correct, made = [], 0
    for index, solution in enumerate(solutions):
        target = np.asarray(solution)
        entry = attempts[index] if index < len(attempts) else {}
        if not isinstance(entry, Mapping):
            raise ValueError(f"task {task_id}, test input {index}: attempts must be an object, got {entry!r:.80}")
        unknown = set(entry) - set(ARC_ATTEMPT_KEYS)
        if unknown:
            raise ValueError(
                f"task {task_id}, test input {index}: unknown keys {sorted(unknown)}; expected {ARC_ATTEMPT_KEYS}"
            )
        grids = [
            _grid_or_none(entry.get(key), f"task {task_id}, test input {index}, {key}") for key in ARC_ATTEMPT_KEYS
        ]
        made += sum(g is not None for g in grids)
        test_correct.append(any(_same_grid(g, target) for g in grids))
    return ArcTaskScore(task_id, test_correct, float(cpu_seconds), made, dict(extra or {}))


def attempts_to_submission(attempts: Sequence[Sequence[Optional[ArcGrid]]]) -> list[dict[str, list]]:
    """Per test input, a list of up to two grids (best first) -> the submission entries of one task."""
    entries = []
    for index, grids in enumerate(attempts):
        if len(grids) > len(ARC_ATTEMPT_KEYS):
            raise ValueError(f"test input {index}: at most {len(ARC_ATTEMPT_KEYS)} attempts, got {len(grids)}")
        entry = {}
        for key, position in zip(ARC_ATTEMPT_KEYS, range(len(ARC_ATTEMPT_KEYS))):
            grid = grids[position] if position < len(grids) else None
            entry[key] = [] if grid is None else np.asarray(grid).astype(int).tolist()
        entries.append(entry)
    return entries


def write_arc_submission(path: Union[str, Path], submission: Mapping[str, Sequence[Mapping[str, Any]]]) -> Path:
    """Writes a submission (task id -> entries of `attempts_to_submission`) atomically as JSON."""
    for task_id, entries in submission.items():
        for index, entry in enumerate(entries):
            for key in ARC_ATTEMPT_KEYS:
                _grid_or_none(entry.get(key), f"task {task_id}, test input {index}, {key}")
    return atomic_write_json(path, {task_id: list(entries) for task_id, entries in submission.items()})


def read_arc_submission(path: Union[str, Path]) -> dict[str, list[dict[str, Any]]]:
    """Reads a submission file; `ValueError` naming the file and the task when its shape is wrong."""
    submission = read_json_object(path)
    for task_id, entries in submission.items():
        if not isinstance(entries, list):
            raise ValueError(
                f"{path}: task {task_id} must map to a list (one entry per test input), got {entries!r:.80}"
            )
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise ValueError(
                    f"{path}: task {task_id}, test input {index} must be an object with attempt_1/attempt_2"
                )
            for key in ARC_ATTEMPT_KEYS:
                _grid_or_none(entry.get(key), f"{path}: task {task_id}, test input {index}, {key}")
    return submission


def score_arc_submission(
    submission: Mapping[str, Sequence[Mapping[str, Any]]],
    solutions: Mapping[str, Sequence[ArcGrid]],
    cpu_seconds: Optional[Mapping[str, float]] = None,
) -> list[ArcTaskScore]:
    """Scores every task of `solutions` (a task missing from the submission counts as unsolved).

    A task in the submission but not in `solutions` is an error: it is scored against nothing, which
    would silently drop it from the denominator.
    """
    unknown = sorted(set(submission) - set(solutions))
    if unknown:
        raise ValueError(f"submission has tasks without solutions: {unknown[:5]}{' ...' if len(unknown) > 5 else ''}")
    cpu_seconds = cpu_seconds or {}
    return [
        score_arc_task(task_id, submission.get(task_id, []), outputs, cpu_seconds.get(task_id, float("nan")))
        for task_id, outputs in solutions.items()
    ]


def _quantile(values: list[float], q: float) -> float:
    return float(np.quantile(values, q)) if values else float("nan")


def summarize_arc_scores(scores: Sequence[ArcTaskScore]) -> dict[str, Any]:
    """The summary of a run: tasks solved with their Wilson 95% interval, the ARC Prize score, and the
    CPU seconds per task (mean, median, 90th percentile, max, total)."""
    total = len(scores)
    solved = sum(s.solved for s in scores)
    low, high = wilson_interval(solved, total)
    cpu = [s.cpu_seconds for s in scores if not math.isnan(s.cpu_seconds)]
    return {
        "num_tasks": total,
        "tasks_solved": solved,
        "pass_at_2": solved / total if total else float("nan"),
        "pass_at_2_interval": [low, high],
        "arc_prize_score": sum(s.score for s in scores) / total if total else float("nan"),
        "test_outputs": sum(len(s.test_correct) for s in scores),
        "test_outputs_solved": sum(sum(s.test_correct) for s in scores),
        "cpu_seconds_mean": float(np.mean(cpu)) if cpu else float("nan"),
        "cpu_seconds_median": _quantile(cpu, 0.5),
        "cpu_seconds_p90": _quantile(cpu, 0.9),
        "cpu_seconds_max": max(cpu) if cpu else float("nan"),
        "cpu_seconds_total": float(sum(cpu)),
        "solved_task_ids": sorted(s.task_id for s in scores if s.solved),
    }


def compare_arc_scores(ours: Sequence[ArcTaskScore], reference: Sequence[ArcTaskScore]) -> dict[str, Any]:
    """Paired comparison of two runs on the same tasks: exact McNemar test on per-task solved flags.

    Returns `only_ours` / `only_reference` (discordant task counts), `p_value` and the difference in
    pass@2. The tasks must be the same (by id) in both runs.
    """
    ours_by_id = {s.task_id: s.solved for s in ours}
    reference_by_id = {s.task_id: s.solved for s in reference}
    if set(ours_by_id) != set(reference_by_id):
        raise ValueError("compare_arc_scores needs the same tasks in both runs")
    ids = sorted(ours_by_id)
    b, c, p = mcnemar_from_outcomes([ours_by_id[i] for i in ids], [reference_by_id[i] for i in ids])
    n = len(ids)
    return {
        "only_ours": b,
        "only_reference": c,
        "p_value": p,
        "difference": (sum(ours_by_id.values()) - sum(reference_by_id.values())) / n if n else float("nan"),
    }
