"""Tiny tokenizers and models shared by the decoding tests."""

import functools

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from hf_reason.data import add_control_tokens, build_gpt2_style_tokenizer, build_tokenizer


@functools.cache
def _tokenizer(vocab_size: int, control: bool):
    tokenizer = build_tokenizer(vocab_size=vocab_size)
    if control:
        add_control_tokens(tokenizer)
    return tokenizer


def our_tokenizer(vocab_size: int = 320, control: bool = False):
    """Our byte-level BPE (`build_tokenizer`), optionally with `<thought>`, `</thought>`, `<clarify>`.

    Cached: tests must not add tokens to it (copy it first)."""
    return _tokenizer(vocab_size, control)


@functools.cache
def gpt2_style_tokenizer(vocab_size: int = 600):
    """GPT-2's layout (one `<|endoftext|>` special token, last id, no padding token), trained locally."""
    return build_gpt2_style_tokenizer(vocab_size)


def tiny_gpt2(tokenizer, seed: int = 0, vocab_size=None) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    config = GPT2Config(
        vocab_size=vocab_size or len(tokenizer),
        n_positions=256,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=eos,
        pad_token_id=pad,
    )
    return GPT2LMHeadModel(config).eval()


def with_control_tokens(tokenizer, model=None):
    """A copy of `tokenizer` with the control tokens (and `model` resized for them)."""
    import copy

    tokenizer = copy.deepcopy(tokenizer)
    ids = add_control_tokens(tokenizer, model)
    return tokenizer, ids


class ForcedTokens:
    """A logits processor that makes step `t` of every row emit `script[row][t]` (then the model's own choice)."""

    def __init__(self, script):
        self.script = script
        self.start = None

    def __call__(self, input_ids, scores):
        if self.start is None:
            self.start = input_ids.shape[1]
        step = input_ids.shape[1] - self.start
        scores = scores.clone()
        for row, tokens in enumerate(self.script):
            if step < len(tokens):
                scores[row] = float("-inf")
                scores[row, tokens[step]] = 0.0
        return scores
