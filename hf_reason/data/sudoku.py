"""Sudoku puzzles with unique solutions, generated offline for the Tiny Recursive Model.

Token scheme (``input_ids`` and ``labels``, row-major, ``size * size`` tokens):

* ``0``: pad (never produced by the generator; reserved so the scheme matches the other tasks);
* ``1``: blank cell;
* ``2 .. size + 1``: digits ``1 .. size``.

The vocabulary has ``size + 2`` tokens. ``labels`` is the full solution in the same scheme, with
no ignored positions. Helper functions that reason about grids (:func:`solve_sudoku`,
:func:`is_valid_solution`, :func:`is_consistent`) take *digit* grids instead (``0`` = blank,
``1 .. size`` = digits); :func:`encode_sudoku` and :func:`decode_sudoku` convert between the two.

Generation follows the recipe of the HRM/TRM papers: fill a random solved grid by randomised
backtracking, then remove clues in random order, keeping each removal only if the solution
stays unique. Without a target number of givens this yields a *minimal* puzzle (every clue is
needed). Such puzzles are mostly easy; hard sets are made by rejection sampling on the search
effort the solver needs (``min_difficulty``).

The solver keeps one candidate bitmask per cell, propagates naked and hidden singles, then
branches on a cell with the fewest candidates. Difficulty is the number of dead ends
(guesses refuted) met while proving the solution unique: the whole search tree is explored,
so the count does not depend on the order in which digits are tried.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import datasets
import numpy as np
from tqdm.auto import tqdm

from .grid import check_int


__all__ = [
    "EXTREME_MAX_GIVENS",
    "SUDOKU_BLANK_TOKEN",
    "SUDOKU_PAD_TOKEN",
    "SudokuSolveResult",
    "apply_sudoku_transforms",
    "augment_sudoku",
    "augment_sudoku_arrays",
    "augment_sudoku_dataset",
    "decode_sudoku",
    "encode_sudoku",
    "generate_sudoku",
    "invert_sudoku_transforms",
    "is_consistent",
    "is_valid_solution",
    "solve_sudoku",
    "sudoku_from_text",
    "sudoku_to_text",
    "sudoku_transforms",
    "sudoku_vocab_size",
]

SUDOKU_PAD_TOKEN = 0
SUDOKU_BLANK_TOKEN = 1
_DIGIT_OFFSET = 1  # token = digit + 1, so digit 1 is token 2
_SUPPORTED_SIZES = (4, 9)
# Rejection sampling gives up after this many candidates per requested puzzle, so that an
# unreachable min_difficulty (4x4 puzzles never need search) fails instead of looping forever.
_DEFAULT_CANDIDATES_PER_PUZZLE = 1000
# The human-technique levels of hf_reason.data.sudoku_rating, easiest first.
_LEVELS = ("easy", "medium", "hard", "expert", "extreme")
# Givens of an "extreme" puzzle at most: the range (17-25) of the usual extreme collections.
EXTREME_MAX_GIVENS = 25


def _check_size(size: Any) -> int:
    if isinstance(size, bool) or size not in _SUPPORTED_SIZES:
        raise ValueError(f"size must be one of {_SUPPORTED_SIZES}, got {size!r}")
    return int(size)


def sudoku_vocab_size(size: int = 9) -> int:
    """Number of tokens of the scheme: pad, blank and ``size`` digits."""
    return _check_size(size) + 2


@dataclass(frozen=True)
class _Geometry:
    """Cell indices of the units of a ``size x size`` board, precomputed once per size."""

    size: int
    box: int
    full: int  # bitmask with one bit per digit
    units: tuple[tuple[int, ...], ...]
    peers: tuple[tuple[int, ...], ...]
    row_of: tuple[int, ...]
    col_of: tuple[int, ...]
    box_of: tuple[int, ...]
    popcount: tuple[int, ...]
    digit_of_bit: dict[int, int]


@cache
def _geometry(size: int) -> _Geometry:
    box = math.isqrt(size)
    cells = range(size * size)
    row_of = tuple(c // size for c in cells)
    col_of = tuple(c % size for c in cells)
    box_of = tuple((r // box) * box + (c // box) for r, c in zip(row_of, col_of))
    rows = [tuple(c for c in cells if row_of[c] == i) for i in range(size)]
    cols = [tuple(c for c in cells if col_of[c] == i) for i in range(size)]
    boxes = [tuple(c for c in cells if box_of[c] == i) for i in range(size)]
    units = tuple(rows + cols + boxes)
    peers = tuple(
        tuple(sorted({p for p in rows[row_of[c]] + cols[col_of[c]] + boxes[box_of[c]] if p != c})) for c in cells
    )
    full = (1 << size) - 1
    return _Geometry(
        size=size,
        box=box,
        full=full,
        units=units,
        peers=peers,
        row_of=row_of,
        col_of=col_of,
        box_of=box_of,
        popcount=tuple(bin(m).count("1") for m in range(full + 1)),
        digit_of_bit={1 << d: d + 1 for d in range(size)},
    )


class _Stats:
    __slots__ = ("guesses", "backtracks")

    def __init__(self) -> None:
        self.guesses = 0
        self.backtracks = 0


def _initial_candidates(digits: Sequence[int], geo: _Geometry) -> tuple[list[int], list[int]] | None:
    """Candidate masks from the givens, or ``None`` when two givens clash.

    Masks are built from row/column/box unions rather than by propagating every given to its
    peers: that is ~20x fewer operations, and this runs once per uniqueness check.
    """
    n = geo.size
    row_used = [0] * n
    col_used = [0] * n
    box_used = [0] * n
    row_of, col_of, box_of = geo.row_of, geo.col_of, geo.box_of
    for c, d in enumerate(digits):
        if d:
            bit = 1 << (d - 1)
            r, k, b = row_of[c], col_of[c], box_of[c]
            if (row_used[r] | col_used[k] | box_used[b]) & bit:
                return None
            row_used[r] |= bit
            col_used[k] |= bit
            box_used[b] |= bit
    full = geo.full
    cand = [0] * len(digits)
    singles = []
    for c, d in enumerate(digits):
        if d:
            cand[c] = 1 << (d - 1)
        else:
            m = full & ~(row_used[row_of[c]] | col_used[col_of[c]] | box_used[box_of[c]])
            if not m:
                return None
            cand[c] = m
            if not m & (m - 1):
                singles.append(c)
    return cand, singles


def _propagate(cand: list[int], queue: list[int], geo: _Geometry) -> bool:
    """Apply naked and hidden singles in place until a fixpoint; ``False`` on contradiction.

    ``queue`` holds the cells that became single and whose digit is not yet removed from
    their peers.
    """
    peers, units, full = geo.peers, geo.units, geo.full
    while True:
        while queue:
            c = queue.pop()
            m = cand[c]
            for p in peers[c]:
                pm = cand[p]
                if pm & m:
                    pm ^= m
                    if not pm:
                        return False
                    cand[p] = pm
                    if not pm & (pm - 1):
                        queue.append(p)
        for unit in units:
            once = twice = 0
            for c in unit:
                m = cand[c]
                twice |= once & m
                once |= m
            if once != full:
                return False  # some digit has no place left in this unit
            only = once & ~twice
            if only:
                for c in unit:
                    m = cand[c]
                    hit = m & only
                    if hit and hit != m:
                        if hit & (hit - 1):
                            return False  # one cell is the only place for two digits
                        cand[c] = hit
                        queue.append(c)
        if not queue:
            return True


def _search(
    cand: list[int],
    geo: _Geometry,
    limit: int,
    solutions: list[list[int]],
    stats: _Stats,
    rng: np.random.Generator | None = None,
) -> None:
    """Depth-first search on propagated candidates; appends solutions until ``limit``."""
    popcount = geo.popcount
    best, best_count = -1, geo.size + 1
    for c, m in enumerate(cand):
        k = popcount[m]
        if 1 < k < best_count:
            best, best_count = c, k
            if k == 2:
                break
    if best < 0:
        solutions.append(cand)
        return
    m = cand[best]
    bits = []
    while m:
        bit = m & -m
        bits.append(bit)
        m ^= bit
    if rng is not None:
        bits = [bits[i] for i in rng.permutation(len(bits))]
    for bit in bits:
        stats.guesses += 1
        child = cand.copy()
        child[best] = bit
        if _propagate(child, [best], geo):
            _search(child, geo, limit, solutions, stats, rng)
            if len(solutions) >= limit:
                return
        else:
            stats.backtracks += 1


def _count_solutions(digits: Sequence[int], geo: _Geometry, limit: int) -> tuple[list[list[int]], _Stats]:
    stats = _Stats()
    solutions: list[list[int]] = []
    start = _initial_candidates(digits, geo)
    if start is None:
        return solutions, stats
    cand, queue = start
    if _propagate(cand, queue, geo):
        _search(cand, geo, limit, solutions, stats)
    return solutions, stats


def _cand_to_digits(cand: list[int], geo: _Geometry) -> list[int]:
    return [geo.digit_of_bit[m] for m in cand]


@dataclass(frozen=True)
class SudokuSolveResult:
    """Outcome of :func:`solve_sudoku`.

    ``num_solutions`` is capped at the ``limit`` asked for; ``solution`` is the first solution
    found (digit grid) or ``None``; ``guesses`` counts tentative placements and ``backtracks``
    the guesses refuted (dead ends).
    """

    num_solutions: int
    solution: np.ndarray | None
    guesses: int
    backtracks: int


def _as_digit_grid(grid: Any, size: int | None, name: str) -> np.ndarray:
    arr = np.asarray(grid)
    if size is None:
        side = math.isqrt(arr.size) if arr.ndim == 1 else (arr.shape[0] if arr.ndim == 2 else -1)
        size = _check_size(side)
    else:
        size = _check_size(size)
    if arr.size != size * size or arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape != (size, size)):
        raise ValueError(f"{name} must have {size * size} cells ({size}x{size} or flat), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.reshape(size, size)


def solve_sudoku(puzzle: Any, size: int | None = None, limit: int = 2) -> SudokuSolveResult:
    """Solve a digit grid (``0`` = blank, ``1..size`` = digits), counting up to ``limit`` solutions.

    ``size`` is inferred from the grid's shape when omitted. ``limit=2`` is the uniqueness
    check: the search stops as soon as a second solution appears.
    """
    grid = _as_digit_grid(puzzle, size, "puzzle")
    n = grid.shape[0]
    limit = check_int("limit", limit, minimum=1)
    if grid.min() < 0 or grid.max() > n:
        raise ValueError(f"puzzle must hold digits 0..{n} (0 = blank), got values in [{grid.min()}, {grid.max()}]")
    geo = _geometry(n)
    solutions, stats = _count_solutions(grid.ravel().tolist(), geo, limit)
    first = np.array(_cand_to_digits(solutions[0], geo)).reshape(n, n) if solutions else None
    return SudokuSolveResult(len(solutions), first, stats.guesses, stats.backtracks)


def is_valid_solution(grid: Any, size: int | None = None) -> bool:
    """Whether a digit grid is a complete, valid Sudoku: each unit holds every digit once."""
    arr = _as_digit_grid(grid, size, "grid")
    n = arr.shape[0]
    box = math.isqrt(n)
    expected = np.arange(1, n + 1)
    boxes = arr.reshape(box, box, box, box).transpose(0, 2, 1, 3).reshape(n, n)
    return all(
        np.array_equal(np.sort(units, axis=1), np.broadcast_to(expected, (n, n))) for units in (arr, arr.T, boxes)
    )


def is_consistent(puzzle: Any, solution: Any) -> bool:
    """Whether every given of ``puzzle`` (digit grid, ``0`` = blank) matches ``solution``."""
    p = _as_digit_grid(puzzle, None, "puzzle")
    s = _as_digit_grid(solution, None, "solution")
    if p.shape != s.shape:
        raise ValueError(f"puzzle and solution must have the same shape, got {p.shape} and {s.shape}")
    given = p != 0
    return bool(np.array_equal(p[given], s[given]))


def encode_sudoku(digits: Any) -> list[int]:
    """Digit grid (``0`` = blank) to the flat token list of the module's scheme."""
    arr = _as_digit_grid(digits, None, "digits").ravel()
    if arr.min() < 0 or arr.max() > math.isqrt(arr.size):
        raise ValueError("digits must hold values 0..size (0 = blank)")
    return (arr + _DIGIT_OFFSET).tolist()


