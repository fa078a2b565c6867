"""The paper's data recipe (hf_reason.data.recipes) and the vectorised Sudoku transforms it uses."""

import json

import numpy as np
import pytest

from hf_reason.data.maze import MAZE_HARD, is_valid_path
from hf_reason.data.recipes import (
    PAPER_MAZE_RECIPE,
    PAPER_SUDOKU_RECIPE,
    build_maze_recipe,
    build_sudoku_recipe,
    num_puzzle_identifiers,
)
from hf_reason.data.sudoku import (
    apply_sudoku_transforms,
    augment_sudoku_arrays,
    decode_sudoku,
    generate_sudoku,
    invert_sudoku_transforms,
    is_consistent,
    is_valid_solution,
    solve_sudoku,
    sudoku_transforms,
)


@pytest.fixture(scope="module")
def base():
    return generate_sudoku(6, seed=3, progress=False)


def test_paper_recipe_constants():
    assert PAPER_SUDOKU_RECIPE == {"num_puzzles": 1000, "num_augmentations": 1000, "level": "extreme"}
    assert PAPER_MAZE_RECIPE == {"num_mazes": 1000, "num_augmentations": 7}


@pytest.mark.parametrize("size", [9, 4])
def test_transforms_round_trip_and_keep_validity(size, base):
    ds = base if size == 9 else generate_sudoku(6, size=4, seed=3, progress=False)
    x = np.array(ds["input_ids"])
    y = np.array(ds["labels"])
    rng = np.random.default_rng(0)
    cell_maps, token_maps = sudoku_transforms(rng, len(x), size)
    tx, ty = apply_sudoku_transforms(x, cell_maps, token_maps), apply_sudoku_transforms(y, cell_maps, token_maps)
    back_cells, back_tokens = invert_sudoku_transforms(cell_maps, token_maps)
    np.testing.assert_array_equal(apply_sudoku_transforms(tx, back_cells, back_tokens), x)
    np.testing.assert_array_equal(apply_sudoku_transforms(ty, back_cells, back_tokens), y)
    for puzzle_tokens, solution_tokens in zip(tx, ty):
        puzzle, solution = decode_sudoku(puzzle_tokens, size), decode_sudoku(solution_tokens, size)
        assert is_valid_solution(solution, size) and is_consistent(puzzle, solution)
        result = solve_sudoku(puzzle)
        assert result.num_solutions == 1
        np.testing.assert_array_equal(result.solution, solution)


def test_transforms_cover_transposition_and_every_line_shuffle():
    rng = np.random.default_rng(1)
    cell_maps, token_maps = sudoku_transforms(rng, 4000, 9)
    transposed = (cell_maps.reshape(-1, 9, 9)[:, 0, 1] // 9) != (cell_maps.reshape(-1, 9, 9)[:, 0, 0] // 9)
    assert 0.4 < transposed.mean() < 0.6
    assert len({tuple(m) for m in cell_maps[:, :9] // 9}) > 1  # first rows come from several rows
    assert (token_maps[:, :2] == [0, 1]).all() and (np.sort(token_maps[:, 2:], 1) == np.arange(2, 11)).all()
    assert len({tuple(m) for m in cell_maps}) > 3900


def test_augment_arrays_redraws_identity_copies(base):
    x = np.array(base["input_ids"])
    y = np.array(base["labels"])
    ax, ay = augment_sudoku_arrays(x, y, np.random.default_rng(2))
    assert not ((ax == x).all(1) & (ay == y).all(1)).any()
    with pytest.raises(ValueError, match="input_ids must hold flat sequences of 81 tokens"):
        augment_sudoku_arrays(x[:, :80], y, np.random.default_rng(2))


def test_sudoku_recipe_is_n_times_one_plus_m_with_originals_first(base):
    ds = build_sudoku_recipe(4, 3, source=base, seed=5, progress=False)
    assert len(ds) == 4 * (1 + 3)
    assert ds.select(range(4))["input_ids"] == base.select(range(4))["input_ids"]
    for i, row in enumerate(ds):
        source = base[i % 4]
        assert row["num_givens"] == source["num_givens"]
        assert (row["input_ids"] == source["input_ids"]) == (i < 4)
        assert is_consistent(decode_sudoku(row["input_ids"]), decode_sudoku(row["labels"]))
    assert set(ds["puzzle_identifiers"]) == {0} and num_puzzle_identifiers(ds) == 1
    assert json.loads(ds.info.description)["num_augmentations"] == 3
    again = build_sudoku_recipe(4, 3, source=base, seed=5, progress=False)
    assert again["input_ids"] == ds["input_ids"]


def test_sudoku_recipe_identifiers_per_augmentation(base):
    ds = build_sudoku_recipe(3, 2, source=base, puzzle_identifiers=True, progress=False)
    assert ds["puzzle_identifiers"] == list(range(1, 10))
    assert num_puzzle_identifiers(ds) == 10
    with pytest.raises(ValueError, match="source has 6 puzzles"):
        build_sudoku_recipe(7, 1, source=base, progress=False)


def test_sudoku_recipe_generates_extreme_puzzles():
    ds = build_sudoku_recipe(1, 2, level="extreme", seed=0, progress=False)
    assert len(ds) == 3 and set(ds["level"]) == {"extreme"}
    assert all(17 <= n <= 25 for n in ds["num_givens"])


def test_maze_recipe_uses_the_hard_preset():
    ds = build_maze_recipe(2, 7, seed=1, progress=False)
    assert len(ds) == 16
    assert json.loads(ds.info.description)["min_path_length"] == MAZE_HARD["min_path_length"]
    for row in ds:
        assert row["size"] == 30 and row["path_length"] > 110
        assert is_valid_path(row["input_ids"], row["labels"])
    assert len({tuple(x) for x in ds["input_ids"]}) == 16
