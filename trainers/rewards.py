"""Reward functions for reasoning, with TRL's reward-function signature.

Every reward here is a plain callable ``f(prompts, completions, **kwargs) -> list[float]``: the
dataset's other columns (e.g. ``answer``) arrive as keyword lists aligned with `completions`, so
they mix freely with TRL's own rewards in ``GRPOTrainer(reward_funcs=[...])``. Completions may be
plain strings or conversational (``[{"role": "assistant", "content": ...}]``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any, Optional

from hf_reason.data.arithmetic import extract_answer as extract_arithmetic_answer


__all__ = [
    "ArithmeticAnswerReward",
    "CombinedReward",
    "ExactAnswerReward",
    "FormatReward",
    "PlanReward",
    "TheoryOfMindReward",
    "ReportScoreRewardAdapter",
    "SelfCriticRewardAdapter",
    "arithmetic_answer_reward",
    "completion_text",
    "extract_final_answer",
    "think_format_reward",
]

_TAGGED_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?")


def completion_text(completion: Any) -> str:
    """The text of one completion, whether plain or conversational."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    raise ValueError(
        "a completion must be a string or a list of chat messages ({'role', 'content'} dicts), "
        f"got {type(completion).__name__}"
    )


def extract_final_answer(text: str) -> Optional[str]:
    """The answer a completion commits to, by the conventions our task families use, in order:
    ``<answer>...</answer>``, then the GSM8K-style ``#### n``, then ``answer is X`` / ``answer: X``.
    None when the completion commits to nothing (no guessing from stray numbers)."""
    match = _TAGGED_ANSWER_RE.search(text)
    if match:
        return match.group(1).strip()
    arithmetic = extract_arithmetic_answer(text)
    if arithmetic is not None:
        return arithmetic
    match = re.search(r"answer(?:\s+is|:)\s*([^\n]+)", text, flags=re.IGNORECASE)
    if match:
        return match.group(1).strip().rstrip(".")
    return None


def _answers_match(predicted: str, expected: str, rel_tol: float) -> bool:
    def as_number(s: str):
        s = s.strip().replace(",", "")
        return float(s) if _NUMBER_RE.fullmatch(s) else None

    a, b = as_number(predicted), as_number(expected)
    if a is not None and b is not None:
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=rel_tol)
    # non-numeric answers (grids as digit strings, words) compare whitespace- and case-insensitively
    return " ".join(predicted.split()).lower() == " ".join(expected.split()).lower()


class ExactAnswerReward:
    """1.0 when the completion's final answer equals the dataset's answer column, else 0.0.

    Args:
        answer_column (`str`, defaults to `"answer"`): the dataset column TRL passes as a keyword.
        rel_tol (`float`, defaults to `0.0`): numeric answers match within this relative tolerance
            (0 = exact); non-numeric answers match after whitespace / case normalisation.
        extractor (`Callable[[str], str | None]`, defaults to `extract_final_answer`): how the
            committed answer is read from the completion.
    """

    def __init__(
        self, answer_column: str = "answer", rel_tol: float = 0.0, extractor: Callable = extract_final_answer
    ):
        if not isinstance(rel_tol, (int, float)) or rel_tol < 0:
            raise ValueError(f"rel_tol must be a number >= 0, got {rel_tol!r}")
        self.answer_column = answer_column
        self.rel_tol = float(rel_tol)
        self.extractor = extractor
        self.__name__ = f"exact_{answer_column}"

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        if self.answer_column not in kwargs:
            raise ValueError(
                f"{self.__name__} needs the dataset column `{self.answer_column}`; the batch has columns "
                f"{sorted(k for k in kwargs if not k.startswith('completion_ids'))}"
            )
        answers = kwargs[self.answer_column]
        rewards = []
        for completion, answer in zip(completions, answers, strict=True):
            predicted = self.extractor(completion_text(completion))
            ok = predicted is not None and answer is not None and _answers_match(predicted, str(answer), self.rel_tol)
            rewards.append(1.0 if ok else 0.0)
        return rewards


class ArithmeticAnswerReward(ExactAnswerReward):
    """Exact reward for `hf_reason.data.generate_arithmetic` rows: the integer after ``####``."""

    def __init__(self, answer_column: str = "answer"):
        super().__init__(answer_column=answer_column, extractor=extract_arithmetic_answer)
        self.__name__ = "arithmetic_answer"


arithmetic_answer_reward = ArithmeticAnswerReward()


