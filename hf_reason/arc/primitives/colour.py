"""Colour primitives: keeping, removing and filling colours, enclosed regions, colour statistics,
and the fitted colour map that ends many programs (recolouring by a rule learned from the pairs)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..objects import BACKGROUND
from ..registry import GRID, primitive


def _non_background_counts(grid):
    counts = np.bincount(grid.ravel(), minlength=10)
    counts[BACKGROUND] = 0
    return counts


@primitive(GRID, GRID, colour="input_colours")
def keep_colour(grid, colour):
    """Only the cells of `colour` stay; the rest becomes background."""
    if colour == BACKGROUND:
        return None
    return np.where(grid == colour, grid, BACKGROUND).astype(grid.dtype)


@primitive(GRID, GRID, colour="input_colours")
def remove_colour(grid, colour):
    """The cells of `colour` become background."""
    if colour == BACKGROUND:
        return None
    return np.where(grid == colour, BACKGROUND, grid).astype(grid.dtype)


@primitive(GRID, GRID, colour="output_colours")
def fill_background(grid, colour):
    """The background cells take `colour`."""
    if colour == BACKGROUND:
        return None
    return np.where(grid == BACKGROUND, colour, grid).astype(grid.dtype)


@primitive(GRID, GRID, colour="output_colours")
def fill_enclosed(grid, colour):
    """Background cells that cannot reach the grid's edge through background (4-connected) take
    `colour`: the holes of shapes."""
    if colour == BACKGROUND:
        return None
    walls = grid != BACKGROUND
    enclosed = ndimage.binary_fill_holes(walls) & ~walls
    return np.where(enclosed, colour, grid).astype(grid.dtype)


@primitive(GRID, GRID)
def binarize(grid):
    """Non-background cells become 1 (a mask that a fitted colour map then colours)."""
    return (grid != BACKGROUND).astype(grid.dtype)


@primitive(GRID, GRID, which=("most", "least"))
def colour_cell(grid, which):
    """A 1x1 grid of the most (or least) frequent non-background colour."""
    counts = _non_background_counts(grid)
    if not counts.any():
        return None
    colour = counts.argmax() if which == "most" else np.where(counts > 0, counts, counts.max() + 1).argmin()
    return np.array([[colour]], dtype=grid.dtype)


@primitive(GRID, GRID, which=("most", "least"))
def fill_with_colour(grid, which):
    """Every non-background cell takes the most (or least) frequent non-background colour."""
    cell = colour_cell(grid, which)
    return None if cell is None else np.where(grid != BACKGROUND, cell[0, 0], BACKGROUND).astype(grid.dtype)


@primitive(GRID, GRID, layout=("row", "column"))
def colours_by_frequency(grid, layout):
    """The non-background colours, most frequent first, as a row or a column."""
    counts = _non_background_counts(grid)
    present = [int(c) for c in np.argsort(-counts, kind="stable") if counts[c] > 0]
    if not present:
        return None
    out = np.array([present], dtype=grid.dtype)
    return out if layout == "row" else out.T.copy()


@primitive(GRID, GRID, mapping=None)
def map_colours(grid, mapping):
    """Recolour by a table `{from: to}` learned from the training pairs; colours not in it stay."""
    lookup = np.arange(10, dtype=grid.dtype)
    for source, target in dict(mapping).items():
        lookup[int(source)] = int(target)
    return lookup[grid]
