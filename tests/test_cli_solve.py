"""`hf-reason solve` speaks the puzzles' own forms (Sudoku lines and grids, maze text, ARC grids, token ids),
writes each solution in the form of its puzzle, and refuses a puzzle that does not fit the model in one line."""

import json

import numpy as np
import pytest
import torch
from cli_testing import assert_one_line_error, run_cli
from conftest import tiny_trm_config

from hf_reason import TRMForPuzzleSolving
from hf_reason.data import (
    decode_arc_grid,
    decode_sudoku,
    encode_arc_grid,
    encode_sudoku,
    generate_mazes,
    maze_from_text,
    maze_to_text,
    sudoku_from_text,
    sudoku_to_text,
)


SUDOKU = "800000000003600000070090200050007000000045700000100030001000068008500010090000400"
MAZE_CANVAS = 11  # the maze model's seq_len is 11 * 11: a 9x9 maze is padded into it


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("solve")
    shapes = {
        "sudoku": dict(vocab_size=11, seq_len=81),
        "maze": dict(vocab_size=6, seq_len=MAZE_CANVAS**2),
        "arc": dict(vocab_size=12, seq_len=900, hidden_size=16, intermediate_size=32),
        "plain": dict(vocab_size=11, seq_len=16, num_puzzle_identifiers=3, puzzle_emb_ndim=32),
    }
    for name, shape in shapes.items():
        torch.manual_seed(0)
        TRMForPuzzleSolving(tiny_trm_config(**shape)).save_pretrained(root / name)
    return root


def _solve(models, model, lines, capsys, tmp_path, *flags):
    path = tmp_path / "puzzles.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code, out, err = run_cli(["solve", models / model, "--input", path, "--max-steps", "2", *flags], capsys)
    return code, [json.loads(line) for line in out.splitlines()], err


def _token_predictions(models, model, token_lists, capsys, tmp_path):
    code, results, err = _solve(models, model, [{"input_ids": t} for t in token_lists], capsys, tmp_path)
    assert code == 0, err
    return [np.array(r["prediction"]) for r in results]


def test_sudoku_lines_and_grids_in_and_out(models, capsys, tmp_path):
    grid = sudoku_from_text(SUDOKU)
    puzzles = [
        {"puzzle": SUDOKU, "id": "inkala"},
        {"puzzle": SUDOKU.replace("0", ".")},
        {"puzzle": grid.tolist()},
        SUDOKU,  # the bare line
    ]
    code, results, err = _solve(models, "sudoku", puzzles, capsys, tmp_path)
    assert code == 0 and err == "", err
    # the model saw the encoded puzzle: the same prediction as for its token ids
    (tokens,) = _token_predictions(models, "sudoku", [encode_sudoku(grid)], capsys, tmp_path)
    digits = decode_sudoku(tokens, 9)
    assert results[0] == {"id": "inkala", "solution": sudoku_to_text(digits), "steps": results[0]["steps"]}
    assert results[1]["solution"] == sudoku_to_text(digits, blank=".")
    assert results[2]["solution"] == digits.tolist()
    assert results[3]["solution"] == sudoku_to_text(digits)
    assert all(1 <= r["steps"] <= 2 for r in results)


def test_maze_text_in_and_out_padded_to_the_models_canvas(models, capsys, tmp_path):
    maze = generate_mazes(1, size=9, seed=3, progress=False)[0]["input_ids"]
    text = maze_to_text(maze)
    code, results, err = _solve(
        models, "maze", [{"puzzle": text}, {"puzzle": text.split("\n")}, text.split("\n")], capsys, tmp_path
    )
    assert code == 0, err
    canvas = np.zeros((MAZE_CANVAS, MAZE_CANVAS), dtype=np.int64)
    canvas[:9, :9] = maze_from_text(text)
    (tokens,) = _token_predictions(models, "maze", [canvas.ravel().tolist()], capsys, tmp_path)
    expected = maze_to_text(tokens.reshape(MAZE_CANVAS, MAZE_CANVAS)[:9, :9])
    assert results[0]["solution"] == expected
    assert results[1]["solution"] == results[2]["solution"] == expected.split("\n")


def test_arc_grids_in_and_out(models, capsys, tmp_path):
    grid = [[0, 1, 2], [3, 4, 5]]
    code, results, err = _solve(models, "arc", [{"input": grid}, {"puzzle": grid}, grid], capsys, tmp_path)
    assert code == 0, err
    (tokens,) = _token_predictions(models, "arc", [encode_arc_grid(np.array(grid)).tolist()], capsys, tmp_path)
    assert all(r["solution"] == decode_arc_grid(tokens).tolist() for r in results)


