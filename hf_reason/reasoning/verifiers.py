"""Verifiers: math answer equivalence (sympy), code (the sandbox), trace validity and reasoning diversity.

Model text is never evaluated by Python: math answers are read with `ast` and rebuilt as sympy
objects from an allow-list of nodes and functions (sympy's own `parse_expr` calls `eval`), step
arithmetic goes through `hf_reason.evaluation.exact_arithmetic`, and code runs only in the sandbox.
The z3-checked constraint family lives in hf_reason/reasoning/constraints.py.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

from ..evaluation.exact_arithmetic import ArithmeticExpressionError, parse_exact


__all__ = [
    "TraceValidity",
    "reasoning_diversity",
    "sympy_equivalent",
    "to_sympy",
    "trace_validity",
    "verify_python_code",
]

_SYMPY_FUNCTIONS = ("sqrt", "exp", "log", "sin", "cos", "tan", "Abs", "factorial", "Rational")
_SYMPY_CONSTANTS = {"pi": "pi", "e": "E", "E": "E", "I": "I", "oo": "oo"}


def to_sympy(text: str, max_length: int = 500):
    """A sympy expression from math text (``"2*sqrt(2)/4"``, ``"x**2 - 1"``, ``"1/2"``), built node by node.

    Allowed: numbers, single names (symbols; ``pi``, ``e``, ``I``, ``oo`` as constants), ``+ - * / **``,
    unary minus and the functions sqrt, exp, log, sin, cos, tan, Abs, factorial, Rational. ``^`` is read
    as a power. Anything else raises `ValueError` naming the construct.
    """
    import sympy

    if not isinstance(text, str) or not text.strip():
        raise ValueError("expected a non-empty math expression")
    if len(text) > max_length:
        raise ValueError(f"expression is {len(text)} characters long; at most {max_length} are allowed")
    try:
        tree = ast.parse(text.strip().replace("^", "**"), mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"not a math expression: {text.strip()!r} ({exc.msg})") from None
    binary = {
        ast.Add: lambda a, b: a + b,
        ast.Sub: lambda a, b: a - b,
        ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b,
        ast.Pow: lambda a, b: a**b,
    }

    def walk(node):
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return sympy.Rational(repr(node.value)) if isinstance(node.value, float) else sympy.Integer(node.value)
        if isinstance(node, ast.Name):
            if node.id in _SYMPY_CONSTANTS:
                return getattr(sympy, _SYMPY_CONSTANTS[node.id])
            if len(node.id) > 16:
                raise ValueError(f"symbol names are at most 16 characters, got {node.id!r}")
            return sympy.Symbol(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and type(node.op) in binary:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and right.is_number and abs(right) > 64:
                raise ValueError(f"exponents are at most 64 in magnitude, got {right}")
            return binary[type(node.op)](left, right)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _SYMPY_FUNCTIONS:
            if node.keywords:
                raise ValueError(f"{node.func.id}() takes no keyword arguments here")
            return getattr(sympy, node.func.id)(*[walk(a) for a in node.args])
        raise ValueError(
            f"only numbers, symbols, + - * / ** and {', '.join(_SYMPY_FUNCTIONS)} are allowed, got {type(node).__name__}"
        )

    try:
        return walk(tree)
    except RecursionError:
        raise ValueError("expression is nested too deeply") from None


def sympy_equivalent(predicted: str, reference: str) -> bool:
    """Whether two math answers are equal as expressions (``"1/2"`` == ``"0.5"``, ``"(x+1)**2"`` ==
    ``"x**2+2*x+1"``, ``"sqrt(8)"`` == ``"2*sqrt(2)"``). An unreadable `predicted` is not equivalent;
    an unreadable `reference` raises `ValueError`."""
    import sympy

    expected = to_sympy(reference)
    try:
        got = to_sympy(predicted)
    except ValueError:
        return False
    difference = sympy.simplify(got - expected)
    if difference == 0:
        return True
    # simplify() can miss identities; equals() also tests numerically at random points.
    return bool(got.equals(expected))


def verify_python_code(completion: str, tests: str, entry_point: str, timeout: float = 5.0) -> bool:
    """Whether the completion's ```` ```python ```` code passes `tests` (assert lines) in the sandbox.

    The report validator's ``python_tests`` kind (hf_reason/evaluation/validators.py) with its nonce
    harness: printed text or an early exit never passes.
    """
    from ..evaluation.validators import validate

    spec = {"kind": "python_tests", "config": {"tests": tests, "entry_point": entry_point, "timeout": timeout}}
    return validate(completion, spec).passed


_CLAIM_RE = re.compile(r"^(?P<lhs>[^=]+?)\s*=\s*(?P<rhs>[^=]+)$")


@dataclass
class TraceValidity:
    """Step-by-step check of a worked solution.

    Args:
        score (`float`): valid checked steps / checked steps (1.0 when nothing could be checked).
        first_invalid_step (`int`, *optional*): 1-based index of the first step whose claim is false.
        checked (`int`): steps with a checkable claim (``lhs = rhs`` arithmetic).
        reasons (`list[str]`): per invalid step, what is wrong.
    """

    score: float
    first_invalid_step: Optional[int]
    checked: int
    reasons: list = field(default_factory=list)


def trace_validity(
    completion: str, numbers: Optional[Sequence[int]] = None, answer_prefix: str = "####"
) -> TraceValidity:
    """Checks every ``lhs = rhs`` step's arithmetic exactly and, with `numbers`, that each step only uses
    numbers still available (the given ones and earlier results, each once: the countdown rule).

    Lines without ``=`` and the answer line are not claims and are skipped.
    """
    available = list(numbers) if numbers is not None else None
    checked, valid, first, reasons = 0, 0, None, []
    steps = [line.strip() for line in completion.split("\n") if line.strip()]
    for index, step in enumerate(steps, start=1):
        if step.startswith(answer_prefix):
            break
        match = _CLAIM_RE.match(step)
        if match is None:
            continue
        checked += 1
        problem = None
        try:
            left = parse_exact(match["lhs"])
            right = parse_exact(match["rhs"]).value
            if available is not None:
                for literal in left.numbers:
                    if literal in available:
                        available.remove(literal)
                    elif problem is None:
                        problem = f"step {index}: {literal} is not available (left: {sorted(available)})"
                # Later steps are judged from what this one claims, so one slip is counted once.
                available.append(right)
            if problem is None and left.value != right:
                problem = f"step {index}: {match['lhs'].strip()} is {left.value}, not {right}"
        except ArithmeticExpressionError as exc:
            problem = f"step {index}: {exc}"
        if problem is None:
            valid += 1
        else:
            reasons.append(problem)
            first = index if first is None else first
    return TraceValidity(valid / checked if checked else 1.0, first, checked, reasons)


def _edit_distance(a: Sequence, b: Sequence) -> int:
    # Levenshtein over step lists; the standard library has none and this is the textbook DP.
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def reasoning_diversity(completions: Sequence[str], answers: Optional[Sequence[Optional[str]]] = None) -> dict:
    """How different a set of sampled solutions is.

    Args:
        completions (`Sequence[str]`): the sampled solutions (steps one per line).
        answers (`Sequence[str or None]`, *optional*): their extracted answers.

    Returns:
        ``distinct_paths`` (distinct step sequences / samples), ``distinct_answers`` (distinct non-None
        answers / samples, when `answers` is given), ``pairwise_edit_distance`` (mean Levenshtein distance
        between step lists, divided by the longer list's length: 0 identical, 1 nothing shared).
    """
    if not completions:
        raise ValueError("`completions` must be non-empty")
    paths = [tuple(" ".join(line.split()) for line in c.split("\n") if line.strip()) for c in completions]
    result = {"distinct_paths": len(set(paths)) / len(paths)}
    if answers is not None:
        result["distinct_answers"] = len({a for a in answers if a is not None}) / len(paths)
    pairs = list(itertools.combinations(paths, 2))
    result["pairwise_edit_distance"] = (
        sum(_edit_distance(a, b) / max(len(a), len(b), 1) for a, b in pairs) / len(pairs) if pairs else 0.0
    )
    return result
