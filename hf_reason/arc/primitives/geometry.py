"""Geometry primitives: the eight symmetries, cropping, tiling, scaling, halves and borders."""

from __future__ import annotations

import numpy as np

from ...data.grid import dihedral_transform
from ..objects import BACKGROUND
from ..registry import GRID, primitive, register_inverse


MAX_SIDE = 30


def _fits(grid: np.ndarray):
    return grid if 1 <= grid.shape[0] <= MAX_SIDE and 1 <= grid.shape[1] <= MAX_SIDE else None


@primitive(GRID, GRID)
def rot90(grid):
    """Rotate a quarter turn counter-clockwise."""
    return dihedral_transform(grid, 1)


@primitive(GRID, GRID)
def rot180(grid):
    """Rotate a half turn."""
    return dihedral_transform(grid, 2)


@primitive(GRID, GRID)
def rot270(grid):
    """Rotate a quarter turn clockwise."""
    return dihedral_transform(grid, 3)


@primitive(GRID, GRID)
def flip_lr(grid):
    """Mirror left-right."""
    return np.ascontiguousarray(grid[:, ::-1])


@primitive(GRID, GRID)
def flip_ud(grid):
    """Mirror top-bottom."""
    return np.ascontiguousarray(grid[::-1])


@primitive(GRID, GRID)
def transpose(grid):
    """Mirror along the main diagonal."""
    return dihedral_transform(grid, 4)


@primitive(GRID, GRID)
def antitranspose(grid):
    """Mirror along the anti-diagonal."""
    return dihedral_transform(grid, 6)


@primitive(GRID, GRID)
def crop_to_content(grid):
    """The bounding box of the non-background cells (None when there are none)."""
    rows, cols = np.nonzero(grid != BACKGROUND)
    if rows.size == 0:
        return None
    return grid[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].copy()


@primitive(GRID, GRID, rows=(1, 2, 3, 4), cols=(1, 2, 3, 4))
def tile(grid, rows, cols):
    """Repeat the grid `rows` times down and `cols` times across."""
    if rows == cols == 1:
        return None
    return _fits(np.tile(grid, (rows, cols)))


_MIRROR_LAYOUTS = ("lr", "rl", "ud", "du", "quad")


@primitive(GRID, GRID, layout=_MIRROR_LAYOUTS)
def mirror_tile(grid, layout):
    """Place the grid beside its mirror image: `lr` [g | mirror], `rl` [mirror | g], `ud` / `du`
    above or below its upside-down copy, `quad` 2x2 (g, mirror; upside-down, half turn)."""
    lr, ud = grid[:, ::-1], grid[::-1]
    if layout == "lr":
        out = np.hstack([grid, lr])
    elif layout == "rl":
        out = np.hstack([lr, grid])
    elif layout == "ud":
        out = np.vstack([grid, ud])
    elif layout == "du":
        out = np.vstack([ud, grid])
    else:
        out = np.vstack([np.hstack([grid, lr]), np.hstack([ud, grid[::-1, ::-1]])])
    return _fits(out)


@primitive(GRID, GRID, factor=(2, 3, 4, 5))
def upscale(grid, factor):
    """Each cell becomes a `factor` x `factor` block."""
    return _fits(np.kron(grid, np.ones((factor, factor), dtype=grid.dtype)))


@primitive(GRID, GRID, factor=(2, 3, 4, 5))
def downscale(grid, factor):
    """Each `factor` x `factor` block becomes one cell of its most frequent colour (None unless the
    sides divide)."""
    h, w = grid.shape
    if h % factor or w % factor:
        return None
    blocks = (
        grid.reshape(h // factor, factor, w // factor, factor)
        .transpose(0, 2, 1, 3)
        .reshape(h // factor, w // factor, -1)
    )
    counts = (blocks[..., None] == np.arange(10)).sum(axis=2)
    return counts.argmax(-1).astype(grid.dtype)


@primitive(GRID, GRID, where=("filled", "empty"))
def fractal(grid, where):
    """A copy of the grid in each block of the grid scaled by its own size, at the `filled`
    (non-background) or `empty` cells."""
    keep = grid != BACKGROUND if where == "filled" else grid == BACKGROUND
    return _fits(np.kron(keep.astype(grid.dtype), grid))


@primitive(GRID, GRID, part=("top", "bottom", "left", "right"))
def half(grid, part):
    """One half of the grid (for an odd side, the middle line is left out)."""
    h, w = grid.shape
    if (part in ("top", "bottom") and h < 2) or (part in ("left", "right") and w < 2):
        return None
    if part == "top":
        return grid[: h // 2].copy()
    if part == "bottom":
        return grid[(h + 1) // 2 :].copy()
    if part == "left":
        return grid[:, : w // 2].copy()
    return grid[:, (w + 1) // 2 :].copy()


@primitive(GRID, GRID)
def trim_border(grid):
    """The grid without its outermost ring of cells."""
    return grid[1:-1, 1:-1].copy() if min(grid.shape) > 2 else None


@primitive(GRID, GRID, colour="output_colours")
def add_border(grid, colour):
    """The grid inside a one-cell ring of `colour`."""
    return _fits(np.pad(grid, 1, constant_values=colour))


# ----------------------------------------------------------------------------- inverses (for the last step)
register_inverse("rot90")(lambda out: dihedral_transform(out, 3))
register_inverse("rot180")(lambda out: dihedral_transform(out, 2))
register_inverse("rot270")(lambda out: dihedral_transform(out, 1))
register_inverse("flip_lr")(flip_lr)
register_inverse("flip_ud")(flip_ud)
register_inverse("transpose")(transpose)
register_inverse("antitranspose")(antitranspose)


def _checked(forward, candidate, out, **params):
    """`candidate` when the primitive maps it to `out` exactly, else None."""
    if candidate is None or candidate.size == 0:
        return None
    made = forward(candidate, **params)
    return candidate if made is not None and made.shape == out.shape and (made == out).all() else None


@register_inverse("tile")
def _untile(out, rows, cols):
    h, w = out.shape
    if h % rows or w % cols:
        return None
    return _checked(tile, out[: h // rows, : w // cols].copy(), out, rows=rows, cols=cols)


@register_inverse("mirror_tile")
def _unmirror(out, layout):
    h, w = out.shape
    if (layout in ("lr", "rl", "quad") and w % 2) or (layout in ("ud", "du", "quad") and h % 2):
        return None
    block = {
        "lr": out[:, : w // 2],
        "rl": out[:, w // 2 :],
        "ud": out[: h // 2],
        "du": out[h // 2 :],
        "quad": out[: h // 2, : w // 2],
    }[layout]
    return _checked(mirror_tile, block.copy(), out, layout=layout)


@register_inverse("upscale")
def _unscale(out, factor):
    h, w = out.shape
    if h % factor or w % factor:
        return None
    return _checked(upscale, out[::factor, ::factor].copy(), out, factor=factor)


@register_inverse("add_border")
def _unborder(out, colour):
    return _checked(add_border, out[1:-1, 1:-1].copy(), out, colour=colour) if min(out.shape) > 2 else None
