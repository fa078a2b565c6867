# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Tools for reasoning models (docs/tools.md).

- `ToolRegistry` / `Tool`: typed tools with JSON-schema arguments; calls written as
  ``Tool: name({json})`` and answered with ``Result: ...`` (errors as text, never exceptions).
- The built-in tools (`default_registry`): ``calculator`` (exact arithmetic), ``python`` (the
  sandbox), ``search`` (BM25 over the shipped corpus and curated tasks), ``lookup`` (a key-value
  knowledge base) and ``search_memory`` (the episodic memory of `hf_reason.workspace`).
- Toolformer-style self-labelling (`self_label`): candidate calls kept where their result lowers
  the LM loss of the continuation; `self_labelled_dataset` for SFT.
- Tool use inside generation: `ToolCallProcessor`, `generate_with_tools`; in GRPO rollouts:
  `ToolUseGRPOMixin`.
"""

from .builtin import (
    BM25Index,
    calculator_tool,
    default_registry,
    format_number,
    lookup_tool,
    python_tool,
    search_memory_tool,
    search_tool,
    shipped_documents,
)
from .generation import ToolCallProcessor, ToolGeneration, find_closed_call, generate_with_tools
from .grpo import ToolUseGRPOMixin
from .registry import (
    RESULT_PREFIX,
    TOOL_PREFIX,
    Tool,
    ToolCallError,
    ToolRegistry,
    ToolResult,
    format_tool_call,
    parse_tool_call,
)
from .self_label import CandidateCall, LabelDecision, arithmetic_candidates, self_label, self_labelled_dataset


__all__ = [
    "BM25Index",
    "CandidateCall",
    "LabelDecision",
    "RESULT_PREFIX",
    "TOOL_PREFIX",
    "Tool",
    "ToolCallError",
    "ToolCallProcessor",
    "ToolGeneration",
    "ToolRegistry",
    "ToolResult",
    "ToolUseGRPOMixin",
    "arithmetic_candidates",
    "calculator_tool",
    "default_registry",
    "find_closed_call",
    "format_number",
    "format_tool_call",
    "generate_with_tools",
    "lookup_tool",
    "parse_tool_call",
    "python_tool",
    "search_memory_tool",
    "search_tool",
    "self_label",
    "self_labelled_dataset",
    "shipped_documents",
]
