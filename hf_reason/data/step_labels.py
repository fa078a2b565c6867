"""Arithmetic chains with per-step soundness labels, built by construction, for process reward models.

A chain comes from `solve_steps`; a corrupted chain adds an offset to one step's result and carries on
from the wrong value, so its later steps compute correctly from a false premise. Step labels are read
from what each line says (its left side evaluated exactly with `parse_exact`, compared with its stated
result): every step before the first invalid one is sound (1), that step and every later one are not (0).
An outcome-only negative keeps every step sound and states a wrong final answer.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import datasets

from ..evaluation.exact_arithmetic import ArithmeticExpressionError, parse_exact
from .arithmetic import ANSWER_PREFIX, solve_steps


__all__ = ["generate_step_labelled_chains", "step_is_valid", "step_labels"]

_OPS = ("+", "-", "*")


def step_is_valid(step: str) -> bool:
    """Whether a line ``"<expression> = <number>"`` states its expression's exact value."""
    if step.count("=") != 1:
        return False
    left, right = step.split("=")
    try:
        return parse_exact(left).value == parse_exact(right).value
    except ArithmeticExpressionError:
        return False


def step_labels(steps: Sequence[str]) -> list[int]:
    """1 for each step before the first invalid one, 0 from it on (a chain is unsound from its first error)."""
    labels, sound = [], True
    for step in steps:
        sound = sound and step_is_valid(step)
        labels.append(int(sound))
    return labels


def generate_step_labelled_chains(
    num_chains: int,
    min_ops: int = 2,
    max_ops: int = 4,
    max_value: int = 9,
    corrupt_probability: float = 0.5,
    outcome_only_probability: float = 0.1,
    seed: int = 0,
) -> datasets.Dataset:
    """Worked arithmetic chains, some corrupted at a random step, with step and outcome labels.

    Args:
        num_chains (`int`): rows (>= 1).
        min_ops, max_ops, max_value: the problems, as in `generate_arithmetic`.
        corrupt_probability (`float`, defaults to 0.5): share of chains with one wrong step.
        outcome_only_probability (`float`, defaults to 0.1): share with sound steps and a wrong final answer.
        seed (`int`, defaults to 0).

    Returns:
        `datasets.Dataset` with `prompt` (``"Q: 3 + 4 * 2 = ?\\nA:"``), `steps` (list of lines), `final`
        (``"#### 11"``), `step_labels` (list of 0 / 1), `outcome_label` (1 when the final answer is right),
        `first_error` (index of the first unsound step, -1 when none) and `answer`.
    """
    if not isinstance(num_chains, int) or num_chains < 1:
        raise ValueError(f"`num_chains` must be an int >= 1, got {num_chains!r}")
    if min(corrupt_probability, outcome_only_probability) < 0 or corrupt_probability + outcome_only_probability > 1:
        raise ValueError(
            "need probabilities >= 0 with `corrupt_probability` + `outcome_only_probability` <= 1, got "
            f"{corrupt_probability} and {outcome_only_probability}"
        )
    rng = random.Random(seed)
    rows = {k: [] for k in ("prompt", "steps", "final", "step_labels", "outcome_label", "first_error", "answer")}
    for _ in range(num_chains):
        n_ops = rng.randint(min_ops, max_ops)
        numbers = [rng.randint(0, max_value) for _ in range(n_ops + 1)]
        ops = [rng.choice(_OPS) for _ in range(n_ops)]
        correct_lines, value = solve_steps(numbers, ops)
        draw = rng.random()
        if draw < corrupt_probability:
            step = rng.randrange(n_ops)
            offset = rng.choice([-1, 1]) * rng.randint(1, 3)
            lines, stated = solve_steps(numbers, ops, errors={step: offset})
        elif draw < corrupt_probability + outcome_only_probability:
            lines, stated = correct_lines, value + rng.choice([-1, 1]) * rng.randint(1, 3)
        else:
            lines, stated = correct_lines, value
        labels = step_labels(lines)
        expression = " ".join(f"{n} {op}" for n, op in zip(numbers, ops)) + f" {numbers[-1]}"
        rows["prompt"].append(f"Q: {expression} = ?\nA:")
        rows["steps"].append(lines)
        rows["final"].append(f"{ANSWER_PREFIX} {stated}")
        rows["step_labels"].append(labels)
        rows["outcome_label"].append(int(stated == value))
        rows["first_error"].append(labels.index(0) if 0 in labels else -1)
        rows["answer"].append(str(value))
    return datasets.Dataset.from_dict(rows)
