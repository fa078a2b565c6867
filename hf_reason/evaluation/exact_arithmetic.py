"""Exact arithmetic over model-written expressions, read with `ast` and never evaluated by Python.

Shared by every place that must compute what a model wrote: the calculator tool, answer verifiers
(countdown, 24 game, arithmetic chains) and trace-validity checks. Values are `fractions.Fraction`,
so ``1/3 * 3`` is exactly 1 and big integers stay exact; sizes are bounded so a hostile expression
(``9**9**9``, a million nested parentheses) fails fast with a clear error instead of hanging.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional


__all__ = ["ArithmeticExpressionError", "ExactExpression", "evaluate_exact", "parse_exact"]

_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**"}
_UNARY = {ast.USub: "-", ast.UAdd: "+"}
DEFAULT_OPERATORS = frozenset({"+", "-", "*", "/"})
ALL_OPERATORS = frozenset(_BINARY.values())


class ArithmeticExpressionError(ValueError):
    """An expression that is malformed, uses something other than numbers and allowed operators, or is too big."""


@dataclass(frozen=True)
class ExactExpression:
    """A parsed expression: its exact value and the number literals it uses, in reading order."""

    value: Fraction
    numbers: tuple[Fraction, ...]
    operators: tuple[str, ...]


def _literal(node: ast.Constant, allow_decimals: bool) -> Fraction:
    value = node.value
    if type(value) is int:
        return Fraction(value)
    if type(value) is float and allow_decimals:
        # `ast` already rounded the literal to a binary float; going through its repr keeps "0.1" exact.
        return Fraction(repr(value))
    raise ArithmeticExpressionError(
        f"only integer{' and decimal' if allow_decimals else ''} literals are allowed, got {value!r}"
    )


def parse_exact(
    text: str,
    *,
    operators: frozenset[str] | set[str] = DEFAULT_OPERATORS,
    allow_unary_minus: bool = True,
    allow_decimals: bool = False,
    max_length: int = 2000,
    max_abs: Optional[int] = 10**60,
    max_exponent: int = 64,
) -> ExactExpression:
    """Parse and exactly evaluate an arithmetic expression.

    Args:
        text: The expression, e.g. ``"(25 - 5) * 3 / 4"``. Surrounding whitespace is ignored.
        operators: Binary operators allowed, a subset of ``{"+", "-", "*", "/", "//", "%", "**"}``.
        allow_unary_minus: Whether ``-x`` / ``+x`` are allowed (countdown-style puzzles forbid them).
        allow_decimals: Whether decimal literals such as ``2.5`` are allowed (read exactly).
        max_length: Longest text accepted, in characters.
        max_abs: Largest magnitude of any intermediate numerator or denominator (None: unbounded).
        max_exponent: Largest absolute integer exponent allowed with ``**``.

    Returns:
        The exact value, the literals used (reading order) and the operators used.

    Raises:
        ArithmeticExpressionError: On malformed text, a name, call, attribute or any other construct,
            an operator not in `operators`, division by zero, or a value beyond the bounds.
    """
    unknown = set(operators) - ALL_OPERATORS
    if unknown:
        raise ValueError(f"`operators` must be a subset of {sorted(ALL_OPERATORS)}, got unknown {sorted(unknown)}")
    if not isinstance(text, str):
        raise ArithmeticExpressionError(f"expected the expression as a string, got {type(text).__name__}")
    if len(text) > max_length:
        raise ArithmeticExpressionError(f"expression is {len(text)} characters long; at most {max_length} are allowed")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError) as exc:
        raise ArithmeticExpressionError(
            f"not an arithmetic expression: {text.strip()!r} ({exc.msg if isinstance(exc, SyntaxError) else exc})"
        ) from None
    except RecursionError:
        raise ArithmeticExpressionError("expression is nested too deeply") from None
    numbers: list[Fraction] = []
    used: list[str] = []

    def check_size(value: Fraction) -> Fraction:
        if max_abs is not None and (abs(value.numerator) > max_abs or value.denominator > max_abs):
            raise ArithmeticExpressionError(f"an intermediate value exceeds the bound of {max_abs} in magnitude")
        return value

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant):
            value = _literal(node, allow_decimals)
            numbers.append(value)
            return check_size(value)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            if not allow_unary_minus:
                raise ArithmeticExpressionError(f"unary {_UNARY[type(node.op)]!r} is not allowed here")
            operand = walk(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            symbol = _BINARY[type(node.op)]
            if symbol not in operators:
                raise ArithmeticExpressionError(f"operator {symbol!r} is not allowed; allowed: {sorted(operators)}")
            used.append(symbol)
            left, right = walk(node.left), walk(node.right)
            return check_size(_apply(symbol, left, right, max_exponent))
        raise ArithmeticExpressionError(
            f"only numbers, parentheses and the operators {sorted(operators)} are allowed, got {type(node).__name__}"
        )

    try:
        value = walk(tree)
    except RecursionError:
        raise ArithmeticExpressionError("expression is nested too deeply") from None
    return ExactExpression(value=value, numbers=tuple(numbers), operators=tuple(used))


def _apply(symbol: str, left: Fraction, right: Fraction, max_exponent: int) -> Fraction:
    if symbol == "+":
        return left + right
    if symbol == "-":
        return left - right
    if symbol == "*":
        return left * right
    if symbol == "**":
        if right.denominator != 1 or abs(right.numerator) > max_exponent:
            raise ArithmeticExpressionError(
                f"exponents must be integers of magnitude at most {max_exponent}, got {right}"
            )
        if left == 0 and right < 0:
            raise ArithmeticExpressionError("division by zero (0 to a negative power)")
        return left ** int(right)
    if right == 0:
        raise ArithmeticExpressionError("division by zero")
    if symbol == "/":
        return left / right
    if symbol == "//":
        return Fraction(left // right)
    return left % right


def evaluate_exact(text: str, **kwargs) -> Fraction:
    """The exact value of an arithmetic expression; see `parse_exact` for the arguments and errors."""
    return parse_exact(text, **kwargs).value
