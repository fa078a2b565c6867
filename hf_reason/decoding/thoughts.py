# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Private thoughts: `<thought> ... </thought>` spans that never reach the user, and the pollution check.

Isolation is by construction, at the token level: `strip_thoughts` removes every token from an
opening tag through its matching closing tag (nested spans count their depth), and everything
from an opening tag that never closes to the end of the row. Decoding the stripped ids is the
only way `generate(..., hide_thoughts=True)`, the ONNX Runtime wrappers and `visible_texts` produce
user-visible text, so thought content cannot leak through a text-level pattern that missed a case
(a tag split over tokens, a tag inside a string).

Pollution is softer: a model may *copy* what it thought into its answer. `thought_pollution`
measures it as the share of the answer's token n-grams that appear in the row's own thoughts
(and not in the prompt or the reference answer, where they are legitimate).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Optional

import torch


def thought_token_ids(tokenizer) -> Optional[tuple[int, int]]:
    """The `(<thought>, </thought>)` ids of a tokenizer that has both as single tokens, else None."""
    from ..data.control_tokens import THOUGHT_END, THOUGHT_START

    vocab = tokenizer.get_vocab()
    if THOUGHT_START in vocab and THOUGHT_END in vocab:
        return vocab[THOUGHT_START], vocab[THOUGHT_END]
    return None


def split_thoughts(tokens: Sequence[int], thought_start_id: int, thought_end_id: int) -> tuple[list[int], list[int]]:
    """`(visible, thought)` tokens of one generated row.

    Tags are in neither list. Spans nest (a `<thought>` inside a thought deepens it; each
    `</thought>` closes one level); a closing tag outside any thought is dropped; an opening tag
    that never closes withholds the rest of the row.
    """
    visible, thought, depth = [], [], 0
    for token in tokens:
        token = int(token)
        if token == thought_start_id:
            depth += 1
        elif token == thought_end_id:
            depth = max(0, depth - 1)
        elif depth:
            thought.append(token)
        else:
            visible.append(token)
    return visible, thought


def strip_thoughts(
    sequences: torch.LongTensor,
    prompt_length: int,
    thought_start_id: int,
    thought_end_id: int,
    pad_token_id: int,
) -> torch.LongTensor:
    """`generate`'s output with every thought removed from the generated part (see `split_thoughts`).

    Args:
        sequences (`torch.LongTensor` of shape `(batch, prompt_length + generated)`): prompts (left
            padded, untouched) followed by the generated tokens.
        prompt_length (`int`): the prompt columns.
        thought_start_id, thought_end_id (`int`): the tag ids.
        pad_token_id (`int`): fills the rows whose visible part is shorter than the longest.

    Returns a `(batch, prompt_length + longest visible part)` tensor on the same device.
    """
    if sequences.dim() != 2:
        raise ValueError(f"`sequences` must have shape (batch, length), got {tuple(sequences.shape)}")
    if not 0 <= prompt_length <= sequences.shape[1]:
        raise ValueError(f"`prompt_length` must be in [0, {sequences.shape[1]}], got {prompt_length}")
    if pad_token_id is None:
        raise ValueError("`pad_token_id` is required to pad the rows whose thoughts were removed")
    visible = [
        split_thoughts(row, thought_start_id, thought_end_id)[0] for row in sequences[:, prompt_length:].tolist()
    ]
    width = max((len(v) for v in visible), default=0)
    out = torch.full((sequences.shape[0], prompt_length + width), pad_token_id, dtype=sequences.dtype)
    out[:, :prompt_length] = sequences[:, :prompt_length].cpu()
    for row, tokens in enumerate(visible):
        out[row, prompt_length : prompt_length + len(tokens)] = torch.tensor(tokens, dtype=sequences.dtype)
    return out.to(sequences.device)


def _until_end(tokens: Sequence[int], end_ids: Iterable[int]) -> list[int]:
    ends = set(end_ids)
    out = []
    for token in tokens:
        if int(token) in ends:
            break
        out.append(int(token))
    return out


