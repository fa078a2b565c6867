"""Easy-to-hard curricula over a dataset, as `torch.utils.data.Sampler`s.

The rows are split into `num_buckets` buckets of rising difficulty (quantiles of a difficulty column:
a Sudoku's `rating` or search `difficulty`, a maze's `path_length`, an arithmetic problem's `num_ops`;
`DifficultyBuckets`), and the samplers draw only from the buckets unlocked so far, uniformly over their
rows (so the easier ones stay in the mix):

- `"rating"`: the buckets unlock on a fixed schedule, the last one at `warmup_fraction` of
  training, after which sampling is uniform over every row;
- `"pass_rate"` (`CurriculumSampler` only): the next bucket unlocks when the model solves at least
  `pass_threshold` of a probe of the newest unlocked one (`report_pass_rate`, called by the training
  loop's probe; see `examples/trm_common.py`), so the pace follows the model's own progress.

`CurriculumSampler` yields single rows and is told the progress (`set_progress(step / max_steps)`).
`CurriculumRepeatSampler` yields GRPO's index stream (TRL's `RepeatSampler`: each prompt `num_generations`
times in a row, each generation batch repeated for its reuse) and derives the progress from its own
position, so its stream is a pure function of its arguments, the seed and the epoch: every process
draws the same, and a resumed run that skips the batches it has trained on continues the schedule exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from .grid import check_int


__all__ = ["CURRICULUM_SCHEDULES", "CurriculumRepeatSampler", "CurriculumSampler", "DifficultyBuckets"]

CURRICULUM_SCHEDULES = ("rating", "pass_rate")


def check_warmup_fraction(value: float, name: str = "warmup_fraction") -> float:
    """`value` if it is a fraction of training in (0, 1], else a `ValueError` naming `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return float(value)


class DifficultyBuckets:
    """Rows split into buckets of rising difficulty, and the fixed `"rating"` schedule that unlocks them.

    Args:
        difficulty: one difficulty value per row (higher is harder).
        num_buckets: difficulty buckets (quantiles; rows with equal difficulty share a bucket, so there
            may be fewer, never an empty one).
    """

    def __init__(self, difficulty: Sequence[float], num_buckets: int = 4):
        num_buckets = check_int("num_buckets", num_buckets, minimum=1)
        values = np.asarray(difficulty, dtype=np.float64)
        if values.ndim != 1 or len(values) == 0 or not np.isfinite(values).all():
            raise ValueError("difficulty must be a non-empty sequence of finite numbers, one per row")
        edges = np.unique(np.quantile(values, np.linspace(0, 1, num_buckets + 1)[1:-1]))
        bucket_of = np.searchsorted(edges, values, side="right")
        self.buckets = [np.flatnonzero(bucket_of == b) for b in range(len(edges) + 1)]
        self.buckets = [rows for rows in self.buckets if len(rows)]

    def __len__(self) -> int:
        return len(self.buckets)

    def rating_stage(self, fraction: float, warmup_fraction: float) -> int:
        """Buckets unlocked at `fraction` of training: one at the start, all from `warmup_fraction` on."""
        stage = 1 + int(min(max(fraction, 0.0) / warmup_fraction, 1.0) * (len(self.buckets) - 1))
        return min(stage, len(self.buckets))

    def rows(self, unlocked: int) -> np.ndarray:
        """The rows of the `unlocked` easiest buckets."""
        return np.concatenate(self.buckets[:unlocked])


class CurriculumSampler(torch.utils.data.Sampler):
    """Draws row indices, with replacement, from the difficulty buckets unlocked so far (see the module docstring).

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
        self.warmup_fraction = check_warmup_fraction(warmup_fraction)
        if not 0.0 < pass_threshold <= 1.0:
            raise ValueError(f"pass_threshold must be in (0, 1], got {pass_threshold!r}")
        self.difficulty_buckets = DifficultyBuckets(difficulty, num_buckets)
        self.buckets = self.difficulty_buckets.buckets
        self.schedule = schedule
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
            self.unlocked = max(self.unlocked, self.difficulty_buckets.rating_stage(fraction, self.warmup_fraction))

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


class CurriculumRepeatSampler(torch.utils.data.Sampler):
    """TRL's `RepeatSampler` for GRPO, drawing its prompts from the difficulty buckets unlocked so far.

    The stream has `RepeatSampler`'s shape: an epoch is `len(difficulty) // batch_size` chunks of `batch_size`
    distinct rows; each row is yielded `mini_repeat_count` times in a row (a GRPO group) and each chunk
    `repeat_count` times (its reuse over `steps_per_generation` and `num_iterations`). Chunk `k` of the run (epochs
    counted, `set_epoch`) unlocks the buckets of the `"rating"` schedule at `k / schedule_length` of training, and
    takes the next rows of the epoch's permutation (`RepeatSampler`'s `torch.randperm` under `seed`) that are unlocked
    and not yet drawn in the current pass over the unlocked rows; a new pass starts when fewer than `batch_size` are
    left. With every bucket unlocked this is `RepeatSampler`'s stream, index for index.

    The stream is a pure function of the arguments and the epoch (no state carried between chunks or runs), so every
    process draws the same chunks and a resumed run, which replays the epoch's stream and skips the batches it has
    trained on, continues where it stopped.

    Args:
        difficulty: one difficulty value per row (higher is harder).
        mini_repeat_count: times each row is repeated in a row (GRPO's `num_generations`).
        batch_size: distinct rows per chunk (GRPO's `generation_batch_size // num_generations`).
        repeat_count: times each chunk is repeated (GRPO's `num_iterations * steps_per_generation`).
        schedule_length: chunks over the whole run (the schedule's 100%; later chunks draw from every bucket).
        num_buckets: difficulty buckets (quantiles, see `DifficultyBuckets`).
        warmup_fraction: the fraction of training at which every bucket is unlocked. In (0, 1]. Fewer than
            `batch_size` unlocked rows unlock the next buckets early, so that a chunk never repeats a row.
        shuffle: draw in a seeded random order (else in row order within the unlocked rows), as `RepeatSampler`.
        seed: seed of the permutations.
    """

    def __init__(
        self,
        difficulty: Sequence[float],
        mini_repeat_count: int,
        batch_size: int,
        repeat_count: int,
        schedule_length: int,
        num_buckets: int = 4,
        warmup_fraction: float = 0.5,
        shuffle: bool = True,
        seed: int = 0,
    ):
        self.difficulty_buckets = DifficultyBuckets(difficulty, num_buckets)
        self.mini_repeat_count = check_int("mini_repeat_count", mini_repeat_count, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.repeat_count = check_int("repeat_count", repeat_count, minimum=1)
        self.schedule_length = check_int("schedule_length", schedule_length, minimum=1)
        self.warmup_fraction = check_warmup_fraction(warmup_fraction)
        self.num_samples = len(difficulty)
        self.shuffle, self.seed = shuffle, seed
        self.chunks_per_epoch = self.num_samples // self.batch_size
        sizes = np.cumsum([len(rows) for rows in self.difficulty_buckets.buckets])
        self.min_unlocked = min(int(np.searchsorted(sizes, self.batch_size)) + 1, len(sizes))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch of the next iteration (the `Trainer` calls it through the data loader)."""
        self.epoch = epoch

    def unlocked_at(self, chunk: int) -> int:
        """Buckets unlocked for the run's chunk `chunk` (counted over epochs)."""
        stage = self.difficulty_buckets.rating_stage(chunk / self.schedule_length, self.warmup_fraction)
        return max(stage, self.min_unlocked)

    def _permutation(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.num_samples)
        # RepeatSampler's generator draws one permutation per epoch from `seed`; the earlier ones are redrawn so that
        # epoch e is the same whether this sampler ran epochs 0..e-1 or starts at e (a resumed run)
        generator = torch.Generator().manual_seed(self.seed)
        for _ in range(self.epoch + 1):
            permutation = torch.randperm(self.num_samples, generator=generator)
        return permutation.numpy()

    def chunks(self) -> Iterator[np.ndarray]:
        """The distinct rows of each chunk of the current epoch."""
        permutation = self._permutation()
        drawn = np.zeros(self.num_samples, dtype=bool)  # drawn in the current pass over the unlocked rows
        allowed = np.zeros(self.num_samples, dtype=bool)
        for c in range(self.chunks_per_epoch):
            allowed[self.difficulty_buckets.rows(self.unlocked_at(self.epoch * self.chunks_per_epoch + c))] = True
            chunk = permutation[allowed[permutation] & ~drawn[permutation]][: self.batch_size]
            if len(chunk) < self.batch_size:  # the pass is over: the rest of the chunk opens the next one
                drawn[:] = False
                drawn[chunk] = True
                more = permutation[allowed[permutation] & ~drawn[permutation]][: self.batch_size - len(chunk)]
                chunk = np.concatenate([chunk, more])
            drawn[chunk] = True
            yield chunk

    def __iter__(self) -> Iterator[int]:
        for chunk in self.chunks():
            for _ in range(self.repeat_count):
                for index in chunk.tolist():
                    for _ in range(self.mini_repeat_count):
                        yield index

    def __len__(self) -> int:
        return self.chunks_per_epoch * self.batch_size * self.mini_repeat_count * self.repeat_count
