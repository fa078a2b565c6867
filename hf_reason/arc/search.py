"""Program search over the DSL: breadth-first typed enumeration with observational-equivalence pruning.

Programs are built bottom-up by size (number of primitives). A new program is kept only when its
values on the training inputs differ from those of every smaller (or earlier) program of its type:
two programs that agree on every training input are interchangeable for verification, so only the
first (the shortest) is extended. Types prune what may be applied (a primitive takes values of its
argument types only, and at the last size only primitives that end in a grid, or reach one in the
steps left, are tried); shapes prune the last size (a grid whose shape differs from a training
output's is not evaluated further). A grid that equals every training output is a solution; a grid
of the right shapes whose colours map one-to-one onto the outputs' becomes one through a fitted
colour map (`map_colours`, one more primitive). A solution whose test predictions equal an earlier
one's is dropped (equivalent on every input of the task).

Solutions are ranked shortest first, then by fewer task-specific constants (more general), then in
the order found; the first two distinct predictions are the two attempts. The search stops at its
CPU-time budget (`time.process_time` of the process running it), at `max_size`, or one size after the
first solution when two distinct attempts are in hand.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .dsl import INPUT, PRIMITIVES, Program
from .objects import ObjectSet
from .registry import COLOUR, GRID, INT, OBJECT, OBJECTS


__all__ = ["DSLCandidate", "DSLSearchConfig", "DSLSearchResult", "SearchBudgetExceeded", "search_programs"]

MAX_SIDE = 30
# Steps needed at least to turn a value of each type into a grid (for the last-size type pruning).
_STEPS_TO_GRID = {GRID: 0, OBJECT: 1, OBJECTS: 1, INT: 1, COLOUR: 1}


class SearchBudgetExceeded(BaseException):
    """Raised (by a CPU timer or the search's own clock check) when a task's budget is spent; a
    BaseException so that a primitive's `except Exception` never swallows it."""


@dataclass
class DSLSearchConfig:
    """
    Configuration of :func:`search_programs`.

    Args:
        max_size (`int`, defaults to 4): the largest program size enumerated (primitives in it; a fitted
            colour map may add one).
        cpu_seconds (`float`, defaults to 60): CPU-time budget per task (`time.process_time`).
        fit_colour_map (`bool`, defaults to True): accept grids whose colours map one-to-one onto the
            outputs' through a fitted `map_colours`.
        sizes_after_solution (`int`, defaults to 1): sizes still enumerated after the first solution
            when fewer than two distinct attempts are found.
        primitives (`list[str]`, *optional*): restrict the search to these primitives (all by default).
        max_values_per_type (`int`, defaults to 200000): cap on distinct values kept per type (memory).
    """

    max_size: int = 4
    cpu_seconds: float = 60.0
    fit_colour_map: bool = True
    sizes_after_solution: int = 1
    primitives: Optional[Sequence[str]] = None
    max_values_per_type: int = 200_000

    def __post_init__(self):
        if not isinstance(self.max_size, int) or self.max_size < 1:
            raise ValueError(f"max_size must be an integer >= 1, got {self.max_size!r}")
        if not self.cpu_seconds > 0:
            raise ValueError(f"cpu_seconds must be > 0, got {self.cpu_seconds!r}")
        if self.sizes_after_solution < 0:
            raise ValueError(f"sizes_after_solution must be >= 0, got {self.sizes_after_solution!r}")
        unknown = sorted(set(self.primitives or ()) - set(PRIMITIVES))
        if unknown:
            raise ValueError(f"primitives: unknown names {unknown}; see hf_reason.arc.dsl.list_primitives()")


@dataclass
class DSLCandidate:
    """A program that reproduces every training output, with its predictions for the test inputs."""

    program: Program
    predictions: tuple
    order: int = 0

    @property
    def rank_key(self) -> tuple:
        return (self.program.size, self.program.num_constants, self.order)


@dataclass
class DSLSearchResult:
    """
    What the search found for one task.

    Args:
        task_id (`str`): the task.
        solutions (`list[DSLCandidate]`): programs verified on all training pairs, best first.
        attempts (`list[list[np.ndarray]]`): per test input, up to two predicted grids (best first).
        cpu_seconds (`float`): CPU seconds spent.
        candidates_evaluated (`int`): primitive applications tried (after type pruning).
        distinct_values (`int`): programs kept after observational-equivalence pruning.
        completed_size (`int`): the largest size enumerated completely.
        timed_out (`bool`): the budget ran out before the search ended.
    """

    task_id: str
    solutions: list = field(default_factory=list)
    attempts: list = field(default_factory=list)
    cpu_seconds: float = 0.0
    candidates_evaluated: int = 0
    distinct_values: int = 0
    completed_size: int = 0
    timed_out: bool = False

    @property
    def programs(self) -> list[str]:
        return [str(c.program) for c in self.solutions]


def _as_grid(value: Any) -> Optional[np.ndarray]:
    if not isinstance(value, np.ndarray) or value.ndim != 2:
        return None
    h, w = value.shape
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE) or value.min() < 0 or value.max() > 9:
        return None
    return np.ascontiguousarray(value, dtype=np.int8)


