# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The grammar engines: a grammar compiled for a tokenizer, and matchers that say which tokens may come next.

Two engines sit behind one small interface (`CompiledGrammar.matcher()` -> `consume`, `rollback`,
`fill_bitmask`, `is_accepting`): llguidance (MIT) and xgrammar (Apache-2.0). llguidance is the
default (docs/decoding.md, "Engine choice"); xgrammar is optional (`pip install hf-reason[xgrammar]`)
and is there for the side-by-side measurement in bench/decoding.py. No grammar is interpreted here:
both engines compile the grammar against the tokenizer's vocabulary and answer a next-token bitmask.

A compiled grammar is cached per (engine, tokenizer, vocabulary size, grammar): compiling a JSON
schema or the Python grammar against a 50k vocabulary takes milliseconds to seconds, a matcher
from a cached grammar microseconds.
"""

import hashlib
import json
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import torch


ENGINES = ("llguidance", "xgrammar")
# llguidance: no Python dependencies (xgrammar pulls in triton, ~1 GB) and every mode, Python included.
DEFAULT_ENGINE = "llguidance"
GRAMMAR_KINDS = ("grammar", "json_schema", "regex", "python")
# The most compiled grammars kept in memory (least recently used dropped first).
CACHE_SIZE = 64


@dataclass(frozen=True)
class GrammarSpec:
    """What the output must match, as text the engines compile.

    Args:
        kind (`str`): `"grammar"` (GBNF / EBNF; llguidance also reads Lark), `"json_schema"` (a JSON
            Schema as JSON text), `"regex"` (the whole output matches it), or `"python"` (the Python
            subset of `python_grammar`, in llguidance's Lark dialect).
        source (`str`): the grammar, schema or pattern.
    """

    kind: str
    source: str

    def __post_init__(self):
        if self.kind not in GRAMMAR_KINDS:
            raise ValueError(f"`kind` must be one of {GRAMMAR_KINDS}, got {self.kind!r}")
        if not isinstance(self.source, str) or not self.source.strip():
            raise ValueError(f"A {self.kind} constraint needs a non-empty string; got {self.source!r}")

    @classmethod
    def json_schema(cls, schema: Union[dict, str]) -> "GrammarSpec":
        """A JSON Schema given as a dict or as JSON text (stored canonically, so equal schemas share a cache entry)."""
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except json.JSONDecodeError as error:
                raise ValueError(f"`json_schema` is not valid JSON: {error}") from error
        if not isinstance(schema, dict):
            raise ValueError(f"`json_schema` must be a JSON object (a dict), got {type(schema).__name__}")
        return cls("json_schema", json.dumps(schema, sort_keys=True, separators=(",", ":")))

    @classmethod
    def python(cls, max_depth: int = 3) -> "GrammarSpec":
        """The Python subset of [`python_grammar`] (its complete outputs compile)."""
        from .grammars import python_grammar

        return cls("python", python_grammar(max_depth))

    @property
    def schema(self) -> Optional[dict]:
        """The JSON Schema of a `"json_schema"` spec, else None."""
        return json.loads(self.source) if self.kind == "json_schema" else None


def _check_engine(engine: Optional[str]) -> str:
    engine = DEFAULT_ENGINE if engine is None else engine
    if engine not in ENGINES:
        raise ValueError(f"`engine` must be one of {ENGINES}, got {engine!r}")
    return engine


# --- tokenizer identity -------------------------------------------------------------------------
_FINGERPRINTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of the tokenizer's full definition (vocabulary, merges, added and special tokens).

    Cached per tokenizer object and recomputed when its length changes (tokens added)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(
            f"Constrained decoding needs a fast (Rust) tokenizer, got {type(tokenizer).__name__}; load it with "
            "`use_fast=True` or convert it (`PreTrainedTokenizerFast(tokenizer_object=...)`)."
        )
    cached = _FINGERPRINTS.get(tokenizer)
    if cached is not None and cached[0] == len(tokenizer):
        return cached[1]
    text = backend.to_str() + json.dumps(
        [tokenizer.eos_token_id, sorted(tokenizer.get_added_vocab().items())], sort_keys=True
    )
    fingerprint = hashlib.sha256(text.encode("utf-8")).hexdigest()
    _FINGERPRINTS[tokenizer] = (len(tokenizer), fingerprint)
    return fingerprint


# --- matchers -----------------------------------------------------------------------------------
class Matcher:
    """One output's position in the grammar (an engine's matcher behind one interface)."""

    def consume(self, token_id: int) -> bool:
        """Advance by one token; False (and the state unchanged) if the grammar does not allow it."""
        raise NotImplementedError

    def rollback(self, num_tokens: int) -> None:
        raise NotImplementedError

    def fill_bitmask(self, bitmask: torch.Tensor, index: int) -> None:
        """Writes row `index` of an int32 `(batch, ceil(vocab / 32))` bitmask: bit 1 = allowed next."""
        raise NotImplementedError

    def is_accepting(self) -> bool:
        """Whether the output may end here (the grammar is complete)."""
        raise NotImplementedError

    def error(self) -> str:
        return ""


class _LLGuidanceMatcher(Matcher):
    def __init__(self, matcher):
        self._matcher = matcher

    def consume(self, token_id: int) -> bool:
        # try_consume_tokens leaves the state unchanged on a refused token (consume_token would not)
        return self._matcher.try_consume_tokens([token_id]) == 1

    def rollback(self, num_tokens: int) -> None:
        if num_tokens and not self._matcher.rollback(num_tokens):
            raise RuntimeError(f"llguidance could not roll back {num_tokens} tokens: {self._matcher.get_error()}")

    def fill_bitmask(self, bitmask: torch.Tensor, index: int) -> None:
        row = bitmask[index]
        self._matcher.unsafe_compute_mask_ptr(row.data_ptr(), row.numel() * row.element_size())

    def is_accepting(self) -> bool:
        return self._matcher.is_accepting()

    def error(self) -> str:
        # the first line is the reason; the rest is a dump of the parser's state
        return self._matcher.get_error().splitlines()[0] if self._matcher.is_error() else ""


class _XGrammarMatcher(Matcher):
    def __init__(self, matcher):
        self._matcher = matcher

    def consume(self, token_id: int) -> bool:
        return self._matcher.accept_token(token_id)

    def rollback(self, num_tokens: int) -> None:
        if num_tokens:
            self._matcher.rollback(num_tokens)

    def fill_bitmask(self, bitmask: torch.Tensor, index: int) -> None:
        self._matcher.fill_next_token_bitmask(bitmask, index)

    def is_accepting(self) -> bool:
        return self._matcher.is_completed()


class CompiledGrammar:
    """A grammar compiled for one tokenizer and vocabulary size; `matcher()` starts a new output.

    Attributes:
        engine (`str`), spec ([`GrammarSpec`]), vocab_size (`int`): the bitmask covers `vocab_size`
            ids (the model's logits), ids the tokenizer lacks are never allowed.
        engine_stop_ids (`tuple[int]`): the ids the engine itself treats as end of output; the
            logits processor clears them and allows the generation's own end tokens instead.
    """

    def __init__(self, engine: str, spec: GrammarSpec, vocab_size: int, prototype, engine_stop_ids):
        self.engine, self.spec, self.vocab_size = engine, spec, vocab_size
        self._prototype = prototype
        self.engine_stop_ids = tuple(engine_stop_ids)

    @property
    def bitmask_width(self) -> int:
        return (self.vocab_size + 31) // 32

    def matcher(self) -> Matcher:
        if self.engine == "llguidance":
            return _LLGuidanceMatcher(self._prototype.deep_copy())
        import xgrammar

        return _XGrammarMatcher(xgrammar.GrammarMatcher(self._prototype))

    def allowed(self, matcher: Matcher) -> np.ndarray:
        """The boolean `(vocab_size,)` next-token mask of one matcher (for tests and inspection)."""
        bitmask = torch.zeros((1, self.bitmask_width), dtype=torch.int32)
        matcher.fill_bitmask(bitmask, 0)
        return unpack_bitmask(bitmask, self.vocab_size)[0]


def unpack_bitmask(bitmask: torch.Tensor, vocab_size: int) -> np.ndarray:
    """An int32 `(batch, ceil(vocab / 32))` bitmask as a boolean `(batch, vocab_size)` array."""
    as_bytes = bitmask.numpy().view(np.uint8)
    # `count` cuts the padding bits in the same pass, and 0/1 bytes are valid booleans: no copy
    return np.unpackbits(as_bytes, axis=-1, count=vocab_size, bitorder="little").view(bool)


# --- compiling, cached --------------------------------------------------------------------------
_CACHE: "OrderedDict[tuple, CompiledGrammar]" = OrderedDict()
_ENGINE_TOKENIZERS: "OrderedDict[tuple, object]" = OrderedDict()
_LOCK = threading.Lock()


def _lru_get(cache: OrderedDict, key):
    value = cache.get(key)
    if value is not None:
        cache.move_to_end(key)
    return value


def _lru_put(cache: OrderedDict, key, value) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)


def _engine_tokenizer(engine: str, tokenizer, vocab_size: int, fingerprint: str):
    key = (engine, fingerprint, vocab_size)
    cached = _lru_get(_ENGINE_TOKENIZERS, key)
    if cached is not None:
        return cached
    if tokenizer.eos_token_id is None:
        raise ValueError("Constrained decoding needs a tokenizer with an `eos_token` (the end of a complete output).")
    if engine == "llguidance":
        import llguidance.hf

        built = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size)
    else:
        try:
            import xgrammar
        except ImportError as error:
            raise ImportError(
                "engine='xgrammar' needs the xgrammar package: pip install 'hf-reason[xgrammar]'"
            ) from error
        info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
        built = xgrammar.GrammarCompiler(info, max_threads=1)
    _lru_put(_ENGINE_TOKENIZERS, key, built)
    return built


def _compile_llguidance(spec: GrammarSpec, llg_tokenizer):
    import llguidance

    if spec.kind == "json_schema":
        # Compact JSON: free whitespace would let a model loop on spaces until the budget runs out.
        grammar = llguidance.LLMatcher.grammar_from_json_schema(spec.source, defaults={"whitespace_flexible": False})
    elif spec.kind == "regex":
        grammar = llguidance.LLMatcher.grammar_from_regex(spec.source)
    elif spec.kind == "python":
        grammar = llguidance.LLMatcher.grammar_from_lark(spec.source)
    else:
        try:
            grammar = llguidance.grammar_from("grammar", spec.source)
        except ValueError as error:  # the GBNF -> Lark conversion names the rule or position
            raise ValueError(f"The grammar constraint does not compile (llguidance): {error}") from error
    error = llguidance.LLMatcher.validate_grammar(grammar, llg_tokenizer)
    if error:
        raise ValueError(f"The {spec.kind} constraint does not compile (llguidance): {error}")
    return llguidance.LLMatcher(llg_tokenizer, grammar, log_level=0), (llg_tokenizer.eos_token,)


def _compile_xgrammar(spec: GrammarSpec, compiler):
    if spec.kind == "python":
        raise ValueError(
            "The Python grammar uses llguidance's lexeme operators (keywords excluded from names); use "
            "engine='llguidance'."
        )
    try:
        if spec.kind == "json_schema":
            # As llguidance: compact ({"k":1,"m":2}), and the schema read as JSON Schema says (xgrammar's
            # strict mode would forbid the additional properties a schema does not forbid).
            compiled = compiler.compile_json_schema(
                spec.source, any_whitespace=False, separators=(",", ":"), strict_mode=False
            )
        elif spec.kind == "regex":
            compiled = compiler.compile_regex(spec.source)
        else:
            compiled = compiler.compile_grammar(spec.source)
    except RuntimeError as error:
        raise ValueError(f"The {spec.kind} constraint does not compile (xgrammar): {error}") from error
    return compiled, tuple(compiled.tokenizer_info.stop_token_ids)


def compile_grammar(
    tokenizer, spec: GrammarSpec, vocab_size: Optional[int] = None, engine: Optional[str] = None
) -> CompiledGrammar:
    """The compiled grammar of `spec` for `tokenizer`, from the cache when it was compiled before.

    Args:
        tokenizer: a fast transformers tokenizer with an `eos_token`.
        spec ([`GrammarSpec`]): the constraint.
        vocab_size (`int`, *optional*): the model's vocabulary (logits) size, at least
            `len(tokenizer)`; defaults to `len(tokenizer)`.
        engine (`str`, *optional*): `"llguidance"` (default) or `"xgrammar"`.
    """
    engine = _check_engine(engine)
    if not isinstance(spec, GrammarSpec):
        raise ValueError(f"`spec` must be a GrammarSpec, got {type(spec).__name__}")
    vocab_size = len(tokenizer) if vocab_size is None else vocab_size
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < len(tokenizer):
        raise ValueError(
            f"`vocab_size` must be an integer >= len(tokenizer)={len(tokenizer)} (the model's logits size), "
            f"got {vocab_size!r}"
        )
    fingerprint = tokenizer_fingerprint(tokenizer)
    key = (engine, fingerprint, vocab_size, spec)
    with _LOCK:
        cached = _lru_get(_CACHE, key)
        if cached is not None:
            return cached
        engine_tokenizer = _engine_tokenizer(engine, tokenizer, vocab_size, fingerprint)
        compile_fn = _compile_llguidance if engine == "llguidance" else _compile_xgrammar
        prototype, stop_ids = compile_fn(spec, engine_tokenizer)
        compiled = CompiledGrammar(engine, spec, vocab_size, prototype, stop_ids)
        _lru_put(_CACHE, key, compiled)
        return compiled


def clear_grammar_cache() -> None:
    """Drops every compiled grammar and engine tokenizer."""
    with _LOCK:
        _CACHE.clear()
        _ENGINE_TOKENIZERS.clear()


def grammar_cache_size() -> int:
    return len(_CACHE)


__all__ = [
    "CACHE_SIZE",
    "DEFAULT_ENGINE",
    "ENGINES",
    "GRAMMAR_KINDS",
    "CompiledGrammar",
    "GrammarSpec",
    "Matcher",
    "clear_grammar_cache",
    "compile_grammar",
    "grammar_cache_size",
    "tokenizer_fingerprint",
    "unpack_bitmask",
]
