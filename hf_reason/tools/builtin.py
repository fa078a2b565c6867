# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The built-in tools: calculator, python, search, lookup and search_memory.

Each ``*_tool`` function builds a `Tool`; `default_registry` puts the five together over the
shipped corpora. The calculator is a thin wrapper of `hf_reason.evaluation.exact_arithmetic`
(exact fractions, bounded, never `eval`); ``python`` runs in `run_in_sandbox`; ``search`` ranks
documents with BM25 from `bm25s` (MIT, numpy only).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Optional, Protocol

from ..evaluation.exact_arithmetic import ALL_OPERATORS, evaluate_exact
from .registry import Tool, ToolRegistry


__all__ = [
    "BM25Index",
    "calculator_tool",
    "default_registry",
    "format_number",
    "lookup_tool",
    "python_tool",
    "search_memory_tool",
    "search_tool",
    "shipped_documents",
]

_WORD_RE = re.compile(r"[a-z0-9]+")


def format_number(value: Fraction) -> str:
    """An integer as digits, any other fraction as ``p/q`` (exact, no rounding)."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def calculator_tool(max_abs: int = 10**60) -> Tool:
    """``calculator(expression)``: the exact value of an arithmetic expression.

    Numbers, parentheses and ``+ - * / // % **`` only; names, calls and attributes are refused.
    """

    def calculator(expression: str) -> str:
        return format_number(evaluate_exact(expression, operators=ALL_OPERATORS, allow_decimals=True, max_abs=max_abs))

    return Tool(
        name="calculator",
        description="Exact arithmetic: numbers, parentheses and + - * / // % ** (fractions stay exact).",
        parameters={
            "type": "object",
            "properties": {"expression": {"type": "string", "maxLength": 2000}},
            "required": ["expression"],
            "additionalProperties": False,
        },
        function=calculator,
    )


def python_tool(config=None, max_timeout: float = 10.0) -> Tool:
    """``python(code, timeout?)``: runs the code in the sandbox; the result is its standard output.

    Args:
        config (`SandboxConfig`, *optional*): the sandbox limits (default `SandboxConfig()`).
        max_timeout (`float`): the longest ``timeout`` a call may ask for, in seconds.
    """
    import dataclasses

    from ..evaluation.sandbox import SandboxConfig, run_in_sandbox

    base = config or SandboxConfig()

    def python(code: str, timeout: Optional[float] = None) -> str:
        run_config = base
        if timeout is not None:
            run_config = dataclasses.replace(base, timeout=float(timeout), cpu_seconds=max(1, math.ceil(timeout)))
        result = run_in_sandbox(code, run_config)
        if result.status != "ok":
            raise RuntimeError(f"{result.status}: {result.reason}; stderr: {result.stderr.strip()[-300:]}")
        return result.stdout.rstrip("\n")

    return Tool(
        name="python",
        description="Runs Python code in a sandbox (no network, time and memory limits); returns its stdout.",
        parameters={
            "type": "object",
            "properties": {
                "code": {"type": "string", "maxLength": 20000},
                "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": max_timeout},
            },
            "required": ["code"],
            "additionalProperties": False,
        },
        function=python,
    )


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


class BM25Index:
    """BM25 over a fixed list of documents (`bm25s`), lower-cased alphanumeric words as terms.

    Args:
        documents (sequence of `dict`): each with ``"id"`` and ``"text"``.
    """

    def __init__(self, documents: Sequence[Mapping[str, str]]):
        import bm25s

        if not documents:
            raise ValueError("BM25Index needs at least one document")
        self.documents = [dict(d) for d in documents]
        self._retriever = bm25s.BM25()
        # bm25s refuses an empty token list, so an empty document is indexed under a word no query has.
        self._retriever.index([_words(d["text"]) or ["\x00"] for d in self.documents], show_progress=False)

    def search(self, query: str, k: int = 3) -> list[tuple[dict, float]]:
        """The best `k` documents with a positive score, best first."""
        terms = _words(query)
        if not terms:
            return []
        k = min(k, len(self.documents))
        indices, scores = self._retriever.retrieve([terms], k=k, show_progress=False)
        return [(self.documents[int(i)], float(s)) for i, s in zip(indices[0], scores[0]) if s > 0]


def shipped_documents() -> list[dict]:
    """The shipped text corpus (train split) and the curated tasks (prompt and worked completion)."""
    from ..data.curated_tasks import read_curated_jsonl
    from ..data.text import load_text_corpus

    corpus = load_text_corpus("train")
    docs = [{"id": f"corpus-{i}", "text": row["text"]} for i, row in enumerate(corpus)]
    docs += [{"id": task["id"], "text": task["prompt"] + "\n" + task["completion"]} for task in read_curated_jsonl()]
    return docs


# the arguments of both retrieval tools (search, search_memory): a query and how many hits to return
_QUERY_PARAMETERS = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "minLength": 1, "maxLength": 500},
        "k": {"type": "integer", "minimum": 1, "maximum": 10},
    },
    "required": ["query"],
    "additionalProperties": False,
}


def search_tool(documents: Optional[Sequence[Mapping[str, str]]] = None, snippet_chars: int = 300) -> Tool:
    """``search(query, k?)``: BM25 over `documents` (default: `shipped_documents()`); ``[id] text`` lines."""
    index = BM25Index(shipped_documents() if documents is None else documents)

    def search(query: str, k: int = 3) -> str:
        hits = index.search(query, k)
        if not hits:
            return "no match"
        return "\n".join(f"[{doc['id']}] {' '.join(doc['text'].split())[:snippet_chars]}" for doc, _ in hits)

    return Tool(
        name="search",
        description="Searches the local document collection (BM25); returns the best matches as [id] text.",
        parameters=_QUERY_PARAMETERS,
        function=search,
    )


def lookup_tool(knowledge: Mapping[str, str] | str | os.PathLike) -> Tool:
    """``lookup(term)``: the entry of a key-value knowledge base (keys matched case- and space-insensitively).

    Args:
        knowledge (`dict` or path): the entries, or a JSON file holding one object of string values.
    """
    if not isinstance(knowledge, Mapping):
        from ..file_io import read_json_object

        knowledge = read_json_object(knowledge)
    table = {}
    for key, value in knowledge.items():
        if not isinstance(value, str):
            raise ValueError(f"lookup knowledge entry {key!r} must be a string, got {type(value).__name__}")
        table[" ".join(str(key).lower().split())] = value

    def lookup(term: str) -> str:
        key = " ".join(term.lower().split())
        if key not in table:
            raise KeyError(f"no entry for {term!r}")
        return table[key]

    return Tool(
        name="lookup",
        description="Looks a term up in the task's knowledge base.",
        parameters={
            "type": "object",
            "properties": {"term": {"type": "string", "minLength": 1, "maxLength": 200}},
            "required": ["term"],
            "additionalProperties": False,
        },
        function=lookup,
    )


class _Searchable(Protocol):
    def search(self, query: str, k: int = 3) -> list[dict]: ...


def search_memory_tool(memory: _Searchable) -> Tool:
    """``search_memory(query, k?)``: past reflections most similar to the query (`EpisodicMemory.search`)."""

    def search_memory(query: str, k: int = 3) -> str:
        records = memory.search(query, k)
        if not records:
            return "no memory"
        return "\n".join(json.dumps({"prompt": r["prompt"], "reflection": r["reflection"]}) for r in records)

    return Tool(
        name="search_memory",
        description="Retrieves past reflections on similar prompts from the episodic memory.",
        parameters=_QUERY_PARAMETERS,
        function=search_memory,
    )


def default_registry(
    memory: Optional[_Searchable] = None,
    knowledge: Optional[Mapping[str, str]] = None,
    documents: Optional[Iterable[Mapping[str, str]]] = None,
    sandbox=None,
) -> ToolRegistry:
    """The five tools together: calculator, python, search, lookup and (with a memory) search_memory.

    Args:
        memory ([`EpisodicMemory`], *optional*): what ``search_memory`` reads; without one the tool
            answers that no memory is attached.
        knowledge (`dict`, *optional*): ``lookup``'s entries (empty by default).
        documents (*optional*): ``search``'s documents (default `shipped_documents()`).
        sandbox (`SandboxConfig`, *optional*): ``python``'s limits.
    """
    documents = None if documents is None else list(documents)
    registry = ToolRegistry(
        [calculator_tool(), python_tool(sandbox), search_tool(documents), lookup_tool(dict(knowledge or {}))]
    )
    registry.register(search_memory_tool(memory if memory is not None else _NoMemory()))
    return registry


class _NoMemory:
    def search(self, query: str, k: int = 3) -> list[dict]:
        raise RuntimeError("no episodic memory is attached to this registry")
