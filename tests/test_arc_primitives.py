"""Every DSL primitive on small hand-made grids (hf_reason.arc.primitives), and programs' text round trip."""

import numpy as np
import pytest

from hf_reason.arc.dsl import INPUT, PRIMITIVES, Program, list_primitives, parse_program
from hf_reason.arc.objects import find_objects


def G(*rows):
    return np.array(rows, dtype=np.int8)


A = G([1, 2, 0], [0, 3, 0])  # 2x3, asymmetric
# Two red (2) objects of sizes 3 and 1, one blue (1) object of size 2; the big red one is an L.
OBJS = G(
    [2, 2, 0, 0, 0],
    [2, 0, 0, 1, 0],
    [0, 0, 0, 1, 0],
    [0, 2, 0, 0, 0],
)
RING = G(
    [0, 0, 0, 0, 0],
    [0, 4, 4, 4, 0],
    [0, 4, 0, 4, 0],
    [0, 4, 4, 4, 0],
    [0, 0, 0, 0, 0],
)


def run(name, *values, **params):
    return PRIMITIVES[name].fn(*values, **params)


def objects_of(grid, connectivity=4, multicolour=False):
    return run("objects", grid, connectivity=connectivity, multicolour=multicolour)


# name -> (call, expected); expected None: the primitive does not apply
CASES = {
    "rot90": (lambda: run("rot90", A), G([0, 0], [2, 3], [1, 0])),
    "rot180": (lambda: run("rot180", A), G([0, 3, 0], [0, 2, 1])),
    "rot270": (lambda: run("rot270", A), G([0, 1], [3, 2], [0, 0])),
    "flip_lr": (lambda: run("flip_lr", A), G([0, 2, 1], [0, 3, 0])),
    "flip_ud": (lambda: run("flip_ud", A), G([0, 3, 0], [1, 2, 0])),
    "transpose": (lambda: run("transpose", A), G([1, 0], [2, 3], [0, 0])),
    "antitranspose": (lambda: run("antitranspose", A), G([0, 0], [3, 2], [0, 1])),
    "crop_to_content": (lambda: run("crop_to_content", G([0, 0, 0], [0, 5, 0], [0, 0, 6])), G([5, 0], [0, 6])),
    "tile": (lambda: run("tile", G([1, 2]), rows=2, cols=2), G([1, 2, 1, 2], [1, 2, 1, 2])),
    "mirror_tile": (lambda: run("mirror_tile", G([1, 2]), layout="lr"), G([1, 2, 2, 1])),
    "upscale": (lambda: run("upscale", G([1, 0]), factor=2), G([1, 1, 0, 0], [1, 1, 0, 0])),
    "downscale": (lambda: run("downscale", G([1, 1, 0, 0], [1, 2, 0, 0]), factor=2), G([1, 0])),
    "fractal": (
        lambda: run("fractal", G([1, 0], [0, 1]), where="filled"),
        G([1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]),
    ),
    "half": (lambda: run("half", G([1, 2, 3], [4, 5, 6], [7, 8, 9]), part="bottom"), G([7, 8, 9])),
    "trim_border": (lambda: run("trim_border", RING), G([4, 4, 4], [4, 0, 4], [4, 4, 4])),
    "add_border": (lambda: run("add_border", G([1]), colour=3), G([3, 3, 3], [3, 1, 3], [3, 3, 3])),
    "keep_colour": (lambda: run("keep_colour", A, colour=2), G([0, 2, 0], [0, 0, 0])),
    "remove_colour": (lambda: run("remove_colour", A, colour=2), G([1, 0, 0], [0, 3, 0])),
    "fill_background": (lambda: run("fill_background", A, colour=7), G([1, 2, 7], [7, 3, 7])),
    "fill_enclosed": (
        lambda: run("fill_enclosed", RING, colour=8),
        np.where(RING == 0, 0, 4).astype(np.int8) + np.pad(G([8]), 2),
    ),
    "binarize": (lambda: run("binarize", A), G([1, 1, 0], [0, 1, 0])),
    "colour_cell": (lambda: run("colour_cell", G([1, 1, 2], [0, 0, 1]), which="least"), G([2])),
    "fill_with_colour": (
        lambda: run("fill_with_colour", G([1, 1, 2], [0, 0, 1]), which="most"),
        G([1, 1, 1], [0, 0, 1]),
    ),
    "colours_by_frequency": (
        lambda: run("colours_by_frequency", G([3, 1, 1], [0, 0, 1]), layout="column"),
        G([1], [3]),
    ),
    "map_colours": (lambda: run("map_colours", A, mapping=((1, 5), (3, 0))), G([5, 2, 0], [0, 0, 0])),
    "objects": (lambda: len(objects_of(OBJS)), 3),
    "filter_objects": (
        lambda: [o.size for o in run("filter_objects", objects_of(OBJS), keep="not_largest").objects],
        [2, 1],
    ),
    "objects_of_colour": (
        lambda: [o.size for o in run("objects_of_colour", objects_of(OBJS), colour=2).objects],
        [3, 1],
    ),
    "pick": (lambda: run("pick", objects_of(OBJS), which="unique_colour").colours, G([1], [1])),
    "crop": (lambda: run("crop", run("pick", objects_of(OBJS), which="largest"), content="object"), G([2, 2], [2, 0])),
    "keep_objects": (
        lambda: run("keep_objects", run("filter_objects", objects_of(OBJS), keep="single_cells")),
        np.pad(G([2]), ((3, 0), (1, 3))),
    ),
    "erase_objects": (
        lambda: run("erase_objects", run("objects_of_colour", objects_of(OBJS), colour=2)),
        np.where(OBJS == 1, 1, 0).astype(np.int8),
    ),
    "recolour_objects": (
        lambda: run("recolour_objects", run("filter_objects", objects_of(OBJS), keep="largest"), colour=5),
        np.where(OBJS == 2, 5, OBJS).astype(np.int8) - np.pad(G([3]), ((3, 0), (1, 3))),
    ),
    "fill_boxes": (
        lambda: run("fill_boxes", run("filter_objects", objects_of(OBJS), keep="largest")),
        np.where((np.arange(5) == 1)[None, :] & (np.arange(4) == 1)[:, None], 1, OBJS).astype(np.int8),
    ),
    "label_objects": (
        lambda: run("label_objects", objects_of(OBJS), feature="size_rank"),
        np.choose(OBJS, [0, 2, 1]) + np.pad(G([2]), ((3, 0), (1, 3))).astype(np.int8),
    ),
    "count": (lambda: run("count", objects_of(OBJS, connectivity=8)), 3),
    "count_grid": (lambda: run("count_grid", 4, layout="square"), G([1, 1, 1], [1, 0, 0], [0, 0, 0])),
    "complete_symmetry": (
        lambda: run(
            "complete_symmetry", G([1, 2, 2, 1], [3, 5, 0, 3], [4, 0, 5, 4]), mask=5, kind="lr", output="full"
        ),
        G([1, 2, 2, 1], [3, 0, 0, 3], [4, 0, 0, 4]),
    ),
    "complete_pattern": (
        lambda: run("complete_pattern", G([1, 2, 1, 2, 1], [3, 4, 3, 0, 0], [1, 2, 1, 0, 0]), mask=0, output="masked"),
        G([4, 3], [2, 1]),
    ),
    "gravity": (lambda: run("gravity", G([1, 0], [0, 2], [3, 0]), direction="down"), G([0, 0], [1, 0], [3, 2])),
    "extend_lines": (
        lambda: run("extend_lines", G([0, 0, 0], [0, 6, 0], [0, 0, 0]), direction="vertical"),
        G([0, 6, 0], [0, 6, 0], [0, 6, 0]),
    ),
    "connect_pairs": (
        lambda: run("connect_pairs", G([7, 0, 0, 7], [0, 0, 0, 0]), orientation="rows"),
        G([7, 7, 7, 7], [0, 0, 0, 0]),
    ),
    "combine_parts": (
        lambda: run("combine_parts", G([1, 0, 5, 1, 1], [0, 0, 5, 0, 1]), split="cols2", op="and"),
        G([1, 0], [0, 0]),
    ),
    "select_part": (
        lambda: run("select_part", G([1, 1, 5, 2, 0], [1, 1, 5, 0, 0]), split="cols2", which="least_filled"),
        G([2, 0], [0, 0]),
    ),
}


