# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The TRM tabs: a Sudoku refined supervision step after supervision step, and a maze with its path.

Every step is one run of the supervision loop (`supervision_steps`) with the model as its step function, so
the board after each step, the halting head's logits and its decision are those `TRMForPuzzleSolving.solve`
computes; the app runs every step up to the budget and shows where the halting head stops.
"""

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..cli.inputs import CLIError
from ..cli.puzzles import parse_puzzle, puzzle_spec
from ..data.maze import (
    MAZE_GOAL_TOKEN,
    MAZE_OPEN_TOKEN,
    MAZE_PAD_TOKEN,
    MAZE_PATH_TOKEN,
    MAZE_START_TOKEN,
    MAZE_WALL_TOKEN,
    generate_mazes,
    is_valid_path,
    maze_to_text,
)
from ..data.sudoku import decode_sudoku, generate_sudoku, solve_sudoku, sudoku_to_text
from ..models.trm.supervision import supervision_steps
from .common import (
    AppInputError,
    LoadedModel,
    check_int_input,
    click_refilling_table,
    figure_to_image,
    page_message,
    pyplot,
)


SUDOKU_LEVELS = ("easy", "medium", "hard", "expert", "extreme")
MAX_APP_STEPS = 16
STEP_TABLE_HEADERS = ["step", "wrong cells", "halting logit", "halting head says"]
MAZE_TABLE_HEADERS = ["step", "path cells", "halting logit", "halting head says"]


@dataclass
class StepTrace:
    """Every supervision step of one puzzle.

    Attributes:
        predictions: `(num_steps, seq_len)` token ids after each step.
        q_halt: `(num_steps,)` the halting head's logit after each step.
        halts: `(num_steps,)` the halting rule's decision after each step.
        steps_used: the first step where the rule halts (the budget when it never does).
    """

    predictions: np.ndarray
    q_halt: np.ndarray
    halts: np.ndarray
    steps_used: int


def iter_trace_steps(model, input_ids: list[int], max_steps: int) -> Iterator[StepTrace]:
    """Runs `max_steps` supervision steps on one puzzle with `model` (a TRM or its ONNX Runtime wrapper) and
    yields the trace so far after each step (`steps_used`: the first step the rule halts at, or the steps run)."""
    predictions, q_halt, halts = [], [], []
    with torch.no_grad():
        for record in supervision_steps(model, max_steps, input_ids=torch.tensor([input_ids], dtype=torch.long)):
            output = record.output
            predictions.append(output.logits.argmax(-1)[0].cpu().numpy())
            q_halt.append(float(output.q_halt_logits[0]))
            halts.append(bool(model.halt_decision(output.q_halt_logits, output.q_continue_logits)[0]))
            halted = np.array(halts)
            steps_used = int(np.argmax(halted)) + 1 if halted.any() else len(halts)
            yield StepTrace(np.stack(predictions), np.array(q_halt), halted, steps_used)


def trace_steps(model, input_ids: list[int], max_steps: int) -> StepTrace:
    """Every one of `max_steps` supervision steps on one puzzle (the last trace of `iter_trace_steps`)."""
    return deque(iter_trace_steps(model, input_ids, max_steps), maxlen=1)[0]


def sudoku_line(text: str) -> str:
    """The one-line form of a typed Sudoku: one line of 81 characters, or 9 rows of 9 (spaces, `|` and rule
    lines such as `------+-------` are ignored); `AppInputError` naming the row that does not fit."""
    if not isinstance(text, str) or not text.strip():
        raise AppInputError(
            "the Sudoku is empty: type or paste 81 digits (0 or '.' for a blank), one line or 9 rows, "
            "or pick a level and press Generate."
        )
    rows = []
    for line in text.strip().splitlines():
        cells = line.replace(" ", "").replace("|", "").replace("\t", "")
        if cells and set(cells) - set("-+="):
            rows.append(cells)
    if len(rows) == 1:
        return rows[0]
    if len(rows) != 9:
        raise AppInputError(f"the Sudoku has {len(rows)} rows; expected 9 rows of 9 cells, or one line of 81.")
    for number, row in enumerate(rows, 1):
        if len(row) != 9:
            raise AppInputError(
                f"row {number} of the Sudoku has {len(row)} cells ({row!r}); expected 9 (digits 1-9, 0 or '.' "
                "for a blank)."
            )
    return "".join(rows)


def parse_sudoku(text: str, model) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Reads a typed Sudoku for `model`: its token ids, its digits and its solution (the first, when several).

    Raises `AppInputError` for a malformed grid or one without a solution.
    """
    spec = puzzle_spec(model.config)
    try:
        puzzle = parse_puzzle(sudoku_line(text), "the Sudoku", spec, "sudoku")
    except CLIError as error:
        raise AppInputError(str(error)) from None
    digits = np.asarray(decode_sudoku(puzzle.input_ids, spec.side))
    result = solve_sudoku(digits, limit=2)
    if result.num_solutions == 0:
        raise AppInputError(
            "this Sudoku has no solution: two givens clash in a row, column or box, or no digit fits some "
            "blank cell. Check the digits you typed."
        )
    return puzzle.input_ids, digits, result.solution


