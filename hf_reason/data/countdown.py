"""Countdown and the 24 game: reach a target from given numbers with ``+ - * /``, each number used at most once.

A task where an early wrong commitment cannot be undone by a greedy decoder (the first combination
decides which targets stay reachable), so search over steps should pay. Worked completions combine
two of the remaining numbers per line and end with the whole expression after ``####``::

    Numbers: 3 7 25 50
    Target: 100
    Steps:
    50 - 25 = 25
    7 - 3 = 4
    25 * 4 = 100
    #### (50 - 25) * (7 - 3)

Every instance is checked solvable by the exhaustive solver (`solve_countdown`). Expressions are
verified with `hf_reason.evaluation.exact_arithmetic` (read with `ast`, evaluated in exact fractions,
never by `eval`). `format_countdown_prompt` is the task's public interface: every model, bench and
outside instance is scored through it.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

import datasets

from ..evaluation.exact_arithmetic import ArithmeticExpressionError, parse_exact


__all__ = [
    "CountdownStep",
    "CountdownVerdict",
    "check_countdown",
    "count_countdown_solutions",
    "countdown_expression",
    "format_countdown_prompt",
    "generate_24_game",
    "generate_countdown",
    "is_valid_countdown",
    "parse_countdown_prompt",
    "parse_countdown_steps",
    "solve_countdown",
]

ANSWER_PREFIX = "####"
_STEP_RE = re.compile(r"^\s*(\S+)\s*([-+*/])\s*(\S+)\s*=\s*(\S+)\s*$")
_PROMPT_RE = re.compile(r"Numbers:\s*([\d ]+?)\s*\nTarget:\s*(\d+)")


def format_countdown_prompt(numbers: Sequence[int], target: int) -> str:
    """The prompt every model and bench uses for a countdown / 24-game instance.

    Args:
        numbers (`Sequence[int]`): the available numbers, in the order given.
        target (`int`): the number to reach.

    Returns:
        ``"Numbers: 3 7 25 50\\nTarget: 100\\nSteps:\\n"``; the completion continues with one step per line.
    """
    if not numbers or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
        raise ValueError(f"`numbers` must be a non-empty sequence of non-negative ints, got {numbers!r}")
    if not isinstance(target, int) or isinstance(target, bool):
        raise ValueError(f"`target` must be an int, got {target!r}")
    return f"Numbers: {' '.join(str(n) for n in numbers)}\nTarget: {target}\nSteps:\n"


def parse_countdown_prompt(prompt: str) -> tuple[list[int], int]:
    """The numbers and target of a prompt written by `format_countdown_prompt`."""
    match = _PROMPT_RE.search(prompt)
    if match is None:
        raise ValueError(f"not a countdown prompt (expected 'Numbers: ...\\nTarget: N'), got {prompt[:80]!r}")
    return [int(n) for n in match.group(1).split()], int(match.group(2))


def _fmt(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _operand(value: Fraction) -> str:
    """A value as a step operand: fractions and negatives in parentheses, so ``18 / (3/4)`` reads one way."""
    return _fmt(value) if value.denominator == 1 and value >= 0 else f"({_fmt(value)})"


def _combine(a: Fraction, b: Fraction, integer_steps: bool):
    """Every (a', op, b', result) from one pair, with the larger operand first for - and / under integer rules."""
    out = [(a, "+", b, a + b), (a, "*", b, a * b)]
    for x, y in ((a, b), (b, a)):
        out.append((x, "-", y, x - y))
        if y != 0:
            out.append((x, "/", y, x / y))
    if integer_steps:
        out = [o for o in out if o[3] > 0 and o[3].denominator == 1]
    return out


@functools.lru_cache(maxsize=500_000)
def _solutions(state: tuple, target: Fraction, integer_steps: bool, use_all: bool, count: bool):
    """(number of step sequences reaching the target, one of them) from the sorted multiset `state`."""
    if len(state) == 1 or not use_all:
        if target in state:
            return 1, ()
    if len(state) == 1:
        return 0, None
    total, example = 0, None
    for i in range(len(state)):
        for j in range(i + 1, len(state)):
            rest = state[:i] + state[i + 1 : j] + state[j + 1 :]
            for x, op, y, value in _combine(state[i], state[j], integer_steps):
                n, steps = _solutions(tuple(sorted(rest + (value,))), target, integer_steps, use_all, count)
                if n:
                    total += n
                    if example is None:
                        example = ((x, op, y, value),) + steps
                    if not count:
                        return total, example
    return total, example


def _state(numbers: Sequence) -> tuple:
    return tuple(sorted(Fraction(n) for n in numbers))


def solve_countdown(
    numbers: Sequence, target, *, integer_steps: bool = True, use_all_numbers: bool = True
) -> Optional[list[tuple[Fraction, str, Fraction, Fraction]]]:
    """Exhaustive search: one solution as a list of steps ``(a, op, b, result)``, or None if none exists.

    Args:
        numbers (`Sequence`): the remaining numbers (ints or Fractions).
        target: the value to reach.
        integer_steps (`bool`, defaults to True): Countdown's rule that every intermediate result is a
            positive integer; False allows any rational (the 24 game: ``8 / (3 - 8 / 3)``).
        use_all_numbers (`bool`, defaults to True): whether every number must be used.
    """
    _, steps = _solutions(_state(numbers), Fraction(target), integer_steps, use_all_numbers, False)
    return None if steps is None else list(steps)


def count_countdown_solutions(
    numbers: Sequence, target, *, integer_steps: bool = True, use_all_numbers: bool = True
) -> int:
    """The number of step sequences (order of steps included) that reach the target; the difficulty measure."""
    return _solutions(_state(numbers), Fraction(target), integer_steps, use_all_numbers, True)[0]


@dataclass(frozen=True)
class CountdownStep:
    """One line ``a op b = c`` of a worked solution: the operands, the operator, the stated result and the
    true value of ``a op b`` (None when it divides by zero)."""

    left: Fraction
    operator: str
    right: Fraction
    result: Fraction
    value: Optional[Fraction] = None

    @property
    def is_correct(self) -> bool:
        return self.value is not None and self.value == self.result


def parse_countdown_steps(text: str) -> tuple[list[CountdownStep], Optional[str]]:
    """The step lines of a completion and the expression after ``####`` (None if there is none).

    Reading stops at the ``####`` line; a line that is not ``a op b = c`` raises `ArithmeticExpressionError`
    naming the line.
    """
    steps, answer = [], None
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        if line.strip().startswith(ANSWER_PREFIX):
            answer = line.strip()[len(ANSWER_PREFIX) :].strip()
            break
        match = _STEP_RE.match(line)
        if match is None:
            raise ArithmeticExpressionError(f"line {number} is not a step 'a op b = c': {line.strip()!r}")
        left, op, right, result = match.groups()
        values = [parse_exact(v).value for v in (left, right, result)]
        try:
            value = parse_exact(f"({left}) {op} ({right})").value
        except ArithmeticExpressionError:
            value = None
        steps.append(CountdownStep(values[0], op, values[1], values[2], value))
    return steps, answer


def countdown_expression(steps: Sequence[CountdownStep]) -> str:
    """The single expression the steps build (each step's result replaced by its parenthesised expression)."""
    pending: list[tuple[Fraction, str]] = []
    for step in steps:
        parts = []
        for value in (step.left, step.right):
            for k in range(len(pending) - 1, -1, -1):
                if pending[k][0] == value:
                    parts.append(f"({pending.pop(k)[1]})")
                    break
            else:
                parts.append(_fmt(value))
        pending.append((step.result, f"{parts[0]} {step.operator} {parts[1]}"))
    if not pending:
        raise ValueError("no steps to build an expression from")
    return pending[-1][1]


@dataclass(frozen=True)
class CountdownVerdict:
    """The result of checking an answer: `valid`, and `reason` (empty when valid) saying what is wrong."""

    valid: bool
    reason: str = ""
    value: Optional[Fraction] = None


def check_countdown(
    expression: str, numbers: Sequence[int], target: int, *, use_all_numbers: bool = True
) -> CountdownVerdict:
    """Checks a countdown answer exactly and says why it fails.

    Args:
        expression (`str`): e.g. ``"(50 - 25) * (7 - 3)"``; only integer literals, parentheses and ``+ - * /``.
        numbers (`Sequence[int]`): the available numbers; each may be used at most as often as given.
        target (`int`): the value to reach.
        use_all_numbers (`bool`, defaults to True): whether every number must appear.

    Raises:
        ArithmeticExpressionError: when `expression` is malformed or uses anything but numbers and ``+ - * /``.
    """
    parsed = parse_exact(expression, allow_unary_minus=False)
    available = [Fraction(n) for n in numbers]
    for literal in parsed.numbers:
        if literal in available:
            available.remove(literal)
        else:
            given = sum(Fraction(n) == literal for n in numbers)
            return CountdownVerdict(
                False, f"{_fmt(literal)} used more often than given ({given} time(s) in {list(numbers)})", parsed.value
            )
    if use_all_numbers and available:
        return CountdownVerdict(False, f"numbers not used: {[_fmt(a) for a in available]}", parsed.value)
    if parsed.value != target:
        return CountdownVerdict(False, f"the expression equals {_fmt(parsed.value)}, not {target}", parsed.value)
    return CountdownVerdict(True, "", parsed.value)


def is_valid_countdown(expression: str, numbers: Sequence[int], target: int, *, use_all_numbers: bool = True) -> bool:
    """Whether `expression` reaches `target` using each of `numbers` at most once (all of them if required).

    Raises `ArithmeticExpressionError` with a clear message on a malformed expression; `check_countdown`
    gives the reason for a well-formed but wrong one.
    """
    return check_countdown(expression, numbers, target, use_all_numbers=use_all_numbers).valid


def _check_int(name: str, value, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, got {value!r}")


def generate_countdown(
    num_problems: int,
    num_numbers: int = 4,
    max_number: int = 100,
    seed: int = 0,
    *,
    target_range: tuple[int, int] = (10, 100),
    min_solutions: int = 1,
    max_solutions: Optional[int] = None,
    integer_steps: bool = True,
    fixed_target: Optional[int] = None,
    min_number: int = 1,
    count_solutions: bool = True,
) -> datasets.Dataset:
    """Solvable countdown instances with a worked solution each.

    Numbers are drawn uniformly from `min_number..max_number` and the target from `target_range`; an
    instance is kept only when the exhaustive solver finds a solution using every number, and when its
    solution count lies in `[min_solutions, max_solutions]` (the difficulty knob: fewer solutions is
    harder, e.g. ``max_solutions=8`` keeps the hard tail).

    Args:
        num_problems (`int`): rows (>= 1).
        num_numbers (`int`, defaults to 4): numbers per instance (2-6).
        max_number (`int`, defaults to 100): largest number.
        seed (`int`, defaults to 0): the same seed gives the same instances.
        target_range (`tuple[int, int]`, defaults to `(10, 100)`): inclusive range of targets.
        min_solutions (`int`, defaults to 1): fewest step sequences reaching the target.
        max_solutions (`int`, *optional*): most step sequences reaching the target (None: no bound).
        integer_steps (`bool`, defaults to True): intermediate results must be positive integers.
        fixed_target (`int`, *optional*): always this target (the 24 game).
        min_number (`int`, defaults to 1): smallest number.
        count_solutions (`bool`, defaults to True): count every solution (the `num_solutions` column and
            the bounds need it); False only checks solvability, several times faster for large training sets.

    Returns:
        `datasets.Dataset` with columns `prompt` (`format_countdown_prompt`), `completion` (steps, then
        ``#### expression``), `answer` (the expression), `numbers`, `target` and `num_solutions` (without
        `count_solutions`, -1).
    """
    _check_int("num_problems", num_problems, 1)
    _check_int("num_numbers", num_numbers, 2)
    if num_numbers > 6:
        raise ValueError(
            f"`num_numbers` must be at most 6 (the exhaustive solver grows factorially), got {num_numbers}"
        )
    _check_int("min_number", min_number, 0)
    _check_int("max_number", max_number, max(min_number, 1))
    _check_int("seed", seed, 0)
    _check_int("min_solutions", min_solutions, 1)
    if max_solutions is not None:
        _check_int("max_solutions", max_solutions, min_solutions)
    if not count_solutions and (min_solutions > 1 or max_solutions is not None):
        raise ValueError("`min_solutions` / `max_solutions` need `count_solutions=True`")
    low, high = target_range
    if fixed_target is None and not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high):
        raise ValueError(f"`target_range` must be two ints 0 <= low <= high, got {target_range!r}")
    rng = random.Random(seed)
    rows = {k: [] for k in ("prompt", "completion", "answer", "numbers", "target", "num_solutions")}
    attempts = 0
    while len(rows["prompt"]) < num_problems:
        attempts += 1
        if attempts > 1000 * num_problems + 10_000:
            raise ValueError(
                f"found only {len(rows['prompt'])} of {num_problems} instances with {min_solutions}..{max_solutions} "
                "solutions; widen `target_range` or the solution bounds"
            )
        numbers = [rng.randint(min_number, max_number) for _ in range(num_numbers)]
        target = fixed_target if fixed_target is not None else rng.randint(low, high)
        if count_solutions:
            n = count_countdown_solutions(numbers, target, integer_steps=integer_steps)
        else:
            n = -1 if solve_countdown(numbers, target, integer_steps=integer_steps) is not None else 0
        if n == 0 or (n > 0 and n < min_solutions) or (max_solutions is not None and n > max_solutions):
            continue
        # A random solution among all (not always the first found), so the training text is varied.
        steps = _random_solution(_state(numbers), Fraction(target), integer_steps, rng)
        lines = [f"{_operand(a)} {op} {_operand(b)} = {_fmt(c)}" for a, op, b, c in steps]
        expression = countdown_expression([CountdownStep(*s, value=s[3]) for s in steps])
        rows["prompt"].append(format_countdown_prompt(numbers, target))
        rows["completion"].append("\n".join(lines) + f"\n{ANSWER_PREFIX} {expression}")
        rows["answer"].append(expression)
        rows["numbers"].append(numbers)
        rows["target"].append(target)
        rows["num_solutions"].append(n)
    return datasets.Dataset.from_dict(rows)


def _random_solution(state: tuple, target: Fraction, integer_steps: bool, rng: random.Random) -> list:
    steps = []
    while len(state) > 1:
        moves = []
        for i in range(len(state)):
            for j in range(i + 1, len(state)):
                rest = state[:i] + state[i + 1 : j] + state[j + 1 :]
                for x, op, y, value in _combine(state[i], state[j], integer_steps):
                    child = tuple(sorted(rest + (value,)))
                    if _solutions(child, target, integer_steps, True, False)[0]:
                        moves.append(((x, op, y, value), child))
        step, state = rng.choice(moves)
        steps.append(step)
    return steps


def generate_24_game(num_problems: int, seed: int = 0, **kwargs) -> datasets.Dataset:
    """The 24 game: four numbers from 1-13 and the target 24, any rational intermediate allowed.

    A preset of `generate_countdown` (``num_numbers=4, min_number=1, max_number=13, fixed_target=24,
    integer_steps=False``); `kwargs` (e.g. `max_solutions`) pass through.
    """
    options = dict(num_numbers=4, max_number=13, min_number=1, fixed_target=24, integer_steps=False)
    options.update(kwargs)
    return generate_countdown(num_problems, seed=seed, **options)