def test_every_primitive_has_a_hand_made_case():
    assert sorted(CASES) == sorted(PRIMITIVES)
    assert all(len(line) > 20 for line in list_primitives().splitlines())


@pytest.mark.parametrize("name", sorted(CASES))
def test_primitive_on_a_hand_made_grid(name):
    call, expected = CASES[name]
    got = call()
    if isinstance(expected, np.ndarray):
        np.testing.assert_array_equal(np.asarray(got), expected)
    else:
        assert got == expected


@pytest.mark.parametrize("name", sorted(n for n in PRIMITIVES if PRIMITIVES[n].arg_types == ("Grid",)))
def test_grid_primitives_never_mutate_their_input(name):
    grid = OBJS.copy()
    spec = PRIMITIVES[name]
    domains = {"input_colours": (1, 2), "output_colours": (1, 3), "colours": (1, 2, 3)}
    for param in spec.params:
        if param.domain is None:
            pytest.skip("fitted parameter")
    import itertools

    for values in itertools.product(
        *[domains[p.domain] if isinstance(p.domain, str) else p.domain for p in spec.params]
    ):
        spec.fn(grid, **dict(zip((p.name for p in spec.params), values)))
        np.testing.assert_array_equal(grid, OBJS)


@pytest.mark.parametrize(
    "name,call",
    [
        ("crop_to_content", lambda: run("crop_to_content", G([0, 0]))),
        ("tile", lambda: run("tile", np.zeros((20, 20), np.int8), rows=2, cols=1)),
        ("downscale", lambda: run("downscale", G([1, 2, 3]), factor=2)),
        ("pick", lambda: run("pick", objects_of(G([1, 0, 1])), which="largest")),  # a tie: no unique choice
        ("complete_symmetry", lambda: run("complete_symmetry", A, mask=9, kind="lr", output="full")),
        ("select_part", lambda: run("select_part", G([1, 2, 3]), split="cells", which="unique")),
    ],
)
def test_primitives_say_none_where_they_do_not_apply(name, call):
    assert call() is None


