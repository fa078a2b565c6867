# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The puzzles `hf-reason solve` reads and writes, in their own forms, checked against the model's config.

A line of the input is one puzzle: a JSON object with `puzzle` (the puzzle in its usual form) or
`input_ids` (token ids), optional `puzzle_identifiers` and `id` (echoed), or the bare puzzle. The forms:

- sudoku: the one-line string (`"1080902..."`, 81 characters, `0` or `.` for a blank), or a 9x9 list of
  digits (4x4 for a 4x4 model);
- maze: the maze as text, one string with a row per line or a list of rows (`#` wall, space open, `S`,
  `G`), drawn as `maze_to_text` draws it; a maze smaller than the model's canvas is padded;
- arc: an ARC grid, a list of rows of colours 0-9 (`{"input": grid}` as in an ARC task file works too);
- tokens: the model's token ids (a flat list: the bare list form, or `input_ids`).

The model's `vocab_size` and `seq_len` say which puzzle it solves (`puzzle_spec`); `--format auto` reads
the puzzles in that form, token ids excepted. A solution is written in the form of its puzzle. The
encoders are the data modules' (`encode_sudoku`, `maze_from_text`, `encode_arc_grid` and their inverses).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..data.arc import ARC_NUM_COLORS, ARC_SEQ_LEN, ARC_VOCAB_SIZE, decode_arc_grid, encode_arc_grid
from ..data.grid import pad_grid
from ..data.maze import MAZE_MIN_SIZE, MAZE_PAD_TOKEN, MAZE_VOCAB_SIZE, maze_from_text, maze_to_text
from ..data.sudoku import decode_sudoku, encode_sudoku, sudoku_from_text, sudoku_to_text, sudoku_vocab_size
from .inputs import CLIError, describe_value


# The fields that hold the puzzle: its own form, token ids, or an ARC pair's input grid.
_PUZZLE_FIELDS = ("puzzle", "input_ids", "input")
_FORMAT_NEEDS = {
    "sudoku": f"vocab_size {sudoku_vocab_size(9)} and seq_len 81 (9x9), or vocab_size {sudoku_vocab_size(4)} and "
    "seq_len 16 (4x4)",
    "maze": f"vocab_size {MAZE_VOCAB_SIZE} and a seq_len that is the square of a side >= {MAZE_MIN_SIZE}",
    "arc": f"vocab_size {ARC_VOCAB_SIZE} and seq_len {ARC_SEQ_LEN}",
}


@dataclass(frozen=True)
class PuzzleSpec:
    """What a TRM's config says about its puzzles.

    Attributes:
        format: `"sudoku"`, `"maze"`, `"arc"`, or None when the vocabulary and length fit none of them.
        vocab_size, seq_len, num_puzzle_identifiers: the config's.
        side: the side of the square the `seq_len` tokens form (0 when `seq_len` is not a square).
    """

    format: Optional[str]
    vocab_size: int
    seq_len: int
    num_puzzle_identifiers: int
    side: int

    def describe(self) -> str:
        kind = {"sudoku": f"a {self.side}x{self.side} Sudoku", "maze": "a maze", "arc": "an ARC"}.get(self.format)
        solver = f", {kind} solver" if kind else ""
        return f"the model{solver} (vocab_size {self.vocab_size}, seq_len {self.seq_len})"


def puzzle_spec(config) -> PuzzleSpec:
    """The puzzles a TRM config's vocabulary and length describe (the data modules' token schemes)."""
    vocab, seq_len = int(config.vocab_size), int(config.seq_len)
    side = math.isqrt(seq_len) if math.isqrt(seq_len) ** 2 == seq_len else 0
    puzzle = None
    if vocab == ARC_VOCAB_SIZE and seq_len == ARC_SEQ_LEN:
        puzzle = "arc"
    elif vocab == MAZE_VOCAB_SIZE and side >= MAZE_MIN_SIZE:
        puzzle = "maze"
    elif side in (4, 9) and vocab == sudoku_vocab_size(side):
        puzzle = "sudoku"
    return PuzzleSpec(puzzle, vocab, seq_len, int(getattr(config, "num_puzzle_identifiers", 1)), side)


