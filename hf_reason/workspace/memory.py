# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Episodic memory: reflections stored per prompt, read back when the prompt returns (Reflexion-style).

One JSONL file per process rank (``memory-rank<r>.jsonl`` in a folder), each record appended whole
under a file lock and fsynced (`hf_reason.file_io.append_jsonl`): concurrent writers never
interleave, and a crash can at worst leave one incomplete last line, which reading skips and counts.
Records are keyed by a normalised prompt hash, so whitespace and case changes find the same entry;
`search` ranks past reflections by BM25 similarity to a query (the ``search_memory`` tool).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import unicodedata
from pathlib import Path
from typing import Any, Optional

from ..file_io import append_jsonl


__all__ = ["EpisodicMemory", "prompt_key"]


def prompt_key(prompt: str) -> str:
    """sha256 of the prompt after NFKC normalisation, case folding and whitespace collapsing."""
    text = " ".join(unicodedata.normalize("NFKC", prompt).casefold().split())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EpisodicMemory:
    """Reflections per prompt, on disk.

    Args:
        folder (`str` or `os.PathLike`): where the per-rank JSONL files live (created if missing).
        rank (`int`, *optional*): this process's rank; defaults to ``$RANK`` (set by `accelerate
            launch` / torchrun) or 0. Every rank reads all ranks' files.
    """

    def __init__(self, folder: str | os.PathLike, rank: Optional[int] = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rank = int(os.environ.get("RANK", 0)) if rank is None else int(rank)
        self.path = self.folder / f"memory-rank{self.rank}.jsonl"
        self.skipped_lines = 0
        self._index = None
        self._indexed_count = -1

    def add(
        self,
        prompt: str,
        reflection: str,
        answer: Optional[str] = None,
        correct: Optional[bool] = None,
        metadata: Optional[dict[str, Any]] = None,
    ) -> dict:
        """Appends one reflection; returns the record written."""
        record = {
            "key": prompt_key(prompt),
            "prompt": prompt,
            "reflection": reflection,
            "answer": answer,
            "correct": correct,
            "rank": self.rank,
            "time": time.time(),
            "metadata": metadata or {},
        }
        append_jsonl(self.path, record)
        return record

    def records(self) -> list[dict]:
        """Every record of every rank, oldest first; incomplete or corrupt lines are skipped and counted."""
        out, skipped = [], 0
        for path in sorted(self.folder.glob("memory-rank*.jsonl")):
            with open(path, "rb") as handle:
                for raw in handle:
                    try:
                        record = json.loads(raw.decode("utf-8"))
                    except (UnicodeDecodeError, json.JSONDecodeError):
                        skipped += 1
                        continue
                    if isinstance(record, dict) and {"key", "prompt", "reflection"} <= set(record):
                        out.append(record)
                    else:
                        skipped += 1
        self.skipped_lines = skipped
        out.sort(key=lambda r: r.get("time", 0.0))
        return out

    def __len__(self) -> int:
        return len(self.records())

    def get(self, prompt: str) -> list[dict]:
        """The reflections stored for this prompt (after normalisation), oldest first."""
        key = prompt_key(prompt)
        return [r for r in self.records() if r["key"] == key]

    def latest(self, prompt: str) -> Optional[dict]:
        found = self.get(prompt)
        return found[-1] if found else None

    def search(self, query: str, k: int = 3) -> list[dict]:
        """The `k` records whose prompt and reflection are most similar to `query` (BM25), best first."""
        from ..tools.builtin import BM25Index

        records = self.records()
        if not records:
            return []
        if self._index is None or self._indexed_count != len(records):
            self._index = BM25Index(
                [{"id": str(i), "text": r["prompt"] + "\n" + r["reflection"]} for i, r in enumerate(records)]
            )
            self._records, self._indexed_count = records, len(records)
        return [self._records[int(doc["id"])] for doc, _ in self._index.search(query, k)]
