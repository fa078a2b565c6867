"""Pattern primitives: symmetry completion, periodic pattern completion (repetition), gravity, lines,
and the parts of a grid split by separator lines (combined by logic or overlay, or picked)."""

from __future__ import annotations

import numpy as np

from ...data.grid import dihedral_transform, inverse_dihedral_index
from ..objects import BACKGROUND
from ..registry import GRID, primitive


# ----------------------------------------------------------------------------- symmetry completion
def _best_mirror(grid, unknown, axis):
    """The reflection `index -> s - index` along `axis` whose overlapping known cells all agree, with
    the most such cells (None when no reflection agrees on at least half the known cells)."""
    g = grid if axis == 1 else grid.T
    u = unknown if axis == 1 else unknown.T
    w = g.shape[1]
    best, best_overlap = None, 0
    # `total` = index + mirrored index (the axis at total / 2), nearest the grid's centre first.
    for total in sorted(range(1, 2 * w - 2), key=lambda t: abs(t - (w - 1))):
        lo, hi = max(0, total - (w - 1)), min(w - 1, total)
        cols = np.arange(lo, hi + 1)
        a, b = g[:, cols], g[:, total - cols]
        known = ~u[:, cols] & ~u[:, total - cols]
        if (a[known] != b[known]).any():
            continue
        overlap = int(known.sum())
        if overlap > best_overlap:
            best, best_overlap = total, overlap
    return best if best_overlap * 2 >= (~u).sum() else None


def _mirror_fill(grid, unknown, axis, total):
    g, u = (grid, unknown) if axis == 1 else (grid.T, unknown.T)
    w = g.shape[1]
    j = np.arange(w)
    src = total - j
    valid = (src >= 0) & (src < w)
    fill = u[:, valid] & ~u[:, src[valid]]
    target = g[:, valid]
    target[fill] = g[:, src[valid]][fill]
    g[:, valid] = target
    u[:, valid] &= ~fill


_SYMMETRIES = {
    "lr": (),
    "ud": (),
    "both": (),
    "rot90": (1, 2, 3),
    "rot180": (2,),
    "transpose": (4,),
    "all": range(1, 8),
}


@primitive(GRID, GRID, mask="input_colours", kind=tuple(_SYMMETRIES), output=("full", "masked"))
def complete_symmetry(grid, mask, kind, output):
    """Fill the cells of colour `mask` from their mirror images: left-right / up-down mirrors (axes found
    from the agreeing cells, not only the grid's centre), both, or the rotations / transpose / all eight
    symmetries of a square grid. `output="masked"` returns only the filled box."""
    unknown = grid == mask
    if not unknown.any() or unknown.all():
        return None
    filled, left = grid.copy(), unknown.copy()
    if kind in ("lr", "ud", "both"):
        for axis in {"lr": (1,), "ud": (0,), "both": (1, 0)}[kind]:
            total = _best_mirror(filled, left, axis)
            if total is None:
                return None
            _mirror_fill(filled, left, axis, total)
    else:
        if grid.shape[0] != grid.shape[1]:
            return None
        for _ in range(2):
            for k in _SYMMETRIES[kind]:
                source = dihedral_transform(filled, inverse_dihedral_index(k))
                source_known = ~dihedral_transform(left, inverse_dihedral_index(k))
                take = left & source_known
                filled[take] = source[take]
                left &= ~take
    if left.any():
        return None
    if output == "full":
        return filled
    rows, cols = np.nonzero(unknown)
    return filled[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].copy()


# ----------------------------------------------------------------------------- periodic patterns
def _consistent_shifts(grid, unknown, axis):
    size = grid.shape[axis]
    shifts = []
    for p in range(1, size):
        a, b = (grid[p:], grid[:-p]) if axis == 0 else (grid[:, p:], grid[:, :-p])
        ua, ub = (unknown[p:], unknown[:-p]) if axis == 0 else (unknown[:, p:], unknown[:, :-p])
        known = ~ua & ~ub
        if not (a[known] != b[known]).any():
            shifts.append(p)
    return shifts + [size]


