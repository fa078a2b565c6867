"""Sudoku generation, solver and augmentation (hf_reason.data.sudoku)."""

import numpy as np
import pytest

from hf_reason.data.sudoku import (
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


# Arto Inkala's 2012 "world's hardest Sudoku" (21 givens) and its published solution.
INKALA = "800000000003600000070090200050007000000045700000100030001000068008500010090000400"
INKALA_SOLUTION = "812753649943682175675491283154237896369845721287169534521974368438526917796318452"
# The first puzzle of Gordon Royle's list of 17-clue Sudokus.
ROYLE_17 = "000000010400000000020000000000050407008000300001090000300400200050100000000806000"
ROYLE_17_SOLUTION = "693784512487512936125963874932651487568247391741398625319475268856129743274836159"


def _grid(digits: str) -> np.ndarray:
    return np.array([int(ch) for ch in digits]).reshape(9, 9)


@pytest.fixture(scope="module")
def ds9():
    return generate_sudoku(40, seed=1, progress=False)


def test_every_puzzle_has_a_unique_solution_matching_labels(ds9):
    assert ds9.column_names == ["input_ids", "labels", "num_givens", "difficulty", "puzzle_identifiers"]
    for row in ds9:
        puzzle = decode_sudoku(row["input_ids"])
        solution = decode_sudoku(row["labels"])
        result = solve_sudoku(puzzle, limit=2)
        assert result.num_solutions == 1
        np.testing.assert_array_equal(result.solution, solution)
        assert is_valid_solution(solution)
        assert is_consistent(puzzle, solution)
        assert row["num_givens"] == np.count_nonzero(puzzle)
        assert row["difficulty"] == result.backtracks
        assert row["puzzle_identifiers"] == 0


def test_puzzles_without_target_are_minimal(ds9):
    for row in ds9.select(range(4)):
        puzzle = decode_sudoku(row["input_ids"])
        for r, c in zip(*np.nonzero(puzzle)):
            reduced = puzzle.copy()
            reduced[r, c] = 0
            assert solve_sudoku(reduced).num_solutions == 2


def test_token_scheme(ds9):
    assert sudoku_vocab_size(9) == 11 and sudoku_vocab_size(4) == 6
    inputs = np.array(ds9["input_ids"])
    labels = np.array(ds9["labels"])
    assert inputs.shape == labels.shape == (40, 81)
    assert inputs.min() == 1 and inputs.max() == 10  # blanks and digits, no pad
    assert labels.min() == 2 and labels.max() == 10  # full solution, digits only
    givens = inputs != 1
    np.testing.assert_array_equal(inputs[givens], labels[givens])
    assert encode_sudoku(decode_sudoku(inputs[0])) == inputs[0].tolist()


def test_naive_generator_mixes_easy_and_search_puzzles(ds9):
    difficulty = np.array(ds9["difficulty"])
    assert (difficulty == 0).any() and (difficulty > 0).any()
    assert 17 <= min(ds9["num_givens"]) and max(ds9["num_givens"]) <= 35


def test_min_difficulty_filter():
    ds = generate_sudoku(4, min_difficulty=4, seed=2, progress=False)
    assert len(ds) == 4
    for row in ds:
        assert row["difficulty"] >= 4
        assert solve_sudoku(decode_sudoku(row["input_ids"])).backtracks >= 4
    assert '"candidates":' in ds.info.description


def test_unreachable_difficulty_gives_up():
    with pytest.raises(RuntimeError, match="min_difficulty"):
        generate_sudoku(1, size=4, min_difficulty=1000, max_candidates=20, progress=False)


def test_min_givens_stops_removal():
    ds = generate_sudoku(8, min_givens=40, seed=5, progress=False)
    assert all(n >= 40 for n in ds["num_givens"]) and 40 in ds["num_givens"]
    for row in ds:
        assert solve_sudoku(decode_sudoku(row["input_ids"])).num_solutions == 1


def test_4x4():
    ds = generate_sudoku(30, size=4, seed=0, progress=False)
    inputs = np.array(ds["input_ids"])
    assert inputs.shape == (30, 16) and inputs.min() >= 1 and inputs.max() <= 5
    for row in ds:
        puzzle = decode_sudoku(row["input_ids"], size=4)
        solution = decode_sudoku(row["labels"], size=4)
        assert is_valid_solution(solution, 4)
        assert is_consistent(puzzle, solution)
        assert solve_sudoku(puzzle).num_solutions == 1


def test_same_seed_same_dataset_different_seed_different():
    a = generate_sudoku(5, seed=3, progress=False)
    b = generate_sudoku(5, seed=3, progress=False)
    c = generate_sudoku(5, seed=4, progress=False)
    assert a.to_dict() == b.to_dict()
    assert a["input_ids"] != c["input_ids"]


def test_solver_on_known_hard_and_17_clue_puzzles():
    hard = solve_sudoku(_grid(INKALA))
    assert hard.num_solutions == 1 and hard.backtracks > 0 and hard.guesses > hard.backtracks
    np.testing.assert_array_equal(hard.solution, _grid(INKALA_SOLUTION))
    seventeen = solve_sudoku(_grid(ROYLE_17))
    assert np.count_nonzero(_grid(ROYLE_17)) == 17
    assert seventeen.num_solutions == 1
    np.testing.assert_array_equal(seventeen.solution, _grid(ROYLE_17_SOLUTION))


def test_solver_counts_up_to_limit_and_detects_clashes():
    empty = np.zeros((9, 9), dtype=int)
    assert solve_sudoku(empty, limit=2).num_solutions == 2
    assert solve_sudoku(empty, limit=5).num_solutions == 5
    clash = empty.copy()
    clash[0, 0] = clash[0, 8] = 3
    result = solve_sudoku(clash)
    assert result.num_solutions == 0 and result.solution is None


def test_validity_helpers_reject_broken_grids():
    solution = _grid(INKALA_SOLUTION)
    assert is_valid_solution(solution) and is_valid_solution(solution.ravel(), 9)
    swapped = solution.copy()
    swapped[0, [0, 1]] = swapped[0, [1, 0]]  # rows stay permutations, columns do not
    assert not is_valid_solution(swapped)
    puzzle = _grid(INKALA)
    assert is_consistent(puzzle, solution)
    assert not is_consistent(puzzle, _grid(ROYLE_17_SOLUTION))


@pytest.mark.parametrize("size", [9, 4])
def test_augmentation_keeps_validity_and_changes_grid(size):
    ds = generate_sudoku(5, size=size, seed=7, progress=False)
    rng = np.random.default_rng(0)
    changed = 0
    for row in ds:
        for _ in range(40):
            x, y = augment_sudoku(row["input_ids"], row["labels"], rng, size=size)
            puzzle, solution = decode_sudoku(x, size), decode_sudoku(y, size)
            assert is_valid_solution(solution, size)
            assert is_consistent(puzzle, solution)
            assert np.count_nonzero(puzzle) == row["num_givens"]
            result = solve_sudoku(puzzle)
            assert result.num_solutions == 1
            np.testing.assert_array_equal(result.solution, solution)
            changed += x != row["input_ids"] or y != row["labels"]
    assert changed == 5 * 40


def test_augment_dataset_keeps_originals_and_is_deterministic(ds9):
    small = ds9.select(range(6))
    aug = augment_sudoku_dataset(small, num_augmentations=3, seed=11, progress=False)
    assert len(aug) == 6 * 4
    assert aug.select(range(6)).to_dict() == small.to_dict()
    assert aug.features == small.features
    for i, row in enumerate(aug.select(range(6, 24))):
        source = small[i % 6]
        assert row["input_ids"] != source["input_ids"]
        assert row["num_givens"] == source["num_givens"]
        assert is_consistent(decode_sudoku(row["input_ids"]), decode_sudoku(row["labels"]))
    again = augment_sudoku_dataset(small, num_augmentations=3, seed=11, progress=False)
    other = augment_sudoku_dataset(small, num_augmentations=3, seed=12, progress=False)
    assert aug.to_dict() == again.to_dict()
    assert aug["input_ids"] != other["input_ids"]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_puzzles": -1}, "num_puzzles"),
        ({"num_puzzles": 1, "size": 5}, "size"),
        ({"num_puzzles": 1, "size": 16}, "size"),
        ({"num_puzzles": 1, "min_givens": 82}, "min_givens"),
        ({"num_puzzles": 1, "min_difficulty": -1}, "min_difficulty"),
        ({"num_puzzles": 1, "seed": -1}, "seed"),
        ({"num_puzzles": 1, "seed": 1.5}, "seed"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        generate_sudoku(progress=False, **kwargs)


def test_bad_grids_are_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="input_ids"):
        augment_sudoku([1] * 80, [2] * 81, rng)
    with pytest.raises(ValueError, match="labels"):
        augment_sudoku([1] * 81, [99] * 81, rng)
    with pytest.raises(ValueError, match="puzzle"):
        solve_sudoku(np.full((9, 9), 10))
    with pytest.raises(ValueError, match="limit"):
        solve_sudoku(np.zeros((9, 9), dtype=int), limit=0)
    with pytest.raises(ValueError, match="num_augmentations"):
        augment_sudoku_dataset(generate_sudoku(1, size=4, progress=False), num_augmentations=-1)


def test_the_one_line_form_round_trips_with_either_blank():
    grid = sudoku_from_text(INKALA)
    assert np.array_equal(grid, _grid(INKALA)) and sudoku_to_text(grid) == INKALA
    dotted = INKALA.replace("0", ".")
    assert np.array_equal(sudoku_from_text(dotted), grid) and sudoku_to_text(grid, blank=".") == dotted
    assert decode_sudoku(encode_sudoku(sudoku_from_text(INKALA_SOLUTION))).tolist() == _grid(INKALA_SOLUTION).tolist()
    assert sudoku_from_text("1.3." * 4).shape == (4, 4)  # the size follows from the length


@pytest.mark.parametrize(
    ("text", "size", "message"),
    [
        ("1080902", None, "81 \\(9x9\\) characters, got 7"),
        (INKALA[:-1] + "x", None, "character 81 of the Sudoku line is 'x'; expected a digit 1-9, or 0 or '.'"),
        ("1234" * 4, 9, "a 9x9 Sudoku line must have 81 characters, got 16"),
        ("1235" * 4, None, "character 4 of the Sudoku line is '5'; expected a digit 1-4"),
        ("٣" * 81, None, "character 1 of the Sudoku line is '٣'"),
        (list(INKALA), None, "must be a string"),
    ],
)
def test_a_bad_sudoku_line_names_what_is_wrong(text, size, message):
    with pytest.raises(ValueError, match=message):
        sudoku_from_text(text, size)
