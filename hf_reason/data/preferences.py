"""Preference pairs for DPO: a length-biased arithmetic set, best-of-N pair building, data hygiene.

`generate_length_biased_preferences` builds pairs whose chosen completion is the correct one and
whose *length* is decoupled from correctness by construction: a `bias` of 0.8 makes the chosen
completion the longer one in 80% of pairs (the spurious cue a length-exploiting objective picks
up), while `bias=0.5` gives a held-out set on which length predicts nothing. Completions reason in
``<think>...</think>`` and answer with ``#### n``; a wrong completion differs from the right one
only in its last step and answer (a hard negative).
"""

from __future__ import annotations

import difflib
import random
import re
from collections.abc import Sequence
from typing import Optional

import datasets

from .arithmetic import solve_steps


__all__ = [
    "CHAT_TEMPLATE_MARKERS",
    "build_preference_pairs",
    "find_chat_template_tokens",
    "generate_length_biased_preferences",
]

_FILLER = (
    "Let me double-check that.",
    "Going step by step again to be sure.",
    "Re-reading the question once more.",
    "That looks consistent so far.",
    "Checking the order of operations again.",
)

# Markers of the common chat templates; a base model's completion-style data must contain none of them.
CHAT_TEMPLATE_MARKERS = (
    "<|im_start|>",
    "<|im_end|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "[INST]",
    "[/INST]",
    "<start_of_turn>",
    "<end_of_turn>",
    "<|user|>",
    "<|assistant|>",
    "<|system|>",
    "<|endoftext|>",
    "<s>",
    "</s>",
)


def find_chat_template_tokens(text: str, markers: Sequence[str] = CHAT_TEMPLATE_MARKERS) -> list[str]:
    """The chat-template markers that occur in `text` (empty list: clean completion-style text)."""
    return [m for m in markers if m in text]


def _completion(lines: list[str], value: int, verbosity: int, rng: random.Random) -> str:
    thought = list(lines)
    for _ in range(verbosity):
        thought.insert(rng.randint(0, len(thought)), rng.choice(_FILLER))
    return " <think> " + "\n".join(thought) + "</think> #### " + str(value)


def generate_length_biased_preferences(
    num_pairs: int,
    bias: float = 0.8,
    min_ops: int = 1,
    max_ops: int = 3,
    max_value: int = 20,
    max_extra_lines: int = 4,
    seed: int = 0,
) -> datasets.Dataset:
    """Arithmetic preference pairs (chosen = correct) whose length bias is set by `bias`.

    Args:
        num_pairs (`int`): rows (>= 1).
        bias (`float`, defaults to 0.8): probability that the chosen completion is the longer one
            (in [0, 1]; 0.5 = length carries no information).
        min_ops, max_ops, max_value: the problems, as in `generate_arithmetic`.
        max_extra_lines (`int`, defaults to 4): the longer completion gets 1..`max_extra_lines`
            filler lines in its thought segment beyond the shorter one (>= 1).
        seed (`int`, defaults to 0).

    Returns:
        `datasets.Dataset` with `prompt`, `chosen`, `rejected`, `answer`, `chosen_longer` (bool).
    """
    if not isinstance(num_pairs, int) or num_pairs < 1:
        raise ValueError(f"`num_pairs` must be an int >= 1, got {num_pairs!r}")
    if not isinstance(bias, (int, float)) or not 0.0 <= bias <= 1.0:
        raise ValueError(f"`bias` must be a probability in [0, 1], got {bias!r}")
    if not isinstance(max_extra_lines, int) or max_extra_lines < 1:
        raise ValueError(f"`max_extra_lines` must be an int >= 1, got {max_extra_lines!r}")
    if not isinstance(max_ops, int) or not isinstance(min_ops, int) or not 1 <= min_ops <= max_ops:
        raise ValueError(f"need ints 1 <= `min_ops` <= `max_ops`, got {min_ops!r}, {max_ops!r}")
    rng = random.Random(seed)
    rows = {"prompt": [], "chosen": [], "rejected": [], "answer": [], "chosen_longer": []}
    for _ in range(num_pairs):
        n_ops = rng.randint(min_ops, max_ops)
        numbers = [rng.randint(0, max_value) for _ in range(n_ops + 1)]
        ops = [rng.choice("+-*") for _ in range(n_ops)]
        lines, value = solve_steps(numbers, ops)
        wrong = value + rng.choice([-1, 1]) * rng.randint(1, 3)
        # the wrong completion errs in the last step only: a hard negative, same shape as the right one
        wrong_lines = lines[:-1] + [lines[-1].rsplit("=", 1)[0] + f"= {wrong}"]
        extra = rng.randint(1, max_extra_lines)
        base = rng.randint(0, 1)
        chosen_longer = rng.random() < bias
        right_verbosity, wrong_verbosity = (base + extra, base) if chosen_longer else (base, base + extra)
        rows["prompt"].append("Q: " + " ".join(f"{n} {op}" for n, op in zip(numbers, ops)) + f" {numbers[-1]} = ?\nA:")
        rows["chosen"].append(_completion(lines, value, right_verbosity, rng))
        rows["rejected"].append(_completion(wrong_lines, wrong, wrong_verbosity, rng))
        rows["answer"].append(str(value))
        rows["chosen_longer"].append(chosen_longer)
    return datasets.Dataset.from_dict(rows)