def _normalise(type_name: str, value: Any) -> Any:
    """The value in canonical form (grids as contiguous int8), or None when it is not a valid value."""
    if value is None:
        return None
    if type_name == GRID:
        return _as_grid(value)
    if type_name == OBJECTS:
        return value if isinstance(value, ObjectSet) and len(value) else None
    if type_name == INT:
        return int(value)
    return value


def _key(type_name: str, value: Any) -> Any:
    if type_name == GRID:
        return (value.shape, value.tobytes())
    if type_name in (OBJECTS, OBJECT):
        return value.key
    return value


class _Task:
    """The task's grids and the per-task parameter domains."""

    def __init__(self, train: Sequence, test_inputs: Sequence):
        self.inputs = [np.ascontiguousarray(x, dtype=np.int8) for x, _ in train] + [
            np.ascontiguousarray(x, dtype=np.int8) for x in test_inputs
        ]
        self.targets = [np.ascontiguousarray(y, dtype=np.int8) for _, y in train]
        self.num_train = len(train)
        input_colours = sorted({int(c) for x, _ in train for c in np.unique(x)})
        output_colours = sorted({int(c) for _, y in train for c in np.unique(y)})
        self.domains = {
            "input_colours": tuple(input_colours),
            "output_colours": tuple(output_colours),
            "colours": tuple(sorted(set(input_colours) | set(output_colours))),
        }

    def param_grid(self, spec) -> list[dict]:
        if any(p.domain is None for p in spec.params):
            return []  # fitted parameters (the colour map) are set by the fitter, never enumerated
        domains = [self.domains[p.domain] if isinstance(p.domain, str) else p.domain for p in spec.params]
        return [dict(zip((p.name for p in spec.params), combo)) for combo in itertools.product(*domains)]

    def fit_colour_map(self, values: Sequence[np.ndarray]) -> Optional[dict]:
        """The colour map turning the training values into the outputs, if one exists (shapes equal)."""
        mapping: dict[int, int] = {}
        for value, target in zip(values, self.targets):
            pairs = np.unique(value.astype(np.int16) * 10 + target).tolist()
            for pair in pairs:
                source, colour = divmod(pair, 10)
                if mapping.setdefault(source, colour) != colour:
                    return None
        return {k: v for k, v in mapping.items() if k != v}


class _Clock:
    def __init__(self, cpu_seconds: float):
        self.start = time.process_time()
        self.deadline = self.start + cpu_seconds

    def check(self):
        if time.process_time() > self.deadline:
            raise SearchBudgetExceeded

    @property
    def elapsed(self) -> float:
        return time.process_time() - self.start


