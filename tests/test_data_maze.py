"""Maze generation and the shared dihedral transforms (hf_reason.data.maze, hf_reason.data.grid)."""

import itertools

import numpy as np
import pytest

from hf_reason.data.grid import dihedral_transform, inverse_dihedral_index, inverse_dihedral_transform
from hf_reason.data.maze import (
    MAZE_GOAL_TOKEN,
    MAZE_IGNORE_INDEX,
    MAZE_OPEN_TOKEN,
    MAZE_PAD_TOKEN,
    MAZE_PATH_TOKEN,
    MAZE_START_TOKEN,
    MAZE_WALL_TOKEN,
    augment_maze_dataset,
    generate_mazes,
    is_valid_path,
    maze_from_text,
    maze_to_text,
)


@pytest.fixture(scope="module")
def mazes():
    return generate_mazes(50, size=15, seed=0, progress=False)


def _square(tokens):
    arr = np.asarray(tokens)
    side = int(round(len(arr) ** 0.5))
    return arr.reshape(side, side)


# --- dihedral group ---------------------------------------------------------------------


def test_dihedral_transforms_are_the_eight_symmetries():
    grid = np.arange(12).reshape(3, 4)  # no symmetry: all eight images differ
    images = [dihedral_transform(grid, k) for k in range(8)]
    assert len({(im.shape, im.tobytes()) for im in images}) == 8
    np.testing.assert_array_equal(images[0], grid)
    np.testing.assert_array_equal(images[4], grid.T)
    for k in range(8):
        np.testing.assert_array_equal(inverse_dihedral_transform(images[k], k), grid)
        np.testing.assert_array_equal(dihedral_transform(images[k], inverse_dihedral_index(k)), grid)
    # Closure: composing two symmetries gives one of the eight.
    keys = {(im.shape, im.tobytes()): k for k, im in enumerate(images)}
    for a, b in itertools.product(range(8), repeat=2):
        composed = dihedral_transform(dihedral_transform(grid, a), b)
        assert (composed.shape, composed.tobytes()) in keys


def test_dihedral_transform_acts_on_last_two_axes_and_copies():
    batch = np.arange(24).reshape(2, 3, 4)
    out = dihedral_transform(batch, 1)
    assert out.shape == (2, 4, 3)
    np.testing.assert_array_equal(out[1], np.rot90(batch[1]))
    out[0, 0, 0] = -1
    assert batch.min() == 0


@pytest.mark.parametrize("k", [-1, 8, 1.0, True])
def test_dihedral_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k"):
        dihedral_transform(np.zeros((2, 2)), k)


# --- mazes --------------------------------------------------------------------------------


def test_columns_tokens_and_layout(mazes):
    assert mazes.column_names == ["input_ids", "labels", "size", "path_length", "puzzle_identifiers"]
    for row in mazes:
        x, y = _square(row["input_ids"]), _square(row["labels"])
        assert x.shape == (15, 15) and row["size"] == 15 and row["puzzle_identifiers"] == 0
        assert set(np.unique(x)) == {MAZE_WALL_TOKEN, MAZE_OPEN_TOKEN, MAZE_START_TOKEN, MAZE_GOAL_TOKEN}
        assert set(np.unique(y)) <= set(np.unique(x)) | {MAZE_PATH_TOKEN}
        border = np.concatenate([x[0], x[-1], x[:, 0], x[:, -1]])
        assert (border == MAZE_WALL_TOKEN).all()
        for token in (MAZE_START_TOKEN, MAZE_GOAL_TOKEN):
            (r,), (c,) = np.nonzero(x == token)
            assert r % 2 == 1 and c % 2 == 1  # start and goal are cells, not passages
        assert np.count_nonzero(y == MAZE_PATH_TOKEN) == row["path_length"] - 1


def test_paths_are_valid_and_shortest(mazes):
    for row in mazes:
        assert is_valid_path(row["input_ids"], row["labels"])


def test_perfect_mazes_are_spanning_trees(mazes):
    # k*k cells joined by k*k - 1 passages: the carved graph is a tree, so the path is unique.
    cells = 7 * 7
    for row in mazes:
        assert np.count_nonzero(_square(row["input_ids"]) != MAZE_WALL_TOKEN) == 2 * cells - 1


def test_start_and_goal_are_far_apart(mazes):
    # The goal is drawn from the farther half of the maze distances from the start.
    assert np.mean(mazes["path_length"]) > 24
    assert min(mazes["path_length"]) >= 8


def test_loops_add_passages_and_paths_stay_shortest():
    ds = generate_mazes(30, size=21, loop_prob=0.3, seed=4, progress=False)
    cells = 10 * 10
    opened = [np.count_nonzero(_square(r["input_ids"]) != MAZE_WALL_TOKEN) for r in ds]
    assert min(opened) > 2 * cells - 1
    for row in ds:
        assert is_valid_path(row["input_ids"], row["labels"])


