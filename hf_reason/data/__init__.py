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
from .arithmetic import extract_answer, generate_arithmetic, is_correct
from .clarification import (
    evaluate_arithmetic,
    generate_clarification_tasks,
    score_clarification,
    story_answer,
    story_answer_schema,
)
from .control_tokens import CLARIFY_TOKEN, CONTROL_TOKENS, THOUGHT_END, THOUGHT_START, add_control_tokens
from .countdown import (
    check_countdown,
    format_countdown_prompt,
    generate_24_game,
    generate_countdown,
    is_valid_countdown,
    solve_countdown,
)
from .curated_tasks import CuratedTaskError, generated_entries, load_curated_tasks
from .grid import dihedral_transform, inverse_dihedral_index, inverse_dihedral_transform
from .instructions import NEGATIVE_KINDS, generate_instruction_tasks
from .maze import MAZE_HARD, augment_maze_dataset, generate_mazes, is_valid_path, maze_from_text, maze_to_text
from .planning import check_plan, generate_planning
from .preferences import build_preference_pairs, find_chat_template_tokens, generate_length_biased_preferences
from .recipes import build_maze_recipe, build_sudoku_recipe, num_puzzle_identifiers
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
    sudoku_from_text,
    sudoku_to_text,
    sudoku_vocab_size,
)
from .sudoku_rating import SudokuRating, rate_sudoku
from .text import build_gpt2_style_tokenizer, build_tokenizer, load_text_corpus
from .theory_of_mind import generate_tom_stories


__all__ = [
    "NEGATIVE_KINDS",
    "generate_instruction_tasks",
    "check_countdown",
    "format_countdown_prompt",
    "generate_24_game",
    "generate_countdown",
    "is_valid_countdown",
    "solve_countdown",
    "CLARIFY_TOKEN",
    "CONTROL_TOKENS",
    "THOUGHT_END",
    "THOUGHT_START",
    "add_control_tokens",
    "evaluate_arithmetic",
    "generate_clarification_tasks",
    "score_clarification",
    "story_answer",
    "story_answer_schema",
    "MAZE_HARD",
    "SudokuRating",
    "build_maze_recipe",
    "build_sudoku_recipe",
    "num_puzzle_identifiers",
    "rate_sudoku",
    "CuratedTaskError",
    "check_plan",
    "generate_planning",
    "generate_tom_stories",
    "generated_entries",
    "load_curated_tasks",
    "SudokuSolveResult",
    "apply_arc_augmentation",
    "arc_puzzle_identifier_map",
    "augment_maze_dataset",
    "augment_sudoku",
    "augment_sudoku_dataset",
    "build_gpt2_style_tokenizer",
    "build_preference_pairs",
    "build_tokenizer",
    "decode_arc_grid",
    "decode_sudoku",
    "dihedral_transform",
    "encode_arc_grid",
    "encode_sudoku",
    "extract_answer",
    "find_chat_template_tokens",
    "generate_arithmetic",
    "generate_length_biased_preferences",
    "generate_mazes",
    "generate_sudoku",
    "invert_arc_augmentation",
    "inverse_dihedral_index",
    "inverse_dihedral_transform",
    "is_consistent",
    "is_correct",
    "is_valid_path",
    "is_valid_solution",
    "load_arc",
    "load_text_corpus",
    "maze_from_text",
    "maze_to_text",
    "parse_arc_augmentation",
    "solve_sudoku",
    "sudoku_from_text",
    "sudoku_to_text",
    "sudoku_vocab_size",
]
