"""Validity-preserving Sudoku transforms and augmentation, vectorised over many copies (re-exported
by :mod:`hf_reason.data.sudoku`, whose token scheme they use)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import datasets
import numpy as np
from tqdm.auto import tqdm

from .grid import check_int, dataset_from_arrays
from .sudoku import _DIGIT_OFFSET, SUDOKU_BLANK_TOKEN, SUDOKU_PAD_TOKEN, _check_size


def sudoku_transforms(rng: np.random.Generator, count: int, size: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random validity-preserving transforms, as arrays (vectorised: no loop per transform).

    A transform composes a digit relabelling, an optional transposition, a permutation of the
    bands (row groups of boxes) and stacks (column groups), and a permutation of the rows within
    each band and of the columns within each stack. Each maps valid grids to valid grids and
    givens to givens, so uniqueness and consistency are kept.

    Returns:
        ``cell_maps`` of shape ``(count, size * size)``: cell ``k`` of a transformed grid is cell
        ``cell_maps[t, k]`` of the source; and ``token_maps`` of shape ``(count, size + 2)``: a token
        ``v`` becomes ``token_maps[t, v]`` (pad and blank map to themselves). Apply them with
        :func:`apply_sudoku_transforms`.
    """
    size = _check_size(size)
    count = check_int("count", count, minimum=0)
    box = math.isqrt(size)
    digits = rng.random((count, size)).argsort(1)
    fixed = np.broadcast_to(np.array([SUDOKU_PAD_TOKEN, SUDOKU_BLANK_TOKEN]), (count, 2))
    token_maps = np.concatenate([fixed, _DIGIT_OFFSET + 1 + digits], axis=1)

    def line_order() -> np.ndarray:
        groups = rng.random((count, box)).argsort(1)  # the order of the bands (stacks)
        within = rng.random((count, box, box)).argsort(2)  # the order of the rows (columns) inside each
        return (groups[:, :, None] * box + within).reshape(count, size)

    rows, cols = line_order()[:, :, None], line_order()[:, None, :]
    transpose = (rng.random(count) < 0.5)[:, None, None]
    cell_maps = np.where(transpose, cols * size + rows, rows * size + cols).reshape(count, size * size)
    return cell_maps, token_maps


def apply_sudoku_transforms(tokens: np.ndarray, cell_maps: np.ndarray, token_maps: np.ndarray) -> np.ndarray:
    """Transformed copies of ``tokens`` ``(count, size * size)``, row ``t`` under transform ``t``."""
    return np.take_along_axis(token_maps, np.take_along_axis(np.asarray(tokens), cell_maps, 1), 1)


def invert_sudoku_transforms(cell_maps: np.ndarray, token_maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The transforms undoing ``(cell_maps, token_maps)``, for :func:`apply_sudoku_transforms`."""
    return np.argsort(cell_maps, axis=1), np.argsort(token_maps, axis=1)


def _check_tokens(name: str, arr: np.ndarray, size: int) -> None:
    if arr.ndim != 2 or arr.shape[1] != size * size:
        raise ValueError(f"{name} must hold flat sequences of {size * size} tokens, got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > size + _DIGIT_OFFSET):
        raise ValueError(f"{name} must hold tokens 0..{size + _DIGIT_OFFSET}")


def augment_sudoku_arrays(
    input_ids: np.ndarray, labels: np.ndarray, rng: np.random.Generator, size: int = 9
) -> tuple[np.ndarray, np.ndarray]:
    """One random transform (:func:`sudoku_transforms`) per row of ``input_ids`` / ``labels``
    ``(rows, size * size)``, the same one for a puzzle and its solution.

    A draw that leaves a row's puzzle and solution unchanged is redrawn (a few times at most), so
    copies differ from their source unless the puzzle is highly symmetric.
    """
    x, y = np.asarray(input_ids), np.asarray(labels)
    _check_tokens("input_ids", x, size)
    _check_tokens("labels", y, size)
    out_x, out_y = x.copy(), y.copy()
    todo = np.arange(x.shape[0])
    for _ in range(8):
        cell_maps, token_maps = sudoku_transforms(rng, len(todo), size)
        out_x[todo] = apply_sudoku_transforms(x[todo], cell_maps, token_maps)
        out_y[todo] = apply_sudoku_transforms(y[todo], cell_maps, token_maps)
        same = (out_x[todo] == x[todo]).all(1) & (out_y[todo] == y[todo]).all(1)
        todo = todo[same]
        if not len(todo):
            break
    return out_x, out_y


def augment_sudoku(
    input_ids: Sequence[int], labels: Sequence[int], rng: np.random.Generator, size: int = 9
) -> tuple[list[int], list[int]]:
    """Apply one random validity-preserving transform to a puzzle and its solution (token lists);
    :func:`augment_sudoku_arrays` for one row."""
    size = _check_size(size)
    x, y = np.asarray(input_ids), np.asarray(labels)
    for name, arr in (("input_ids", x), ("labels", y)):
        if arr.shape != (size * size,):
            raise ValueError(f"{name} must be a flat sequence of {size * size} tokens, got shape {arr.shape}")
    out_x, out_y = augment_sudoku_arrays(x[None], y[None], rng, size)
    return out_x[0].tolist(), out_y[0].tolist()


def augment_sudoku_dataset(
    ds: datasets.Dataset, num_augmentations: int, seed: int = 0, progress: bool = True
) -> datasets.Dataset:
    """Return the rows of ``ds`` followed by ``num_augmentations`` transformed copies of each.

    Rows ``0 .. len(ds) - 1`` are the originals; copy ``j`` of row ``i`` sits at
    ``len(ds) * (1 + j) + i``. Columns other than ``input_ids`` and ``labels`` are copied;
    ``difficulty`` stays that of the source puzzle (the transforms map its solution space one
    to one, though the solver's tie-breaking could count a few backtracks differently). The
    copies are computed as arrays and written to Arrow directly, so a million rows take seconds.
    """
    num_augmentations = check_int("num_augmentations", num_augmentations, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    for column in ("input_ids", "labels"):
        if column not in ds.column_names:
            raise ValueError(f"ds must have an {column!r} column, got columns {ds.column_names}")
    if len(ds) == 0:
        return ds
    x = np.asarray(ds["input_ids"], dtype=np.int64)
    y = np.asarray(ds["labels"], dtype=np.int64)
    size = _check_size(math.isqrt(x.shape[1]))
    rng = np.random.default_rng(seed)
    xs, ys = [x], [y]
    for _ in tqdm(range(num_augmentations), desc="augment sudoku", disable=not progress):
        new_x, new_y = augment_sudoku_arrays(x, y, rng, size)
        xs.append(new_x)
        ys.append(new_y)
    source = np.tile(np.arange(len(ds)), num_augmentations + 1)
    columns = {name: ds[name] for name in ds.column_names if name not in ("input_ids", "labels")}
    columns = {name: np.asarray(values, dtype=object)[source] for name, values in columns.items()}
    columns.update(input_ids=np.concatenate(xs), labels=np.concatenate(ys))
    return dataset_from_arrays(columns, ds.features, ds.info.copy())


__all__ = [
    "apply_sudoku_transforms",
    "augment_sudoku",
    "augment_sudoku_arrays",
    "augment_sudoku_dataset",
    "invert_sudoku_transforms",
    "sudoku_transforms",
]