class _Bank:
    """The values found so far: per type and size the (program, values) entries, and per type the first
    program of each observational-equivalence class (keyed by its values on the training inputs)."""

    def __init__(self, max_values: int):
        self.entries: dict[str, dict[int, list]] = {t: {} for t in _STEPS_TO_GRID}
        self.index: dict[str, dict] = {t: {} for t in _STEPS_TO_GRID}
        self.max_values = max_values

    def add(self, type_name: str, size: int, program: Program, values: list, key: tuple) -> None:
        if len(self.index[type_name]) < self.max_values:
            self.index[type_name][key] = (program, values)
        self.entries[type_name].setdefault(size, []).append((program, values))


def search_programs(
    train: Sequence[tuple[Any, Any]],
    test_inputs: Sequence[Any],
    config: Optional[DSLSearchConfig] = None,
    task_id: str = "",
) -> DSLSearchResult:
    """Searches for programs mapping every training input to its output.

    Args:
        train: the demonstration pairs `(input, output)`.
        test_inputs: the test inputs (the programs found are run on them for the attempts).
        config: the search's settings (`DSLSearchConfig()` by default).
        task_id: named in the result.
    """
    config = config or DSLSearchConfig()
    clock = _Clock(config.cpu_seconds)
    task = _Task(train, test_inputs)
    result = DSLSearchResult(task_id)
    names = config.primitives or list(PRIMITIVES)
    specs = [PRIMITIVES[n] for n in names if all(p.domain is not None for p in PRIMITIVES[n].params)]
    params = {spec.name: task.param_grid(spec) or [{}] for spec in specs}
    views = [s for s in specs if s.cost == 0]  # applied to every new value of their argument type
    bank = _Bank(config.max_values_per_type)
    solutions: list[DSLCandidate] = []
    stop_size = config.max_size
    n = task.num_train

    found: set[Program] = set()
    # Solutions all agree on the training inputs; two that also agree on the test inputs are
    # observationally equivalent on the whole task: only the first (the shortest) is kept.
    predicted: set[tuple] = set()

    def add_solution(program: Program, predictions: tuple, size: int) -> None:
        nonlocal stop_size
        key = tuple(_key(GRID, p) for p in predictions)
        if key in predicted:
            return
        predicted.add(key)
        solutions.append(DSLCandidate(program, predictions, len(solutions)))
        stop_size = min(stop_size, size + config.sizes_after_solution)

    def consider(program: Program, values: list) -> None:
        train_values = values[:n]
        if program in found or not all(v.shape == t.shape for v, t in zip(train_values, task.targets)):
            return
        found.add(program)
        if all(np.array_equal(v, t) for v, t in zip(train_values, task.targets)):
            add_solution(program, tuple(values[n:]), program.size)
        elif config.fit_colour_map:
            mapping = task.fit_colour_map(train_values)
            if not mapping:
                return
            recolour = PRIMITIVES["map_colours"].fn
            predictions = tuple(_as_grid(recolour(v, mapping=mapping)) for v in values[n:])
            if all(p is not None for p in predictions):
                add_solution(Program.call("map_colours", program, mapping=mapping), predictions, program.size)

    def try_step(spec, program: Program, values: list, kwargs: dict, size: int, last: bool) -> None:
        clock.check()
        result.candidates_evaluated += 1
        targets = task.targets if last else None
        train_values = _apply(spec, values[:n], kwargs, targets)
        if train_values is None:
            return
        key = tuple(_key(spec.return_type, v) for v in train_values)
        if key in bank.index[spec.return_type]:
            return
        test_values = _apply(spec, values[n:], kwargs, None)
        if test_values is None:
            return
        new_program = Program(spec.name, (program,), tuple(kwargs.items()))
        new_values = train_values + test_values
        bank.add(spec.return_type, size, new_program, new_values, key)
        result.distinct_values += 1
        if spec.return_type == GRID:
            consider(new_program, new_values)

    def add_views(size: int) -> None:
        for spec in views:
            for program, values in list(bank.entries[spec.arg_types[0]].get(size, ())):
                for kwargs in params[spec.name]:
                    try_step(spec, program, values, kwargs, size, last=False)

    def invert_last_step(spec, size: int) -> None:
        """The last step by lookup: the values an invertible primitive would need, among those found."""
        for kwargs in params[spec.name]:
            clock.check()
            result.candidates_evaluated += 1
            wanted = [spec.inverse(t, **kwargs) for t in task.targets]
            if any(w is None for w in wanted):
                continue
            found = bank.index[GRID].get(tuple(_key(GRID, _as_grid(w)) for w in wanted))
            if found is None or found[0].size > size - spec.cost:
                continue
            program, values = found
            test_values = _apply(spec, values[n:], kwargs, None)
            if test_values is not None:
                consider(Program(spec.name, (program,), tuple(kwargs.items())), [*task.targets, *test_values])

    seed_key = tuple(_key(GRID, v) for v in task.inputs[:n])
    bank.add(GRID, 0, INPUT, task.inputs, seed_key)
    try:
        add_views(0)
        for size in range(1, config.max_size + 1):
            limit = stop_size
            if size > limit:
                break
            active = [s for s in specs if s.cost > 0 and size + _STEPS_TO_GRID[s.return_type] <= limit]
            if size < limit:
                for spec in active:
                    for program, values in list(bank.entries[spec.arg_types[0]].get(size - spec.cost, ())):
                        for kwargs in params[spec.name]:
                            try_step(spec, program, values, kwargs, size, last=False)
                add_views(size)
            else:
                for spec in active:
                    if spec.inverse is not None:
                        invert_last_step(spec, size)
                forward = [s for s in active if s.inverse is None]
                for arg_type in (GRID, OBJECTS, OBJECT, INT, COLOUR):
                    specs_here = [s for s in forward if s.arg_types[0] == arg_type]
                    entries = bank.entries[arg_type].get(size - 1, ())
                    if arg_type == GRID:  # most promising first: the budget may end this size early
                        entries = sorted(entries, key=lambda e: _distance(e[1][:n], task.targets))
                    for program, values in entries:
                        for spec in specs_here:
                            for kwargs in params[spec.name]:
                                try_step(spec, program, values, kwargs, size, last=True)
            result.completed_size = size
            if len(_distinct_predictions(solutions)) >= 2:
                break
    except SearchBudgetExceeded:
        result.timed_out = True
    result.solutions = sorted(solutions, key=lambda c: c.rank_key)
    result.attempts = _attempts(result.solutions, len(test_inputs))
    result.cpu_seconds = clock.elapsed
    return result