def draw_sudoku_steps(digits: np.ndarray, solution: np.ndarray, trace: StepTrace, columns: int = 4):
    """One board per supervision step: givens in black, right answers blue, wrong cells red on pink."""
    plt = pyplot()
    n = digits.shape[0]
    box = int(round(n**0.5))
    num_steps = len(trace.predictions)
    rows = -(-num_steps // columns)
    cols = min(columns, num_steps)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for step, ax in enumerate(axes.ravel()[:num_steps]):
        board = np.asarray(decode_sudoku(trace.predictions[step], n))
        wrong = board != solution
        for r in range(n):
            for c in range(n):
                if wrong[r, c]:
                    ax.add_patch(plt.Rectangle((c, n - 1 - r), 1, 1, color="#f6c7c7"))
                given = digits[r, c] != 0
                colour = "black" if given else ("#c00000" if wrong[r, c] else "#1f5fbf")
                ax.text(c + 0.5, n - 0.5 - r, str(board[r, c]), ha="center", va="center", fontsize=8, color=colour)
        for i in range(n + 1):
            width = 1.6 if i % box == 0 else 0.4
            ax.plot([i, i], [0, n], color="black", lw=width)
            ax.plot([0, n], [i, i], color="black", lw=width)
        ax.set_xlim(0, n), ax.set_ylim(0, n), ax.set_aspect("equal")
        halted = " - halts" if step + 1 == trace.steps_used and trace.halts[step] else ""
        ax.set_title(f"step {step + 1}: {int(wrong.sum())} wrong{halted}", fontsize=9)
    fig.suptitle("TRM refining the Sudoku step by step (red: wrong cells)", fontsize=10)
    fig.tight_layout()
    return figure_to_image(fig)


def _halting_words(halts: bool) -> str:
    return "halt" if halts else "continue"


def _sudoku_frame(trace: StepTrace, digits: np.ndarray, solution: np.ndarray, steps: int) -> tuple:
    """`(image, message, step table rows)` for the steps traced so far; the verdict once all `steps` ran."""
    n = digits.shape[0]
    table = [
        [i + 1, int((np.asarray(decode_sudoku(p, n)) != solution).sum()), round(float(q), 3), _halting_words(h)]
        for i, (p, q, h) in enumerate(zip(trace.predictions, trace.q_halt, trace.halts))
    ]
    if len(table) < steps:
        message = f"Step {len(table)} of {steps} ..."
    else:
        final = np.asarray(decode_sudoku(trace.predictions[trace.steps_used - 1], n))
        wrong = int((final != solution).sum())
        halted = f"halts after step {trace.steps_used}" if trace.halts.any() else f"never halts in {steps} steps"
        verdict = "**solved**" if wrong == 0 else f"**{wrong} wrong cells**"
        message = (
            f"The halting head {halted}; at that step the board has {verdict} (answer: `{sudoku_to_text(final)}`)."
        )
    return draw_sudoku_steps(digits, solution, trace), message, table


def watch_sudoku_page(loaded: LoadedModel, text: str, max_steps) -> Iterator[tuple]:
    """The Sudoku tab's handler: yields `(image, message, step table rows)` after every supervision step, so
    the page shows the board being refined; the last one has the halting head's verdict. A bad input or a
    failing model yields a message in the page instead."""
    try:
        steps = check_int_input(max_steps, "the step budget", 1, MAX_APP_STEPS)
        input_ids, digits, solution = parse_sudoku(text, loaded.model)
        for trace in iter_trace_steps(loaded.model, input_ids, steps):
            yield _sudoku_frame(trace, digits, solution, steps)
    except Exception as error:
        yield None, page_message(error), []


def solve_sudoku_page(loaded: LoadedModel, text: str, max_steps) -> tuple:
    """`(image, message, step table rows)` after the last supervision step (the last page `watch_sudoku_page`
    shows)."""
    return deque(watch_sudoku_page(loaded, text, max_steps), maxlen=1)[0]


def generated_sudoku(level: str, seed) -> tuple[str, str]:
    """The Generate button: `(the Sudoku as 9 rows, message)` for a puzzle of `level`, by the generator."""
    if level not in SUDOKU_LEVELS:
        return "", page_message(AppInputError(f"the level must be one of {', '.join(SUDOKU_LEVELS)}, got {level!r}."))
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        return "", page_message(AppInputError(f"the seed must be a whole number, got {seed!r}."))
    row = generate_sudoku(1, level=level, seed=seed, progress=False)[0]
    line = sudoku_to_text(decode_sudoku(row["input_ids"], 9))
    grid = "\n".join(line[i : i + 9] for i in range(0, 81, 9))
    return grid, f"A {level} Sudoku with {row['num_givens']} givens (seed {seed}). Press Solve."


def _maze_side(model) -> int:
    return puzzle_spec(model.config).side


def generated_maze(loaded: LoadedModel, seed) -> tuple[str, str]:
    """The maze tab's Generate button: `(maze text, message)` for a maze as large as the model's canvas."""
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        return "", page_message(AppInputError(f"the seed must be a whole number, got {seed!r}."))
    side = _maze_side(loaded.model)
    row = generate_mazes(1, size=side, seed=seed, progress=False)[0]
    return maze_to_text(row["input_ids"]), f"A {side}x{side} maze (seed {seed}). Press Solve."


def parse_maze(text: str, model) -> tuple[list[int], np.ndarray]:
    """Reads a typed maze for `model`: its token ids (padded to the canvas) and the maze's token grid.

    Raises `AppInputError` when the text is not a maze, does not fit the model, or has no way from S to G.
    """
    from scipy import ndimage

    if not isinstance(text, str) or not text.strip():
        raise AppInputError(
            "the maze is empty: draw it with '#' walls, spaces, one 'S' and one 'G', or press Generate."
        )
    spec = puzzle_spec(model.config)
    try:
        puzzle = parse_puzzle(text.strip("\n"), "the maze", spec, "maze")
    except CLIError as error:
        raise AppInputError(str(error)) from None
    grid = np.asarray(puzzle.input_ids).reshape(spec.side, spec.side)
    starts, goals = np.argwhere(grid == MAZE_START_TOKEN), np.argwhere(grid == MAZE_GOAL_TOKEN)
    if len(starts) != 1 or len(goals) != 1:
        raise AppInputError(f"the maze needs exactly one 'S' and one 'G', got {len(starts)} and {len(goals)}.")
    # S and G in one 4-connected region of non-wall cells: otherwise no path exists.
    regions, _ = ndimage.label((grid != MAZE_WALL_TOKEN) & (grid != MAZE_PAD_TOKEN))
    if regions[tuple(starts[0])] != regions[tuple(goals[0])]:
        raise AppInputError("this maze has no path from 'S' to 'G': walls separate them.")
    return puzzle.input_ids, grid


def draw_maze(grid: np.ndarray, prediction: np.ndarray, title: str):
    """The maze with the predicted path: walls black, path blue, S green, G red, path cells on walls orange."""
    from matplotlib.colors import ListedColormap

    plt = pyplot()
    colours = np.zeros(grid.shape, dtype=int)  # 0 open
    colours[grid == MAZE_WALL_TOKEN] = 1
    on_path = prediction == MAZE_PATH_TOKEN
    colours[on_path & (grid == MAZE_OPEN_TOKEN)] = 2
    colours[on_path & (grid == MAZE_WALL_TOKEN)] = 5  # a path through a wall: a wrong cell
    colours[grid == MAZE_START_TOKEN] = 3
    colours[grid == MAZE_GOAL_TOKEN] = 4
    colours[grid == MAZE_PAD_TOKEN] = 6
    cmap = ListedColormap(["white", "black", "#1f5fbf", "#2ca02c", "#d62728", "#ff9f1c", "#dddddd"])
    fig, ax = plt.subplots(figsize=(4.5, 4.8))
    ax.imshow(colours, cmap=cmap, vmin=0, vmax=6, interpolation="nearest")
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return figure_to_image(fig)


def solve_maze_page(loaded: LoadedModel, text: str, max_steps):
    """The maze tab's handler: `(image, message, step table rows)` for the typed maze."""
    try:
        steps = check_int_input(max_steps, "the step budget", 1, MAX_APP_STEPS)
        input_ids, grid = parse_maze(text, loaded.model)
        trace = trace_steps(loaded.model, input_ids, steps)
    except Exception as error:
        return None, page_message(error), []
    side = grid.shape[0]
    final = trace.predictions[trace.steps_used - 1].reshape(side, side)
    valid = is_valid_path(grid, np.where(grid == MAZE_OPEN_TOKEN, final, grid))
    table = [
        [step + 1, int((p == MAZE_PATH_TOKEN).sum()), round(float(q), 3), _halting_words(h)]
        for step, (p, q, h) in enumerate(zip(trace.predictions, trace.q_halt, trace.halts))
    ]
    halted = f"halts after step {trace.steps_used}" if trace.halts.any() else f"never halts in {steps} steps"
    verdict = "**a shortest path from S to G**" if valid else "**not a shortest path from S to G**"
    title = f"step {trace.steps_used}: {int((final == MAZE_PATH_TOKEN).sum())} path cells"
    message = f"The halting head {halted}; the path drawn at that step is {verdict}."
    return draw_maze(grid, final, title), message, table


def build_trm_tabs(gr, models) -> dict:
    """The Sudoku and maze tabs inside the current `gr.Blocks`; returns their components by name."""
    parts = {}
    with gr.Tab("TRM: Sudoku", id="sudoku"):
        gr.Markdown(models.sudoku.describe("`hf-reason app --trm SUDOKU_DIR`"))
        with gr.Row():
            with gr.Column(scale=1):
                parts["sudoku_text"] = gr.Textbox(
                    label="Sudoku (9 rows of 9, or one line of 81; 0 or . for a blank)",
                    lines=9,
                    elem_id="sudoku-input",
                )
                with gr.Row():
                    parts["sudoku_level"] = gr.Dropdown(list(SUDOKU_LEVELS), value="easy", label="Level")
                    parts["sudoku_seed"] = gr.Number(value=0, precision=0, label="Seed")
                parts["sudoku_generate"] = gr.Button("Generate", elem_id="sudoku-generate")
                parts["sudoku_steps"] = gr.Slider(
                    1, MAX_APP_STEPS, value=6, step=1, label="Supervision steps", elem_id="sudoku-steps"
                )
                parts["sudoku_solve"] = gr.Button("Solve", variant="primary", elem_id="sudoku-solve")
            with gr.Column(scale=2):
                parts["sudoku_message"] = gr.Markdown(elem_id="sudoku-message")
                parts["sudoku_image"] = gr.Image(label="Supervision steps", type="pil", elem_id="sudoku-image")
                parts["sudoku_table"] = gr.Dataframe(
                    headers=STEP_TABLE_HEADERS, label="Halting head, step by step", elem_id="sudoku-table"
                )
    parts["sudoku_generate"].click(
        generated_sudoku,
        [parts["sudoku_level"], parts["sudoku_seed"]],
        [parts["sudoku_text"], parts["sudoku_message"]],
    )

    def watch(text, steps):
        # The boards and the message stream; the table is filled once, with every step (see
        # click_refilling_table: a table growing row by row would keep showing its first row).
        frame = None
        for frame in watch_sudoku_page(models.sudoku, text, steps):
            yield frame[0], frame[1], []
        if frame is not None and frame[2]:
            yield frame

    click_refilling_table(
        parts["sudoku_solve"],
        watch,
        [parts["sudoku_text"], parts["sudoku_steps"]],
        [parts["sudoku_image"], parts["sudoku_message"], parts["sudoku_table"]],
        parts["sudoku_table"],
    )
    with gr.Tab("TRM: maze", id="maze"):
        gr.Markdown(models.maze.describe("`hf-reason app --trm MAZE_DIR`"))
        with gr.Row():
            with gr.Column(scale=1):
                parts["maze_text"] = gr.Textbox(
                    label="Maze ('#' wall, space open, S start, G goal)", lines=15, elem_id="maze-input"
                )
                parts["maze_seed"] = gr.Number(value=0, precision=0, label="Seed")
                parts["maze_generate"] = gr.Button("Generate", elem_id="maze-generate")
                parts["maze_steps"] = gr.Slider(1, MAX_APP_STEPS, value=6, step=1, label="Supervision steps")
                parts["maze_solve"] = gr.Button("Solve", variant="primary", elem_id="maze-solve")
            with gr.Column(scale=2):
                parts["maze_message"] = gr.Markdown(elem_id="maze-message")
                parts["maze_image"] = gr.Image(label="Path", type="pil", elem_id="maze-image")
                parts["maze_table"] = gr.Dataframe(
                    headers=MAZE_TABLE_HEADERS, label="Halting head, step by step", elem_id="maze-table"
                )
    parts["maze_generate"].click(
        lambda seed: generated_maze(models.maze, seed),
        [parts["maze_seed"]],
        [parts["maze_text"], parts["maze_message"]],
    )
    click_refilling_table(
        parts["maze_solve"],
        lambda text, steps: solve_maze_page(models.maze, text, steps),
        [parts["maze_text"], parts["maze_steps"]],
        [parts["maze_image"], parts["maze_message"], parts["maze_table"]],
        parts["maze_table"],
    )
    return parts
