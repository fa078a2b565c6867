"""Tasks (how to read and check an answer) and step scorers (how promising a partial solution is).

A scorer is any callable ``scorer(prompts, steps) -> list[float]``: for each prompt, the steps
written so far (strings, one per step, the last possibly a final answer line), a score in
``[0, 1]``, read as "probability this partial solution still ends correct". Batched so a learned
scorer (a process reward model, a value head) runs one forward pass per call. That is the whole
contract (`StepScorer`); search calls nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Optional, Protocol, runtime_checkable

import torch

from ..data.arithmetic import extract_answer as extract_arithmetic_answer
from ..data.countdown import (
    ANSWER_PREFIX,
    check_countdown,
    countdown_expression,
    parse_countdown_prompt,
    parse_countdown_steps,
    solve_countdown,
)
from ..data.planning import check_plan, parse_moves
from ..evaluation.exact_arithmetic import ArithmeticExpressionError
from .backends import model_device, stepping_model


__all__ = [
    "CountdownVerifierScorer",
    "ReasoningTask",
    "RewardFunctionScorer",
    "StepScorer",
    "ValueHeadScorer",
    "arithmetic_task",
    "countdown_task",
    "planning_task",
]


@runtime_checkable
class StepScorer(Protocol):
    """Scores partial solutions: ``__call__(prompts, steps) -> list[float]`` with one score in [0, 1] per prompt.

    Args:
        prompts (`Sequence[str]`): the problems, as given to the model.
        steps (`Sequence[Sequence[str]]`): for each prompt, the steps written so far (without their delimiter).
    """

    def __call__(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[float]: ...


@dataclass(frozen=True)
class ReasoningTask:
    """How a task's completions are read: the answer, its correctness and when a step ends the solution.

    Args:
        name (`str`): short name used in reports.
        extract_answer (`Callable[[str, str], Optional[str]]`): (prompt, completion) -> the answer, or None.
        is_correct (`Callable[[str, str, Any], bool]`): (prompt, completion, reference) -> exact correctness.
        is_final_step (`Callable[[str], bool]`): whether a step commits to the answer (search stops there).
        answer_key (`Callable[[str], str]`, defaults to whitespace removal): what votes are counted over.
    """

    name: str
    extract_answer: Callable[[str, str], Optional[str]]
    is_correct: Callable[[str, str, Any], bool]
    is_final_step: Callable[[str], bool]
    answer_key: Callable[[str], str] = lambda answer: "".join(answer.split())


def _countdown_answer(prompt: str, completion: str) -> Optional[str]:
    """The expression after ``####``; without one, the expression the step lines build (None if unreadable)."""
    try:
        steps, answer = parse_countdown_steps(completion)
    except ArithmeticExpressionError:
        head, sep, tail = completion.partition(ANSWER_PREFIX)
        return tail.strip().split("\n")[0] if sep else None
    if answer is not None:
        return answer
    return countdown_expression(steps) if steps else None


def _countdown_correct(prompt: str, completion: str, reference: Any = None) -> bool:
    answer = _countdown_answer(prompt, completion)
    if not answer:
        return False
    numbers, target = parse_countdown_prompt(prompt)
    try:
        return check_countdown(answer, numbers, target).valid
    except ArithmeticExpressionError:
        return False


def countdown_task() -> ReasoningTask:
    """Countdown / 24 game (`hf_reason.data.countdown`): the expression is checked exactly against the prompt."""
    return ReasoningTask(
        name="countdown",
        extract_answer=_countdown_answer,
        is_correct=_countdown_correct,
        is_final_step=lambda step: step.strip().startswith(ANSWER_PREFIX),
    )


def _arithmetic_correct(prompt: str, completion: str, reference: Any) -> bool:
    predicted = extract_arithmetic_answer(completion)
    return predicted is not None and int(predicted) == int(str(reference).strip())


def arithmetic_task() -> ReasoningTask:
    """Arithmetic chains (`hf_reason.data.generate_arithmetic`): the integer after ``####``."""
    return ReasoningTask(
        name="arithmetic",
        extract_answer=lambda prompt, completion: extract_arithmetic_answer(completion),
        is_correct=_arithmetic_correct,
        is_final_step=lambda step: step.strip().startswith("####"),
    )


def _plan_text(completion: str) -> str:
    return completion.split("####", 1)[0].strip()


def _plan_answer(prompt: str, completion: str) -> Optional[str]:
    text = _plan_text(completion)
    moves = parse_moves(text)
    if moves:
        return "; ".join(f"move {block} onto {target}" for block, target in moves)
    return text or None


def _plan_correct(prompt: str, completion: str, reference: Any) -> bool:
    puzzle = json.loads(reference) if isinstance(reference, str) else reference
    if not isinstance(puzzle, dict):
        raise ValueError(f"planning references are puzzles (dict or its JSON), got {type(reference).__name__}")
    return check_plan(puzzle, _plan_text(completion)).valid


def planning_task() -> ReasoningTask:
    """Planning (`hf_reason.data.generate_planning`): the plan before an optional ``####`` line is simulated
    by `check_plan` against the reference puzzle (the dataset's `puzzle` column: a dict or its JSON); votes
    are counted over the parsed move sequence."""
    return ReasoningTask(
        name="planning",
        extract_answer=_plan_answer,
        is_correct=_plan_correct,
        is_final_step=lambda step: step.strip().startswith("####"),
    )