def decode_sudoku(tokens: Any, size: int | None = None) -> np.ndarray:
    """Token list (pad 0, blank 1, digits 2..size+1) to a ``size x size`` digit grid (0 = blank)."""
    arr = _as_digit_grid(tokens, size, "tokens")
    n = arr.shape[0]
    if arr.min() < SUDOKU_PAD_TOKEN or arr.max() > n + _DIGIT_OFFSET:
        raise ValueError(f"tokens must be in 0..{n + _DIGIT_OFFSET}, got values in [{arr.min()}, {arr.max()}]")
    # Pad and blank both decode to an empty cell.
    return np.maximum(arr - _DIGIT_OFFSET, 0)


def sudoku_from_text(text: str, size: int | None = None) -> np.ndarray:
    """Parse the one-line form of a Sudoku into a ``size x size`` digit grid (``0`` = blank).

    The line holds the cells row by row, ``size * size`` characters: the digits ``1..size``, and
    ``0`` or ``.`` for a blank (the form of the usual puzzle collections). ``size`` is inferred
    from the length when omitted.
    """
    if not isinstance(text, str):
        raise ValueError(f"a Sudoku line must be a string, got {type(text).__name__}")
    side = math.isqrt(len(text))
    if size is None and (side * side != len(text) or side not in _SUPPORTED_SIZES):
        sizes = " or ".join(f"{n * n} ({n}x{n})" for n in _SUPPORTED_SIZES)
        raise ValueError(f"a Sudoku line must have {sizes} characters, got {len(text)}")
    size = _check_size(side if size is None else size)
    if len(text) != size * size:
        raise ValueError(f"a {size}x{size} Sudoku line must have {size * size} characters, got {len(text)}")
    digits = []
    for position, char in enumerate(text, 1):
        if char in "0.":
            digits.append(0)
        elif char.isascii() and char.isdigit() and 1 <= int(char) <= size:
            digits.append(int(char))
        else:
            raise ValueError(
                f"character {position} of the Sudoku line is {char!r}; expected a digit 1-{size}, or 0 or '.' for a blank"
            )
    return np.array(digits, dtype=np.int64).reshape(size, size)


