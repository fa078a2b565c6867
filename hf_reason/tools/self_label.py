# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Toolformer-style self-labelling: keep a candidate tool call only where its result helps the LM.

For each candidate call inserted at the start of a line of a training text, the LM's loss on the
next `window` tokens of the original text is measured three ways (Schick et al., 2023):

- ``L_plus``: after the call *and* its result (``Tool: ...`` / ``Result: ...`` lines);
- ``L_call``: after the call with an empty result;
- ``L_none``: with no call.

The call is kept when ``min(L_none, L_call) - L_plus >= threshold``: the result, not the mere
presence of a call, makes the continuation easier. The annotated texts then train the model (SFT,
`self_labelled_dataset`), so it learns to call where calling paid.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Optional

import torch

from .registry import RESULT_PREFIX, ToolRegistry, format_tool_call


__all__ = ["CandidateCall", "LabelDecision", "arithmetic_candidates", "self_label", "self_labelled_dataset"]

_EXPRESSION_RE = re.compile(r"(?<![\w.])(\d+(?:\s*[-+*/]\s*\d+)+)\s*=")


@dataclasses.dataclass(frozen=True)
class CandidateCall:
    """A call to try: inserted as its own lines before the line that starts at character `line_start`."""

    line_start: int
    name: str
    arguments: dict


@dataclasses.dataclass
class LabelDecision:
    """What one candidate did: the three losses (mean per token), whether it was kept, and the result."""

    candidate: CandidateCall
    result: str
    loss_with_result: float
    loss_call_only: float
    loss_without_call: float
    kept: bool

    @property
    def gain(self) -> float:
        return min(self.loss_without_call, self.loss_call_only) - self.loss_with_result


def arithmetic_candidates(text: str) -> list[CandidateCall]:
    """A calculator call for every ``a op b ... =`` in the text, before the line it is on."""
    out = []
    for match in _EXPRESSION_RE.finditer(text):
        start = text.rfind("\n", 0, match.start()) + 1
        expression = re.sub(r"\s+", "", match.group(1))
        out.append(CandidateCall(start, "calculator", {"expression": expression}))
    return out


@torch.no_grad()
def _continuation_loss(model, tokenizer, prefix: str, continuation_ids: list[int]) -> float:
    prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"] if prefix else []
    if tokenizer.bos_token_id is not None and not prefix_ids:
        prefix_ids = [tokenizer.bos_token_id]  # the first token needs something to be predicted from
    config = model.config
    context = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
    if context:  # the nearest context matters most: cut the prefix from the left
        prefix_ids = prefix_ids[-max(context - len(continuation_ids), 1) :]
    ids = torch.tensor([prefix_ids + continuation_ids], device=model.device)
    logits = model(input_ids=ids).logits[0, len(prefix_ids) - 1 : -1].float()
    target = ids[0, len(prefix_ids) :]
    return float(torch.nn.functional.cross_entropy(logits, target))


def self_label(
    model,
    tokenizer,
    texts: Iterable[str],
    registry: ToolRegistry,
    candidates: Callable[[str], Sequence[CandidateCall]] = arithmetic_candidates,
    threshold: float = 0.2,
    window: int = 16,
) -> tuple[list[str], list[list[LabelDecision]]]:
    """Annotates `texts` with the calls that pay.

    Args:
        model: a causal LM (any family; one forward per candidate and variant).
        tokenizer: its tokenizer.
        texts (iterable of `str`): training texts.
        registry ([`ToolRegistry`]): runs the candidate calls (a call that errors is never kept, and its
            losses are NaN: nothing is scored).
        candidates (`Callable`): text -> candidate calls (default: `arithmetic_candidates`).
        threshold (`float`): the loss reduction, in nats per token, a call must bring.
        window (`int`): continuation tokens scored after the insertion point.

    Returns:
        The annotated texts (kept calls inserted with their results) and, per text, every decision.
    """
    model.eval()
    annotated, decisions = [], []
    for text in texts:
        kept: dict[int, str] = {}
        mine = []
        for candidate in candidates(text):
            result = registry.call(candidate.name, candidate.arguments)
            if not result.ok:
                nan = float("nan")
                mine.append(LabelDecision(candidate, result.text, nan, nan, nan, kept=False))
                continue
            prefix, rest = text[: candidate.line_start], text[candidate.line_start :]
            continuation = tokenizer(rest, add_special_tokens=False)["input_ids"][:window]
            if not continuation:
                continue
            call = format_tool_call(candidate.name, candidate.arguments) + "\n"
            with_result = _continuation_loss(
                model, tokenizer, prefix + call + f"{RESULT_PREFIX} {result.text}\n", continuation
            )
            call_only = _continuation_loss(model, tokenizer, prefix + call + f"{RESULT_PREFIX}\n", continuation)
            without = _continuation_loss(model, tokenizer, prefix, continuation)
            keep = min(without, call_only) - with_result >= threshold
            mine.append(LabelDecision(candidate, result.text, with_result, call_only, without, keep))
            if keep and candidate.line_start not in kept:
                kept[candidate.line_start] = call + f"{RESULT_PREFIX} {result.text}\n"
        for start in sorted(kept, reverse=True):
            text = text[:start] + kept[start] + text[start:]
        annotated.append(text)
        decisions.append(mine)
    return annotated, decisions


def self_labelled_dataset(annotated: Sequence[str], eos_token: Optional[str] = None):
    """The annotated texts as a `datasets.Dataset` with a ``text`` column, for TRL's `SFTTrainer`."""
    import datasets

    return datasets.Dataset.from_dict({"text": [t + (eos_token or "") for t in annotated]})