def build_preference_pairs(
    prompt: str,
    completions: Sequence[str],
    rewards: Sequence[float],
    min_margin: float = 0.5,
    min_chosen_reward: Optional[float] = None,
    min_confidence: float = 0.0,
    answers: Optional[Sequence[Optional[str]]] = None,
) -> Optional[dict]:
    """One DPO pair from N sampled completions of `prompt` (best-of-N), or None when not confident.

    The chosen completion is the highest-reward sample; the rejected one is the *hard negative*:
    among samples at least `min_margin` below it, the one most similar to the chosen text
    (difflib ratio), so the pair isolates what made the difference rather than surface form.

    Confidence filtering drops the prompt (returns None) when no sample clears `min_margin`
    below the best, when the best reward is under `min_chosen_reward`, or, given the samples'
    extracted `answers`, when fewer than `min_confidence` of the samples agree with the chosen
    sample's answer (self-consistency: a lucky one-off is not a trustworthy label).
    """
    completions, rewards = list(completions), [float(r) for r in rewards]
    if len(completions) != len(rewards) or not completions:
        raise ValueError(f"need as many rewards as completions (>= 1), got {len(completions)} and {len(rewards)}")
    if min_margin < 0 or not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"need min_margin >= 0 and min_confidence in [0, 1], got {min_margin}, {min_confidence}")
    if answers is not None and len(answers) != len(completions):
        raise ValueError(f"`answers` must have one entry per completion, got {len(answers)} for {len(completions)}")
    best = max(range(len(completions)), key=lambda i: (rewards[i], -i))
    if min_chosen_reward is not None and rewards[best] < min_chosen_reward:
        return None
    if answers is not None and min_confidence > 0:
        agreeing = sum(1 for a in answers if a is not None and a == answers[best])
        if agreeing / len(answers) < min_confidence:
            return None
    negatives = [i for i in range(len(completions)) if rewards[best] - rewards[i] >= min_margin]
    if not negatives:
        return None

    def similarity(i: int) -> float:
        return difflib.SequenceMatcher(None, completions[best], completions[i]).ratio()

    hard = max(negatives, key=lambda i: (similarity(i), -i))
    return {
        "prompt": prompt,
        "chosen": completions[best],
        "rejected": completions[hard],
        "chosen_reward": rewards[best],
        "rejected_reward": rewards[hard],
        "margin": rewards[best] - rewards[hard],
    }


def thought_length(text: str) -> int:
    """Characters inside the ``<think>...</think>`` block (0 when there is none)."""
    match = re.search(r"<think>(.*?)(?:</think>|$)", text, flags=re.DOTALL)
    return len(match.group(1)) if match else 0