def sudoku_to_text(digits: Any, blank: str = "0") -> str:
    """The one-line form of a digit grid (``0`` = blank), the inverse of :func:`sudoku_from_text`.

    ``blank`` (``"0"`` or ``"."``) is written for empty cells.
    """
    if blank not in ("0", "."):
        raise ValueError(f"blank must be '0' or '.', got {blank!r}")
    arr = _as_digit_grid(digits, None, "digits")
    if arr.min() < 0 or arr.max() > arr.shape[0]:
        raise ValueError(f"digits must hold values 0..{arr.shape[0]} (0 = blank)")
    return "".join(blank if d == 0 else str(d) for d in arr.ravel().tolist())


def _random_solution(geo: _Geometry, rng: np.random.Generator) -> list[int]:
    """A random solved grid: backtracking fill from the empty board, digits tried in random order."""
    cells = geo.size * geo.size
    cand = [geo.full] * cells
    # Seeding the first row with a random permutation costs nothing and removes most of the
    # bias of always branching on the same first cells.
    for c, d in enumerate(rng.permutation(geo.size)):
        cand[c] = 1 << int(d)
    solutions: list[list[int]] = []
    if _propagate(cand, list(range(geo.size)), geo):
        _search(cand, geo, 1, solutions, _Stats(), rng)
    if not solutions:  # cannot happen: any permutation of a row extends to a full grid
        raise RuntimeError("failed to fill a Sudoku grid")
    return _cand_to_digits(solutions[0], geo)


