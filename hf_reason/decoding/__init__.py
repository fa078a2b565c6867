# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Structured and steered decoding for any causal LM (docs/decoding.md).

- Constrained generation: `GrammarLogitsProcessor` and `generate(model, ..., grammar= / json_schema= /
  regex= / python_code=)`, on llguidance (or xgrammar), with compiled grammars cached per
  (tokenizer, grammar).
- Entropic steering: `EntropyMonitor` (a logits processor with a stopping criterion) that detects
  entropy spikes and records them or inserts `<clarify>`.
- Private thoughts: `strip_thoughts` / `visible_texts` (isolation at the token level),
  `thought_pollution`, and the optional private embedding subspace (`PrivateThoughtSubspace`).
"""

from .engines import (
    DEFAULT_ENGINE,
    ENGINES,
    CompiledGrammar,
    GrammarSpec,
    clear_grammar_cache,
    compile_grammar,
    grammar_cache_size,
)
from .generation import STRUCTURED_OPTIONS, StructuredOutputError, check_output, generate, grammar_spec
from .grammars import ARITHMETIC_GBNF, python_grammar
from .grpo import GrammarConstrainedGRPOMixin, generate_with_processors, masked_completion_logps
from .processor import GrammarDeadEndError, GrammarLogitsProcessor
from .steering import EntropyMonitor, EntropySteeringConfig, next_token_entropy, plot_entropy_traces
from .subspace import PrivateThoughtSubspace, disable_private_thought_subspace, enable_private_thought_subspace
from .thoughts import (
    PollutionReport,
    split_thoughts,
    strip_thoughts,
    thought_pollution,
    thought_token_ids,
    visible_texts,
    visible_token_ids,
)


__all__ = [
    "ARITHMETIC_GBNF",
    "DEFAULT_ENGINE",
    "ENGINES",
    "STRUCTURED_OPTIONS",
    "CompiledGrammar",
    "EntropyMonitor",
    "EntropySteeringConfig",
    "GrammarConstrainedGRPOMixin",
    "GrammarDeadEndError",
    "GrammarLogitsProcessor",
    "GrammarSpec",
    "PollutionReport",
    "PrivateThoughtSubspace",
    "StructuredOutputError",
    "check_output",
    "clear_grammar_cache",
    "compile_grammar",
    "disable_private_thought_subspace",
    "enable_private_thought_subspace",
    "generate",
    "generate_with_processors",
    "grammar_cache_size",
    "grammar_spec",
    "masked_completion_logps",
    "next_token_entropy",
    "plot_entropy_traces",
    "python_grammar",
    "split_thoughts",
    "strip_thoughts",
    "thought_pollution",
    "thought_token_ids",
    "visible_texts",
    "visible_token_ids",
]
