# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""`GrammarLogitsProcessor`: the transformers `LogitsProcessor` that keeps every output inside a grammar.

Each row of the batch has its own matcher. The processor reads the generated tokens from
`input_ids` at every call and brings the row's matcher to them: one new token in plain decoding,
a rollback to the common prefix and a replay when the row changed otherwise (beam search
reordering its rows, MCTS moving between branches). So one processor serves transformers'
`generate`, the ONNX Runtime wrappers' loop and CRSM's tree search alike.

Thought spans (`<thought> ... </thought>`) are private and outside the grammar: their tokens are
not fed to the matcher, any token but the end of output may appear inside them, and a thought may
open wherever the grammar is. What is left once they are stripped is what the grammar governs.
"""

from collections.abc import Sequence
from typing import Optional, Union

import numpy as np
import torch
from transformers import LogitsProcessor

from .engines import CompiledGrammar, unpack_bitmask


# dtypes whose CPU tensors share memory with a numpy array (bfloat16 has no numpy counterpart)
_NUMPY_FLOATS = (torch.float16, torch.float32, torch.float64)


class GrammarDeadEndError(RuntimeError):
    """The grammar cannot be continued: no token is allowed, or a token it refuses was generated."""


def follow_tags(row, token: int, end_ids, thought_ids: Optional[tuple[int, int]]) -> bool:
    """Moves a generated row's state past `token`: `row.done` after an end of output, `row.depth` (the
    thought nesting) after `<thought>` / `</thought>`. Returns True for any other token (output
    content, inside a thought when `row.depth > 0`)."""
    if token in end_ids:
        row.done = True
    elif thought_ids is not None and token == thought_ids[0]:
        row.depth += 1
    elif thought_ids is not None and token == thought_ids[1]:
        row.depth = max(0, row.depth - 1)
    else:
        return True
    return False


class PromptTracker:
    """Which columns of `input_ids` are the prompt, across the calls of one generation.

    The first call of a generation holds the prompts only; later calls extend them. A call whose
    batch size differs, or whose leading columns are not the stored prompts, starts a new generation.
    """

    def __init__(self):
        self.prompts: Optional[torch.Tensor] = None

    def update(self, input_ids: torch.Tensor) -> bool:
        """Records the call; True when it starts a new generation."""
        prompts = self.prompts
        if (
            prompts is not None
            and input_ids.shape[0] == prompts.shape[0]
            and input_ids.shape[1] >= prompts.shape[1]
            and torch.equal(input_ids[:, : prompts.shape[1]], prompts)
        ):
            return False
        self.prompts = input_ids.detach().clone()
        return True

    @property
    def prompt_length(self) -> int:
        return 0 if self.prompts is None else self.prompts.shape[1]

    def reset(self) -> None:
        self.prompts = None


def _as_id_set(ids, name: str) -> frozenset:
    if ids is None:
        return frozenset()
    ids = [ids] if isinstance(ids, int) else list(ids)
    if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in ids):
        raise ValueError(f"`{name}` must be a token id or a list of token ids, got {ids!r}")
    return frozenset(ids)


class _Row:
    __slots__ = ("matcher", "raw", "consumed", "depth", "done")

    def __init__(self, matcher):
        self.matcher = matcher
        self.raw: list[int] = []  # every generated token seen
        self.consumed: list[int] = []  # the tokens fed to the matcher (outside thoughts, before the end)
        self.depth = 0  # thought nesting
        self.done = False


class GrammarLogitsProcessor(LogitsProcessor):
    """Masks (to `-inf`) every next token that would take the output out of the grammar.

    The end-of-output tokens (`eos_token_id`) are allowed exactly where the grammar is complete.
    A row ends at its first end-of-output or `stop_token_ids` token; the processor leaves ended
    rows alone (`generate` pads them).

    Args:
        grammar ([`CompiledGrammar`]): from [`compile_grammar`], for the model's vocabulary size.
        eos_token_id (`int` or `list[int]`): the tokens that end an output.
        thought_token_ids (`tuple[int, int]`, *optional*): the `<thought>` and `</thought>` ids; with
            them, thoughts may open anywhere, are free inside, and are not seen by the grammar.
        stop_token_ids (`list[int]`, *optional*): further tokens that end a row without the
            grammar being complete (the `<clarify>` token of entropy steering, forced by a later
            processor).
        tokenizer (*optional*): only to show the text so far in errors.

    Raises [`GrammarDeadEndError`] when a row has no allowed token (a grammar that cannot be
    continued, or a complete grammar without an end-of-output token), or when a token the grammar
    refuses was generated (another processor forced it).
    """

    def __init__(
        self,
        grammar: CompiledGrammar,
        eos_token_id: Union[int, Sequence[int]],
        thought_token_ids: Optional[tuple[int, int]] = None,
        stop_token_ids: Optional[Sequence[int]] = None,
        tokenizer=None,
    ):
        if not isinstance(grammar, CompiledGrammar):
            raise ValueError(f"`grammar` must be a CompiledGrammar (compile_grammar), got {type(grammar).__name__}")
        self.grammar = grammar
        self.eos_ids = _as_id_set(eos_token_id, "eos_token_id")
        if not self.eos_ids:
            raise ValueError("`eos_token_id` is required: a complete output must be able to end.")
        if thought_token_ids is not None:
            ids = _as_id_set(thought_token_ids, "thought_token_ids")
            if len(thought_token_ids) != 2 or len(ids) != 2:
                raise ValueError(
                    f"`thought_token_ids` must be two distinct ids (open, close), got {thought_token_ids!r}"
                )
            thought_token_ids = tuple(thought_token_ids)
        self.thought_ids = thought_token_ids
        self.end_ids = self.eos_ids | _as_id_set(stop_token_ids, "stop_token_ids")
        for name, ids in (("eos_token_id", self.end_ids), ("thought_token_ids", thought_token_ids or ())):
            if any(i >= grammar.vocab_size for i in ids):
                raise ValueError(f"`{name}` {sorted(ids)} must be below the grammar's vocab_size={grammar.vocab_size}")
        self.tokenizer = tokenizer
        self.tracker = PromptTracker()
        self.rows: list[_Row] = []
        self._bitmask: Optional[torch.Tensor] = None
        self._eos_list = sorted(self.eos_ids)
        extra = np.zeros(grammar.vocab_size, dtype=bool)
        extra[self._eos_list] = True
        self._engine_stop = [i for i in grammar.engine_stop_ids if i < grammar.vocab_size]
        words = np.zeros(grammar.bitmask_width * 4, dtype=np.uint8)
        packed = np.packbits(~extra, bitorder="little")
        words[: packed.size] = packed
        self._thought_row = torch.from_numpy(words.view(np.int32))

    def reset(self) -> None:
        """Forgets the current generation (the next call starts a new one)."""
        self.tracker.reset()
        self.rows = []

    # --- following the rows -------------------------------------------------------------------
    def _describe(self, tokens: Sequence[int]) -> str:
        if self.tokenizer is not None:
            return repr(self.tokenizer.decode(list(tokens)))
        return f"token ids {list(tokens)}"

    def _advance(self, row: _Row, token: int, index: int) -> None:
        row.raw.append(token)
        if row.done:
            return
        if follow_tags(row, token, self.end_ids, self.thought_ids) and row.depth == 0:
            if not row.matcher.consume(token):
                raise GrammarDeadEndError(
                    f"Row {index}: the grammar ({self.grammar.spec.kind}) does not allow token {token} after "
                    f"{self._describe(row.consumed)}; a processor after the grammar forced it, or the row was "
                    f"generated without the grammar. {row.matcher.error()}".rstrip()
                )
            row.consumed.append(token)

    def _sync(self, row: _Row, tokens: list[int], index: int) -> None:
        seen = len(row.raw)
        if len(tokens) >= seen and tokens[:seen] == row.raw:
            for token in tokens[seen:]:
                self._advance(row, token, index)
            return
        # The row changed under us (beam reordering, a search moving to another branch): keep the
        # matcher's common prefix with the new row and replay the rest.
        replay = _Row(_Recorder())
        for token in tokens:
            self._advance(replay, token, index)
        common = 0
        for a, b in zip(row.consumed, replay.consumed):
            if a != b:
                break
            common += 1
        row.matcher.rollback(len(row.consumed) - common)
        row.consumed = row.consumed[:common]
        for token in replay.consumed[common:]:
            if not row.matcher.consume(token):
                raise GrammarDeadEndError(
                    f"Row {index}: the grammar does not allow token {token} after {self._describe(row.consumed)}."
                )
            row.consumed.append(token)
        row.raw, row.depth, row.done = list(tokens), replay.depth, replay.done

    def _start(self, batch_size: int) -> None:
        self.rows = [_Row(self.grammar.matcher()) for _ in range(batch_size)]

    # --- the mask ------------------------------------------------------------------------------
    def _fill(self, row: _Row, bitmask: torch.Tensor, index: int) -> None:
        if row.done:
            bitmask[index] = -1
        elif row.depth > 0:
            bitmask[index] = self._thought_row  # anything but the end of output: the thought must close first
        else:
            row.matcher.fill_bitmask(bitmask, index)

    def _finish_mask(self, allowed: np.ndarray, index: int, row: _Row) -> None:
        """Engine stop tokens out, the generation's end tokens in where the grammar is complete."""
        if row.done or row.depth > 0:
            return
        allowed[self._engine_stop] = False
        if row.matcher.is_accepting():
            allowed[self._eos_list] = True
        if self.thought_ids is not None:
            allowed[self.thought_ids[0]] = True
        if not allowed.any():
            raise GrammarDeadEndError(
                f"Row {index}: no token can continue the {self.grammar.spec.kind} grammar after "
                f"{self._describe(row.consumed)}. {row.matcher.error()}".rstrip()
            )

    def _masks(self) -> np.ndarray:
        """The boolean `(batch, vocab_size)` next-token masks of every row in its current state."""
        width = self.grammar.bitmask_width
        if self._bitmask is None or self._bitmask.shape != (len(self.rows), width):
            self._bitmask = torch.zeros((len(self.rows), width), dtype=torch.int32)
        for index, row in enumerate(self.rows):
            self._fill(row, self._bitmask, index)
        allowed = unpack_bitmask(self._bitmask, self.grammar.vocab_size)
        for index, row in enumerate(self.rows):
            self._finish_mask(allowed[index], index, row)
        return allowed

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[-1] != self.grammar.vocab_size:
            raise ValueError(
                f"The scores have {scores.shape[-1]} entries per row but the grammar was compiled for "
                f"vocab_size={self.grammar.vocab_size}; compile it with the model's vocabulary size."
            )
        if self.tracker.update(input_ids):
            self._start(input_ids.shape[0])
        generated = input_ids[:, self.tracker.prompt_length :].tolist()
        for index, (row, tokens) in enumerate(zip(self.rows, generated)):
            self._sync(row, tokens, index)
        allowed = self._masks()
        if scores.device.type == "cpu" and scores.dtype in _NUMPY_FLOATS and not scores.requires_grad:
            # One single-threaded numpy pass: torch's intra-op pool would wake its threads for 50k
            # entries, and next to ONNX Runtime's spinning pool that wait dominates the decode step.
            values = scores.numpy()
            return torch.from_numpy(np.where(allowed, values, np.array(-np.inf, dtype=values.dtype)))
        return scores.masked_fill(~torch.from_numpy(allowed).to(scores.device), float("-inf"))

    def replay_masks(self, completions: Sequence[Sequence[int]], length: Optional[int] = None) -> torch.BoolTensor:
        """The masks each completion was (or would have been) sampled under: `(n, length, vocab_size)`.

        Entry `[i, t]` is the allowed set before token `t` of completion `i`; positions after the
        completion ended (end-of-output token, or its last token) are all True. For the losses that
        must score tokens under the same mask they were sampled with (see `hf_reason.decoding.grpo`).
        """
        length = max((len(c) for c in completions), default=0) if length is None else length
        out = torch.ones((len(completions), length, self.grammar.vocab_size), dtype=torch.bool)
        self.reset()
        self.rows = [_Row(self.grammar.matcher()) for _ in completions]
        for t in range(length):
            active = [i for i, c in enumerate(completions) if t < len(c) and not self.rows[i].done]
            if not active:
                break
            masks = self._masks()
            for i in active:
                out[i, t] = torch.from_numpy(masks[i])
                self._advance(self.rows[i], int(completions[i][t]), i)
        self.reset()
        return out


class _Recorder:
    """A stand-in matcher that accepts everything, to split a row into grammar and thought tokens."""

    def consume(self, token_id: int) -> bool:
        return True

    def error(self) -> str:
        return ""


__all__ = ["GrammarDeadEndError", "GrammarLogitsProcessor", "PromptTracker", "follow_tags"]