def check_format(spec: PuzzleSpec, requested: str) -> None:
    """`CLIError` when `--format` names a puzzle the model's config does not describe."""
    if requested in _FORMAT_NEEDS and spec.format != requested:
        raise CLIError(
            f"--format {requested} does not fit {spec.describe()}: a {requested} model has "
            f"{_FORMAT_NEEDS[requested]}." + ("" if spec.format is None else f" Use --format {spec.format} or auto.")
        )


@dataclass
class Puzzle:
    """One parsed puzzle: the model's input and how to write its solution in the puzzle's own form."""

    input_ids: list[int]
    format: str
    render: Callable[[np.ndarray], Any]
    puzzle_identifier: Optional[int] = None
    extra: dict = field(default_factory=dict)

    def result(self, prediction: np.ndarray, steps: int) -> dict:
        """The output line: `solution` in the puzzle's form (`prediction`: token ids), and the steps run."""
        key = "prediction" if self.format == "tokens" else "solution"
        return {**self.extra, key: self.render(np.asarray(prediction)), "steps": int(steps)}


def parse_puzzle(value: Any, where: str, spec: PuzzleSpec, requested: str = "auto") -> Puzzle:
    """Reads one input line's puzzle (`where` names the line in messages) in the `requested` format.

    Raises `CLIError` naming the line and field when the puzzle is malformed or does not fit the model.
    """
    extra, identifier = {}, None
    if isinstance(value, dict):
        present = [key for key in _PUZZLE_FIELDS if key in value]
        if len(present) != 1:
            fields = ", ".join(f"`{key}`" for key in _PUZZLE_FIELDS)
            got = f"fields {sorted(value)}" if value else "an empty object"
            raise CLIError(f"{where}: expected exactly one of {fields}, got {got}.")
        label, payload = f"`{present[0]}`", value[present[0]]
        identifier = _puzzle_identifier(value, where, spec)
        if "id" in value:
            extra["id"] = value["id"]
        tokens = present[0] == "input_ids"
    else:
        label, payload = "puzzle", value
        # the bare flat list is the token-id form `hf-reason solve` has always read
        tokens = isinstance(payload, list) and not any(isinstance(item, (list, str)) for item in payload)
    puzzle = requested
    if requested == "auto":
        puzzle = "tokens" if tokens else spec.format
        if puzzle is None:
            raise CLIError(
                f"{where}: {spec.describe()} is not a Sudoku, maze or ARC model, so its puzzles are token ids: "
                f'{{"input_ids": [...]}} with {spec.seq_len} ids below {spec.vocab_size}.'
            )
    elif label == "`input_ids`" and requested != "tokens":
        raise CLIError(
            f"{where}: `input_ids` holds token ids; give the {requested} as `puzzle`, or use --format tokens."
        )
    parse = {"tokens": _tokens, "sudoku": _sudoku, "maze": _maze, "arc": _arc}[puzzle]
    input_ids, render = parse(payload, where, label, spec)
    return Puzzle(input_ids=input_ids, format=puzzle, render=render, puzzle_identifier=identifier, extra=extra)


def _puzzle_identifier(record: dict, where: str, spec: PuzzleSpec) -> Optional[int]:
    value = record.get("puzzle_identifiers")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < spec.num_puzzle_identifiers:
        raise CLIError(
            f"{where}: `puzzle_identifiers` must be an integer from 0 to {spec.num_puzzle_identifiers - 1} (the "
            f"model's num_puzzle_identifiers is {spec.num_puzzle_identifiers}), got {describe_value(value)}."
        )
    return value