@primitive(GRID, GRID, mask="input_colours", output=("full", "masked"))
def complete_pattern(grid, mask, output):
    """Fill the cells of colour `mask` by continuing the grid's smallest periodic tiling (periods found
    from the other cells). `output="masked"` returns only the filled box."""
    unknown = grid == mask
    if not unknown.any() or unknown.all():
        return None
    h, w = grid.shape
    rows = np.arange(h)[:, None]
    cols = np.arange(w)[None, :]
    candidates = sorted(
        ((py, px) for py in _consistent_shifts(grid, unknown, 0) for px in _consistent_shifts(grid, unknown, 1)),
        key=lambda p: (p[0] * p[1], p),
    )
    for py, px in candidates:
        if (py, px) == (h, w):
            break
        classes = ((rows % py) * px + cols % px).ravel()
        known = ~unknown.ravel()
        values = grid.ravel()
        high = np.full(py * px, -1)
        low = np.full(py * px, 10)
        np.maximum.at(high, classes[known], values[known])
        np.minimum.at(low, classes[known], values[known])
        if (high < 0).any() or (high != low).any():
            continue
        filled = high[classes].reshape(h, w).astype(grid.dtype)
        if output == "full":
            return filled
        r, c = np.nonzero(unknown)
        return filled[r.min() : r.max() + 1, c.min() : c.max() + 1].copy()
    return None


# ----------------------------------------------------------------------------- gravity and lines
_DIRECTION_K = {"down": 0, "up": 2, "left": 3, "right": 1}


@primitive(GRID, GRID, direction=tuple(_DIRECTION_K))
def gravity(grid, direction):
    """Every non-background cell falls as far as it can in `direction`, keeping the order of its column."""
    k = _DIRECTION_K[direction]
    turned = dihedral_transform(grid, k)
    out = np.full_like(turned, BACKGROUND)
    for j in range(turned.shape[1]):
        column = turned[:, j]
        cells = column[column != BACKGROUND]
        if cells.size:
            out[-cells.size :, j] = cells
    return dihedral_transform(out, inverse_dihedral_index(k))


_RAYS = {
    "up": ((-1, 0),),
    "down": ((1, 0),),
    "left": ((0, -1),),
    "right": ((0, 1),),
    "horizontal": ((0, -1), (0, 1)),
    "vertical": ((-1, 0), (1, 0)),
    "cross": ((0, -1), (0, 1), (-1, 0), (1, 0)),
    "diagonals": ((-1, -1), (-1, 1), (1, -1), (1, 1)),
}


@primitive(GRID, GRID, direction=tuple(_RAYS))
def extend_lines(grid, direction):
    """Each single non-background cell (no same-coloured neighbour) shoots rays of its colour in
    `direction` across the background to the grid's edge."""
    h, w = grid.shape
    out = grid.copy()
    padded = np.pad(grid, 1, constant_values=-1)
    rows, cols = np.nonzero(grid != BACKGROUND)
    drew = False
    for r, c in zip(rows, cols):
        colour = grid[r, c]
        around = padded[r : r + 3, c : c + 3]
        if (around == colour).sum() > 1:
            continue
        for dr, dc in _RAYS[direction]:
            i, j = r + dr, c + dc
            while 0 <= i < h and 0 <= j < w:
                if grid[i, j] == BACKGROUND:
                    out[i, j] = colour
                    drew = True
                i, j = i + dr, j + dc
    return out if drew else None


@primitive(GRID, GRID, orientation=("rows", "columns", "both"))
def connect_pairs(grid, orientation):
    """Draw a line of their colour between cells of the same colour that share a row (or column),
    over the background between them."""
    out = grid.copy()
    views = {"rows": (out,), "columns": (out.T,), "both": (out, out.T)}[orientation]
    source = {"rows": (grid,), "columns": (grid.T,), "both": (grid, grid.T)}[orientation]
    drew = False
    for view, src in zip(views, source):
        for i in range(src.shape[0]):
            line = src[i]
            for colour in np.unique(line[line != BACKGROUND]):
                where = np.nonzero(line == colour)[0]
                for a, b in zip(where[:-1], where[1:]):
                    gap = view[i, a + 1 : b]
                    if b > a + 1 and (line[a + 1 : b] == BACKGROUND).all():
                        gap[...] = colour
                        drew = True
    return out if drew else None


