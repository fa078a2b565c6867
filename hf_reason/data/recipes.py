"""The method's training data as one call: N hard puzzles, each with M augmented copies.

The TRM paper trains Sudoku-Extreme on 1000 puzzles with 1000 augmentations each (digit
relabelling, band / stack / row / column shuffles, transposition) and Maze-Hard on 1000 30x30
mazes with the eight dihedral symmetries (the reference repository's `build_sudoku_dataset.py
--subsample-size 1000 --num-aug 1000` and `build_maze_dataset.py`). Both give every example the
blank puzzle identifier 0: their configs learn one shared puzzle embedding. ARC-style configs learn
one embedding per augmented example instead; ``puzzle_identifiers=True`` numbers them so.
"""

from __future__ import annotations

import json
from typing import Optional

import datasets
import numpy as np

from .grid import check_int
from .maze import MAZE_HARD, augment_maze_dataset, generate_mazes
from .sudoku import augment_sudoku_dataset, generate_sudoku


__all__ = [
    "PAPER_MAZE_RECIPE",
    "PAPER_SUDOKU_RECIPE",
    "build_maze_recipe",
    "build_sudoku_recipe",
    "num_puzzle_identifiers",
]

# The paper's data: Sudoku-Extreme 1000 x 1000 augmentations; Maze-Hard 1000 x the 7 non-identity
# dihedral symmetries ("1000 examples, 8 augments" in the reference README).
PAPER_SUDOKU_RECIPE = {"num_puzzles": 1000, "num_augmentations": 1000, "level": "extreme"}
PAPER_MAZE_RECIPE = {"num_mazes": 1000, "num_augmentations": 7}


def _with_identifiers(ds: datasets.Dataset, per_example: bool, recipe: dict) -> datasets.Dataset:
    """Numbers every row 1..len(ds) when `per_example` (0 stays the blank puzzle), and records the recipe
    and the identifier count in `ds.info.description` (JSON)."""
    if per_example:
        ds = ds.remove_columns("puzzle_identifiers").add_column(
            "puzzle_identifiers", np.arange(1, len(ds) + 1, dtype=np.int64)
        )
    count = len(ds) + 1 if per_example else 1
    ds.info.description = json.dumps({**recipe, "num_puzzle_identifiers": count})
    return ds


def num_puzzle_identifiers(ds: datasets.Dataset) -> int:
    """The `num_puzzle_identifiers` a TRM config needs for a recipe dataset (or any dataset with a
    `puzzle_identifiers` column): the recorded count, else the largest identifier plus one."""
    try:
        return int(json.loads(ds.info.description)["num_puzzle_identifiers"])
    except (TypeError, ValueError, KeyError):
        ids = ds["puzzle_identifiers"] if "puzzle_identifiers" in ds.column_names else [0]
        return int(max(ids, default=0)) + 1


def build_sudoku_recipe(
    num_puzzles: int = 1000,
    num_augmentations: int = 1000,
    level: Optional[str] = "extreme",
    puzzle_identifiers: bool = False,
    seed: int = 0,
    source: Optional[datasets.Dataset] = None,
    progress: bool = True,
) -> datasets.Dataset:
    """N Sudoku x (1 + M) copies: the originals first, then copy ``j`` of puzzle ``i`` at ``N * (1 + j) + i``.

    Args:
        num_puzzles: base puzzles N (the paper: 1000).
        num_augmentations: augmented copies M of each (the paper: 1000; `augment_sudoku_dataset`).
        level: the human-technique level of the generated base puzzles (`generate_sudoku(level=...)`;
            the paper's Sudoku-Extreme: ``"extreme"``); ``None`` generates minimal puzzles of any level.
        puzzle_identifiers: give every row its own puzzle identifier (1 .. N * (1 + M)) instead of the
            blank 0; the TRM config then needs `num_puzzle_identifiers(ds)` rows of puzzle embedding.
        seed: seed of generation and augmentation.
        source: base puzzles to use instead of generating them (a dataset with `input_ids` / `labels`
            in the Sudoku token scheme); its first `num_puzzles` rows are taken.
        progress: show progress bars.
    """
    num_puzzles = check_int("num_puzzles", num_puzzles, minimum=1)
    if source is None:
        base = generate_sudoku(num_puzzles, level=level, seed=seed, progress=progress)
    else:
        if len(source) < num_puzzles:
            raise ValueError(f"source has {len(source)} puzzles; num_puzzles asks for {num_puzzles}")
        base = source.select(range(num_puzzles))
    ds = augment_sudoku_dataset(base, num_augmentations, seed=seed, progress=progress)
    recipe = {"task": "sudoku", "num_puzzles": num_puzzles, "num_augmentations": num_augmentations}
    return _with_identifiers(ds, puzzle_identifiers, {**recipe, "level": level, "seed": seed})


def build_maze_recipe(
    num_mazes: int = 1000,
    num_augmentations: int = 7,
    preset: Optional[dict] = None,
    puzzle_identifiers: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> datasets.Dataset:
    """N mazes x (1 + M) dihedral copies (M <= 7), the originals first (`augment_maze_dataset`).

    Args:
        num_mazes: base mazes N (the paper: 1000).
        num_augmentations: distinct non-identity dihedral copies of each, 0..7 (the paper: 7).
        preset: `generate_mazes` arguments; defaults to `MAZE_HARD` (30x30, shortest path > 110).
        puzzle_identifiers: one identifier per row instead of the blank 0 (see `build_sudoku_recipe`).
        seed: seed of generation and augmentation.
        progress: show progress bars.
    """
    num_mazes = check_int("num_mazes", num_mazes, minimum=1)
    preset = dict(MAZE_HARD if preset is None else preset)
    base = generate_mazes(num_mazes, seed=seed, progress=progress, **preset)
    ds = augment_maze_dataset(base, num_augmentations, seed=seed, progress=progress)
    recipe = {"task": "maze", "num_mazes": num_mazes, "num_augmentations": num_augmentations, **preset}
    return _with_identifiers(ds, puzzle_identifiers, {**recipe, "seed": seed})