def _forced_by_peers(puzzle: list[int], cell: int, digit: int, geo: _Geometry) -> bool:
    """Whether the givens among the cell's peers leave ``digit`` as its only candidate."""
    used = 0
    for p in geo.peers[cell]:
        d = puzzle[p]
        if d:
            used |= 1 << (d - 1)
    return (used | (1 << (digit - 1))) == geo.full


def _has_other_solution(puzzle: list[int], cell: int, digit: int, geo: _Geometry) -> bool:
    """Whether some solution of ``puzzle`` puts a digit other than ``digit`` in ``cell``.

    The puzzle had a unique solution with ``digit`` there before ``cell`` was blanked, so this
    answers "is it still unique?" with a single search for one solution rather than a count
    to two.
    """
    start = _initial_candidates(puzzle, geo)
    if start is None:
        return False
    cand, queue = start
    m = cand[cell] & ~(1 << (digit - 1))
    if not m:
        return False
    cand[cell] = m
    if not m & (m - 1):
        queue.append(cell)
    if not _propagate(cand, queue, geo):
        return False
    solutions: list[list[int]] = []
    _search(cand, geo, 1, solutions, _Stats())
    return bool(solutions)


def _make_puzzle(geo: _Geometry, rng: np.random.Generator, target_givens: int) -> tuple[list[int], list[int], int]:
    """One puzzle with a unique solution: ``(puzzle, solution, difficulty)`` as digit lists."""
    solution = _random_solution(geo, rng)
    puzzle = solution.copy()
    givens = len(puzzle)
    for cell in rng.permutation(len(puzzle)).tolist():
        if givens <= target_givens:
            break
        digit = puzzle[cell]
        puzzle[cell] = 0
        if _forced_by_peers(puzzle, cell, digit, geo) or not _has_other_solution(puzzle, cell, digit, geo):
            givens -= 1
        else:
            puzzle[cell] = digit
    solutions, stats = _count_solutions(puzzle, geo, 2)
    if len(solutions) != 1 or _cand_to_digits(solutions[0], geo) != solution:
        raise RuntimeError("internal error: generated Sudoku lost its unique solution")
    return puzzle, solution, stats.backtracks