# ----------------------------------------------------------------------------- parts of a grid
def _separators(grid, axis):
    """Indices of full lines (rows for axis 0) of one non-background colour, and that colour."""
    lines = grid if axis == 0 else grid.T
    full = [(i, int(line[0])) for i, line in enumerate(lines) if line[0] != BACKGROUND and (line == line[0]).all()]
    return full


def grid_parts(grid, split):
    """The parts of a grid: `rows2` / `cols2` the two halves (around a middle separator line when there
    is one), `cells` the blocks between full separator lines of one colour."""
    h, w = grid.shape
    if split in ("rows2", "cols2"):
        axis = 0 if split == "rows2" else 1
        size = grid.shape[axis]
        lines = dict(_separators(grid, axis))
        if size % 2 == 1 and size // 2 in lines:
            a, b = slice(0, size // 2), slice(size // 2 + 1, size)
        elif size % 2 == 0 and size >= 2:
            a, b = slice(0, size // 2), slice(size // 2, size)
        else:
            return None
        return [grid[a], grid[b]] if axis == 0 else [grid[:, a], grid[:, b]]
    row_lines, col_lines = _separators(grid, 0), _separators(grid, 1)
    colours = {c for _, c in row_lines} | {c for _, c in col_lines}
    if not colours or len(colours) > 1:
        return None
    row_cut = [i for i, _ in row_lines]
    col_cut = [j for j, _ in col_lines]
    row_spans = [(a + 1, b) for a, b in zip([-1, *row_cut], [*row_cut, h]) if b > a + 1]
    col_spans = [(a + 1, b) for a, b in zip([-1, *col_cut], [*col_cut, w]) if b > a + 1]
    parts = [grid[r0:r1, c0:c1] for r0, r1 in row_spans for c0, c1 in col_spans]
    return parts if len(parts) > 1 else None


_LOGIC = {
    "and": lambda masks: np.logical_and.reduce(masks),
    "or": lambda masks: np.logical_or.reduce(masks),
    "xor": lambda masks: np.sum(masks, axis=0) == 1,
    "nor": lambda masks: ~np.logical_or.reduce(masks),
    "first_only": lambda masks: masks[0] & ~np.logical_or.reduce(masks[1:]),
}


@primitive(GRID, GRID, split=("rows2", "cols2", "cells"), op=(*_LOGIC, "overlay_first", "overlay_last"))
def combine_parts(grid, split, op):
    """Combine the parts of a split grid (all of one shape): a logical `op` of their non-background
    cells as a 0/1 mask (coloured by a fitted colour map), or the parts overlaid with the first
    (`overlay_first`) or last part on top."""
    parts = grid_parts(grid, split)
    if parts is None or len({p.shape for p in parts}) != 1:
        return None
    if op.startswith("overlay"):
        order = parts[::-1] if op == "overlay_first" else parts
        out = np.full_like(parts[0], BACKGROUND)
        for part in order:
            out = np.where(part != BACKGROUND, part, out)
        return out
    return _LOGIC[op](np.stack([p != BACKGROUND for p in parts])).astype(grid.dtype)


_SELECT = {
    "most_filled": lambda p: -(p != BACKGROUND).sum(),
    "least_filled": lambda p: (p != BACKGROUND).sum(),
    "most_colours": lambda p: -len(np.unique(p[p != BACKGROUND])),
}


@primitive(GRID, GRID, split=("rows2", "cols2", "cells"), which=(*_SELECT, "unique"))
def select_part(grid, split, which):
    """One part of a split grid: the most / least filled, the one with most colours, or the one that
    differs from all the others (`unique`); None when the choice is not unique."""
    parts = grid_parts(grid, split)
    if parts is None:
        return None
    if which == "unique":
        keys = [(p.shape, p.tobytes()) for p in parts]
        unique = [p for p, k in zip(parts, keys) if keys.count(k) == 1]
        return unique[0].copy() if len(unique) == 1 else None
    scores = [_SELECT[which](p) for p in parts]
    best = min(scores)
    if scores.count(best) > 1:
        return None
    return parts[scores.index(best)].copy()