@pytest.mark.parametrize("size", [9, 10, 29, 30])
def test_size_bounds(size):
    ds = generate_mazes(3, size=size, loop_prob=0.1, seed=1, progress=False)
    for row in ds:
        assert len(row["input_ids"]) == size * size
        assert is_valid_path(row["input_ids"], row["labels"])


def test_even_size_is_a_real_maze_with_an_extra_wall_row_and_column():
    ds = generate_mazes(6, size=30, seed=7, progress=False)
    for row in ds:
        x, y = _square(row["input_ids"]), _square(row["labels"])
        assert x.shape == y.shape == (30, 30) and row["size"] == 30
        assert MAZE_PAD_TOKEN not in x and MAZE_IGNORE_INDEX not in y  # no padding: every cell is maze
        assert (x[-2:] == MAZE_WALL_TOKEN).all() and (x[:, -2:] == MAZE_WALL_TOKEN).all()
        assert (x[0] == MAZE_WALL_TOKEN).all() and (x[:, 0] == MAZE_WALL_TOKEN).all()
        # the 29x29 perfect maze inside: 14*14 cells joined by a spanning tree
        assert np.count_nonzero(x != MAZE_WALL_TOKEN) == 2 * 14 * 14 - 1
        assert is_valid_path(x, y)
        assert row["path_length"] >= 14


def test_even_size_mazes_keep_shortest_paths_under_the_eight_symmetries():
    ds = generate_mazes(3, size=12, loop_prob=0.2, seed=8, progress=False)
    aug = augment_maze_dataset(ds, num_augmentations=7, seed=0, progress=False)
    for i in range(len(ds)):
        versions = [aug[i + j * len(ds)] for j in range(8)]
        assert len({tuple(v["input_ids"]) for v in versions}) == 8  # the extra wall breaks no symmetry
        for v in versions:
            assert len(v["input_ids"]) == 144
            assert v["path_length"] == ds[i]["path_length"]
            assert is_valid_path(v["input_ids"], v["labels"])


def test_padding():
    ds = generate_mazes(5, size=11, pad_to=30, seed=2, progress=False)
    for row in ds:
        x, y = _square(row["input_ids"]), _square(row["labels"])
        assert x.shape == y.shape == (30, 30)
        assert (x[11:] == MAZE_PAD_TOKEN).all() and (x[:, 11:] == MAZE_PAD_TOKEN).all()
        assert (y[11:] == MAZE_IGNORE_INDEX).all() and (y[:, 11:] == MAZE_IGNORE_INDEX).all()
        assert (x[:11, :11] != MAZE_PAD_TOKEN).all()
        assert is_valid_path(x, y)
    assert "." in maze_to_text(ds[0]["input_ids"])


def test_same_seed_same_mazes_different_seed_different():
    a = generate_mazes(5, seed=3, progress=False)
    b = generate_mazes(5, seed=3, progress=False)
    c = generate_mazes(5, seed=4, progress=False)
    assert a.to_dict() == b.to_dict()
    assert a["input_ids"] != c["input_ids"]