def _committed_region(text: str, think_close: str) -> str:
    """The part of a completion that states its answer: the ``<answer>`` block, else what follows the
    last closing think tag, else everything (so exploration inside ``<think>`` is never graded)."""
    match = _TAGGED_ANSWER_RE.search(text)
    if match:
        return match.group(1)
    if think_close and think_close in text:
        return text.rsplit(think_close, 1)[1]
    return text


class PlanReward:
    """1.0 when the completion's plan solves the row's planning puzzle, else 0.0.

    For `hf_reason.data.generate_planning` rows. The plan is simulated with
    `hf_reason.data.planning.check_plan`, so every correct plan counts, not only the gold answer
    (which `ExactAnswerReward` would demand): any legal move sequence that reaches the goal (blocks
    world) and any order that respects the prerequisites (scheduling). The plan is read from the
    ``<answer>`` block, else after the closing think tag, else from the whole completion.

    Args:
        puzzle_column (`str`, defaults to `"puzzle"`): the column holding the puzzle (its JSON string,
            as `generate_planning` writes it, or the dict).
        require_optimal (`bool`, defaults to `False`): blocks world only: a plan longer than the
            shortest one scores 0.
        think_close (`str`, defaults to `"</think>"`): the closing think tag.
    """

    def __init__(self, puzzle_column: str = "puzzle", require_optimal: bool = False, think_close: str = "</think>"):
        self.puzzle_column, self.require_optimal, self.think_close = puzzle_column, bool(require_optimal), think_close
        self.__name__ = "plan_optimal" if require_optimal else "plan_valid"

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        import json

        from hf_reason.data.planning import check_plan

        if self.puzzle_column not in kwargs:
            raise ValueError(
                f"{self.__name__} needs the dataset column `{self.puzzle_column}` (generate_planning's puzzle JSON); "
                f"the batch has columns {sorted(k for k in kwargs if not k.startswith('completion_ids'))}"
            )
        rewards = []
        for completion, puzzle in zip(completions, kwargs[self.puzzle_column], strict=True):
            puzzle = json.loads(puzzle) if isinstance(puzzle, str) else puzzle
            plan = _committed_region(completion_text(completion), self.think_close).strip().rstrip(".")
            verdict = check_plan(puzzle, plan, require_optimal=self.require_optimal)
            rewards.append(1.0 if verdict.valid else 0.0)
        return rewards


class TheoryOfMindReward:
    """1.0 when the completion's answer names the row's container and none of its distractors, else 0.0.

    For `hf_reason.data.generate_tom_stories` rows, whose answers are exact (each story is
    simulated) and whose only other container is listed in `distractors`; naming both (hedging)
    scores 0. The answer is read as `extract_final_answer` reads it (``<answer>``, ``answer is``),
    else after the closing think tag, else from the whole completion; containers match as whole
    words, case-insensitively (``"In the basket."`` names ``basket``).

    Args:
        answer_column (`str`, defaults to `"answer"`): the column with the correct container.
        distractors_column (`str`, defaults to `"distractors"`): the column with the other
            container(s); when the batch lacks it only the answer is looked for.
        think_close (`str`, defaults to `"</think>"`): the closing think tag.
    """

    def __init__(
        self, answer_column: str = "answer", distractors_column: str = "distractors", think_close: str = "</think>"
    ):
        self.answer_column, self.distractors_column, self.think_close = answer_column, distractors_column, think_close
        self.__name__ = "tom_answer"

    @staticmethod
    def _names(text: str, word: str) -> bool:
        return re.search(r"\b" + re.escape(word.strip()) + r"\b", text, flags=re.IGNORECASE) is not None

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        if self.answer_column not in kwargs:
            raise ValueError(
                f"{self.__name__} needs the dataset column `{self.answer_column}`; the batch has columns "
                f"{sorted(k for k in kwargs if not k.startswith('completion_ids'))}"
            )
        distractors = kwargs.get(self.distractors_column) or [[] for _ in completions]
        rewards = []
        for completion, answer, others in zip(completions, kwargs[self.answer_column], distractors, strict=True):
            text = completion_text(completion)
            stated = extract_final_answer(text)
            region = stated if stated is not None else _committed_region(text, self.think_close)
            others = [others] if isinstance(others, str) else list(others or [])
            ok = self._names(region, str(answer)) and not any(self._names(region, str(o)) for o in others)
            rewards.append(1.0 if ok else 0.0)
        return rewards


