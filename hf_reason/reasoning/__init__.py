"""Inference-time reasoning for any causal LM: self-consistency, tree search over steps, verifiers, trace checks.

`solve(model, tokenizer, prompts, method=..., task=..., scorer=...)` is the entry point
(docs/reasoning.md); scorers follow the small `StepScorer` protocol so a process reward model
plugs in as one callable.
"""

from .backends import CostMeter, LMState, LMStepper, StepSample
from .constraints import check_constraint_answer, generate_constraint_puzzles, parse_constraint_puzzle
from .rewards import (
    CodeTestsReward,
    ConstraintReward,
    CountdownReward,
    SympyAnswerReward,
    TraceValidityReward,
    countdown_reward,
)
from .scorers import (
    CountdownVerifierScorer,
    ReasoningTask,
    RewardFunctionScorer,
    StepScorer,
    ValueHeadScorer,
    arithmetic_task,
    countdown_task,
    planning_task,
)
from .search import METHODS, SearchConfig, SolveResult, solve
from .sweep import DELIBERATION_KEY, sweep_deliberation, write_deliberation_defaults
from .value_training import prefix_values, train_value_from_search, value_regression_step
from .verifiers import (
    TraceValidity,
    reasoning_diversity,
    sympy_equivalent,
    to_sympy,
    trace_validity,
    verify_python_code,
)


__all__ = [
    "DELIBERATION_KEY",
    "METHODS",
    "sweep_deliberation",
    "write_deliberation_defaults",
    "CodeTestsReward",
    "ConstraintReward",
    "CountdownReward",
    "SympyAnswerReward",
    "TraceValidity",
    "TraceValidityReward",
    "check_constraint_answer",
    "countdown_reward",
    "generate_constraint_puzzles",
    "parse_constraint_puzzle",
    "reasoning_diversity",
    "sympy_equivalent",
    "to_sympy",
    "trace_validity",
    "verify_python_code",
    "CostMeter",
    "CountdownVerifierScorer",
    "LMState",
    "LMStepper",
    "ReasoningTask",
    "RewardFunctionScorer",
    "SearchConfig",
    "SolveResult",
    "StepSample",
    "StepScorer",
    "ValueHeadScorer",
    "arithmetic_task",
    "countdown_task",
    "planning_task",
    "solve",
    "prefix_values",
    "train_value_from_search",
    "value_regression_step",
]
