"""Inference-time reasoning for any causal LM: self-consistency, tree search over steps, verifiers, trace checks.

`solve(model, tokenizer, prompts, method=..., task=..., scorer=...)` is the entry point
(docs/reasoning.md); scorers follow the small `StepScorer` protocol so a process reward model
plugs in as one callable.
"""

from .backends import CostMeter, LMState, LMStepper, StepSample
from .scorers import (
    CountdownVerifierScorer,
    ReasoningTask,
    StepScorer,
    ValueHeadScorer,
    arithmetic_task,
    countdown_task,
)
from .search import METHODS, SearchConfig, SolveResult, solve


__all__ = [
    "METHODS",
    "CostMeter",
    "CountdownVerifierScorer",
    "LMState",
    "LMStepper",
    "ReasoningTask",
    "SearchConfig",
    "SolveResult",
    "StepSample",
    "StepScorer",
    "ValueHeadScorer",
    "arithmetic_task",
    "countdown_task",
    "solve",
]