class FormatReward:
    """Rewards the reasoning format: ``<think>...</think>`` followed by an answer.

    Gives `think_weight` when one non-empty, closed think block opens the completion and
    `answer_weight` when an answer follows it (``<answer>...</answer>`` or ``#### n`` after the
    block); the maximum is ``think_weight + answer_weight`` (1.0 by default). Partial credit
    keeps the signal dense early in training, when whole-format hits are rare.
    """

    def __init__(
        self,
        think_open: str = "<think>",
        think_close: str = "</think>",
        think_weight: float = 0.5,
        answer_weight: float = 0.5,
    ):
        if not think_open or not think_close:
            raise ValueError("think_open and think_close must be non-empty tag strings")
        if think_weight < 0 or answer_weight < 0:
            raise ValueError(f"think_weight and answer_weight must be >= 0, got {think_weight}, {answer_weight}")
        self.think_open, self.think_close = think_open, think_close
        self.think_weight, self.answer_weight = float(think_weight), float(answer_weight)
        self._think_re = re.compile(r"\s*" + re.escape(think_open) + r"(.+?)" + re.escape(think_close), re.DOTALL)
        self.__name__ = "format"

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        rewards = []
        for completion in completions:
            text = completion_text(completion)
            reward = 0.0
            match = self._think_re.match(text)
            if match and match.group(1).strip() and text.count(self.think_open) == 1:
                reward += self.think_weight
                rest = text[match.end() :]
                if _TAGGED_ANSWER_RE.search(rest) or extract_arithmetic_answer(rest) is not None:
                    reward += self.answer_weight
            rewards.append(reward)
        return rewards


think_format_reward = FormatReward()


class CombinedReward:
    """A weighted sum of reward functions, itself a reward function.

    TRL can weight several `reward_funcs` itself (`reward_weights`); this is for when one
    scalar must be formed first (e.g. to gate correctness by format, or to reuse one mix in DPO
    pair building). A reward returning None for an item (TRL's "not applicable") contributes 0.

    Args:
        reward_funcs (`Sequence[Callable]`): reward functions with TRL's signature.
        weights (`Sequence[float]`, *optional*): one finite weight per function; all 1.0 by default.
    """

    def __init__(self, reward_funcs: Sequence[Callable], weights: Optional[Sequence[float]] = None):
        reward_funcs = list(reward_funcs)
        if not reward_funcs or not all(callable(f) for f in reward_funcs):
            raise ValueError("reward_funcs must be a non-empty sequence of callables")
        weights = [1.0] * len(reward_funcs) if weights is None else [float(w) for w in weights]
        if len(weights) != len(reward_funcs) or not all(math.isfinite(w) for w in weights):
            raise ValueError(
                f"weights must be {len(reward_funcs)} finite numbers (one per reward function), got {weights}"
            )
        self.reward_funcs, self.weights = reward_funcs, weights
        names = [getattr(f, "__name__", type(f).__name__) for f in reward_funcs]
        self.__name__ = "+".join(f"{w:g}*{n}" for w, n in zip(weights, names))

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        total = [0.0] * len(completions)
        for func, weight in zip(self.reward_funcs, self.weights):
            values = func(prompts=prompts, completions=completions, **kwargs)
            if len(values) != len(completions):
                raise ValueError(
                    f"{getattr(func, '__name__', func)} returned {len(values)} rewards for {len(completions)} completions"
                )
            total = [t + weight * (0.0 if v is None else float(v)) for t, v in zip(total, values)]
        return total


class _LazyRewardAdapter:
    """A reward from hf_reason.evaluation, imported only when built: importing the reward module stays light
    (the self-critic pulls in the meta-attention model), and the wrapped scores mix with the rewards here."""

    module: str = ""
    attribute: str = ""

    def __init__(self, *args, **kwargs):
        import importlib

        try:
            target = getattr(importlib.import_module(self.module), self.attribute)
        except (ImportError, AttributeError) as err:
            raise NotImplementedError(
                f"{type(self).__name__} needs {self.module}.{self.attribute}, which this hf_reason does not have yet"
            ) from err
        self.inner = target(*args, **kwargs)
        self.__name__ = getattr(self.inner, "__name__", self.attribute)

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        return list(self.inner(prompts=prompts, completions=completions, **kwargs))


class SelfCriticRewardAdapter(_LazyRewardAdapter):
    """The meta-attention self-critic head's score as a reward (`hf_reason.evaluation.self_critic`)."""

    module, attribute = "hf_reason.evaluation.self_critic", "SelfCriticReward"


class ReportScoreRewardAdapter(_LazyRewardAdapter):
    """The report evaluator's score as a reward (`hf_reason.evaluation.reports`)."""

    module, attribute = "hf_reason.evaluation.reports", "ReportScoreReward"
