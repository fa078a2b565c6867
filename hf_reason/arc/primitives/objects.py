"""Object primitives: finding connected components, filtering, sorting and picking them by size,
colour, shape or position, cropping them, painting, erasing, recolouring, labelling and counting."""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..objects import BACKGROUND, ObjectSet, find_objects
from ..registry import GRID, INT, OBJECT, OBJECTS, primitive


@primitive(OBJECTS, GRID, cost=0, connectivity=(4, 8), multicolour=(False, True))
def objects(grid, connectivity, multicolour):
    """The grid's objects: components of one colour, or of all non-background cells (`multicolour`)."""
    found = find_objects(grid, connectivity, multicolour)
    return ObjectSet(grid, found) if found else None


def _unique_by(items, key):
    counts = Counter(key(o) for o in items)
    return [o for o in items if counts[key(o)] == 1]


_FILTERS = {
    "largest": lambda objs, g: [o for o in objs if o.size == max(x.size for x in objs)],
    "smallest": lambda objs, g: [o for o in objs if o.size == min(x.size for x in objs)],
    "not_largest": lambda objs, g: [o for o in objs if o.size != max(x.size for x in objs)],
    "not_smallest": lambda objs, g: [o for o in objs if o.size != min(x.size for x in objs)],
    "touching_border": lambda objs, g: [o for o in objs if o.touches_border(g.shape)],
    "inside": lambda objs, g: [o for o in objs if not o.touches_border(g.shape)],
    "rectangles": lambda objs, g: [o for o in objs if o.is_rectangle],
    "not_rectangles": lambda objs, g: [o for o in objs if not o.is_rectangle],
    "single_cells": lambda objs, g: [o for o in objs if o.size == 1],
    "not_single_cells": lambda objs, g: [o for o in objs if o.size > 1],
    "with_holes": lambda objs, g: [o for o in objs if o.num_holes > 0],
    "without_holes": lambda objs, g: [o for o in objs if o.num_holes == 0],
    "unique_colour": lambda objs, g: _unique_by(objs, lambda o: o.colour),
    "unique_shape": lambda objs, g: _unique_by(objs, lambda o: o.shape_key),
    "repeated_shape": lambda objs, g: [o for o in objs if o not in _unique_by(objs, lambda o: o.shape_key)],
}


@primitive(OBJECTS, OBJECTS, keep=tuple(_FILTERS))
def filter_objects(objs, keep):
    """The objects that satisfy a predicate (size, border contact, rectangle, holes, uniqueness)."""
    if len(objs) < 2:
        return None
    kept = _FILTERS[keep](objs.objects, objs.grid)
    return ObjectSet(objs.grid, tuple(kept)) if kept and len(kept) < len(objs) else None


@primitive(OBJECTS, OBJECTS, colour="input_colours")
def objects_of_colour(objs, colour):
    """The objects whose main colour is `colour`."""
    kept = tuple(o for o in objs.objects if o.colour == colour)
    return ObjectSet(objs.grid, kept) if kept and len(kept) < len(objs) else None


_PICKS = {
    "largest": lambda o: -o.size,
    "smallest": lambda o: o.size,
    "tallest": lambda o: -o.height,
    "widest": lambda o: -o.width,
    "top": lambda o: (o.top, o.left),
    "bottom": lambda o: (-(o.top + o.height), o.left),
    "left": lambda o: (o.left, o.top),
    "right": lambda o: (-(o.left + o.width), o.top),
    "most_colours": lambda o: -o.num_colours,
    "most_holes": lambda o: -o.num_holes,
}