def _sudoku_features(rated: bool = False) -> datasets.Features:
    # int64 because torch's losses want int64 targets; it spares a cast in every collator.
    features = {
        "input_ids": datasets.List(datasets.Value("int64")),
        "labels": datasets.List(datasets.Value("int64")),
        "num_givens": datasets.Value("int64"),
        "difficulty": datasets.Value("int64"),
        "puzzle_identifiers": datasets.Value("int64"),
    }
    if rated:
        features.update(rating=datasets.Value("float64"), level=datasets.Value("string"))
    return datasets.Features(features)


def _level_filter(level: str | None) -> Callable[[np.ndarray], Any]:
    """``rate(puzzle)``: the puzzle's full rating, or ``None`` when it is not of ``level``.

    Candidates above the level are dropped as soon as the rater needs a harder technique; the
    rating of a kept puzzle is always complete.
    """
    # Imported here: the rating module builds on this one's solver.
    from .sudoku_rating import SUDOKU_LEVELS, SUDOKU_TECHNIQUES, rate_sudoku

    if level is None:
        return rate_sudoku
    bound = SUDOKU_LEVELS[level]
    # The hardest technique within the level: the rater stops beyond it. "extreme" stops after the
    # chains, since anything harder is extreme (the kept puzzles are then rated in full).
    ceiling = (
        "aic"
        if level == "extreme"
        else max((t for t, r in SUDOKU_TECHNIQUES.items() if r <= bound), key=SUDOKU_TECHNIQUES.get)
    )

    def rate(puzzle: np.ndarray):
        quick = rate_sudoku(puzzle, max_technique=ceiling)
        if quick.level != level:
            return None
        return rate_sudoku(puzzle) if level == "extreme" else quick

    return rate


