"""Exact arithmetic over model-written text: values, literals used, and refusals of anything else."""

from fractions import Fraction

import pytest

from hf_reason.evaluation import ArithmeticExpressionError, evaluate_exact, parse_exact


def test_values_are_exact_fractions():
    assert evaluate_exact("(25 - 5) * 3 / 4") == 15
    assert evaluate_exact("1/3 * 3") == 1 and evaluate_exact("8 / (3 - 8 / 3)") == 24
    assert evaluate_exact("2 / 3") == Fraction(2, 3)
    assert evaluate_exact("123456789012345678901234567890 * 10") == 1234567890123456789012345678900


def test_numbers_and_operators_are_reported_in_reading_order():
    parsed = parse_exact("(6 - 2) * (1 + 5)")
    assert parsed.numbers == (6, 2, 1, 5) and parsed.value == 24
    assert parsed.operators == ("*", "-", "+")


def test_options_widen_or_narrow_what_is_accepted():
    assert evaluate_exact("2 ** 10", operators={"**"}) == 1024
    assert evaluate_exact("7 // 2 + 7 % 2", operators={"//", "%", "+"}) == 4
    assert evaluate_exact("0.1 + 0.2", allow_decimals=True) == Fraction(3, 10)
    with pytest.raises(ArithmeticExpressionError, match="unary"):
        parse_exact("-3 + 5", allow_unary_minus=False)
    with pytest.raises(ArithmeticExpressionError, match=r"operator '\*\*' is not allowed"):
        evaluate_exact("2 ** 3")
    with pytest.raises(ArithmeticExpressionError, match="literals"):
        evaluate_exact("0.5 + 1")
    with pytest.raises(ValueError, match="subset"):
        evaluate_exact("1", operators={"^"})


@pytest.mark.parametrize(
    "text, message",
    [
        ("__import__('os').system('true')", "only numbers"),
        ("(1).__class__", "only numbers"),
        ("x + 1", "only numbers"),
        ("[1, 2]", "only numbers"),
        ("3 +", "not an arithmetic expression"),
        ("1 / (2 - 2)", "division by zero"),
        ("'a' * 3", "literals"),
        ("True + 1", "literals"),
        ("9 ** 9 ** 9", "exponents"),
        ("(" * 5000 + "1" + ")" * 5000, "characters long"),
        ("10 ** 64 * 10 ** 64", "exceeds the bound"),
    ],
)
def test_everything_else_is_refused_with_a_clear_error(text, message):
    with pytest.raises(ArithmeticExpressionError, match=message):
        evaluate_exact(text, operators={"+", "-", "*", "/", "**"})


def test_deep_nesting_fails_cleanly():
    with pytest.raises(ArithmeticExpressionError, match="nested too deeply|not an arithmetic"):
        evaluate_exact("(" * 900 + "1" + ")" * 900, max_length=10_000)
