# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Control tokens for structured and steered decoding: `<thought>`, `</thought>`, `<clarify>`.

`add_control_tokens` adds them to any fast tokenizer as special tokens (never split, never
produced by ordinary text) and, given a model, resizes its embeddings and initialises the new
rows: a fresh random row would give the new tokens logits on an arbitrary scale, while the mean
of the existing rows gives them an average logit and an average input, from which training moves
them.
"""

from collections.abc import Sequence
from typing import Optional

import torch


THOUGHT_START = "<thought>"
THOUGHT_END = "</thought>"
CLARIFY_TOKEN = "<clarify>"
CONTROL_TOKENS = (THOUGHT_START, THOUGHT_END, CLARIFY_TOKEN)
INIT_METHODS = ("mean", "description")
# The perturbation of "mean" rows, relative to the rows' per-dimension standard deviation: enough to
# tell the new tokens apart from the start, far below the spread of real tokens.
_MEAN_NOISE = 1e-3


def add_control_tokens(
    tokenizer,
    model: Optional[torch.nn.Module] = None,
    tokens: Sequence[str] = CONTROL_TOKENS,
    init: str = "mean",
    seed: int = 0,
) -> list[int]:
    """Adds `tokens` to `tokenizer` as special tokens and, with `model`, makes room for them.

    Args:
        tokenizer: a transformers tokenizer; tokens it already has are kept as they are.
        model (`PreTrainedModel`, *optional*): resized to `len(tokenizer)` when that is larger than
            its vocabulary (`resize_token_embeddings`); the rows of the added tokens are initialised
            in its input and (untied) output embeddings. Other token tables resize with the model's
            own `resize_token_embeddings` (CRSM's latent dynamics: transformers' mean init).
        tokens (`Sequence[str]`, defaults to `CONTROL_TOKENS`): the tokens to add.
        init (`str`, defaults to `"mean"`): `"mean"`: the mean of the existing tokens' rows, plus a
            perturbation of 1e-3 of their per-dimension standard deviation (seeded) so that the new
            tokens differ; `"description"`: the mean of the rows of the token's text as the
            tokenizer split it before (`"<thought>"` -> `<`, `thought`, `>`), so related tags start
            apart and near the words they name.
        seed (`int`, defaults to 0): the perturbation's seed.

    Returns the ids of `tokens`, in order.
    """
    if init not in INIT_METHODS:
        raise ValueError(f"`init` must be one of {INIT_METHODS}, got {init!r}")
    tokens = list(tokens)
    if not tokens or any(not isinstance(t, str) or not t for t in tokens) or len(set(tokens)) != len(tokens):
        raise ValueError(f"`tokens` must be distinct non-empty strings, got {tokens!r}")
    vocab = tokenizer.get_vocab()
    new = [t for t in tokens if t not in vocab]
    old_size = len(tokenizer)
    descriptions = {t: tokenizer(t, add_special_tokens=False)["input_ids"] for t in new}
    if new:
        tokenizer.add_special_tokens({"additional_special_tokens": new}, replace_additional_special_tokens=False)
    ids = tokenizer.convert_tokens_to_ids(tokens)
    if model is not None and new:
        new_ids = [tokenizer.convert_tokens_to_ids(t) for t in new]
        if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        _init_rows(model, new_ids, [descriptions[t] for t in new], old_size, init, seed)
    return ids


@torch.no_grad()
def _init_rows(model, new_ids: list[int], descriptions: list[list[int]], old_size: int, init: str, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    seen = set()
    for module in (model.get_input_embeddings(), model.get_output_embeddings()):
        weight = getattr(module, "weight", None)
        if weight is None or id(weight) in seen:
            continue
        seen.add(id(weight))  # tied input / output embeddings are one tensor
        size = weight.shape[0]
        old = weight[:old_size].float()
        for token_id, description in zip(new_ids, descriptions):
            if init == "description" and description:
                value = old[description].mean(0)
            else:
                noise = torch.randn(old.shape[1], generator=generator) * old.std(0) * _MEAN_NOISE
                value = old.mean(0) + noise
            weight[token_id] = value.to(weight.dtype)
        bias = getattr(module, "bias", None)
        if isinstance(module, torch.nn.Linear) and bias is not None and bias.shape[0] == size:
            bias[new_ids] = bias[:old_size].mean().to(bias.dtype)


__all__ = ["CLARIFY_TOKEN", "CONTROL_TOKENS", "INIT_METHODS", "THOUGHT_END", "THOUGHT_START", "add_control_tokens"]
