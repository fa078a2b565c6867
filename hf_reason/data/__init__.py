"""Puzzle and reasoning-task data, generated offline as `datasets.Dataset`."""

from .arc import (
    apply_arc_augmentation,
    arc_puzzle_identifier_map,
    decode_arc_grid,
    encode_arc_grid,
    invert_arc_augmentation,
    load_arc,
    parse_arc_augmentation,
)
from .grid import dihedral_transform, inverse_dihedral_index, inverse_dihedral_transform
from .maze import augment_maze_dataset, generate_mazes, is_valid_path, maze_to_text
from .sudoku import (
    SudokuSolveResult,
    augment_sudoku,
    augment_sudoku_dataset,
    decode_sudoku,
    encode_sudoku,
    generate_sudoku,
    is_consistent,
    is_valid_solution,
    solve_sudoku,
    sudoku_vocab_size,
)

__all__ = [
    "SudokuSolveResult",
    "apply_arc_augmentation",
    "arc_puzzle_identifier_map",
    "augment_maze_dataset",
    "augment_sudoku",
    "augment_sudoku_dataset",
    "decode_arc_grid",
    "decode_sudoku",
    "dihedral_transform",
    "encode_arc_grid",
    "encode_sudoku",
    "generate_mazes",
    "generate_sudoku",
    "invert_arc_augmentation",
    "inverse_dihedral_index",
    "inverse_dihedral_transform",
    "is_consistent",
    "is_valid_path",
    "is_valid_solution",
    "load_arc",
    "maze_to_text",
    "parse_arc_augmentation",
    "solve_sudoku",
    "sudoku_vocab_size",
]
