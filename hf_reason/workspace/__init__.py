# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The reasoning workspace: the graph of thoughts, episodic memory and multi-pass reflection (docs/tools.md)."""

from .focus import agent_of_question, focus_targets, refers_to_belief, relabel_focus_claims
from .graph import (
    ACTIONS,
    EDGE_TYPES,
    NODE_KINDS,
    GraphActionError,
    GraphReward,
    ThoughtGraph,
    graph_reward,
    grounded_fraction,
    structure_penalty,
)
from .memory import EpisodicMemory, prompt_key
from .reflection import (
    REFLECTION_REWARDS,
    Attempt,
    ReflectionConfig,
    ReflectionReward,
    ReflectionTrace,
    StopAfterAnswerLine,
    attended_terms,
    majority_vote,
    normalize_answer,
    reflection_outcome,
    reflection_prompt,
    reflection_training_row,
    run_reflection,
    states_uncertainty,
)


__all__ = [
    "ACTIONS",
    "EDGE_TYPES",
    "NODE_KINDS",
    "GraphActionError",
    "GraphReward",
    "ThoughtGraph",
    "graph_reward",
    "grounded_fraction",
    "structure_penalty",
    "REFLECTION_REWARDS",
    "Attempt",
    "EpisodicMemory",
    "ReflectionConfig",
    "ReflectionReward",
    "ReflectionTrace",
    "StopAfterAnswerLine",
    "agent_of_question",
    "attended_terms",
    "focus_targets",
    "majority_vote",
    "normalize_answer",
    "prompt_key",
    "reflection_outcome",
    "refers_to_belief",
    "reflection_prompt",
    "reflection_training_row",
    "relabel_focus_claims",
    "run_reflection",
    "states_uncertainty",
]
