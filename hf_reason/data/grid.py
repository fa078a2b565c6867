"""Helpers shared by the grid puzzles (Sudoku, mazes, ARC).

The eight symmetries of the square (the dihedral group D4) are numbered ``k = 0..7``:

* ``k = 0..3``: rotation by ``k * 90`` degrees counter-clockwise (``numpy.rot90``);
* ``k = 4..7``: transpose, then rotation by ``(k - 4) * 90`` degrees.

``k = 4`` is the transpose, ``k = 6`` the anti-transpose, ``k = 5`` and ``k = 7`` the
vertical and horizontal flips. Transforms act on the last two axes, so a batch of grids of
shape ``(..., H, W)`` is transformed grid by grid.
"""

from __future__ import annotations

from typing import Any

import datasets
import numpy as np
import pyarrow as pa


__all__ = [
    "NUM_DIHEDRAL_TRANSFORMS",
    "check_int",
    "dataset_from_arrays",
    "dihedral_transform",
    "inverse_dihedral_index",
    "inverse_dihedral_transform",
    "pad_grid",
]

NUM_DIHEDRAL_TRANSFORMS = 8


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an ``int`` or raise ``ValueError`` naming the argument.

    Booleans are refused: ``True`` would otherwise pass silently as ``1``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        low = "-inf" if minimum is None else str(minimum)
        high = "inf" if maximum is None else str(maximum)
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value}")
    return value


def _check_k(k: Any) -> int:
    return check_int("k", k, minimum=0, maximum=NUM_DIHEDRAL_TRANSFORMS - 1)


def dihedral_transform(grid: np.ndarray, k: int) -> np.ndarray:
    """Apply dihedral transform ``k`` (0..7, see the module docstring) to the last two axes."""
    k = _check_k(k)
    grid = np.asarray(grid)
    if grid.ndim < 2:
        raise ValueError(f"grid must have at least 2 dimensions, got shape {grid.shape}")
    if k >= 4:
        grid = np.swapaxes(grid, -2, -1)
    # Copy so that callers never receive a view that aliases their input.
    return np.ascontiguousarray(np.rot90(grid, k % 4, axes=(-2, -1)))


def inverse_dihedral_index(k: int) -> int:
    """Index of the transform undoing ``k``.

    Rotations invert to the opposite rotation; the four ``k >= 4`` transforms are
    reflections, and every reflection is its own inverse.
    """
    k = _check_k(k)
    return (4 - k) % 4 if k < 4 else k


def inverse_dihedral_transform(grid: np.ndarray, k: int) -> np.ndarray:
    """Undo ``dihedral_transform(., k)``: ``inverse_dihedral_transform(dihedral_transform(g, k), k) == g``."""
    return dihedral_transform(grid, inverse_dihedral_index(k))


def pad_grid(grid: np.ndarray, pad_to: int, fill: int) -> np.ndarray:
    """Place a 2-D grid in the top-left corner of a ``pad_to x pad_to`` canvas filled with ``fill``."""
    grid = np.asarray(grid)
    if grid.ndim != 2:
        raise ValueError(f"grid must be 2-D, got shape {grid.shape}")
    pad_to = check_int("pad_to", pad_to, minimum=max(grid.shape))
    canvas = np.full((pad_to, pad_to), fill, dtype=np.result_type(grid.dtype, np.min_scalar_type(fill)))
    canvas[: grid.shape[0], : grid.shape[1]] = grid
    return canvas


def dataset_from_arrays(columns: dict[str, Any], features: datasets.Features, info: datasets.DatasetInfo):
    """A ``datasets.Dataset`` of ``features`` built from NumPy columns without Python lists per row.

    A ``List`` feature takes a 2-D array (one row per example); a scalar feature a 1-D array or
    sequence. Building Arrow arrays directly keeps a million augmented puzzles at seconds and a
    few bytes per cell, where ``Dataset.from_dict`` would first make a Python list per row.
    """
    arrays = []
    for name, feature in features.items():
        if name not in columns:
            raise ValueError(f"columns lacks {name!r}, a field of the features; got {sorted(columns)}")
        value = columns[name]
        if isinstance(feature, datasets.List):
            rows = np.ascontiguousarray(value, dtype=np.int64)
            if rows.ndim != 2:
                raise ValueError(f"column {name!r} must be a 2-D array (one row per example), got shape {rows.shape}")
            offsets = np.arange(0, rows.size + 1, max(1, rows.shape[1]), dtype=np.int64)[: rows.shape[0] + 1]
            arrays.append(pa.LargeListArray.from_arrays(offsets, pa.array(rows.ravel())))
        else:
            arrays.append(pa.array(list(value) if isinstance(value, np.ndarray) and value.dtype == object else value))
    table = pa.Table.from_arrays(arrays, names=list(features)).cast(features.arrow_schema)
    info.features = features
    return datasets.Dataset(table, info=info)