def test_token_ids_stay_available(models, capsys, tmp_path):
    tokens = encode_sudoku(sudoku_from_text(SUDOKU))
    code, results, err = _solve(models, "sudoku", [tokens, {"input_ids": tokens}], capsys, tmp_path)
    assert code == 0 and results[0]["prediction"] == results[1]["prediction"]
    assert len(results[0]["prediction"]) == 81
    code, results, err = _solve(models, "sudoku", [tokens], capsys, tmp_path, "--format", "tokens")
    assert code == 0 and len(results[0]["prediction"]) == 81
    # a model whose config describes no puzzle takes token ids, with its puzzle identifiers
    code, results, err = _solve(
        models, "plain", [{"input_ids": [2] * 16, "puzzle_identifiers": 2}, [3] * 16], capsys, tmp_path
    )
    assert code == 0 and [len(r["prediction"]) for r in results] == [16, 16], err


@pytest.mark.parametrize(
    ("model", "line", "flags", "message"),
    [
        ("sudoku", {"puzzle": "1080902"}, [], "line 1: `puzzle`: a 9x9 Sudoku line must have 81 characters, got 7."),
        ("sudoku", {"puzzle": [[0] * 9] * 8}, [], "`puzzle` must be a 9x9 Sudoku: a string of 81 characters"),
        ("sudoku", {"puzzle": [[0] * 9] * 8 + [[0] * 8]}, [], "`puzzle` row 9 has length 8, row 1 has 9"),
        ("sudoku", [1] * 80, [], "puzzle must be a flat list of 81 token ids (the model's seq_len), got 80."),
        ("sudoku", [1] * 80 + [1.0], [], "puzzle[80] is the number 1.0; expected an integer."),
        ("sudoku", [True] * 81, [], "puzzle[0] is the boolean true; expected an integer."),
        ("sudoku", {"input_ids": [1] * 80 + [11]}, [], "`input_ids`[80] is 11; expected a token id below"),
        ("sudoku", {"puzzle": [[10] * 9] * 9}, [], "`puzzle`[0][0] is 10; expected a digit, 0 for a blank (0-9)."),
        ("sudoku", {"puzzle": SUDOKU}, ["--format", "maze"], "--format maze does not fit the model, a 9x9 Sudoku"),
        ("sudoku", {"puzzle": SUDOKU, "input_ids": [1]}, [], "expected exactly one of `puzzle`, `input_ids`"),
        ("sudoku", {"puzzel": SUDOKU}, [], "expected exactly one of `puzzle`, `input_ids`, `input`, got fields"),
        ("sudoku", 7, [], "puzzle must be a 9x9 Sudoku"),
        ("maze", {"puzzle": ["#" * 12] * 12}, [], "is a 12x12 maze; the model, a maze solver (vocab_size 6, seq_len"),
        ("maze", {"puzzle": "##\n#"}, [], "row 2 of the maze has 1 characters"),
        ("arc", {"puzzle": [[1, 2], [3, 10]]}, [], "`puzzle`[1][1] is 10; expected a colour (0-9)."),
        ("arc", {"puzzle": [[1] * 31]}, [], "grid must be 2-D with sides between 1 and 30"),
        ("plain", {"puzzle": "1234"}, [], "is not a Sudoku, maze or ARC model, so its puzzles are token ids"),
        ("plain", {"input_ids": [1] * 16, "puzzle_identifiers": 3}, [], "`puzzle_identifiers` must be an integer"),
    ],
)
def test_a_puzzle_that_does_not_fit_is_one_line_naming_what_was_expected(
    models, capsys, tmp_path, model, line, flags, message
):
    code, results, err = _solve(models, model, [line], capsys, tmp_path, *flags)
    assert results == []
    assert_one_line_error(code, err, message)


def test_bad_input_files_and_model_folders(models, capsys, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"puzzle": SUDOKU}) + "\n")
    cases = [
        (["solve", tmp_path / "no-model", "--input", good], f"{tmp_path / 'no-model'}: no such folder"),
        (["solve", good, "--input", good], f"{good} is a file; expected a model folder"),
        (["solve", tmp_path, "--input", good], f"{tmp_path} has no config.json"),
        (["solve", models / "sudoku", "--input", tmp_path / "none.jsonl"], "none.jsonl: no such file"),
        (["solve", models / "sudoku", "--input", tmp_path], f"{tmp_path} is a folder; expected a JSONL file"),
    ]
    for argv, message in cases:
        code, _, err = run_cli(argv, capsys)
        assert_one_line_error(code, err, message)