def _apply(spec, values: Sequence, kwargs: dict, targets: Optional[Sequence[np.ndarray]]) -> Optional[list]:
    """The primitive on each value, or None when it does not apply to one. With `targets` (the last
    size), a grid must have its target's shape: a wrong shape stops at the first input."""
    out = []
    for index, value in enumerate(values):
        try:
            new = _normalise(spec.return_type, spec.fn(value, **kwargs))
        except (ValueError, IndexError, TypeError, ZeroDivisionError, StopIteration, KeyError, MemoryError):
            return None
        if new is None or (targets is not None and new.shape != targets[index].shape):
            return None
        out.append(new)
    return out


def _distance(values: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> float:
    """How far training values are from the outputs: the fraction of differing cells where the shapes
    agree, 1 + the relative area difference where they do not."""
    total = 0.0
    for value, target in zip(values, targets):
        if value.shape == target.shape:
            total += float((value != target).mean())
        else:
            total += 1.0 + abs(value.size - target.size) / target.size
    return total


def _distinct_predictions(solutions: Sequence[DSLCandidate]) -> list[tuple]:
    distinct, keys = [], set()
    for candidate in sorted(solutions, key=lambda c: c.rank_key):
        key = tuple((p.shape, p.tobytes()) for p in candidate.predictions)
        if key not in keys:
            keys.add(key)
            distinct.append(candidate.predictions)
    return distinct


def _attempts(solutions: Sequence[DSLCandidate], num_tests: int) -> list[list[np.ndarray]]:
    distinct = _distinct_predictions(solutions)[:2]
    return [[predictions[i] for predictions in distinct] for i in range(num_tests)]
