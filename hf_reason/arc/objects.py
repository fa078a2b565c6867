"""Objects of an ARC grid: connected components with their bounding boxes and colours.

Connected components come from ``scipy.ndimage.label`` (4- or 8-connectivity); an object is either
one colour's component (``multicolour=False``) or a component of all non-background cells.
Colour 0 is the background, as in nearly every ARC task.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import ndimage


__all__ = ["BACKGROUND", "ArcObject", "ObjectSet", "find_objects"]

BACKGROUND = 0
_STRUCTURES = {4: ndimage.generate_binary_structure(2, 1), 8: ndimage.generate_binary_structure(2, 2)}


@dataclass(frozen=True, eq=False)
class ArcObject:
    """
    One object.

    Args:
        mask (`np.ndarray` of bool, shape `(height, width)`): its cells within its bounding box.
        colours (`np.ndarray` of int, same shape): the grid's colours in the bounding box, background
            where the mask is False.
        top, left (`int`): the bounding box's corner in the grid.
        region (`np.ndarray` of int, same shape): everything the bounding box holds in the grid
            (other objects' cells included).
    """

    mask: np.ndarray
    colours: np.ndarray
    top: int
    left: int
    region: np.ndarray

    @property
    def height(self) -> int:
        return self.mask.shape[0]

    @property
    def width(self) -> int:
        return self.mask.shape[1]

    @cached_property
    def size(self) -> int:
        return int(self.mask.sum())

    @cached_property
    def colour(self) -> int:
        """The most frequent colour of its cells (the lowest on ties)."""
        values, counts = np.unique(self.colours[self.mask], return_counts=True)
        return int(values[np.argmax(counts)])

    @cached_property
    def num_colours(self) -> int:
        return len(np.unique(self.colours[self.mask]))

    @cached_property
    def shape_key(self) -> bytes:
        """Its shape (mask) as bytes, equal for objects of the same shape wherever they are."""
        return bytes(self.mask.shape) + np.packbits(self.mask).tobytes()

    @cached_property
    def key(self) -> tuple:
        return (self.top, self.left, self.colours.shape, self.colours.tobytes(), self.mask.tobytes())

    @property
    def is_rectangle(self) -> bool:
        return bool(self.mask.all())

    @cached_property
    def num_holes(self) -> int:
        """Background regions enclosed by the object (4-connected, not touching its bounding box edge)."""
        holes = ndimage.binary_fill_holes(self.mask) & ~self.mask
        return int(ndimage.label(holes, _STRUCTURES[4])[1]) if holes.any() else 0

    def touches_border(self, grid_shape: tuple) -> bool:
        return (
            self.top == 0
            or self.left == 0
            or self.top + self.height == grid_shape[0]
            or self.left + self.width == grid_shape[1]
        )


@dataclass(frozen=True, eq=False)
class ObjectSet:
    """Objects together with the grid they were found in (so that they can be painted back)."""

    grid: np.ndarray
    objects: tuple

    @cached_property
    def key(self) -> tuple:
        return (self.grid.shape, self.grid.tobytes(), tuple(o.key for o in self.objects))

    def __len__(self) -> int:
        return len(self.objects)


def find_objects(grid: np.ndarray, connectivity: int = 4, multicolour: bool = False) -> tuple:
    """The objects of ``grid`` in reading order of their bounding boxes' corners.

    Args:
        grid: the grid.
        connectivity: 4 (edge neighbours) or 8 (edges and corners).
        multicolour: one object per component of non-background cells; otherwise one per component
            of each colour.
    """
    if connectivity not in _STRUCTURES:
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    grid = np.asarray(grid)
    structure = _STRUCTURES[connectivity]
    layers = [grid != BACKGROUND] if multicolour else [grid == c for c in np.unique(grid) if c != BACKGROUND]
    objects = []
    for layer in layers:
        labels, count = ndimage.label(layer, structure)
        for index, box in enumerate(ndimage.find_objects(labels), start=1):
            if box is None:
                continue
            mask = labels[box] == index
            colours = np.where(mask, grid[box], BACKGROUND)
            objects.append(ArcObject(mask, colours, box[0].start, box[1].start, grid[box].copy()))
    objects.sort(key=lambda o: (o.top, o.left, -o.size))
    return tuple(objects)
