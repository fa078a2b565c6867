"""Easy-to-hard curricula over a puzzle dataset, as a `torch.utils.data.Sampler`.

The rows are split into `num_buckets` buckets of rising difficulty (quantiles of a difficulty column:
a Sudoku's `rating` or search `difficulty`, a maze's `path_length`), and the sampler draws only from
the buckets unlocked so far, uniformly over their rows (so the easier ones stay in the mix):

- `"rating"`: the buckets unlock on a fixed schedule, the last one at `warmup_fraction` of
  training (`set_progress(step / max_steps)`), after which sampling is uniform over every row;
- `"pass_rate"`: the next bucket unlocks when the model solves at least `pass_threshold` of a probe
  of the newest unlocked one (`report_pass_rate`, called by the training loop's probe; see
  `examples/trm_common.py`), so the pace follows the model's own progress.

The sampler is infinite in effect (`num_samples` draws, e.g. `max_steps * batch_size`), reads the
current stage at every draw, and is seeded: two runs with the same seed and the same progress
reports draw the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from .grid import check_int


__all__ = ["CURRICULUM_SCHEDULES", "CurriculumSampler"]

CURRICULUM_SCHEDULES = ("rating", "pass_rate")


class CurriculumSampler(torch.utils.data.Sampler):
    """Draws row indices from the difficulty buckets unlocked so far (see the module docstring).

    Args:
        difficulty: one difficulty value per row (higher is harder).
        num_samples: indices the sampler yields (its length).
        schedule: `"rating"` (fixed schedule) or `"pass_rate"` (the model's pass rate).
        num_buckets: difficulty buckets (quantiles; rows with equal difficulty share a bucket).
        warmup_fraction: `"rating"`: the fraction of training at which every bucket is unlocked. In (0, 1].
        pass_threshold: `"pass_rate"`: the probe's exact rate that unlocks the next bucket. In (0, 1].
        seed: seed of the draws.
    """

    def __init__(
        self,
        difficulty: Sequence[float],
        num_samples: int,
        schedule: str = "rating",
        num_buckets: int = 4,
        warmup_fraction: float = 0.5,
        pass_threshold: float = 0.5,
        seed: int = 0,
    ):
        if schedule not in CURRICULUM_SCHEDULES:
            raise ValueError(f"schedule must be one of {CURRICULUM_SCHEDULES}, got {schedule!r}")
        self.num_samples = check_int("num_samples", num_samples, minimum=1)
        num_buckets = check_int("num_buckets", num_buckets, minimum=1)
        if not 0.0 < warmup_fraction <= 1.0:
            raise ValueError(f"warmup_fraction must be in (0, 1], got {warmup_fraction!r}")
        if not 0.0 < pass_threshold <= 1.0:
            raise ValueError(f"pass_threshold must be in (0, 1], got {pass_threshold!r}")
        values = np.asarray(difficulty, dtype=np.float64)
        if values.ndim != 1 or len(values) == 0 or not np.isfinite(values).all():
            raise ValueError("difficulty must be a non-empty sequence of finite numbers, one per row")
        edges = np.unique(np.quantile(values, np.linspace(0, 1, num_buckets + 1)[1:-1]))
        bucket_of = np.searchsorted(edges, values, side="right")
        self.buckets = [np.flatnonzero(bucket_of == b) for b in range(len(edges) + 1)]
        self.buckets = [rows for rows in self.buckets if len(rows)]
        self.schedule = schedule
        self.warmup_fraction = warmup_fraction
        self.pass_threshold = pass_threshold
        self.unlocked = 1
        self._generator = np.random.default_rng(seed)

    @property
    def num_buckets(self) -> int:
        return len(self.buckets)

    @property
    def frontier(self) -> np.ndarray:
        """The rows of the newest unlocked bucket (what a pass-rate probe should test)."""
        return self.buckets[self.unlocked - 1]

    def set_progress(self, fraction: float) -> None:
        """`"rating"`: the fraction of training done, in [0, 1]; unlocks buckets on the schedule."""
        if self.schedule == "rating":
            stage = 1 + int(min(max(fraction, 0.0) / self.warmup_fraction, 1.0) * (self.num_buckets - 1))
            self.unlocked = max(self.unlocked, min(stage, self.num_buckets))

    def report_pass_rate(self, rate: float) -> bool:
        """`"pass_rate"`: the probe's exact rate on `frontier`; returns whether a bucket was unlocked."""
        if self.schedule != "pass_rate" or self.unlocked >= self.num_buckets or rate < self.pass_threshold:
            return False
        self.unlocked += 1
        return True

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        for _ in range(self.num_samples):
            # Uniform over the unlocked rows: a bucket is drawn in proportion to its size.
            sizes = np.array([len(self.buckets[b]) for b in range(self.unlocked)], dtype=np.float64)
            b = int(self._generator.choice(self.unlocked, p=sizes / sizes.sum()))
            yield int(self.buckets[b][self._generator.integers(len(self.buckets[b]))])
