# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The reasoning workspace: episodic memory and multi-pass reflection (docs/tools.md)."""

from .memory import EpisodicMemory, prompt_key


__all__ = ["EpisodicMemory", "prompt_key"]
