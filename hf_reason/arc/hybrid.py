"""The hybrid ARC solver: the DSL search first, the TRM (augmentation voting, test-time training) for
what it leaves open, attempts merged by confidence.

A program that reproduces every demonstration pair is usually right, so its predictions come with a
high confidence (`dsl_confidences`, by rank); a TRM candidate's confidence is its share of the
augmentation votes. Per test input the candidates of both are pooled (the same grid from both keeps
the higher confidence plus `agreement_bonus`) and the two most confident grids are the attempts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..data.arc import ArcTask
from .search import DSLSearchConfig, DSLSearchResult, search_programs
from .ttt import ArcTTTConfig, solve_with_ttt
from .voting import VoteCandidate


__all__ = ["HybridAttempt", "HybridConfig", "HybridResult", "merge_attempts", "solve_hybrid"]


@dataclass
class HybridConfig:
    """
    Args:
        dsl_confidences (`tuple[float, float]`, defaults to `(1.0, 0.5)`): confidence of the DSL's first
            and second distinct prediction; a TRM candidate with a larger vote share than the second
            takes its place.
        agreement_bonus (`float`, defaults to 0.25): added when the DSL and the TRM give the same grid.
        run_trm_when (`str`, defaults to `"fewer_than_two"`): `"fewer_than_two"` runs the TRM on tasks
            where the DSL gave fewer than two attempts, `"unsolved"` only where it gave none, `"always"`
            on every task.
    """

    dsl_confidences: tuple = (1.0, 0.5)
    agreement_bonus: float = 0.25
    run_trm_when: str = "fewer_than_two"

    def __post_init__(self):
        if self.run_trm_when not in ("fewer_than_two", "unsolved", "always"):
            raise ValueError(
                f"run_trm_when must be 'fewer_than_two', 'unsolved' or 'always', got {self.run_trm_when!r}"
            )
        if len(self.dsl_confidences) != 2:
            raise ValueError(f"dsl_confidences must hold two values, got {self.dsl_confidences!r}")


@dataclass
class HybridAttempt:
    """One attempt: the grid, where it came from (`"dsl"`, `"trm"` or `"dsl+trm"`) and its confidence."""

    grid: np.ndarray
    source: str
    confidence: float


@dataclass
class HybridResult:
    """
    Args:
        task_id (`str`): the task.
        attempts (`list[list[HybridAttempt]]`): per test input, up to two attempts, best first.
        dsl (`DSLSearchResult`, *optional*): the DSL search's result.
        trm_votes (`list[list[VoteCandidate]]`, *optional*): the TRM's candidates (None when not run).
        cpu_seconds (`float`): CPU seconds of the DSL search plus the TRM's.
    """

    task_id: str
    attempts: list
    dsl: Optional[DSLSearchResult] = None
    trm_votes: Optional[list] = None
    cpu_seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def grids(self) -> list[list[np.ndarray]]:
        return [[a.grid for a in attempts] for attempts in self.attempts]


def _key(grid: np.ndarray) -> tuple:
    grid = np.asarray(grid)
    return grid.shape, grid.astype(np.int64).tobytes()


def merge_attempts(
    dsl_attempts: Sequence[Sequence[np.ndarray]],
    trm_votes: Optional[Sequence[Sequence[VoteCandidate]]],
    num_tests: int,
    config: Optional[HybridConfig] = None,
) -> list[list[HybridAttempt]]:
    """Pools the DSL's attempts and the TRM's candidates per test input; keeps the two most confident.

    Args:
        dsl_attempts: per test input, the DSL's predictions, best first (may be empty).
        trm_votes: per test input, the TRM's candidates (None: no TRM).
        num_tests: the task's number of test inputs.
        config: the confidences (`HybridConfig()` by default).
    """
    config = config or HybridConfig()
    merged = []
    for index in range(num_tests):
        pool: dict[tuple, HybridAttempt] = {}
        dsl_here = dsl_attempts[index] if index < len(dsl_attempts) else []
        for rank, grid in enumerate(dsl_here[:2]):
            pool[_key(grid)] = HybridAttempt(np.asarray(grid), "dsl", float(config.dsl_confidences[rank]))
        for candidate in trm_votes[index] if trm_votes is not None and index < len(trm_votes) else []:
            key = _key(candidate.grid)
            if key in pool:
                known = pool[key]
                pool[key] = HybridAttempt(
                    known.grid, "dsl+trm", max(known.confidence, candidate.share) + config.agreement_bonus
                )
            else:
                pool[key] = HybridAttempt(candidate.grid, "trm", candidate.share)
        ranked = sorted(pool.values(), key=lambda a: -a.confidence)  # stable: DSL before TRM on ties
        merged.append(ranked[:2])
    return merged


def solve_hybrid(
    task: ArcTask,
    model=None,
    dsl_config: Optional[DSLSearchConfig] = None,
    ttt_config: Optional[ArcTTTConfig] = None,
    config: Optional[HybridConfig] = None,
    dsl_result: Optional[DSLSearchResult] = None,
    known_versions: Optional[dict[str, int]] = None,
) -> HybridResult:
    """Solves one task: the DSL search (or its result, when already run in parallel), then the TRM with
    test-time training and voting where `config.run_trm_when` says, then the merge.

    Args:
        task: the task.
        model: a trained ARC `TRMForPuzzleSolving` (None: the DSL alone).
        dsl_config: the search's settings (ignored when `dsl_result` is given).
        ttt_config: the TRM's test-time training settings.
        config: the merge settings.
        dsl_result: a DSL result computed beforehand for this task.
        known_versions: the task's versions the model was trained on (see `test_time_train`).
    """
    config = config or HybridConfig()
    if dsl_result is None:
        dsl_result = search_programs(task.train, task.test_inputs, dsl_config, task_id=task.task_id)
    num_dsl_attempts = min((len(a) for a in dsl_result.attempts), default=0)
    run_trm = model is not None and (
        config.run_trm_when == "always"
        or (config.run_trm_when == "fewer_than_two" and num_dsl_attempts < 2)
        or (config.run_trm_when == "unsolved" and num_dsl_attempts == 0)
    )
    trm_votes, trm_seconds, extra = None, 0.0, {}
    if run_trm:
        start = time.process_time()
        trm_votes, trained = solve_with_ttt(model, task, ttt_config, known_versions)
        trm_seconds = time.process_time() - start
        extra = {"ttt_steps": trained.steps, "ttt_final_loss": trained.losses[-1] if trained.losses else None}
    attempts = merge_attempts(dsl_result.attempts, trm_votes, len(task.test_inputs), config)
    return HybridResult(task.task_id, attempts, dsl_result, trm_votes, dsl_result.cpu_seconds + trm_seconds, extra)