def _integers(payload: Any, where: str, label: str, expected: str) -> np.ndarray:
    """A JSON list of integers, or a rectangular list of lists of them, as an array; `CLIError` naming the
    first element that is not an integer (booleans and floats included) or the first ragged row."""
    if not isinstance(payload, list) or not payload:
        raise CLIError(f"{where}: {label} must be {expected}, got {describe_value(payload)}.")
    if all(isinstance(row, list) for row in payload):
        width = len(payload[0])
        for r, row in enumerate(payload):
            if len(row) != width:
                raise CLIError(
                    f"{where}: {label} row {r + 1} has length {len(row)}, row 1 has {width}; expected {expected}."
                )
            for c, item in enumerate(row):
                if isinstance(item, bool) or not isinstance(item, int):
                    raise CLIError(f"{where}: {label}[{r}][{c}] is {describe_value(item)}; expected an integer.")
    else:
        for i, item in enumerate(payload):
            if isinstance(item, bool) or not isinstance(item, int):
                raise CLIError(f"{where}: {label}[{i}] is {describe_value(item)}; expected an integer.")
    try:
        return np.array(payload, dtype=np.int64)
    except OverflowError:
        raise CLIError(f"{where}: {label} holds an integer beyond 64 bits; expected {expected}.") from None


def _check_range(arr: np.ndarray, low: int, high: int, where: str, label: str, meaning: str) -> None:
    bad = np.argwhere((arr < low) | (arr > high))
    if len(bad):
        index = "".join(f"[{i}]" for i in bad[0])
        raise CLIError(f"{where}: {label}{index} is {arr[tuple(bad[0])]}; expected {meaning} ({low}-{high}).")


def _tokens(payload, where, label, spec: PuzzleSpec):
    arr = _integers(payload, where, label, f"a list of {spec.seq_len} token ids")
    if arr.ndim != 1 or arr.size != spec.seq_len:
        raise CLIError(
            f"{where}: {label} must be a flat list of {spec.seq_len} token ids (the model's seq_len), got "
            f"{arr.size if arr.ndim == 1 else 'shape ' + 'x'.join(map(str, arr.shape))}."
        )
    _check_range(
        arr, 0, spec.vocab_size - 1, where, label, f"a token id below the model's vocab_size {spec.vocab_size}"
    )
    return arr.tolist(), lambda prediction: prediction.tolist()


def _sudoku(payload, where, label, spec: PuzzleSpec):
    n = spec.side
    if isinstance(payload, str):
        try:
            digits = sudoku_from_text(payload, n)
        except ValueError as error:
            raise CLIError(f"{where}: {label}: {error}.") from None
        blank = "." if "." in payload else "0"
        return encode_sudoku(digits), lambda prediction: sudoku_to_text(decode_sudoku(prediction, n), blank)
    expected = f"a {n}x{n} Sudoku: a string of {n * n} characters, or a {n}x{n} list of digits (0 = blank)"
    arr = _integers(payload, where, label, expected)
    if arr.shape not in ((n, n), (n * n,)):
        raise CLIError(f"{where}: {label} must be {expected}, got shape {'x'.join(map(str, arr.shape))}.")
    _check_range(arr, 0, n, where, label, "a digit, 0 for a blank")
    shape = arr.shape
    return encode_sudoku(arr), lambda prediction: decode_sudoku(prediction, n).reshape(shape).tolist()


def _maze(payload, where, label, spec: PuzzleSpec):
    try:
        grid = maze_from_text(payload)
    except ValueError as error:
        raise CLIError(f"{where}: {label}: {error}.") from None
    side, canvas = grid.shape[0], spec.side
    if side > canvas:
        raise CLIError(
            f"{where}: {label} is a {side}x{side} maze; {spec.describe()} solves mazes up to {canvas}x{canvas}."
        )
    as_lines = not isinstance(payload, str)

    def render(prediction: np.ndarray):
        text = maze_to_text(prediction.reshape(canvas, canvas)[:side, :side])
        return text.split("\n") if as_lines else text

    return pad_grid(grid, canvas, MAZE_PAD_TOKEN).ravel().tolist(), render


def _arc(payload, where, label, spec: PuzzleSpec):
    expected = "an ARC grid: a list of rows of colours 0-9"
    arr = _integers(payload, where, label, expected)
    if arr.ndim != 2:
        raise CLIError(f"{where}: {label} must be {expected}, got a flat list.")
    _check_range(arr, 0, ARC_NUM_COLORS - 1, where, label, "a colour")
    try:
        tokens = encode_arc_grid(arr)
    except ValueError as error:
        raise CLIError(f"{where}: {label}: {error}.") from None
    return tokens.tolist(), lambda prediction: decode_arc_grid(prediction).tolist()