def generate_sudoku(
    num_puzzles: int,
    size: int = 9,
    min_givens: int | None = None,
    min_difficulty: int = 0,
    seed: int = 0,
    progress: bool = True,
    max_candidates: int | None = None,
    level: str | None = None,
    max_givens: int | None = None,
    rate: bool = False,
) -> datasets.Dataset:
    """Generate Sudoku puzzles with unique solutions.

    Args:
        num_puzzles: number of puzzles to return.
        size: board side, 9 (3x3 boxes) or 4 (2x2 boxes).
        min_givens: stop removing clues once this many remain (the puzzle may keep more when
            no further clue can go without losing uniqueness). ``None`` removes clues down
            to a minimal puzzle.
        min_difficulty: keep only puzzles whose uniqueness proof needs at least this many
            backtracks (dead ends); candidates below the bound are rejected.
        seed: seed of the ``numpy.random.Generator`` driving all random choices.
        progress: show a tqdm progress bar.
        max_candidates: give up (``RuntimeError``) after this many candidates; defaults to
            ``1000 * num_puzzles``.
        level: keep only puzzles of this human-technique level (``"easy"``, ``"medium"``,
            ``"hard"``, ``"expert"`` or ``"extreme"``; see :mod:`hf_reason.data.sudoku_rating`).
            ``"extreme"`` also bounds the givens to ``EXTREME_MAX_GIVENS`` (25) unless
            ``max_givens`` says otherwise: the 17-25 givens of the usual extreme collections.
        max_givens: keep only puzzles with at most this many givens (``None``: no bound).
        rate: add the ``rating`` and ``level`` columns without filtering on them (implied by
            ``level``).

    Returns:
        A dataset with columns ``input_ids`` and ``labels`` (``size * size`` tokens, see the
        module docstring), ``num_givens``, ``difficulty`` (backtracks) and
        ``puzzle_identifiers`` (always 0), plus ``rating`` (float) and ``level`` (string) when
        rated. ``ds.info.description`` records, as JSON, the generation arguments and the
        number of candidates tried.
    """
    num_puzzles = check_int("num_puzzles", num_puzzles, minimum=0)
    size = _check_size(size)
    cells = size * size
    target = 0 if min_givens is None else check_int("min_givens", min_givens, minimum=0, maximum=cells)
    min_difficulty = check_int("min_difficulty", min_difficulty, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    if max_candidates is None:
        max_candidates = max(1, num_puzzles) * _DEFAULT_CANDIDATES_PER_PUZZLE
    max_candidates = check_int("max_candidates", max_candidates, minimum=1)
    if level is not None and level not in _LEVELS:
        raise ValueError(f"level must be one of {_LEVELS} or None, got {level!r}")
    if max_givens is None and level == "extreme":
        max_givens = min(EXTREME_MAX_GIVENS, cells)
    if max_givens is not None:
        max_givens = check_int("max_givens", max_givens, minimum=target, maximum=cells)
    rated = rate or level is not None
    rater = _level_filter(level) if rated else None

    geo = _geometry(size)
    rng = np.random.default_rng(seed)
    rows: dict[str, list[Any]] = {name: [] for name in _sudoku_features(rated)}
    candidates = 0
    with tqdm(total=num_puzzles, desc=f"sudoku {size}x{size}", disable=not progress) as bar:
        while len(rows["input_ids"]) < num_puzzles:
            if candidates >= max_candidates:
                raise RuntimeError(
                    f"only {len(rows['input_ids'])} of {num_puzzles} puzzles met min_difficulty={min_difficulty}, "
                    f"level={level!r}, max_givens={max_givens} after {candidates} candidates; relax them or raise "
                    "max_candidates"
                )
            candidates += 1
            puzzle, solution, difficulty = _make_puzzle(geo, rng, target)
            num_givens = sum(1 for d in puzzle if d)
            if difficulty < min_difficulty or (max_givens is not None and num_givens > max_givens):
                continue
            if rater is not None:
                rating = rater(np.array(puzzle).reshape(size, size))
                if rating is None:
                    continue
                rows["rating"].append(rating.rating)
                rows["level"].append(rating.level)
            rows["input_ids"].append([d + _DIGIT_OFFSET for d in puzzle])
            rows["labels"].append([d + _DIGIT_OFFSET for d in solution])
            rows["num_givens"].append(num_givens)
            rows["difficulty"].append(difficulty)
            rows["puzzle_identifiers"].append(0)
            bar.update(1)
            if min_difficulty or level is not None or max_givens is not None:
                bar.set_postfix(candidates=candidates)
    description = json.dumps(
        {
            "task": "sudoku",
            "size": size,
            "vocab_size": size + 2,
            "min_givens": min_givens,
            "min_difficulty": min_difficulty,
            "level": level,
            "max_givens": max_givens,
            "seed": seed,
            "candidates": candidates,
        }
    )
    features = _sudoku_features(rated)
    return datasets.Dataset.from_dict(
        rows, features=features, info=datasets.DatasetInfo(description=description, features=features)
    )


# The transforms live in their own module (this one is long); they are part of this module's API.
from .sudoku_augment import (  # noqa: E402
    apply_sudoku_transforms,
    augment_sudoku,
    augment_sudoku_arrays,
    augment_sudoku_dataset,
    invert_sudoku_transforms,
    sudoku_transforms,
)