def test_objects_by_connectivity_and_colour():
    diagonal = G([1, 0], [0, 1])
    assert len(find_objects(diagonal, 4)) == 2 and len(find_objects(diagonal, 8)) == 1
    two_colours = G([1, 2])
    assert len(find_objects(two_colours, 4)) == 2 and len(find_objects(two_colours, 4, multicolour=True)) == 1
    (ring,) = find_objects(RING)
    assert (ring.top, ring.left, ring.size, ring.num_holes, ring.colour) == (1, 1, 8, 1, 4)
    with pytest.raises(ValueError, match="connectivity"):
        find_objects(RING, 6)


def test_inverses_undo_their_primitive():
    for name, spec in PRIMITIVES.items():
        if spec.inverse is None:
            continue
        params = {p.name: (p.domain[-1] if isinstance(p.domain, tuple) else 3) for p in spec.params}
        out = spec.fn(A, **params)
        np.testing.assert_array_equal(spec.fn(spec.inverse(out, **params), **params), out, err_msg=name)
    assert PRIMITIVES["tile"].inverse(G([1, 2, 1, 3]), rows=1, cols=2) is None  # not a tiling


def test_programs_print_parse_and_run_again():
    text = "map_colours(flip_lr(crop(pick(objects(input, connectivity=4, multicolour=False), which='largest'), content='object')), mapping={2: 6})"
    program = parse_program(text)
    assert str(program) == text and program.size == 4 and program.num_constants == 1
    np.testing.assert_array_equal(program(OBJS.tolist()), G([6, 6], [0, 6]))
    built = Program.call("rot90", INPUT)
    assert parse_program(str(built)) == built


@pytest.mark.parametrize(
    "text,match",
    [
        ("rot91(input)", "unknown primitive"),
        ("rot90(input, k=1)", "parameters"),
        ("crop(input, content='box')", "takes a Object"),
        ("rot90(input", "does not parse"),
        ("tile(input, rows=len('ab'), cols=1)", "not a constant"),
        ("input + 1", "expected `input`"),
    ],
)
def test_bad_programs_are_refused_with_the_reason(text, match):
    with pytest.raises(ValueError, match=match):
        parse_program(text)
