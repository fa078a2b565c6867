"""Easy-to-hard curricula over a dataset, as `torch.utils.data.Sampler`s.

The rows are split into `num_buckets` buckets of rising difficulty (quantiles of a difficulty column:
a Sudoku's `rating` or search `difficulty`, a maze's `path_length`, an arithmetic problem's `num_ops`;
`DifficultyBuckets`), and the samplers draw only from the buckets unlocked so far, uniformly over their
rows (so the easier ones stay in the mix):

- `"rating"`: the buckets unlock on a fixed schedule, the last one at `warmup_fraction` of
  training, after which sampling is uniform over every row;
- `"pass_rate"`: the next bucket unlocks when the model solves at least `pass_threshold` of the newest
  unlocked one, so the pace follows the model's own progress. `CurriculumSampler` is told the rate of a
  probe (`report_pass_rate`, called by the training loop's probe; see `examples/trm_common.py`);
  `CurriculumRepeatSampler` is told the outcome of every rollout (`report_rollouts`, called by the GRPO
  trainer) and keeps a window of the newest bucket's last outcomes.

`CurriculumSampler` yields single rows and is told the progress (`set_progress(step / max_steps)`).
`CurriculumRepeatSampler` yields GRPO's index stream (TRL's `RepeatSampler`: each prompt `num_generations`
times in a row, each generation batch repeated for its reuse) and derives the progress from its own
position, so its stream is a pure function of its arguments, the seed, the epoch and (`"pass_rate"`) the
chunks at which buckets unlocked: every process draws the same, and a resumed run that skips the batches
it has trained on continues the schedule exactly (`state_dict` / `load_state_dict` carry the unlocks).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from .grid import check_int


__all__ = ["CURRICULUM_SCHEDULES", "CurriculumRepeatSampler", "CurriculumSampler", "DifficultyBuckets"]

CURRICULUM_SCHEDULES = ("rating", "pass_rate")


def check_fraction(value: float, name: str) -> float:
    """`value` if it is a fraction in (0, 1] (a warm-up fraction, a pass rate), else a `ValueError` naming `name`."""
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
        self._edges = np.unique(np.quantile(values, np.linspace(0, 1, num_buckets + 1)[1:-1]))
        raw = np.searchsorted(self._edges, values, side="right")
        nonempty = np.bincount(raw, minlength=len(self._edges) + 1) > 0
        self.buckets = [np.flatnonzero(raw == b) for b in np.flatnonzero(nonempty)]
        # raw quantile slot -> index among the non-empty buckets (an empty slot maps to the nearest bucket below it,
        # or to the first)
        self._compact = np.maximum(np.cumsum(nonempty) - 1, 0)

    def bucket_of(self, difficulty: Sequence[float]) -> np.ndarray:
        """The bucket of each difficulty value (values of the rows given at construction land in their row's bucket)."""
        raw = np.searchsorted(self._edges, np.asarray(difficulty, dtype=np.float64), side="right")
        return self._compact[raw]

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
        self.warmup_fraction = check_fraction(warmup_fraction, "warmup_fraction")
        pass_threshold = check_fraction(pass_threshold, "pass_threshold")
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
    counted, `set_epoch`) draws from the buckets unlocked for it, and takes the next rows of the epoch's permutation
    (`RepeatSampler`'s `torch.randperm` under `seed`) that are unlocked and not yet drawn in the current pass over
    the unlocked rows; a new pass starts when fewer than `batch_size` are left. With every bucket unlocked this is
    `RepeatSampler`'s stream, index for index.

    Which buckets chunk `k` may draw from:

    - `"rating"`: the fixed schedule at `k / schedule_length` of training (all unlocked at `warmup_fraction`);
    - `"pass_rate"`: one bucket at the start, one more at each chunk recorded in `unlock_chunks`. The trainer reports
      every rollout's difficulty and outcome (`report_rollouts`); once the last `pass_window` outcomes on the newest
      bucket's prompts pass at a rate of at least `pass_threshold`, the next bucket unlocks from the first chunk not
      yet drawn (`next_chunk`), so no chunk already handed out changes.

    The stream is a pure function of the arguments, the epoch and `unlock_chunks` (no other state carried between
    chunks or runs), so every process draws the same chunks (they all see the same gathered rollouts at the same
    point of the stream) and a resumed run, which replays the epoch's stream and skips the batches it has trained
    on, continues where it stopped once `load_state_dict` has restored what `state_dict` saved.

    Args:
        difficulty: one difficulty value per row (higher is harder).
        mini_repeat_count: times each row is repeated in a row (GRPO's `num_generations`).
        batch_size: distinct rows per chunk (GRPO's `generation_batch_size // num_generations`).
        repeat_count: times each chunk is repeated (GRPO's `num_iterations * steps_per_generation`).
        schedule_length: chunks over the whole run (`"rating"`: the schedule's 100%; later chunks draw from every
            bucket).
        num_buckets: difficulty buckets (quantiles, see `DifficultyBuckets`).
        warmup_fraction: `"rating"`: the fraction of training at which every bucket is unlocked. In (0, 1].
        shuffle: draw in a seeded random order (else in row order within the unlocked rows), as `RepeatSampler`.
        seed: seed of the permutations.
        schedule: `"rating"` or `"pass_rate"` (see above).
        pass_threshold: `"pass_rate"`: the pass rate on the newest bucket that unlocks the next one. In (0, 1].
        pass_window: `"pass_rate"`: the newest bucket's last outcomes the rate is taken over (none is decided
            before this many). At least 1.

    Under either schedule, fewer than `batch_size` unlocked rows unlock the next buckets at once, so that a chunk
    never repeats a row.
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
        schedule: str = "rating",
        pass_threshold: float = 0.5,
        pass_window: int = 32,
    ):
        if schedule not in CURRICULUM_SCHEDULES:
            raise ValueError(f"schedule must be one of {CURRICULUM_SCHEDULES}, got {schedule!r}")
        self.difficulty_buckets = DifficultyBuckets(difficulty, num_buckets)
        self.mini_repeat_count = check_int("mini_repeat_count", mini_repeat_count, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.repeat_count = check_int("repeat_count", repeat_count, minimum=1)
        self.schedule_length = check_int("schedule_length", schedule_length, minimum=1)
        self.warmup_fraction = check_fraction(warmup_fraction, "warmup_fraction")
        self.schedule = schedule
        self.pass_threshold = check_fraction(pass_threshold, "pass_threshold")
        self.pass_window = check_int("pass_window", pass_window, minimum=1)
        self.num_samples = len(difficulty)
        self.shuffle, self.seed = shuffle, seed
        self.chunks_per_epoch = self.num_samples // self.batch_size
        sizes = np.cumsum([len(rows) for rows in self.difficulty_buckets.buckets])
        self.min_unlocked = min(int(np.searchsorted(sizes, self.batch_size)) + 1, len(sizes))
        self.epoch = 0
        self.next_chunk = 0  # the run's first chunk not yet drawn
        self.unlock_chunks: list[int] = []  # "pass_rate": the chunk from which each further bucket is unlocked
        self._outcomes = deque(maxlen=self.pass_window)  # "pass_rate": the newest bucket's last outcomes

    def set_epoch(self, epoch: int) -> None:
        """The epoch of the next iteration (the `Trainer` calls it through the data loader)."""
        self.epoch = epoch

    def unlocked_at(self, chunk: int) -> int:
        """Buckets unlocked for the run's chunk `chunk` (counted over epochs)."""
        if self.schedule == "rating":
            stage = self.difficulty_buckets.rating_stage(chunk / self.schedule_length, self.warmup_fraction)
        else:
            stage = self.min_unlocked + sum(1 for start in self.unlock_chunks if start <= chunk)
        return min(max(stage, self.min_unlocked), len(self.difficulty_buckets))

    def report_rollouts(self, difficulty: Sequence[float], passed: Sequence[bool]) -> bool:
        """`"pass_rate"`: the difficulty and outcome (passed or not) of each rollout of a generation batch, the same
        on every process. Returns whether the next bucket was unlocked (from chunk `next_chunk` on)."""
        if len(difficulty) != len(passed):
            raise ValueError(
                f"difficulty and passed must have one value per rollout, got {len(difficulty)} and {len(passed)}"
            )
        if self.schedule != "pass_rate":
            return False
        newest = self.unlocked_at(self.next_chunk) - 1
        if newest == len(self.difficulty_buckets) - 1:  # every bucket is open: nothing left to decide
            return False
        on_newest = self.difficulty_buckets.bucket_of(difficulty) == newest
        self._outcomes.extend(bool(p) for p, on in zip(passed, on_newest) if on)
        if len(self._outcomes) < self.pass_window or self.pass_rate < self.pass_threshold:
            return False
        self.unlock_chunks.append(self.next_chunk)
        self._outcomes.clear()
        return True

    @property
    def pass_rate(self) -> float | None:
        """`"pass_rate"`: the pass rate over the newest bucket's last outcomes (None before any)."""
        return sum(self._outcomes) / len(self._outcomes) if self._outcomes else None

    def state_dict(self) -> dict:
        """What a resumed run needs beyond the arguments: the unlocks and the outcomes counted since the last one."""
        return {"schedule": self.schedule, "unlock_chunks": list(self.unlock_chunks), "outcomes": list(self._outcomes)}

    def load_state_dict(self, state: dict) -> None:
        if state.get("schedule") != self.schedule:
            raise ValueError(
                f"the saved curriculum state is for schedule={state.get('schedule')!r}, this sampler's is "
                f"{self.schedule!r}"
            )
        self.unlock_chunks = [int(c) for c in state["unlock_chunks"]]
        self._outcomes = deque((bool(o) for o in state["outcomes"]), maxlen=self.pass_window)

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
            chunk_of_run = self.epoch * self.chunks_per_epoch + c
            allowed[self.difficulty_buckets.rows(self.unlocked_at(chunk_of_run))] = True
            chunk = permutation[allowed[permutation] & ~drawn[permutation]][: self.batch_size]
            if len(chunk) < self.batch_size:  # the pass is over: the rest of the chunk opens the next one
                drawn[:] = False
                drawn[chunk] = True
                more = permutation[allowed[permutation] & ~drawn[permutation]][: self.batch_size - len(chunk)]
                chunk = np.concatenate([chunk, more])
            drawn[chunk] = True
            self.next_chunk = chunk_of_run + 1
            yield chunk

    def __iter__(self) -> Iterator[int]:
        for chunk in self.chunks():
            for _ in range(self.repeat_count):
                for index in chunk.tolist():
                    for _ in range(self.mini_repeat_count):
                        yield index

    def __len__(self) -> int:
        return self.chunks_per_epoch * self.batch_size * self.mini_repeat_count * self.repeat_count
