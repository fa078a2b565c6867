"""Grid mazes with their shortest path, generated offline for the Tiny Recursive Model.

Written here because ``maze-dataset`` is LGPL-licensed and broken with the current dependency set.

A maze of side ``size`` (9..30) has walls on its border and cells at odd coordinates;
a randomised depth-first search (recursive backtracker) carves a perfect maze (a spanning
tree: exactly one path between any two cells), then each remaining interior wall between
two cells is removed with probability ``loop_prob`` to create loops and alternative routes.
The start and goal are cells far apart (each drawn from the farthest half of the cells, as
measured by the maze distance from a random cell, then from the start), and the target is a
shortest path found by breadth-first search. With loops several shortest paths may exist;
the label marks one of them (the BFS one, with neighbours visited up, down, left, right).

Cells sit at odd coordinates with walls between them, which needs an odd side. An even ``size``
(e.g. 30, the method's maze side) is the maze of side ``size - 1`` with one more wall row at the
bottom and wall column at the right: a real ``size x size`` grid (every position a wall or open
token, no padding), whose last row and column are border walls two cells thick.

Token scheme (row-major, ``size * size`` tokens, or ``pad_to * pad_to`` when padded):

* ``0``: pad (``input_ids`` only; the maze sits in the top-left corner of the canvas);
* ``1``: wall ``#``;  ``2``: open ``' '``;  ``3``: start ``S``;  ``4``: goal ``G``;
* ``5``: path ``o`` (``labels`` only: the cells strictly between S and G on the path).

``labels`` is the maze with the path marked; padded positions hold ``-100`` so the loss
ignores them. The vocabulary has 6 tokens.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import datasets
import numpy as np
from tqdm.auto import tqdm

from ..models.trm.supervision import IGNORE_INDEX
from .grid import NUM_DIHEDRAL_TRANSFORMS, check_int, dihedral_transform, pad_grid


__all__ = [
    "MAZE_GOAL_TOKEN",
    "MAZE_HARD",
    "MAZE_IGNORE_INDEX",
    "MAZE_MAX_SIZE",
    "MAZE_MIN_SIZE",
    "MAZE_OPEN_TOKEN",
    "MAZE_PAD_TOKEN",
    "MAZE_PATH_TOKEN",
    "MAZE_START_TOKEN",
    "MAZE_VOCAB_SIZE",
    "MAZE_WALL_TOKEN",
    "augment_maze_dataset",
    "generate_mazes",
    "is_valid_path",
    "maze_from_text",
    "maze_to_text",
]

MAZE_PAD_TOKEN = 0
MAZE_WALL_TOKEN = 1
MAZE_OPEN_TOKEN = 2
MAZE_START_TOKEN = 3
MAZE_GOAL_TOKEN = 4
MAZE_PATH_TOKEN = 5
MAZE_VOCAB_SIZE = 6
MAZE_IGNORE_INDEX = IGNORE_INDEX  # path labels of padding cells: not scored
MAZE_MIN_SIZE = 9
MAZE_MAX_SIZE = 30  # the 30x30 grid of the TRM/HRM maze task
# The hard preset, as the method's Maze-Hard: 30x30 grids whose shortest path is longer than 110 moves.
# Perfect mazes (no loops) keep the shortest path unique, so the label is the only right answer;
# `generate_mazes(n, **MAZE_HARD)`.
MAZE_HARD = {"size": 30, "loop_prob": 0.0, "min_path_length": 111}
# Rejection sampling on the path length gives up after this many candidates per requested maze.
_DEFAULT_CANDIDATES_PER_MAZE = 1000

_TOKEN_CHARS = {
    MAZE_PAD_TOKEN: ".",
    MAZE_WALL_TOKEN: "#",
    MAZE_OPEN_TOKEN: " ",
    MAZE_START_TOKEN: "S",
    MAZE_GOAL_TOKEN: "G",
    MAZE_PATH_TOKEN: "o",
    MAZE_IGNORE_INDEX: ".",
}


def _check_size(size: Any) -> int:
    if (
        isinstance(size, bool)
        or not isinstance(size, (int, np.integer))
        or not (MAZE_MIN_SIZE <= size <= MAZE_MAX_SIZE)
    ):
        raise ValueError(f"size must be an integer between {MAZE_MIN_SIZE} and {MAZE_MAX_SIZE}, got {size!r}")
    return int(size)


def _carve(size: int, rng: np.random.Generator) -> np.ndarray:
    """Perfect maze by randomised depth-first search; returns a grid of wall/open tokens."""
    grid = np.full((size, size), MAZE_WALL_TOKEN, dtype=np.int64)
    k = (size - 1) // 2
    visited = np.zeros((k, k), dtype=bool)
    # Every step that carves a new cell makes exactly one random choice, so k*k - 1 uniform
    # draws cover the whole run; drawing them at once avoids a Generator call per step.
    draws = iter(rng.random(k * k).tolist())
    start = (int(rng.integers(k)), int(rng.integers(k)))
    visited[start] = True
    grid[2 * start[0] + 1, 2 * start[1] + 1] = MAZE_OPEN_TOKEN
    stack = [start]
    while stack:
        i, j = stack[-1]
        options = [
            (a, b)
            for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1))
            if 0 <= a < k and 0 <= b < k and not visited[a, b]
        ]
        if not options:
            stack.pop()
            continue
        a, b = options[int(next(draws) * len(options))]
        visited[a, b] = True
        grid[i + a + 1, j + b + 1] = MAZE_OPEN_TOKEN  # the wall between the two cells
        grid[2 * a + 1, 2 * b + 1] = MAZE_OPEN_TOKEN
        stack.append((a, b))
    return grid


def _add_loops(grid: np.ndarray, loop_prob: float, rng: np.random.Generator) -> None:
    """Open each interior wall that separates two cells with probability ``loop_prob``."""
    size = grid.shape[0]
    walls = [(r, c) for r in range(1, size - 1) for c in range(1, size - 1) if (r % 2) != (c % 2)]
    for (r, c), u in zip(walls, rng.random(len(walls)).tolist()):
        if u < loop_prob:
            grid[r, c] = MAZE_OPEN_TOKEN


def _bfs(passable: np.ndarray, source: int) -> tuple[list[int], list[int]]:
    """Distances (``-1`` = unreachable) and BFS parents over the flat index of a 2-D grid.

    Neighbours are visited up, down, left, right, which fixes the path chosen among ties.
    """
    height, width = passable.shape
    flat = passable.ravel().tolist()
    dist = [-1] * len(flat)
    parent = [-1] * len(flat)
    dist[source] = 0
    queue = deque([source])
    while queue:
        u = queue.popleft()
        r, c = divmod(u, width)
        du = dist[u] + 1
        for v, inside in ((u - width, r > 0), (u + width, r < height - 1), (u - 1, c > 0), (u + 1, c < width - 1)):
            if inside and flat[v] and dist[v] < 0:
                dist[v] = du
                parent[v] = u
                queue.append(v)
    return dist, parent


def _far_cell(dist: list[int], cells: np.ndarray, rng: np.random.Generator) -> int:
    """A random cell among those in the farther half of the distance range from the BFS source."""
    d = np.asarray(dist)[cells]
    far = cells[d * 2 >= d.max()]
    return int(far[rng.integers(len(far))])


def _make_maze(size: int, loop_prob: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    odd = size if size % 2 else size - 1  # cells need an odd side; an even one gets an extra wall
    grid = _carve(odd, rng)
    if loop_prob > 0:
        _add_loops(grid, loop_prob, rng)
    if odd != size:
        grid = np.pad(grid, ((0, 1), (0, 1)), constant_values=MAZE_WALL_TOKEN)
    passable = grid != MAZE_WALL_TOKEN
    cells = np.array([r * size + c for r in range(1, odd, 2) for c in range(1, odd, 2)])
    probe = int(cells[rng.integers(len(cells))])
    start = _far_cell(_bfs(passable, probe)[0], cells, rng)
    dist, parent = _bfs(passable, start)
    goal = _far_cell(dist, cells, rng)
    maze = grid.ravel().copy()
    maze[start] = MAZE_START_TOKEN
    maze[goal] = MAZE_GOAL_TOKEN
    solved = maze.copy()
    node = parent[goal]
    while node != start:
        solved[node] = MAZE_PATH_TOKEN
        node = parent[node]
    return maze.reshape(size, size), solved.reshape(size, size), dist[goal]


def _maze_features() -> datasets.Features:
    # int64 because torch's losses want int64 targets; it spares a cast in every collator.
    return datasets.Features(
        {
            "input_ids": datasets.List(datasets.Value("int64")),
            "labels": datasets.List(datasets.Value("int64")),
            "size": datasets.Value("int64"),
            "path_length": datasets.Value("int64"),
            "puzzle_identifiers": datasets.Value("int64"),
        }
    )


def _encode(maze: np.ndarray, solved: np.ndarray, pad_to: int | None) -> tuple[list[int], list[int]]:
    if pad_to is not None:
        maze = pad_grid(maze, pad_to, MAZE_PAD_TOKEN)
        solved = pad_grid(solved, pad_to, MAZE_IGNORE_INDEX)
    return maze.ravel().tolist(), solved.ravel().tolist()


def generate_mazes(
    num_mazes: int,
    size: int = 15,
    loop_prob: float = 0.0,
    pad_to: int | None = None,
    seed: int = 0,
    progress: bool = True,
    min_path_length: int = 0,
    max_candidates: int | None = None,
) -> datasets.Dataset:
    """Generate mazes and their shortest paths.

    Args:
        num_mazes: number of mazes.
        size: side of the maze, walls included, between 9 and 30; an even side is the maze of
            side ``size - 1`` with an extra wall row (bottom) and column (right).
        loop_prob: probability of removing each interior wall left between two cells after
            carving; 0 gives perfect mazes (a unique path), higher values more alternative routes.
        pad_to: when given, place each maze top-left in a ``pad_to x pad_to`` canvas
            (``input_ids`` padded with 0, ``labels`` with -100); must be at least ``size``.
        seed: seed of the ``numpy.random.Generator`` driving all random choices.
        progress: show a tqdm progress bar.
        min_path_length: keep only mazes whose shortest S->G path has at least this many moves
            (rejection sampling; ``MAZE_HARD`` asks for more than 110 on 30x30 grids).
        max_candidates: give up (``RuntimeError``) after this many candidates; defaults to
            ``1000 * num_mazes``.

    Returns:
        A dataset with columns ``input_ids``, ``labels`` (see the module docstring),
        ``size``, ``path_length`` (number of moves from S to G) and ``puzzle_identifiers`` (0).
    """
    num_mazes = check_int("num_mazes", num_mazes, minimum=0)
    size = _check_size(size)
    if (
        isinstance(loop_prob, bool)
        or not isinstance(loop_prob, (int, float, np.floating, np.integer))
        or not (0.0 <= float(loop_prob) <= 1.0)
    ):
        raise ValueError(f"loop_prob must be a number between 0 and 1, got {loop_prob!r}")
    loop_prob = float(loop_prob)
    if pad_to is not None:
        pad_to = check_int("pad_to", pad_to, minimum=size)
    seed = check_int("seed", seed, minimum=0)
    min_path_length = check_int("min_path_length", min_path_length, minimum=0)
    if max_candidates is None:
        max_candidates = max(1, num_mazes) * _DEFAULT_CANDIDATES_PER_MAZE
    max_candidates = check_int("max_candidates", max_candidates, minimum=1)

    rng = np.random.default_rng(seed)
    features = _maze_features()
    rows: dict[str, list[Any]] = {name: [] for name in features}
    candidates = 0
    with tqdm(total=num_mazes, desc=f"mazes {size}x{size}", disable=not progress) as bar:
        while len(rows["input_ids"]) < num_mazes:
            if candidates >= max_candidates:
                raise RuntimeError(
                    f"only {len(rows['input_ids'])} of {num_mazes} mazes reached min_path_length={min_path_length} "
                    f"after {candidates} candidates; lower min_path_length, raise size or max_candidates"
                )
            candidates += 1
            maze, solved, path_length = _make_maze(size, loop_prob, rng)
            if path_length < min_path_length:
                continue
            x, y = _encode(maze, solved, pad_to)
            rows["input_ids"].append(x)
            rows["labels"].append(y)
            rows["size"].append(size)
            rows["path_length"].append(path_length)
            rows["puzzle_identifiers"].append(0)
            bar.update(1)
    description = (
        f"mazes {size}x{size}, loop_prob={loop_prob}, pad_to={pad_to}, seed={seed}, "
        f"min_path_length={min_path_length}, candidates={candidates}"
    )
    return datasets.Dataset.from_dict(
        rows, features=features, info=datasets.DatasetInfo(description=description, features=features)
    )


def _as_square(tokens: Any, name: str) -> np.ndarray:
    arr = np.asarray(tokens)
    if arr.ndim == 1:
        side = math.isqrt(arr.size)
        if side * side != arr.size:
            raise ValueError(f"{name} must be square: got {arr.size} tokens")
        arr = arr.reshape(side, side)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square grid or its flat sequence, got shape {arr.shape}")
    return arr


def augment_maze_dataset(
    ds: datasets.Dataset, num_augmentations: int = 7, seed: int = 0, progress: bool = True
) -> datasets.Dataset:
    """Return the rows of ``ds`` followed by copies under distinct non-identity dihedral transforms.

    Each maze gets ``num_augmentations`` (0..7) different transforms drawn at random from the
    seven non-identity ones, so 7 gives all eight symmetries of every maze. Rows
    ``0 .. len(ds) - 1`` are the originals; copy ``j`` of row ``i`` sits at
    ``len(ds) * (1 + j) + i``. Padded mazes are transformed inside their ``size x size`` area
    and padded again, so they stay in the top-left corner.
    """
    num_augmentations = check_int(
        "num_augmentations", num_augmentations, minimum=0, maximum=NUM_DIHEDRAL_TRANSFORMS - 1
    )
    seed = check_int("seed", seed, minimum=0)
    for column in ("input_ids", "labels", "size"):
        if column not in ds.column_names:
            raise ValueError(f"ds must have a {column!r} column, got columns {ds.column_names}")
    data = ds.to_dict()
    rng = np.random.default_rng(seed)
    draws = [1 + rng.permutation(NUM_DIHEDRAL_TRANSFORMS - 1)[:num_augmentations] for _ in range(len(ds))]
    out: dict[str, list[Any]] = {name: list(values) for name, values in data.items()}
    with tqdm(total=num_augmentations * len(ds), desc="augment mazes", disable=not progress) as bar:
        for j in range(num_augmentations):
            for i in range(len(ds)):
                size = data["size"][i]
                x = _as_square(data["input_ids"][i], "input_ids")
                y = _as_square(data["labels"][i], "labels")
                pad_to = x.shape[0] if x.shape[0] != size else None
                k = int(draws[i][j])
                nx, ny = _encode(
                    dihedral_transform(x[:size, :size], k), dihedral_transform(y[:size, :size], k), pad_to
                )
                for name, values in data.items():
                    out[name].append(nx if name == "input_ids" else ny if name == "labels" else values[i])
                bar.update(1)
    return datasets.Dataset.from_dict(out, features=ds.features, info=ds.info.copy())


def is_valid_path(input_grid: Any, label_grid: Any) -> bool:
    """Whether ``label_grid`` marks a shortest S->G path of the maze ``input_grid``.

    Both grids use the token scheme (2-D or flat, padded or not). The label must equal the
    input except on open cells turned into path cells; S, the path cells and G must form a
    single chain of 4-neighbours from S to G; and its number of moves must equal the BFS
    shortest distance through non-wall cells.
    """
    x = _as_square(input_grid, "input_grid")
    y = _as_square(label_grid, "label_grid")
    if x.shape != y.shape:
        raise ValueError(f"input_grid and label_grid must have the same shape, got {x.shape} and {y.shape}")
    pad = x == MAZE_PAD_TOKEN
    if not np.all(np.isin(y[pad], (MAZE_PAD_TOKEN, MAZE_IGNORE_INDEX))):
        return False
    changed = (x != y) & ~pad
    if not np.all((x[changed] == MAZE_OPEN_TOKEN) & (y[changed] == MAZE_PATH_TOKEN)):
        return False
    if np.count_nonzero(x == MAZE_START_TOKEN) != 1 or np.count_nonzero(x == MAZE_GOAL_TOKEN) != 1:
        return False
    if np.any(x == MAZE_PATH_TOKEN):
        return False

    side = x.shape[1]
    flat_y = y.ravel()
    start = int(np.flatnonzero(x.ravel() == MAZE_START_TOKEN)[0])
    goal = int(np.flatnonzero(x.ravel() == MAZE_GOAL_TOKEN)[0])
    on_path = set(np.flatnonzero(flat_y == MAZE_PATH_TOKEN).tolist()) | {goal}

    def neighbours(u: int) -> list[int]:
        r, c = divmod(u, side)
        return [
            v for v, ok in ((u - side, r > 0), (u + side, r < side - 1), (u - 1, c > 0), (u + 1, c < side - 1)) if ok
        ]

    # Walk the chain from S: every step must have exactly one way forward.
    previous, current, moves, seen = -1, start, 0, set()
    while current != goal:
        forward = [v for v in neighbours(current) if v in on_path and v != previous]
        if len(forward) != 1 or forward[0] in seen:
            return False
        previous, current = current, forward[0]
        seen.add(current)
        moves += 1
    if seen != on_path:
        return False
    passable = (x != MAZE_WALL_TOKEN) & ~pad
    return _bfs(passable, start)[0][goal] == moves


def maze_to_text(tokens: Sequence[int] | np.ndarray) -> str:
    """Render a maze (input or label tokens, 2-D or flat) as text, one line per row."""
    grid = _as_square(tokens, "tokens")
    return "\n".join("".join(_TOKEN_CHARS.get(int(t), "?") for t in row) for row in grid)


def maze_from_text(text: str | Sequence[str]) -> np.ndarray:
    """Parse a maze drawn as text, the inverse of :func:`maze_to_text`, into a square token grid.

    ``text`` is one string with a row per line, or the list of its rows: ``#`` wall, ``' '`` open,
    ``S`` start, ``G`` goal, ``o`` path, ``.`` pad.
    """
    if isinstance(text, str):
        rows = text.split("\n")
    elif isinstance(text, Sequence) and all(isinstance(row, str) for row in text):
        rows = list(text)
    else:
        raise ValueError("a maze must be a string with one row per line, or a list of row strings")
    tokens = {char: token for token, char in _TOKEN_CHARS.items() if token != MAZE_IGNORE_INDEX}
    side = len(rows)
    if side == 0:
        raise ValueError("a maze must have at least one row")
    grid = np.empty((side, side), dtype=np.int64)
    for r, row in enumerate(rows, 1):
        if len(row) != side:
            raise ValueError(
                f"row {r} of the maze has {len(row)} characters; a maze is square and this one has {side} rows"
            )
        for c, char in enumerate(row, 1):
            if char not in tokens:
                allowed = ", ".join(repr(ch) for ch in tokens)
                raise ValueError(f"row {r}, column {c} of the maze is {char!r}; expected one of {allowed}")
            grid[r - 1, c - 1] = tokens[char]
    return grid
