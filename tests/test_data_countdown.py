from fractions import Fraction

import pytest

from hf_reason.data.countdown import (
    check_countdown,
    count_countdown_solutions,
    countdown_expression,
    format_countdown_prompt,
    generate_24_game,
    generate_countdown,
    is_valid_countdown,
    parse_countdown_prompt,
    parse_countdown_steps,
    solve_countdown,
)
from hf_reason.evaluation.exact_arithmetic import ArithmeticExpressionError


def test_generated_instances_are_solvable_and_their_worked_solutions_verify():
    data = generate_countdown(40, seed=3)
    for row in data:
        assert solve_countdown(row["numbers"], row["target"]) is not None
        steps, answer = parse_countdown_steps(row["completion"])
        assert len(steps) == 3 and countdown_expression(steps) == answer == row["answer"]
        assert is_valid_countdown(answer, row["numbers"], row["target"])
        assert row["prompt"] == format_countdown_prompt(row["numbers"], row["target"])
        assert row["num_solutions"] == count_countdown_solutions(row["numbers"], row["target"]) >= 1


def test_generator_is_seeded_and_the_difficulty_knob_bounds_solution_counts():
    assert generate_countdown(5, seed=1)["prompt"] == generate_countdown(5, seed=1)["prompt"]
    hard = generate_countdown(10, seed=2, max_solutions=4)
    assert all(1 <= n <= 4 for n in hard["num_solutions"])
    with pytest.raises(ValueError, match="num_numbers"):
        generate_countdown(1, num_numbers=9)


def test_24_game_preset_allows_fractions():
    data = generate_24_game(20, seed=0)
    assert set(data["target"]) == {24} and all(1 <= n <= 13 for row in data["numbers"] for n in row)
    # 1 5 5 5 needs a fraction: 5 * (5 - 1 / 5)
    assert solve_countdown([1, 5, 5, 5], 24) is None
    assert solve_countdown([1, 5, 5, 5], 24, integer_steps=False) is not None
    assert is_valid_countdown("5 * (5 - 1 / 5)", [1, 5, 5, 5], 24)
    assert solve_countdown([1, 1, 1, 1], 24, integer_steps=False) is None


def test_verifier_rejects_reuse_missing_numbers_wrong_values_and_malformed_text():
    numbers = [3, 7, 25, 50]
    assert is_valid_countdown("(50 - 25) * (7 - 3)", numbers, 100)
    reuse = check_countdown("50 + 50 + 3 - 3", numbers, 100)
    assert not reuse.valid and "50 used more often" in reuse.reason
    missing = check_countdown("50 + 25", numbers, 75)
    assert not missing.valid and "not used" in missing.reason
    assert is_valid_countdown("50 + 25", numbers, 75, use_all_numbers=False)
    wrong = check_countdown("50 + 25 + 7 + 3", numbers, 100)
    assert not wrong.valid and "equals 85" in wrong.reason
    with pytest.raises(ArithmeticExpressionError, match="not an arithmetic expression"):
        is_valid_countdown("50 + * 25", numbers, 75)
    with pytest.raises(ArithmeticExpressionError, match="Call|Name|only numbers"):
        is_valid_countdown("__import__('os')", numbers, 75)
    with pytest.raises(ArithmeticExpressionError, match="unary"):
        is_valid_countdown("-3 + 7 + 25 + 50", numbers, 79)
    with pytest.raises(ArithmeticExpressionError, match="operator"):
        is_valid_countdown("3 ** 7", numbers, 2187, use_all_numbers=False)


def test_prompt_round_trip_and_step_parsing_errors_name_the_line():
    prompt = format_countdown_prompt([1, 2, 3], 6)
    assert prompt == "Numbers: 1 2 3\nTarget: 6\nSteps:\n"
    assert parse_countdown_prompt(prompt) == ([1, 2, 3], 6)
    with pytest.raises(ValueError, match="non-negative ints"):
        format_countdown_prompt([], 3)
    with pytest.raises(ArithmeticExpressionError, match="line 2"):
        parse_countdown_steps("1 + 2 = 3\nthree times two\n")
    steps, answer = parse_countdown_steps("6 / 4 = 3/2\n(3/2) * 16 = 24\n#### (6 / 4) * 16")
    assert steps[1].left == Fraction(3, 2) and answer == "(6 / 4) * 16"


def test_solvability_only_mode_keeps_the_same_instances():
    counted = generate_countdown(10, seed=5)
    fast = generate_countdown(10, seed=5, count_solutions=False)
    assert fast["prompt"] == counted["prompt"] and set(fast["num_solutions"]) == {-1}
    with pytest.raises(ValueError, match="count_solutions"):
        generate_countdown(2, max_solutions=3, count_solutions=False)