@primitive(OBJECT, OBJECTS, which=(*_PICKS, "unique_colour", "unique_shape", "most_common_shape"))
def pick(objs, which):
    """One object: the extreme one by size or position, or the one that differs from the others
    (None when the choice is not unique)."""
    items = objs.objects
    if which in ("unique_colour", "unique_shape"):
        unique = _unique_by(items, (lambda o: o.colour) if which == "unique_colour" else (lambda o: o.shape_key))
        return unique[0] if len(unique) == 1 and len(items) > 1 else None
    if which == "most_common_shape":
        counts = Counter(o.shape_key for o in items)
        (best, n), *rest = counts.most_common()
        return None if rest and rest[0][1] == n else next(o for o in items if o.shape_key == best)
    key = _PICKS[which]
    ranked = sorted(items, key=key)
    if len(ranked) > 1 and key(ranked[0]) == key(ranked[1]):
        return None
    return ranked[0]


@primitive(GRID, OBJECT, content=("object", "box"))
def crop(obj, content):
    """The object's bounding box: its own cells only (`object`) or everything the box holds (`box`)."""
    return obj.colours.copy() if content == "object" else obj.region.copy()


def _paint(canvas, objs, colour=None):
    for o in objs:
        region = canvas[o.top : o.top + o.height, o.left : o.left + o.width]
        region[o.mask] = o.colours[o.mask] if colour is None else colour
    return canvas


@primitive(GRID, OBJECTS)
def keep_objects(objs):
    """A blank grid with only these objects."""
    return _paint(np.full_like(objs.grid, BACKGROUND), objs.objects)


@primitive(GRID, OBJECTS)
def erase_objects(objs):
    """The grid without these objects."""
    return _paint(objs.grid.copy(), objs.objects, BACKGROUND)


@primitive(GRID, OBJECTS, colour="output_colours")
def recolour_objects(objs, colour):
    """The grid with these objects recoloured."""
    return _paint(objs.grid.copy(), objs.objects, colour)


@primitive(GRID, OBJECTS)
def fill_boxes(objs):
    """The grid with the background inside each object's bounding box set to 1 (a marker that a fitted
    colour map then colours)."""
    canvas = objs.grid.copy()
    for o in objs.objects:
        region = canvas[o.top : o.top + o.height, o.left : o.left + o.width]
        region[(region == BACKGROUND) & ~o.mask] = 1
    return canvas


_LABELS = {
    "size": lambda o, objs: o.size,
    "height": lambda o, objs: o.height,
    "width": lambda o, objs: o.width,
    "holes": lambda o, objs: o.num_holes + 1,
    "shape_count": lambda o, objs: sum(x.shape_key == o.shape_key for x in objs),
    "colour_count": lambda o, objs: sum(x.colour == o.colour for x in objs),
}


@primitive(GRID, OBJECTS, feature=("size", "size_rank", "height", "width", "holes", "shape_count", "colour_count"))
def label_objects(objs, feature):
    """A grid where each object's cells hold a number for one of its features (1..9; `size_rank`: 1 for
    the largest), for a fitted colour map to turn into colours: recolouring by a rule."""
    items = objs.objects
    if feature == "size_rank":
        sizes = sorted({o.size for o in items}, reverse=True)
        values = [sizes.index(o.size) + 1 for o in items]
    else:
        values = [_LABELS[feature](o, items) for o in items]
    if max(values) > 9:
        return None
    canvas = np.full_like(objs.grid, BACKGROUND)
    for o, value in zip(items, values):
        canvas[o.top : o.top + o.height, o.left : o.left + o.width][o.mask] = value
    return canvas


@primitive(INT, OBJECTS)
def count(objs):
    """The number of objects."""
    return len(objs)


@primitive(GRID, INT, layout=("row", "column", "square"))
def count_grid(n, layout):
    """`n` shown as cells of colour 1: a row or column of `n`, or `n` cells of a 3x3 square filled in
    reading order (for a fitted colour map to colour)."""
    if not 1 <= n <= 30 or (layout == "square" and n > 9):
        return None
    if layout == "square":
        out = np.zeros(9, dtype=np.int8)
        out[:n] = 1
        return out.reshape(3, 3)
    out = np.ones((1, n), dtype=np.int8)
    return out if layout == "row" else out.T.copy()
