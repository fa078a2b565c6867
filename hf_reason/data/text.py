"""A real English text corpus that ships offline, and a byte-level BPE tokenizer built from it.

The corpus is the prose of the Python language reference as shipped inside CPython itself
(``pydoc_data.topics``: ~460 kB of English in ~79 topics, PSF licence), so it is present in every
Python installation and nothing has to be downloaded. Topics are split into paragraphs; each
paragraph goes to ``train`` / ``validation`` / ``test`` (90 / 5 / 5 %) by a hash of its text, so
the split never depends on the Python version's dict order, the seed or the number of
paragraphs, and the held-out splits stay held out when the corpus grows.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Sequence

import datasets
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast


__all__ = [
    "TEXT_SPLITS",
    "BOS_TOKEN",
    "EOS_TOKEN",
    "PAD_TOKEN",
    "UNK_TOKEN",
    "build_gpt2_style_tokenizer",
    "build_tokenizer",
    "load_text_corpus",
]

TEXT_SPLITS = ("train", "validation", "test")
BOS_TOKEN = "<|bos|>"
EOS_TOKEN = "<|eos|>"
PAD_TOKEN = "<|pad|>"
UNK_TOKEN = "<|unk|>"
# What the tokenizers return, as GPT-2's own tokenizer: no `token_type_ids`. GPT-2 takes them and adds the
# embedding of token 0 at every position for them, and no trainer passes them in training, so a
# `model.generate(**tokenizer(...))` would run the model on inputs it never saw.
MODEL_INPUT_NAMES = ("input_ids", "attention_mask")

# Shorter "paragraphs" are mostly headings and one-line syntax rules, not prose.
_MIN_PARAGRAPH_CHARS = 40
# Hash buckets out of 100: [0, 90) train, [90, 95) validation, [95, 100) test.
_SPLIT_BUCKETS = {"train": (0, 90), "validation": (90, 95), "test": (95, 100)}


def _check_split(split: str) -> None:
    if split not in TEXT_SPLITS:
        raise ValueError(f"`split` must be one of {TEXT_SPLITS}, got {split!r}")


def _paragraphs() -> list[tuple[str, str]]:
    """(topic, paragraph) pairs in a fixed order (sorted by topic name)."""
    from pydoc_data.topics import topics

    pairs = []
    for topic in sorted(topics):
        for paragraph in re.split(r"\n\s*\n", topics[topic]):
            paragraph = paragraph.strip()
            if len(paragraph) >= _MIN_PARAGRAPH_CHARS:
                pairs.append((topic, paragraph))
    return pairs


def _bucket(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") % 100


def load_text_corpus(split: str = "train", seed: int = 0) -> datasets.Dataset:
    """English prose from the Python language reference, one paragraph per row.

    Args:
        split (`str`, defaults to `"train"`): one of `"train"` (~90 % of the paragraphs),
            `"validation"` (~5 %) or `"test"` (~5 %). Paragraphs are assigned by a hash of
            their text, so the three splits are disjoint and identical on every machine.
        seed (`int`, defaults to 0): the row order is shuffled with this seed (the split's
            content does not depend on it).

    Returns:
        `datasets.Dataset` with columns `text` (the paragraph) and `topic` (the reference topic
        it comes from, e.g. `"assignment"`).
    """
    _check_split(split)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"`seed` must be an int, got {seed!r}")
    low, high = _SPLIT_BUCKETS[split]
    rows = [(topic, text) for topic, text in _paragraphs() if low <= _bucket(text) < high]
    random.Random(seed).shuffle(rows)
    return datasets.Dataset.from_dict({"text": [text for _, text in rows], "topic": [topic for topic, _ in rows]})


def build_tokenizer(
    vocab_size: int = 1024,
    texts: Iterable[str] | None = None,
    extra_special_tokens: Sequence[str] = (),
    extra_tokens: Sequence[str] = (),
) -> PreTrainedTokenizerFast:
    """Trains a byte-level BPE tokenizer locally (GPT-2 style) and wraps it for transformers.

    Byte-level so every string encodes without unknown tokens; the special tokens
    `<|bos|>`, `<|eos|>`, `<|pad|>`, `<|unk|>` (ids 0-3, then `extra_special_tokens`) are set on
    the wrapper so `model.generate` (stops at `eos_token_id`) and TRL trainers (pad with
    `pad_token_id`, left padding for prompts) work. Like GPT-2, encoding adds no special tokens;
    append `tokenizer.eos_token` to training text yourself. Deterministic: the same texts and
    size give the same vocabulary.

    Args:
        vocab_size (`int`, defaults to 1024): total vocabulary size including the 256 byte
            tokens and the special tokens; must be at least 256 + number of special tokens.
        texts (`Iterable[str]`, *optional*): training texts; defaults to the `train` split of
            `load_text_corpus` plus a sample of arithmetic problems (digits and operators).
        extra_special_tokens (`Sequence[str]`, defaults to `()`): further special tokens that
            are never split (e.g. task markers). Like every special token, `decode(...,
            skip_special_tokens=True)` drops them.
        extra_tokens (`Sequence[str]`, defaults to `()`): tokens that are never split but are text,
            so `decode(..., skip_special_tokens=True)` keeps them (the last ids of the vocabulary). Use
            these for markers a reward or parser reads from decoded text, e.g. `("<think>", "</think>")`:
            TRL's GRPO decodes completions with `skip_special_tokens=True` before its reward functions
            see them (Qwen3 and DeepSeek-R1 mark their think tags as non-special for the same reason).
    """
    special = [BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, UNK_TOKEN, *extra_special_tokens]
    if len(set(special)) != len(special):
        raise ValueError(
            f"`extra_special_tokens` must be distinct and not repeat {special[:4]}, got {list(extra_special_tokens)}"
        )
    if len(set(extra_tokens)) != len(extra_tokens) or set(extra_tokens) & set(special):
        raise ValueError(
            f"`extra_tokens` must be distinct and not repeat a special token {special}, got {list(extra_tokens)}"
        )
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    min_size = len(alphabet) + len(special) + len(extra_tokens)
    if not isinstance(vocab_size, int) or vocab_size < min_size:
        raise ValueError(
            f"`vocab_size` must be an int >= {min_size} (bytes + special and extra tokens), got {vocab_size!r}"
        )
    if texts is None:
        from .arithmetic import generate_arithmetic

        arithmetic = generate_arithmetic(500, seed=12345)
        texts = list(load_text_corpus("train")["text"]) + [
            p + c for p, c in zip(arithmetic["prompt"], arithmetic["completion"])
        ]
    texts = list(texts)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("`texts` must be a non-empty iterable of strings")

    tokenizer = Tokenizer(models.BPE(unk_token=UNK_TOKEN))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(extra_tokens),
        special_tokens=special,
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    tokenizer.add_tokens([AddedToken(token, special=False, normalized=False) for token in extra_tokens])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        additional_special_tokens=list(extra_special_tokens),
        model_max_length=2048,
        clean_up_tokenization_spaces=False,
        model_input_names=list(MODEL_INPUT_NAMES),  # a list of its own per tokenizer
    )


GPT2_END_OF_TEXT = "<|endoftext|>"


def _stdlib_sources() -> list[str]:
    """The Python standard library's own modules (tests excluded): ~13 MB of code and docstrings that
    ship with every Python, enough text for a 50k-token vocabulary."""
    import pathlib
    import sysconfig

    root = pathlib.Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for path in sorted(root.rglob("*.py")):
        if "site-packages" in path.parts or "test" in path.parts or "tests" in path.parts:
            continue
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
    return texts


def build_gpt2_style_tokenizer(vocab_size: int = 50257, texts: Iterable[str] | None = None) -> PreTrainedTokenizerFast:
    """A byte-level BPE laid out as GPT-2's, trained locally (GPT-2's own cannot be downloaded here).

    Like GPT-2: the same pre-tokenizer (byte level, GPT-2's split pattern, no prefix space), one
    special token `<|endoftext|>` with the last id (`vocab_size - 1`) serving as BOS, EOS and UNK,
    and no padding token. The merges are learnt from `texts`, so they differ from GPT-2's; what
    matters for constrained decoding and its cost is the shape: 50257 byte-level tokens.

    Args:
        vocab_size (`int`, defaults to 50257): the full vocabulary, `<|endoftext|>` included (>= 257).
        texts (`Iterable[str]`, *optional*): training text; defaults to the `train` split of
            `load_text_corpus` plus the Python standard library's sources (enough for 50k merges).
    """
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < len(alphabet) + 1:
        raise ValueError(f"`vocab_size` must be an int >= {len(alphabet) + 1}, got {vocab_size!r}")
    texts = list(load_text_corpus("train")["text"]) + _stdlib_sources() if texts is None else list(texts)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - 1, initial_alphabet=alphabet, show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    if tokenizer.get_vocab_size() != vocab_size - 1:
        raise ValueError(
            f"`texts` hold too little text for {vocab_size - 1} byte-level tokens (got {tokenizer.get_vocab_size()}); "
            "pass more text or a smaller `vocab_size`"
        )
    tokenizer.add_special_tokens([GPT2_END_OF_TEXT])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=GPT2_END_OF_TEXT,
        eos_token=GPT2_END_OF_TEXT,
        unk_token=GPT2_END_OF_TEXT,
        model_max_length=1024,
        clean_up_tokenization_spaces=False,
        model_input_names=list(MODEL_INPUT_NAMES),  # a list of its own per tokenizer
    )
