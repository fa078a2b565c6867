"""Verifiable arithmetic word-free problems with worked answers, for exact rewards.

A problem is a flat expression over non-negative integers with `+`, `-` and `*` and the usual
precedence (multiplication first, then left to right), e.g. ``3 + 4 * 2``. The completion
works it out one operation per line and ends with the final answer in the fixed format
``#### <integer>`` (the GSM8K convention), e.g.::

    Q: 3 + 4 * 2 = ?
    A: 4 * 2 = 8
    3 + 8 = 11
    #### 11

Answers are computed with Python ints from the generated operands (never by evaluating a
string), so `is_correct` gives an exact reward.
"""

from __future__ import annotations

import random
import re
from typing import Optional

import datasets


__all__ = [
    "ANSWER_PREFIX",
    "distinct_arithmetic",
    "extract_answer",
    "generate_arithmetic",
    "is_correct",
    "solve_steps",
]

ANSWER_PREFIX = "####"
_ANSWER_RE = re.compile(r"####\s*(-?\d+)")
_OPS = ("+", "-", "*")


def _apply(a: int, op: str, b: int) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    return a * b


def solve_steps(numbers: list[int], ops: list[str], errors: Optional[dict[int, int]] = None) -> tuple[list[str], int]:
    """Evaluates `numbers[0] ops[0] numbers[1] ...` with precedence; returns (worked lines, value).

    `errors` maps a step index to an offset added to that step's result: the line then states a wrong
    result and the later steps carry on from it (a chain that goes wrong at a known step, for step labels).
    """
    if len(numbers) != len(ops) + 1 or any(op not in _OPS for op in ops):
        raise ValueError(f"need len(numbers) == len(ops) + 1 and ops in {_OPS}, got {numbers}, {ops}")
    numbers, ops, lines, errors = list(numbers), list(ops), [], dict(errors or {})
    # Multiplications first, left to right, then additions / subtractions left to right.
    for wanted in (("*",), ("+", "-")):
        i = 0
        while i < len(ops):
            if ops[i] in wanted:
                value = _apply(numbers[i], ops[i], numbers[i + 1]) + errors.get(len(lines), 0)
                lines.append(f"{numbers[i]} {ops[i]} {numbers[i + 1]} = {value}")
                numbers[i : i + 2] = [value]
                del ops[i]
            else:
                i += 1
    return lines, numbers[0]


def _check_int(name: str, value, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, got {value!r}")


def generate_arithmetic(
    num_examples: int, min_ops: int = 1, max_ops: int = 3, max_value: int = 20, seed: int = 0
) -> datasets.Dataset:
    """Random arithmetic problems with worked, exactly computed answers.

    Args:
        num_examples (`int`): number of rows (>= 1).
        min_ops (`int`, defaults to 1): fewest operators per problem (>= 1).
        max_ops (`int`, defaults to 3): most operators per problem (>= `min_ops`).
        max_value (`int`, defaults to 20): operands are drawn uniformly from `0..max_value` (>= 1).
        seed (`int`, defaults to 0): the same seed gives the same problems.

    Returns:
        `datasets.Dataset` with columns `prompt` (``"Q: 3 + 4 * 2 = ?\\nA:"``), `completion`
        (``" 4 * 2 = 8\\n3 + 8 = 11\\n#### 11"``: one line per operation, then the answer after
        ``####``), `answer` (``"11"``) and `num_ops`.
    """
    _check_int("num_examples", num_examples, 1)
    _check_int("min_ops", min_ops, 1)
    _check_int("max_ops", max_ops, min_ops)
    _check_int("max_value", max_value, 1)
    _check_int("seed", seed, 0)
    rng = random.Random(seed)
    rows = {"prompt": [], "completion": [], "answer": [], "num_ops": []}
    for _ in range(num_examples):
        n_ops = rng.randint(min_ops, max_ops)
        numbers = [rng.randint(0, max_value) for _ in range(n_ops + 1)]
        ops = [rng.choice(_OPS) for _ in range(n_ops)]
        lines, value = solve_steps(numbers, ops)
        expression = " ".join(f"{n} {op}" for n, op in zip(numbers, ops)) + f" {numbers[-1]}"
        rows["prompt"].append(f"Q: {expression} = ?\nA:")
        rows["completion"].append(" " + "\n".join(lines) + f"\n{ANSWER_PREFIX} {value}")
        rows["answer"].append(str(value))
        rows["num_ops"].append(n_ops)
    return datasets.Dataset.from_dict(rows)


def extract_answer(text: str) -> Optional[str]:
    """The integer after the first ``####`` in `text` (what a model commits to), or None."""
    if not isinstance(text, str):
        return None
    match = _ANSWER_RE.search(text)
    return str(int(match.group(1))) if match else None


def is_correct(completion: str, answer) -> bool:
    """Whether the completion's final answer (``#### n``) equals `answer` (str or int) exactly."""
    predicted = extract_answer(completion)
    if predicted is None:
        return False
    try:
        return int(predicted) == int(str(answer).strip())
    except ValueError:
        return False


def distinct_arithmetic(num_examples: int, max_ops: int = 3, max_value: int = 20, seed: int = 0) -> list[dict]:
    """`num_examples` rows of `generate_arithmetic` with pairwise different prompts, in generation order, so that
    slices of the list (seed / training / held-out) share no problem.

    Raises:
        ValueError: when four times as many draws hold fewer distinct prompts (too few `max_ops` / `max_value`).
    """
    rows = {}
    for row in generate_arithmetic(4 * num_examples, max_ops=max_ops, max_value=max_value, seed=seed):
        rows.setdefault(row["prompt"], row)
    if len(rows) < num_examples:
        raise ValueError(
            f"only {len(rows)} distinct problems for {num_examples} (max_ops={max_ops}, max_value={max_value}); "
            "raise max_ops or max_value"
        )
    return list(rows.values())[:num_examples]
