# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Tool use inside generation, for any causal LM that generates through transformers.

`ToolCallProcessor` is a logits processor: at every step it looks at each row's completion so far;
when a ``Tool: name({...})`` call has just closed (its JSON arguments parse after the closing
parenthesis, or the line ended), it runs the call through a `ToolRegistry` and *forces* the tokens
of ``Result: <text>`` (plus a newline) as that row's next tokens, one per step, then lets the model
go on. So the call runs the moment it closes, the result is spliced into the sequence, and
generation continues from the same cache in the same `generate` call: rows of a batch call tools
at different times independently, with greedy decoding or sampling, for every family (GPT-2
meta-attention, CRSM's Mamba cache, any transformers LM). A bad call is answered with
``Result: error: ...``, never an exception.

Forced tokens count against ``max_new_tokens``. Their completion positions are kept
(`forced_positions`) so that training can mask them out of the loss (`tool_mask`).
"""

from __future__ import annotations

import dataclasses
import re
from collections import deque
from typing import Optional

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from .registry import RESULT_PREFIX, TOOL_PREFIX, ToolCallError, ToolRegistry, ToolResult, parse_tool_call


__all__ = ["ToolCallProcessor", "ToolGeneration", "find_closed_call", "generate_with_tools"]

_CALL_START_RE = re.compile(rf"(?m)^[ \t]*{re.escape(TOOL_PREFIX)}")


def find_closed_call(text: str) -> Optional[tuple[int, str]]:
    """The first closed ``Tool:`` call in `text`: (end offset, call text), or None if none has closed.

    A call is closed when, after ``Tool:``, the text up to a ``)`` parses as ``name({json})``, or when
    its line has ended (a malformed call, answered with an error).
    """
    match = _CALL_START_RE.search(text)
    if match is None:
        return None
    start = match.end()
    newline = text.find("\n", start)
    line_end = len(text) if newline < 0 else newline
    for close in range(start, line_end):
        if text[close] == ")":
            candidate = text[start : close + 1]
            try:
                parse_tool_call(candidate)
            except ToolCallError:
                continue
            return close + 1, candidate.strip()
    if newline >= 0:
        return newline, text[start:newline].strip()
    return None


@dataclasses.dataclass
class _Row:
    pending: deque = dataclasses.field(default_factory=deque)
    handled_upto: int = 0
    resync: bool = False
    forced_positions: list = dataclasses.field(default_factory=list)
    results: list = dataclasses.field(default_factory=list)


class ToolCallProcessor(LogitsProcessor):
    """Runs tool calls as they close and forces their results into the sequence.

    Args:
        tokenizer: the model's tokenizer (decodes completions, encodes results).
        registry ([`ToolRegistry`]): the tools calls are run against.
        max_calls (`int`): calls per row; later calls are answered with an error.
        max_result_tokens (`int`): longest spliced result, in tokens (longer ones are cut, keeping the
            final newline), so a tool cannot fill the model's context.
        eos_token_ids (`list[int]`, *optional*): rows that produced one of these are left alone
            (default: the tokenizer's EOS).

    After generation, `forced_positions[row]` lists the completion positions whose tokens were
    forced (the results), and `results[row]` the `ToolResult` of each call.
    """

    def __init__(
        self, tokenizer, registry: ToolRegistry, max_calls: int = 8, max_result_tokens: int = 256, eos_token_ids=None
    ):
        self.tokenizer, self.registry, self.max_calls = tokenizer, registry, max_calls
        self.max_result_tokens = max_result_tokens
        self._newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
        if eos_token_ids is None:
            eos_token_ids = [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]
        self.eos_token_ids = set(eos_token_ids)
        self.prompt_length: Optional[int] = None
        self._rows: list[_Row] = []

    @property
    def forced_positions(self) -> list[list[int]]:
        return [row.forced_positions for row in self._rows]

    @property
    def results(self) -> list[list[ToolResult]]:
        return [row.results for row in self._rows]

    def _result_ids(self, before: str, result: ToolResult) -> list[int]:
        # the result starts on its own line; a trailing newline hands the line back to the model
        text = ("" if before.endswith("\n") else "\n") + f"{RESULT_PREFIX} {' '.join(result.text.splitlines())}"
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids[: max(self.max_result_tokens - len(self._newline), 1)] + self._newline

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_length is None:
            self.prompt_length = input_ids.size(1)
            self._rows = [_Row() for _ in range(input_ids.size(0))]
        position = input_ids.size(1) - self.prompt_length
        for b, row in enumerate(self._rows):
            completion = input_ids[b, self.prompt_length :].tolist()
            if self.eos_token_ids.intersection(completion):
                continue
            if not row.pending:
                text = self.tokenizer.decode(completion, skip_special_tokens=True)
                if row.resync:
                    row.handled_upto, row.resync = len(text), False
                found = find_closed_call(text[row.handled_upto :])
                if found is None:
                    continue
                end, call = found
                row.handled_upto += end
                if len(row.results) >= self.max_calls:
                    result = ToolResult(name="", arguments=None, error=f"call limit of {self.max_calls} reached")
                else:
                    result = self.registry.call_text(call)
                row.results.append(result)
                row.pending.extend(self._result_ids(text, result))
                if not row.pending:
                    continue
            token = row.pending.popleft()
            row.forced_positions.append(position)
            row.resync = not row.pending
            scores[b] = torch.full_like(scores[b], float("-inf"))
            scores[b, token] = 0.0
        return scores


@dataclasses.dataclass
class ToolGeneration:
    """One generated completion with its tool calls.

    Attributes:
        text (`str`): the completion (results spliced in), special tokens removed.
        completion_ids (`list[int]`): its tokens, up to and including the first EOS.
        results (`list[ToolResult]`): every call made, in order.
        tool_mask (`list[int]`): per completion token, 0 where the tool result was forced, 1 where the
            model chose the token.
    """

    text: str
    completion_ids: list[int]
    results: list[ToolResult]
    tool_mask: list[int]


@torch.no_grad()
def generate_with_tools(
    model,
    tokenizer,
    prompts: list[str],
    registry: ToolRegistry,
    max_calls: int = 8,
    max_result_tokens: int = 256,
    logits_processor: Optional[list] = None,
    **generate_kwargs,
) -> list[ToolGeneration]:
    """Generates completions of `prompts` (a batch) with tool calls run and spliced in as they close.

    Args:
        model: a causal LM with transformers' `generate`.
        tokenizer: its tokenizer (left padding is used for the batch).
        prompts (`list[str]`): the prompts.
        registry ([`ToolRegistry`]): the tools.
        max_calls (`int`): calls allowed per completion.
        max_result_tokens (`int`): longest spliced result, in tokens.
        logits_processor (`list`, *optional*): more processors, applied before the tool processor.
        generate_kwargs: passed to `model.generate` (``max_new_tokens``, ``do_sample``, ...).
    """
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        batch = tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    batch = {k: v.to(model.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
    processor = ToolCallProcessor(tokenizer, registry, max_calls=max_calls, max_result_tokens=max_result_tokens)
    generate_kwargs.setdefault("pad_token_id", tokenizer.pad_token_id)
    output = model.generate(
        **batch, logits_processor=LogitsProcessorList([*(logits_processor or []), processor]), **generate_kwargs
    )
    completions = output[:, batch["input_ids"].size(1) :].tolist()
    eos = processor.eos_token_ids
    out = []
    for b, ids in enumerate(completions):
        cut = next((i + 1 for i, t in enumerate(ids) if t in eos), len(ids))
        ids = ids[:cut]
        forced = set(processor.forced_positions[b]) if processor._rows else set()
        out.append(
            ToolGeneration(
                text=tokenizer.decode(ids, skip_special_tokens=True),
                completion_ids=ids,
                results=list(processor.results[b]) if processor._rows else [],
                tool_mask=[0 if i in forced else 1 for i in range(len(ids))],
            )
        )
    return out
