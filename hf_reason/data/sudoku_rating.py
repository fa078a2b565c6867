"""Human-technique difficulty rating of Sudoku puzzles.

A puzzle is solved the way a person would: at each step the easiest technique that makes progress
is applied (placements or candidate eliminations), then the search restarts from the easiest one.
The rating is the difficulty of the hardest technique the solve needed, on the scale of Sudoku
Explainer (the community's usual "SE rating"; values for the techniques it shares with this
ladder), and the level names the band it falls in:

===========  =============  ===================================================================
level        rating         techniques
===========  =============  ===================================================================
easy         <= 2.3         hidden single (1.5), naked single (2.3)
medium       <= 3.4         pointing (2.6), claiming (2.8), naked pair (3.0), X-wing (3.2),
                            hidden pair (3.4)
hard         <= 5.4         naked triple (3.6), swordfish (3.8), hidden triple (4.0), XY-wing (4.2),
                            XYZ-wing (4.4), naked quad (5.0), jellyfish (5.2), hidden quad (5.4)
expert       <= 7.0         X-chain (6.5), XY-chain (6.6), alternating inference chain (7.0)
extreme      > 7.0          forcing chain (8.0: an assumption refuted by singles), nested forcing
                            chain (9.0: refuted by the techniques up to swordfish), trial and
                            error (10.0: a guess, when nothing above applies)
===========  =============  ===================================================================

Chains are found as implications between candidates: a weak link (two candidates that cannot both
be true: one cell, or one digit in one unit) takes "true" to "false", a strong link (two
candidates of which one must be true: a two-candidate cell, or a digit with two places in a
unit) takes "false" to "true". A candidate whose assumption reaches a contradiction along
alternating links is eliminated; that covers X-chains (one digit, unit links: skyscraper,
two-string kite, turbot fish), XY-chains (two-candidate cells) and general AICs / nice loops.
Uniqueness techniques (unique rectangles, BUG) are left out: the rating must not depend on
assuming that the puzzle has one solution.

Written here because the established raters (Sudoku Explainer, HoDoKu) are GPL / LGPL Java and no
permissively licensed Python rater exists. Candidates are bitmasks (one bit per digit) and sets of
candidates in the chain search are Python integers used as bitsets.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .sudoku import _as_digit_grid, _Geometry, _geometry, _initial_candidates, _propagate, solve_sudoku


__all__ = [
    "SUDOKU_LEVELS",
    "SUDOKU_TECHNIQUES",
    "SudokuRating",
    "rate_sudoku",
    "sudoku_level",
]

# (name, rating) of every technique, easiest first: the order in which the ladder tries them.
SUDOKU_TECHNIQUES: dict[str, float] = {
    "hidden_single": 1.5,
    "naked_single": 2.3,
    "pointing": 2.6,
    "claiming": 2.8,
    "naked_pair": 3.0,
    "x_wing": 3.2,
    "hidden_pair": 3.4,
    "naked_triple": 3.6,
    "swordfish": 3.8,
    "hidden_triple": 4.0,
    "xy_wing": 4.2,
    "xyz_wing": 4.4,
    "naked_quad": 5.0,
    "jellyfish": 5.2,
    "hidden_quad": 5.4,
    "x_chain": 6.5,
    "xy_chain": 6.6,
    "aic": 7.0,
    "forcing_chain": 8.0,
    "nested_forcing_chain": 9.0,
    "trial_and_error": 10.0,
}
# Upper rating bound of each level, in order; "extreme" is everything above 7.0.
SUDOKU_LEVELS: dict[str, float] = {"easy": 2.3, "medium": 3.4, "hard": 5.4, "expert": 7.0, "extreme": 10.0}


def sudoku_level(rating: float) -> str:
    """The level (easy, medium, hard, expert, extreme) of a rating."""
    for level, bound in SUDOKU_LEVELS.items():
        if rating <= bound:
            return level
    return "extreme"


@dataclass(frozen=True)
class SudokuRating:
    """The outcome of :func:`rate_sudoku`.

    Args:
        rating: difficulty of the hardest technique the solve needed (Sudoku Explainer's scale).
        level: the band of the rating: ``"easy"``, ``"medium"``, ``"hard"``, ``"expert"`` or ``"extreme"``.
        hardest_technique: the technique that sets the rating.
        techniques: how many steps used each technique (a sweep that places every single at once
            counts as one step).
        complete: ``False`` when `rate_sudoku(..., max_technique=...)` stopped at its ceiling: the
            rating is then the next rung's, a lower bound, and ``techniques`` covers the steps made.
    """

    rating: float
    level: str
    hardest_technique: str
    techniques: dict[str, int] = field(default_factory=dict)
    complete: bool = True


class _Contradiction(Exception):
    """An assumption (forcing chains) led to an impossible board."""


class _Board:
    """Candidates (one bitmask per cell) and placed digits (0 = not placed yet)."""

    __slots__ = ("geo", "cand", "placed")

    def __init__(self, geo: _Geometry, cand: list[int], placed: list[int]):
        self.geo, self.cand, self.placed = geo, cand, placed

    def copy(self) -> _Board:
        return _Board(self.geo, self.cand.copy(), self.placed.copy())

    @property
    def solved(self) -> bool:
        return all(self.placed)

    def place(self, cell: int, digit: int) -> None:
        bit = 1 << (digit - 1)
        if not self.cand[cell] & bit:
            raise _Contradiction
        self.placed[cell] = digit
        self.cand[cell] = bit
        for p in self.geo.peers[cell]:
            if not self.placed[p] and self.cand[p] & bit:
                self.cand[p] &= ~bit
                if not self.cand[p]:
                    raise _Contradiction

    def eliminate(self, cell: int, bits: int) -> bool:
        if self.placed[cell] or not self.cand[cell] & bits:
            return False
        self.cand[cell] &= ~bits
        if not self.cand[cell]:
            raise _Contradiction
        return True

    def open_cells(self, unit) -> list[int]:
        return [c for c in unit if not self.placed[c]]

    def places(self, unit, bit: int) -> list[int]:
        return [c for c in unit if not self.placed[c] and self.cand[c] & bit]


def _bits(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low)
        mask ^= low
    return out


# ----------------------------------------------------------------------------- singles and intersections
def _hidden_single(board: _Board) -> bool:
    geo = board.geo
    progress = False
    for unit in geo.units:
        once = twice = placed = 0
        for c in unit:
            m = board.cand[c]
            if board.placed[c]:
                placed |= m
            else:
                twice |= once & m
                once |= m
        if (once | placed) != geo.full:
            raise _Contradiction
        only = once & ~twice & ~placed
        for c in unit:
            hit = board.cand[c] & only
            if hit and not board.placed[c]:
                if hit & (hit - 1):
                    raise _Contradiction
                board.place(c, geo.digit_of_bit[hit])
                progress = True
    return progress


def _naked_single(board: _Board) -> bool:
    geo = board.geo
    for c, m in enumerate(board.cand):
        if not board.placed[c] and geo.popcount[m] == 1:
            board.place(c, geo.digit_of_bit[m])
            return True
    return False


def _line_units(geo: _Geometry):
    return geo.units[: 2 * geo.size]


def _box_units(geo: _Geometry):
    return geo.units[2 * geo.size :]


def _pointing(board: _Board) -> bool:
    """A digit confined to one line inside a box leaves the rest of that line."""
    geo = board.geo
    for box in _box_units(geo):
        for bit in _bits(geo.full):
            spots = board.places(box, bit)
            if len(spots) < 2:
                continue
            for line_of in (geo.row_of, geo.col_of):
                if len({line_of[c] for c in spots}) == 1:
                    line = next(u for u in _line_units(geo) if spots[0] in u and all(s in u for s in spots))
                    hits = [board.eliminate(c, bit) for c in line if c not in box]
                    if any(hits):
                        return True
    return False


def _claiming(board: _Board) -> bool:
    """A digit confined to one box inside a line leaves the rest of that box."""
    geo = board.geo
    for line in _line_units(geo):
        for bit in _bits(geo.full):
            spots = board.places(line, bit)
            if len(spots) >= 2 and len({geo.box_of[c] for c in spots}) == 1:
                box = _box_units(geo)[geo.box_of[spots[0]]]
                hits = [board.eliminate(c, bit) for c in box if c not in line]
                if any(hits):
                    return True
    return False


# ----------------------------------------------------------------------------- subsets and fish
def _naked_subset(size: int) -> Callable[[_Board], bool]:
    def technique(board: _Board) -> bool:
        geo = board.geo
        for unit in geo.units:
            cells = [c for c in board.open_cells(unit) if geo.popcount[board.cand[c]] <= size]
            for group in itertools.combinations(cells, size):
                union = 0
                for c in group:
                    union |= board.cand[c]
                if geo.popcount[union] == size:
                    hits = [board.eliminate(c, union) for c in board.open_cells(unit) if c not in group]
                    if any(hits):
                        return True
        return False

    return technique


def _hidden_subset(size: int) -> Callable[[_Board], bool]:
    def technique(board: _Board) -> bool:
        geo = board.geo
        for unit in geo.units:
            digits = {}
            for bit in _bits(geo.full):
                spots = board.places(unit, bit)
                if 2 <= len(spots) <= size:
                    digits[bit] = spots
            for group in itertools.combinations(digits, size):
                cells = set().union(*(digits[b] for b in group))
                if len(cells) == size:
                    keep = sum(group)
                    hits = [board.eliminate(c, geo.full & ~keep) for c in cells]  # every cell, no short cut
                    if any(hits):
                        return True
        return False

    return technique


def _fish(size: int) -> Callable[[_Board], bool]:
    """X-wing (2), swordfish (3), jellyfish (4): a digit's places in `size` base lines cover `size`
    cross lines, so the digit leaves the rest of those cross lines."""

    def technique(board: _Board) -> bool:
        geo = board.geo
        n = geo.size
        rows, cols = geo.units[:n], geo.units[n : 2 * n]
        for bit in _bits(geo.full):
            for base, cross_of, cover in ((rows, geo.col_of, cols), (cols, geo.row_of, rows)):
                lines = {}
                for i, line in enumerate(base):
                    spots = board.places(line, bit)
                    if 2 <= len(spots) <= size:
                        lines[i] = {cross_of[c] for c in spots}
                for group in itertools.combinations(lines, size):
                    covered = set().union(*(lines[i] for i in group))
                    if len(covered) == size:
                        base_cells = set().union(*(base[i] for i in group))
                        hits = [board.eliminate(c, bit) for j in covered for c in cover[j] if c not in base_cells]
                        if any(hits):
                            return True
        return False

    return technique


# ----------------------------------------------------------------------------- wings
def _sees(geo: _Geometry, a: int, b: int) -> bool:
    return a != b and (
        geo.row_of[a] == geo.row_of[b] or geo.col_of[a] == geo.col_of[b] or geo.box_of[a] == geo.box_of[b]
    )


def _xy_wing(board: _Board) -> bool:
    geo = board.geo
    pairs = [c for c in range(len(board.cand)) if not board.placed[c] and geo.popcount[board.cand[c]] == 2]
    for pivot in pairs:
        pm = board.cand[pivot]
        wings = [c for c in pairs if _sees(geo, pivot, c) and geo.popcount[board.cand[c] & pm] == 1]
        for a, b in itertools.combinations(wings, 2):
            ma, mb = board.cand[a], board.cand[b]
            z = ma & mb & ~pm
            if z and (ma & pm) != (mb & pm) and geo.popcount[z] == 1:
                hits = [board.eliminate(c, z) for c in geo.peers[a] if c != b and _sees(geo, c, b)]
                if any(hits):
                    return True
    return False


def _xyz_wing(board: _Board) -> bool:
    geo = board.geo
    for pivot in range(len(board.cand)):
        pm = board.cand[pivot]
        if board.placed[pivot] or geo.popcount[pm] != 3:
            continue
        wings = [
            c
            for c in geo.peers[pivot]
            if not board.placed[c] and geo.popcount[board.cand[c]] == 2 and board.cand[c] & ~pm == 0
        ]
        for a, b in itertools.combinations(wings, 2):
            z = board.cand[a] & board.cand[b]
            if board.cand[a] != board.cand[b] and geo.popcount[z] == 1:
                hits = [
                    board.eliminate(c, z)
                    for c in geo.peers[pivot]
                    if c not in (a, b) and _sees(geo, c, a) and _sees(geo, c, b)
                ]
                if any(hits):
                    return True
    return False


# ----------------------------------------------------------------------------- chains
def _links(board: _Board, kind: str) -> tuple[dict[int, int], dict[int, int]]:
    """Weak and strong links as bitsets over candidate nodes (``cell * size + digit - 1``).

    ``kind``: ``"x"`` (one digit, unit links), ``"xy"`` (strong links inside two-candidate cells,
    weak links between equal digits) or ``"aic"`` (every link).
    """
    geo = board.geo
    n = geo.size
    weak: dict[int, int] = {}
    strong: dict[int, int] = {}
    nodes = [(c, bit) for c in range(len(board.cand)) if not board.placed[c] for bit in _bits(board.cand[c])]
    for c, bit in nodes:
        d = bit.bit_length() - 1
        node = c * n + d
        w = 0
        for p in geo.peers[c]:
            if not board.placed[p] and board.cand[p] & bit:
                w |= 1 << (p * n + d)
        if kind != "x":
            for other in _bits(board.cand[c] & ~bit):
                w |= 1 << (c * n + other.bit_length() - 1)
        s = 0
        if kind != "x" and geo.popcount[board.cand[c]] == 2:
            other = board.cand[c] & ~bit
            s |= 1 << (c * n + other.bit_length() - 1)
        if kind != "xy":
            for unit in geo.units:
                if c in unit:
                    spots = board.places(unit, bit)
                    if len(spots) == 2:
                        mate = spots[0] if spots[1] == c else spots[1]
                        s |= 1 << (mate * n + d)
        weak[node], strong[node] = w, s
    return weak, strong


def _refuted(start: int, assume_true: bool, weak: dict[int, int], strong: dict[int, int]) -> bool:
    """Whether assuming node `start` true (or false) reaches a contradiction along alternating links."""
    true, false = (1 << start, 0) if assume_true else (0, 1 << start)
    frontier_true, frontier_false = true, false
    while frontier_true or frontier_false:
        new_false = 0
        for low in _bits(frontier_true):
            new_false |= weak.get(low.bit_length() - 1, 0)
        new_true = 0
        for low in _bits(frontier_false):
            new_true |= strong.get(low.bit_length() - 1, 0)
        new_false &= ~false
        new_true &= ~true
        false |= new_false
        true |= new_true
        if true & false:
            return True
        frontier_true, frontier_false = new_true, new_false
    return False


def _chain(kind: str) -> Callable[[_Board], bool]:
    def technique(board: _Board) -> bool:
        geo = board.geo
        n = geo.size
        weak, strong = _links(board, kind)
        progress = False
        for node in weak:
            c, d = divmod(node, n)
            if board.placed[c] or not board.cand[c] & (1 << d):
                continue
            if _refuted(node, True, weak, strong):
                board.eliminate(c, 1 << d)
                progress = True
            elif _refuted(node, False, weak, strong):
                board.place(c, d + 1)
                progress = True
            if progress:  # the links changed: one deduction per step
                return True
        return False

    return technique


def _forcing_chain(board: _Board) -> bool:
    """A candidate whose placement makes singles run into a contradiction is eliminated."""
    geo = board.geo
    for c in range(len(board.cand)):
        if board.placed[c]:
            continue
        for bit in _bits(board.cand[c]):
            trial = board.cand.copy()
            trial[c] = bit
            if not _propagate(trial, [c], geo):
                board.eliminate(c, bit)
                return True
    return False


_BASIC = ("hidden_single", "naked_single", "pointing", "claiming", "naked_pair", "x_wing", "hidden_pair")
_NESTED_LADDER = _BASIC + ("naked_triple", "swordfish", "hidden_triple")


def _nested_forcing_chain(board: _Board) -> bool:
    """A candidate whose placement makes the techniques up to hidden triples run into a contradiction."""
    for c in range(len(board.cand)):
        if board.placed[c]:
            continue
        for bit in _bits(board.cand[c]):
            trial = board.copy()
            try:
                trial.place(c, board.geo.digit_of_bit[bit])
                while not trial.solved and any(_TECHNIQUES[name](trial) for name in _NESTED_LADDER):
                    pass
                _check_board(trial)
            except _Contradiction:
                board.eliminate(c, bit)
                return True
    return False


def _check_board(board: _Board) -> None:
    geo = board.geo
    for unit in geo.units:
        seen = 0
        for c in unit:
            seen |= board.cand[c]
            if not board.cand[c]:
                raise _Contradiction
        if seen != geo.full:
            raise _Contradiction
        placed = [board.placed[c] for c in unit if board.placed[c]]
        if len(placed) != len(set(placed)):
            raise _Contradiction


_TECHNIQUES: dict[str, Callable[[_Board], bool]] = {
    "hidden_single": _hidden_single,
    "naked_single": _naked_single,
    "pointing": _pointing,
    "claiming": _claiming,
    "naked_pair": _naked_subset(2),
    "x_wing": _fish(2),
    "hidden_pair": _hidden_subset(2),
    "naked_triple": _naked_subset(3),
    "swordfish": _fish(3),
    "hidden_triple": _hidden_subset(3),
    "xy_wing": _xy_wing,
    "xyz_wing": _xyz_wing,
    "naked_quad": _naked_subset(4),
    "jellyfish": _fish(4),
    "hidden_quad": _hidden_subset(4),
    "x_chain": _chain("x"),
    "xy_chain": _chain("xy"),
    "aic": _chain("aic"),
    "forcing_chain": _forcing_chain,
    "nested_forcing_chain": _nested_forcing_chain,
}


def rate_sudoku(puzzle: Any, size: int | None = None, max_technique: str | None = None) -> SudokuRating:
    """Rate a puzzle by the human solving techniques it needs.

    Args:
        puzzle: digit grid (``0`` = blank; 2-D or flat) or the one-line text form (``0`` / ``.`` blank).
        size: board side (9 or 4); inferred when omitted.
        max_technique: try no technique harder than this one (a name of ``SUDOKU_TECHNIQUES``); when
            none of the others applies, return the next rung's rating as a lower bound
            (``complete=False``). That is enough to decide a level, and the generator uses it to skip
            the costly tail of puzzles it rejects. ``None`` rates completely.

    Returns:
        A :class:`SudokuRating`. The solve never fails: "trial and error" (a guess of the solution's
        digit in a cell with fewest candidates) is the last rung.

    Raises:
        ValueError: the puzzle is malformed, or has no solution or several (a rating presumes one).
    """
    if isinstance(puzzle, str):
        from .sudoku import sudoku_from_text

        puzzle = sudoku_from_text(puzzle, size)
    grid = _as_digit_grid(puzzle, size, "puzzle")
    n = grid.shape[0]
    if max_technique is not None and max_technique not in SUDOKU_TECHNIQUES:
        raise ValueError(f"max_technique must be one of {list(SUDOKU_TECHNIQUES)} or None, got {max_technique!r}")
    result = solve_sudoku(grid, limit=2)
    if result.num_solutions != 1:
        raise ValueError(
            f"rate_sudoku needs a puzzle with exactly one solution; this one has "
            f"{'none' if result.num_solutions == 0 else 'several'}"
        )
    solution = result.solution.ravel().tolist()
    geo = _geometry(n)
    digits = grid.ravel().tolist()
    cand, _ = _initial_candidates(digits, geo)
    board = _Board(geo, cand, [0] * (n * n))
    for c, d in enumerate(digits):
        if d:
            board.placed[c] = d
    limit = SUDOKU_TECHNIQUES[max_technique] if max_technique is not None else float("inf")
    ladder = {name: t for name, t in _TECHNIQUES.items() if SUDOKU_TECHNIQUES[name] <= limit}
    counts: dict[str, int] = {}
    hardest = "hidden_single"
    while not board.solved:
        name = next((name for name, technique in ladder.items() if technique(board)), None)
        if name is None and max_technique is not None:
            # Beyond the ceiling: the next rung's rating is a lower bound.
            beyond = next(t for t, r in SUDOKU_TECHNIQUES.items() if r > limit)
            rating = SUDOKU_TECHNIQUES[beyond]
            return SudokuRating(rating, sudoku_level(rating), beyond, counts, complete=False)
        if name is None:
            # Nothing applies: guess the solution's digit where the fewest candidates are left.
            name = "trial_and_error"
            open_cells = [c for c in range(n * n) if not board.placed[c]]
            cell = min(open_cells, key=lambda c: geo.popcount[board.cand[c]])
            board.place(cell, solution[cell])
        counts[name] = counts.get(name, 0) + 1
        if SUDOKU_TECHNIQUES[name] > SUDOKU_TECHNIQUES[hardest]:
            hardest = name
    if board.placed != solution:  # every deduction is sound, so the solve ends on the solution
        raise RuntimeError("internal error: the technique solve did not reach the puzzle's solution")
    rating = SUDOKU_TECHNIQUES[hardest]
    return SudokuRating(rating=rating, level=sudoku_level(rating), hardest_technique=hardest, techniques=counts)