def test_is_valid_path_rejects_broken_paths(mazes):
    row = mazes[0]
    x, y = _square(row["input_ids"]), _square(row["labels"])
    path = np.argwhere(y == MAZE_PATH_TOKEN)
    gap = y.copy()
    gap[tuple(path[len(path) // 2])] = MAZE_OPEN_TOKEN
    assert not is_valid_path(x, gap)
    extra = y.copy()
    spare = np.argwhere((x == MAZE_OPEN_TOKEN) & (y != MAZE_PATH_TOKEN))[0]
    extra[tuple(spare)] = MAZE_PATH_TOKEN
    assert not is_valid_path(x, extra)
    through_wall = y.copy()
    through_wall[0, 0] = MAZE_PATH_TOKEN
    assert not is_valid_path(x, through_wall)
    assert not is_valid_path(x, x)  # no path at all


def test_is_valid_path_rejects_a_longer_route():
    # A 5x5 room: S top-left, G bottom-right; the shortest route has 8 moves. The detour is a
    # clean chain (no branching, no shortcut between its cells) of 12 moves.
    x = np.full((7, 7), MAZE_WALL_TOKEN)
    x[1:6, 1:6] = MAZE_OPEN_TOKEN
    x[1, 1], x[5, 5] = MAZE_START_TOKEN, MAZE_GOAL_TOKEN
    short = x.copy()
    for r, c in [(1, 2), (1, 3), (1, 4), (1, 5), (2, 5), (3, 5), (4, 5)]:
        short[r, c] = MAZE_PATH_TOKEN
    assert is_valid_path(x, short)
    detour = x.copy()
    for r, c in [(2, 1), (3, 1), (3, 2), (3, 3), (2, 3), (1, 3), (1, 4), (1, 5), (2, 5), (3, 5), (4, 5)]:
        detour[r, c] = MAZE_PATH_TOKEN
    assert not is_valid_path(x, detour)


@pytest.mark.parametrize("pad_to", [None, 20])
def test_augmentation_gives_eight_valid_distinct_mazes(pad_to):
    ds = generate_mazes(4, size=13, loop_prob=0.1, pad_to=pad_to, seed=5, progress=False)
    aug = augment_maze_dataset(ds, num_augmentations=7, seed=0, progress=False)
    assert len(aug) == 8 * len(ds)
    assert aug.select(range(len(ds))).to_dict() == ds.to_dict()
    for i in range(len(ds)):
        versions = [aug[i + j * len(ds)] for j in range(8)]
        assert len({tuple(v["input_ids"]) for v in versions}) == 8
        for v in versions:
            assert v["path_length"] == ds[i]["path_length"]
            assert is_valid_path(v["input_ids"], v["labels"])
            if pad_to:
                assert (_square(v["input_ids"])[13:] == MAZE_PAD_TOKEN).all()
    again = augment_maze_dataset(ds, num_augmentations=3, seed=1, progress=False)
    assert again.to_dict() == augment_maze_dataset(ds, num_augmentations=3, seed=1, progress=False).to_dict()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_mazes": -1}, "num_mazes"),
        ({"num_mazes": 1, "size": 8}, "size"),
        ({"num_mazes": 1, "size": 10.0}, "size"),
        ({"num_mazes": 1, "size": 7}, "size"),
        ({"num_mazes": 1, "size": 31}, "size"),
        ({"num_mazes": 1, "loop_prob": 1.5}, "loop_prob"),
        ({"num_mazes": 1, "loop_prob": "0.1"}, "loop_prob"),
        ({"num_mazes": 1, "size": 15, "pad_to": 14}, "pad_to"),
        ({"num_mazes": 1, "seed": -3}, "seed"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        generate_mazes(progress=False, **kwargs)


def test_augment_rejects_bad_count(mazes):
    with pytest.raises(ValueError, match="num_augmentations"):
        augment_maze_dataset(mazes, num_augmentations=8)


def test_maze_text_parses_back_to_its_tokens(mazes):
    for row in mazes.select(range(5)):
        for tokens in (row["input_ids"], row["labels"]):
            text = maze_to_text(tokens)
            assert maze_from_text(text).ravel().tolist() == list(tokens)
            assert np.array_equal(maze_from_text(text.split("\n")), maze_from_text(text))
    padded = generate_mazes(1, size=9, pad_to=12, seed=0, progress=False)[0]["input_ids"]
    assert maze_from_text(maze_to_text(padded)).ravel().tolist() == padded  # '.' is the pad token


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("###\n# #\n##", "row 3 of the maze has 2 characters; a maze is square and this one has 3 rows"),
        ("###\n#x#\n###", "row 2, column 2 of the maze is 'x'; expected one of"),
        (["###", 3, "###"], "a list of row strings"),
        ([], "at least one row"),
    ],
)
def test_bad_maze_text_names_the_row_and_column(text, message):
    with pytest.raises(ValueError, match=message):
        maze_from_text(text)


def test_hard_preset_gives_30x30_mazes_with_paths_longer_than_110():
    from hf_reason.data.maze import MAZE_HARD

    ds = generate_mazes(6, seed=4, progress=False, **MAZE_HARD)
    assert MAZE_HARD["size"] == 30 and MAZE_HARD["min_path_length"] > 110
    for row in ds:
        assert row["size"] == 30 and len(row["input_ids"]) == 900
        assert row["path_length"] > 110
        assert is_valid_path(row["input_ids"], row["labels"])


def test_min_path_length_filters_and_gives_up_when_unreachable():
    plain = generate_mazes(8, size=15, seed=5, progress=False)
    long = generate_mazes(8, size=15, seed=5, progress=False, min_path_length=40)
    assert min(long["path_length"]) >= 40
    assert min(plain["path_length"]) < 40  # the filter did reject some
    # The first maze passing the filter is the same draw as without it: rejection keeps the stream.
    first = next(i for i, n in enumerate(plain["path_length"]) if n >= 40)
    assert long[0]["input_ids"] == plain[first]["input_ids"]
    with pytest.raises(RuntimeError, match="min_path_length=500"):
        generate_mazes(1, size=9, min_path_length=500, max_candidates=10, progress=False)
