"""Human-technique rating of Sudoku (hf_reason.data.sudoku_rating) and generation by level."""

import numpy as np
import pytest

from hf_reason.data.sudoku import decode_sudoku, generate_sudoku, solve_sudoku, sudoku_from_text
from hf_reason.data.sudoku_rating import SUDOKU_LEVELS, SUDOKU_TECHNIQUES, rate_sudoku, sudoku_level


# Published puzzles whose required techniques are known: the Wikipedia "Sudoku" article's example
# (singles only), technique example puzzles of public Sudoku graders' test suites (each needs the
# named technique and nothing harder), and four famous extreme puzzles that defeat every chain
# technique (Sudoku Explainer rates them 10.5 to 11.9).
KNOWN = {
    "wikipedia": ("530070000600195000098000060800060003400803001700020006060000280000419005000080079", "easy"),
    "pointing": ("070010050900300007000080000000000200012004900000100005003900406006001070780530000", "medium"),
    "naked_pair": ("000005094000940300020007000400060008301000500008000070052070000007009000800302060", "medium"),
    "hidden_pair": ("300000000040600008100004035800000600000000080500002900604030000005700820073500040", "medium"),
    "xy_wing": ("050000080000086000000201070009020601280000054703060900090605000000170000030000010", "hard"),
    "xyz_wing": ("000400600050030000309100200180605004000000000700901053001009408000060010002007000", "hard"),
    "jellyfish": ("140000097970000016000000000000453000060170000730020000000000000420060071610000039", "hard"),
    "x_chain": ("000000000200374005050000080070090030080207090009040500900852003000030000005010400", "expert"),
    "xy_chain": ("800400057250000640097300800000070406000905000904060000008001720019000085530007004", "expert"),
    "aic": ("074800900001050004500000063000305008060070090900106000730000006800030200005004830", "expert"),
    "forcing_chain": ("006000200900000004243000896000591000002080300400203001300000007000907000010408020", "extreme"),
}
FAMOUS_EXTREME = {
    "ai_escargot": "100007090030020008009600500005300900010080002600004000300000010040000007007000300",
    "easter_monster": "100000002090400050006000700050903000000070000000850040700000600030009080002000001",
    "golden_nugget": "000000039000001005003050800008090006070002000100400000009080050020000600400700000",
    "inkala_2012": "800000000003600000070090200050007000000045700000100030001000068008500010090000400",
}


@pytest.mark.parametrize("name", KNOWN)
def test_known_puzzles_get_their_technique_and_level(name):
    puzzle, level = KNOWN[name]
    rating = rate_sudoku(puzzle)
    assert rating.complete
    assert rating.level == level
    expected = "hidden_single" if name == "wikipedia" else name
    assert rating.hardest_technique == expected
    assert rating.rating == SUDOKU_TECHNIQUES[expected]
    assert max(SUDOKU_TECHNIQUES[t] for t in rating.techniques) == rating.rating


@pytest.mark.parametrize("name", FAMOUS_EXTREME)
def test_famous_extreme_puzzles_are_beyond_every_chain(name):
    rating = rate_sudoku(FAMOUS_EXTREME[name], max_technique="aic")
    assert not rating.complete
    assert rating.level == "extreme" and rating.rating == SUDOKU_TECHNIQUES["forcing_chain"]


def test_full_rating_of_a_famous_extreme_puzzle():
    rating = rate_sudoku(FAMOUS_EXTREME["easter_monster"])
    # It has no single at the start and nothing short of a guess opens it.
    assert rating.complete and rating.hardest_technique == "trial_and_error" and rating.rating == 10.0
    assert rating.techniques["trial_and_error"] >= 1


def test_rating_accepts_grids_and_text_alike():
    text = KNOWN["pointing"][0]
    assert rate_sudoku(text) == rate_sudoku(sudoku_from_text(text)) == rate_sudoku(sudoku_from_text(text).ravel())
    four = decode_sudoku(generate_sudoku(1, size=4, seed=0, progress=False)[0]["input_ids"])
    assert rate_sudoku(four).level == "easy"  # a 4x4 board never needs more than singles


def test_levels_partition_the_scale():
    assert list(SUDOKU_LEVELS) == ["easy", "medium", "hard", "expert", "extreme"]
    assert [sudoku_level(r) for r in (1.5, 2.3, 2.6, 3.4, 3.6, 5.4, 6.5, 7.0, 8.0, 10.0)] == [
        "easy",
        "easy",
        "medium",
        "medium",
        "hard",
        "hard",
        "expert",
        "expert",
        "extreme",
        "extreme",
    ]


@pytest.mark.parametrize(
    "puzzle, match",
    [
        ("0" * 81, "several"),
        ("11" + "0" * 79, "none"),
        ("123", "characters"),
    ],
)
def test_rating_refuses_puzzles_without_one_solution(puzzle, match):
    with pytest.raises(ValueError, match=match):
        rate_sudoku(puzzle)


def test_max_technique_is_checked():
    with pytest.raises(ValueError, match="max_technique must be one of"):
        rate_sudoku(KNOWN["pointing"][0], max_technique="magic")


def test_extreme_generator_gives_unique_extreme_puzzles_with_17_to_25_givens():
    ds = generate_sudoku(3, level="extreme", seed=0, progress=False)
    assert ds.column_names == [
        "input_ids",
        "labels",
        "num_givens",
        "difficulty",
        "puzzle_identifiers",
        "rating",
        "level",
    ]
    for row in ds:
        puzzle = decode_sudoku(row["input_ids"])
        result = solve_sudoku(puzzle)
        assert result.num_solutions == 1
        np.testing.assert_array_equal(result.solution, decode_sudoku(row["labels"]))
        assert 17 <= row["num_givens"] <= 25
        rating = rate_sudoku(puzzle)
        assert row["level"] == rating.level == "extreme"
        assert row["rating"] == rating.rating > SUDOKU_LEVELS["expert"]


@pytest.mark.parametrize("level", ["easy", "medium", "hard", "expert"])
def test_generator_keeps_the_asked_level(level):
    ds = generate_sudoku(2, level=level, seed=1, progress=False)
    for row in ds:
        assert row["level"] == level == rate_sudoku(decode_sudoku(row["input_ids"])).level


def test_rate_adds_columns_without_filtering_and_arguments_are_checked():
    ds = generate_sudoku(3, rate=True, seed=2, progress=False)
    assert [sudoku_level(r) for r in ds["rating"]] == ds["level"]
    with pytest.raises(ValueError, match="level must be one of"):
        generate_sudoku(1, level="insane", progress=False)
    with pytest.raises(ValueError, match="max_givens"):
        generate_sudoku(1, min_givens=30, max_givens=20, progress=False)
    with pytest.raises(RuntimeError, match="level='extreme'"):
        generate_sudoku(1, size=4, level="extreme", max_candidates=5, progress=False)