def visible_token_ids(generated: Sequence[int], tokenizer, end_token_ids: Optional[Iterable[int]] = None) -> list[int]:
    """The user-visible ids of one generated row: up to its end-of-output token, thoughts removed."""
    ends = set(end_token_ids or ()) | {i for i in (tokenizer.eos_token_id, tokenizer.pad_token_id) if i is not None}
    tokens = _until_end(generated, ends)
    ids = thought_token_ids(tokenizer)
    return split_thoughts(tokens, *ids)[0] if ids is not None else tokens


def visible_texts(
    sequences: torch.LongTensor, prompt_length: int, tokenizer, end_token_ids: Optional[Iterable[int]] = None
) -> list[str]:
    """What the user receives from each row of `generate`'s output: the generated part, up to the end
    of output, with thoughts removed at the token level, decoded without special tokens."""
    return [
        tokenizer.decode(visible_token_ids(row, tokenizer, end_token_ids), skip_special_tokens=True)
        for row in sequences[:, prompt_length:].tolist()
    ]


def _ngrams(tokens: Sequence[int], n: int) -> set:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


@dataclass
class PollutionReport:
    """
    Attributes:
        mean_pollution (`float`): mean over rows of the share of the answer's n-grams found in the
            row's thoughts (rows with no answer n-gram count as 0).
        polluted_rows (`int`): rows with at least one such n-gram.
        leaked_thought_tokens (`int`): thought tokens present in the user-visible output (the
            stripping makes this 0; counted to check it).
        rows (`int`), n (`int`): rows scored; n-gram length.
        per_row (`list[float]`): each row's share.
    """

    mean_pollution: float
    polluted_rows: int
    leaked_thought_tokens: int
    rows: int
    n: int
    per_row: list


def thought_pollution(
    generated: Sequence[Sequence[int]],
    thought_start_id: int,
    thought_end_id: int,
    n: int = 2,
    allowed: Optional[Sequence[Sequence[int]]] = None,
    visible: Optional[Sequence[Sequence[int]]] = None,
) -> PollutionReport:
    """How much of each answer repeats the row's own thoughts.

    Args:
        generated: the raw generated ids of each row (thoughts included), up to its end.
        thought_start_id, thought_end_id: the tag ids.
        n (`int`, defaults to 2): n-gram length, in tokens.
        allowed: per row, ids whose n-grams do not count (the prompt and the reference answer:
            an answer may legitimately repeat them).
        visible: per row, the ids the user received (default: `split_thoughts`' visible part);
            `leaked_thought_tokens` counts those that are not the row's visible tokens in order
            (`len(shown)` minus their longest common subsequence): thought content and tags.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"`n` must be an integer >= 1, got {n!r}")
    per_row, leaked = [], 0
    for i, row in enumerate(generated):
        answer, thought = split_thoughts(row, thought_start_id, thought_end_id)
        shown = list(visible[i]) if visible is not None else answer
        # What was shown beyond the row's own visible tokens (kept in order) came from a thought.
        leaked += len(shown) - _lcs_length(shown, answer)
        excluded = _ngrams(list(allowed[i]), n) if allowed is not None else set()
        answer_grams = _ngrams(shown, n)
        copied = (answer_grams & _ngrams(thought, n)) - excluded
        per_row.append(len(copied) / len(answer_grams) if answer_grams else 0.0)
    return PollutionReport(
        mean_pollution=sum(per_row) / len(per_row) if per_row else 0.0,
        polluted_rows=sum(1 for p in per_row if p > 0),
        leaked_thought_tokens=leaked,
        rows=len(per_row),
        n=n,
        per_row=per_row,
    )


def _lcs_length(a: Sequence[int], b: Sequence[int]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


__all__ = [
    "PollutionReport",
    "split_thoughts",
    "strip_thoughts",
    "thought_pollution",
    "thought_token_ids",
    "visible_texts",
    "visible_token_ids",
]