class CountdownVerifierScorer:
    """The exact verifier of countdown as a step scorer.

    Every step must combine two numbers still available and state the right result; a final
    ``####`` line scores 1 only when the expression is a valid solution. With `lookahead` (the
    default) a partial solution also scores 0 when the exhaustive solver proves the remaining
    numbers cannot reach the target, i.e. an oracle value; without it only the steps so far are
    checked (a trace-validity scorer).

    Args:
        lookahead (`bool`, defaults to True): prune partial solutions the solver proves dead.
        integer_steps (`bool`, defaults to True): Countdown's positive-integer intermediate rule
            (False for the 24 game).
    """

    def __init__(self, lookahead: bool = True, integer_steps: bool = True):
        self.lookahead = lookahead
        self.integer_steps = integer_steps

    def score_one(self, prompt: str, steps: Sequence[str]) -> float:
        numbers, target = parse_countdown_prompt(prompt)
        remaining = [Fraction(n) for n in numbers]
        for step in steps:
            if not step.strip():
                continue
            if step.strip().startswith(ANSWER_PREFIX):
                expression = step.strip()[len(ANSWER_PREFIX) :].strip()
                try:
                    return float(check_countdown(expression, numbers, target).valid)
                except ArithmeticExpressionError:
                    return 0.0
            try:
                parsed, _ = parse_countdown_steps(step)
            except ArithmeticExpressionError:
                return 0.0
            if len(parsed) != 1:
                return 0.0
            s = parsed[0]
            if not s.is_correct:
                return 0.0
            if self.integer_steps and (s.result.denominator != 1 or s.result <= 0):
                return 0.0
            for operand in (s.left, s.right):
                if operand not in remaining:
                    return 0.0
                remaining.remove(operand)
            remaining.append(s.result)
        if not self.lookahead:
            return 1.0
        solvable = solve_countdown(remaining, target, integer_steps=self.integer_steps) is not None
        return float(solvable)

    def __call__(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[float]:
        return [self.score_one(p, s) for p, s in zip(prompts, steps)]


class ValueHeadScorer:
    """A CRSM's value head as a step scorer: its estimate on the state after prompt + steps.

    The head regresses rewards in [0, 1] (examples/train_crsm.py, bench/reasoning.py), so its output,
    clamped to [0, 1], is read as the chance of success. Each text is run from the start (a scorer
    sees text, not caches): its forward passes are not in `solve`'s `model_calls`.

    Args:
        model: a `CRSMForCausalLM` or its ONNX Runtime wrapper `ORTCRSMForCausalLM`.
        tokenizer: its tokenizer.
        step_delimiter (`str`, defaults to ``"\\n"``): joins the steps after the prompt.
        squash (`bool`, defaults to False): apply a sigmoid (for heads trained with a logistic loss);
            otherwise the raw output is clamped to [0, 1].
    """

    def __init__(self, model, tokenizer, step_delimiter: str = "\n", squash: bool = False):
        self.model = stepping_model(model)
        self.tokenizer = tokenizer
        self.step_delimiter = step_delimiter
        self.squash = squash

    @torch.no_grad()
    def __call__(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[float]:
        scores = []
        device = model_device(self.model)
        # One sequence at a time: Mamba's cache has no padding mask, so ragged batches would mix pads into the state.
        for prompt, written in zip(prompts, steps):
            text = prompt + "".join(s + self.step_delimiter for s in written)
            ids = self.tokenizer(text, return_tensors="pt").input_ids.to(device)
            out = self.model(input_ids=ids, use_cache=True)
            value = self.model.predict_value(self.model.summarize(out.cache_params)[0])[0]
            value = torch.sigmoid(value) if self.squash else value.clamp(0.0, 1.0)
            scores.append(float(value))
        return scores


class RewardFunctionScorer:
    """Any TRL reward function as a step scorer: a process / outcome reward model, the self-critic
    (`hf_reason.evaluation.self_critic.SelfCriticReward`) or a verifier reward of `hf_reason.reasoning.rewards`.

    Each partial solution is passed as the completion written so far (its steps joined with
    `step_delimiter`), so a process reward model scores the prefix; the scores are clamped to [0, 1].

    Args:
        reward_fn (`Callable`): ``reward_fn(prompts, completions, **kwargs) -> list[float]``.
        step_delimiter (`str`, defaults to ``"\\n"``): joins the steps, as the model wrote them.
        reward_kwargs (`dict`, *optional*): extra keyword lists for `reward_fn`, keyed by prompt
            (``{column: {prompt: value}}``), e.g. the reference answers a verifier reward needs.
    """

    def __init__(self, reward_fn: Callable, step_delimiter: str = "\n", reward_kwargs: Optional[dict] = None):
        if not callable(reward_fn):
            raise ValueError(f"`reward_fn` must be callable, got {type(reward_fn).__name__}")
        self.reward_fn = reward_fn
        self.step_delimiter = step_delimiter
        self.reward_kwargs = reward_kwargs or {}

    def __call__(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[float]:
        completions = [self.step_delimiter.join(written) for written in steps]
        kwargs = {column: [values[p] for p in prompts] for column, values in self.reward_kwargs.items()}
        scores = self.reward_fn(list(prompts), completions, **kwargs)
        if len(scores) != len(prompts):
            raise ValueError(f"`reward_fn` returned {len(scores)} scores for {len(prompts)} partial solutions")
        return [min(max(float(s), 0.0), 1.0) for s in scores]
