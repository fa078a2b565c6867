# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Quantity stories, some deliberately under-specified: when should a model ask before answering?

Each story gives a few people's counts of one item and asks for the total of two or three of
them. In a well-specified story every count asked for is given; in an under-specified one, one
of them is missing (`kind="missing"`: the person is never mentioned) or vague (`kind="vague"`:
"Ben has some apples."). The right response to an under-specified story is to ask for the
missing count, which `score_clarification` scores as precision / recall / F1 of clarification
requests; accuracy on the well-specified stories measures what asking too often costs.

    Ann has 3 apples. Ben has 5 apples. Cara has 2 apples. How many apples do Ann and Cara have?
    -> <thought>3+2=5</thought> 5                           (plain, with thoughts)
    -> {"answer":5,"unit":"apples"}                          (json)
    -> 3+2                                                   (arithmetic)
    -> ann = 3\\ncara = 2\\nanswer = ann + cara               (python)

Stories go to `train` / `validation` / `test` by a hash of their prompt (80 / 10 / 10), so the
splits are disjoint whatever the seeds and sizes.
"""

import hashlib
import random
from collections.abc import Sequence
from typing import Optional

import datasets

from ..evaluation.exact_arithmetic import ArithmeticExpressionError, parse_exact
from .control_tokens import CLARIFY_TOKEN, THOUGHT_END, THOUGHT_START


NAMES = ("Ann", "Ben", "Cara", "Dan", "Eve", "Finn", "Gus", "Hana", "Ivy", "Jon", "Kai", "Lea", "Max", "Nia")
ITEMS = ("apples", "books", "coins", "cards", "pens", "shells", "stamps", "marbles")
FORMATS = ("plain", "json", "arithmetic", "python")
KINDS = ("specified", "missing", "vague")
SPLITS = ("train", "validation", "test")
_SPLIT_BUCKETS = {"train": (0, 80), "validation": (80, 90), "test": (90, 100)}
_FORMAT_PREFIX = {"plain": "Q:", "json": "JSON Q:", "arithmetic": "EXPR Q:", "python": "PY Q:"}


def story_answer_schema() -> dict:
    """The JSON Schema of a `json`-format answer: `{"answer": <0..99>, "unit": <an item>}`."""
    return {
        "type": "object",
        "properties": {
            "answer": {"type": "integer", "minimum": 0, "maximum": 99},
            "unit": {"type": "string", "enum": list(ITEMS)},
        },
        "required": ["answer", "unit"],
        "additionalProperties": False,
    }


def _bucket(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") % 100


def _join(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]


def _story(rng: random.Random, kind: str) -> dict:
    people = rng.sample(NAMES, rng.randint(2, 4))
    item = rng.choice(ITEMS)
    counts = {name: rng.randint(1, 9) for name in people}
    asked = rng.sample(people, rng.randint(2, min(3, len(people))))
    unknown = rng.choice(asked) if kind != "specified" else ""
    sentences = []
    for name in people:
        if name == unknown and kind == "missing":
            continue
        sentences.append(f"{name} has {'some' if name == unknown else counts[name]} {item}.")
    rng.shuffle(sentences)
    question = f"How many {item} do {_join(asked)} have?"
    return {
        "story": " ".join(sentences) + " " + question,
        "item": item,
        "asked": asked,
        "counts": counts,
        "unknown": unknown,
    }


def _completion(story: dict, fmt: str, thoughts: bool) -> str:
    values = [story["counts"][name] for name in story["asked"]]
    total = sum(values)
    if fmt == "json":
        return f'{{"answer":{total},"unit":"{story["item"]}"}}'
    if fmt == "arithmetic":
        return "+".join(map(str, values))
    if fmt == "python":
        lines = [f"{name.lower()} = {story['counts'][name]}" for name in story["asked"]]
        return "\n".join(lines + ["answer = " + " + ".join(name.lower() for name in story["asked"])])
    # The working adds one count at a time, with its running sum: `3+2=5+4=9`.
    working, running = str(values[0]), values[0]
    for value in values[1:]:
        running += value
        working += f"+{value}={running}"
    thought = f"{THOUGHT_START}{working}{THOUGHT_END}" if thoughts else ""
    return f"{thought} {total}"


def generate_clarification_tasks(
    num_examples: int,
    split: str = "train",
    seed: int = 0,
    underspecified_fraction: float = 0.5,
    formats: Sequence[str] = ("plain",),
    thoughts: bool = True,
) -> datasets.Dataset:
    """Quantity stories, well- or under-specified, as a `datasets.Dataset`.

    Args:
        num_examples (`int`): rows (>= 1).
        split (`str`, defaults to `"train"`): `"train"`, `"validation"` or `"test"` (disjoint).
        seed (`int`, defaults to 0): the same seed gives the same rows.
        underspecified_fraction (`float`, defaults to 0.5): share of under-specified stories (half
            `missing`, half `vague`), in [0, 1]; 0 for training data of a model that should only
            ever see answerable stories.
        formats (`Sequence[str]`, defaults to `("plain",)`): the answer formats drawn from (each row
            one of `FORMATS`, uniformly); under-specified rows are always `plain`.
        thoughts (`bool`, defaults to `True`): plain completions start with their working as a
            thought, one count at a time with its running sum (`<thought>3+2=5+4=9</thought> 9`).

    Returns:
        Columns `prompt` (`"Q: <story>\\nA:"`, the prefix naming the format), `completion` (the
        gold answer, `"<clarify>"` for under-specified stories), `answer` (the total, -1 when
        unknowable), `needs_clarification`, `kind`, `format`, `unknown` (the person whose count is
        missing, or `""`).
    """
    if isinstance(num_examples, bool) or not isinstance(num_examples, int) or num_examples < 1:
        raise ValueError(f"`num_examples` must be an integer >= 1, got {num_examples!r}")
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}, got {split!r}")
    if not isinstance(underspecified_fraction, (int, float)) or not 0 <= underspecified_fraction <= 1:
        raise ValueError(f"`underspecified_fraction` must be in [0, 1], got {underspecified_fraction!r}")
    formats = list(formats)
    if not formats or any(f not in FORMATS for f in formats):
        raise ValueError(f"`formats` must be a non-empty list of {FORMATS}, got {formats!r}")
    rng = random.Random(f"clarification-{seed}")
    low, high = _SPLIT_BUCKETS[split]
    rows = {k: [] for k in ("prompt", "completion", "answer", "needs_clarification", "kind", "format", "unknown")}
    seen = set()
    while len(rows["prompt"]) < num_examples:
        under = rng.random() < underspecified_fraction
        kind = rng.choice(KINDS[1:]) if under else "specified"
        fmt = "plain" if under else rng.choice(formats)
        story = _story(rng, kind)
        prompt = f"{_FORMAT_PREFIX[fmt]} {story['story']}\nA:"
        if prompt in seen or not low <= _bucket(story["story"]) < high:
            continue
        seen.add(prompt)
        rows["prompt"].append(prompt)
        rows["completion"].append(CLARIFY_TOKEN if under else _completion(story, fmt, thoughts))
        rows["answer"].append(-1 if under else sum(story["counts"][n] for n in story["asked"]))
        rows["needs_clarification"].append(under)
        rows["kind"].append(kind)
        rows["format"].append(fmt)
        rows["unknown"].append(story["unknown"])
    return datasets.Dataset.from_dict(rows)


def score_clarification(requested: Sequence[bool], needed: Sequence[bool]) -> dict:
    """Precision, recall and F1 of clarification requests against which rows needed one.

    Returns a dict with `tp`, `fp`, `fn`, `tn`, `precision`, `recall`, `f1` (a ratio with a zero
    denominator is 0.0).
    """
    requested, needed = [bool(r) for r in requested], [bool(n) for n in needed]
    if len(requested) != len(needed):
        raise ValueError(f"`requested` and `needed` must pair up row by row, got {len(requested)} and {len(needed)}")
    tp = sum(r and n for r, n in zip(requested, needed))
    fp = sum(r and not n for r, n in zip(requested, needed))
    fn = sum(n and not r for r, n in zip(requested, needed))
    tn = len(needed) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": precision, "recall": recall, "f1": f1}


def evaluate_arithmetic(text: str) -> Optional[int]:
    """The value of an expression of non-negative int literals with + - * and parentheses, else None."""
    try:
        parsed = parse_exact(text, operators={"+", "-", "*"}, allow_unary_minus=False, max_abs=10**6)
    except ArithmeticExpressionError:
        return None
    return int(parsed.value)


def story_answer(text: str, fmt: str) -> Optional[int]:
    """The total a visible answer of format `fmt` commits to (None when it commits to none)."""
    import json
    import re

    if fmt == "json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None
        answer = value.get("answer") if isinstance(value, dict) else None
        return answer if type(answer) is int else None
    if fmt == "arithmetic":
        return evaluate_arithmetic(text)
    if fmt == "plain":
        numbers = re.findall(r"-?\d+", text)
        return int(numbers[-1]) if numbers else None
    raise ValueError(f"`fmt` must be 'plain', 'json' or 'arithmetic' (Python answers are not evaluated), got {fmt!r}")


__all__ = [
    "FORMATS",
    "ITEMS",
    "KINDS",
    "NAMES",
    "evaluate_arithmetic",
    "generate_clarification_tasks",
    "score_clarification",
    "story_answer",
    "story_answer_schema",
]
