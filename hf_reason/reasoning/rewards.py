"""The verifiers as TRL reward functions: ``f(prompts, completions, **kwargs) -> list[float]``.

Same signature as hf_reason/trainers/rewards.py, so they mix with TRL's rewards in
``GRPOTrainer(reward_funcs=[...])``; dataset columns arrive as keyword lists.
"""

from __future__ import annotations

from ..data.countdown import parse_countdown_prompt
from .constraints import check_constraint_answer
from .scorers import countdown_task
from .verifiers import sympy_equivalent, trace_validity, verify_python_code


__all__ = [
    "CodeTestsReward",
    "ConstraintReward",
    "CountdownReward",
    "SympyAnswerReward",
    "TraceValidityReward",
    "countdown_reward",
]


def _text(completion) -> str:
    from hf_reason.trainers.rewards import completion_text

    return completion_text(completion)


def _prompt_text(prompt) -> str:
    return prompt if isinstance(prompt, str) else "\n".join(str(m.get("content", "")) for m in prompt)


class CountdownReward:
    """1.0 when the completion solves the countdown instance in its prompt (exact verifier), else 0.0.

    The prompt must be `format_countdown_prompt`'s; malformed answers score 0 (never an exception).
    """

    def __init__(self):
        self._task = countdown_task()
        self.__name__ = "countdown"

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        return [
            float(self._task.is_correct(_prompt_text(p), _text(c), None))
            for p, c in zip(prompts, completions, strict=True)
        ]


countdown_reward = CountdownReward()


class TraceValidityReward:
    """The trace-validity score (fraction of ``lhs = rhs`` steps that are exactly right; for countdown
    prompts also that each step uses only available numbers) as a dense reward in [0, 1]."""

    def __init__(self):
        self.__name__ = "trace_validity"

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        rewards = []
        for prompt, completion in zip(prompts, completions, strict=True):
            try:
                numbers, _ = parse_countdown_prompt(_prompt_text(prompt))
            except ValueError:
                numbers = None
            validity = trace_validity(_text(completion), numbers)
            rewards.append(validity.score if validity.checked else 0.0)
        return rewards


class SympyAnswerReward:
    """1.0 when the completion's final answer equals the `answer_column` as math (sympy), else 0.0.

    Args:
        answer_column (`str`, defaults to `"answer"`): the dataset column with the reference.
    """

    def __init__(self, answer_column: str = "answer"):
        self.answer_column = answer_column
        self.__name__ = f"sympy_{answer_column}"

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        from hf_reason.trainers.rewards import extract_final_answer

        if self.answer_column not in kwargs:
            raise ValueError(f"{self.__name__} needs the dataset column `{self.answer_column}`")
        rewards = []
        for completion, reference in zip(completions, kwargs[self.answer_column], strict=True):
            predicted = extract_final_answer(_text(completion))
            rewards.append(float(predicted is not None and sympy_equivalent(predicted, str(reference))))
        return rewards


class ConstraintReward:
    """1.0 when the completion's assignment satisfies the z3-checked constraint puzzle in its prompt."""

    def __init__(self):
        self.__name__ = "constraint_z3"

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        return [
            float(check_constraint_answer(_prompt_text(p), _text(c)))
            for p, c in zip(prompts, completions, strict=True)
        ]


class CodeTestsReward:
    """1.0 when the completion's ```` ```python ```` code passes the row's tests in the sandbox, else 0.0.

    Args:
        tests_column (`str`, defaults to `"tests"`): the dataset column with the assert lines.
        entry_point_column (`str`, defaults to `"entry_point"`): the column naming the function under test.
        timeout (`float`, defaults to 5.0): seconds per completion in the sandbox.
    """

    def __init__(self, tests_column: str = "tests", entry_point_column: str = "entry_point", timeout: float = 5.0):
        self.tests_column = tests_column
        self.entry_point_column = entry_point_column
        self.timeout = timeout
        self.__name__ = "code_tests"

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        missing = [c for c in (self.tests_column, self.entry_point_column) if c not in kwargs]
        if missing:
            raise ValueError(f"{self.__name__} needs the dataset columns {missing}")
        return [
            float(verify_python_code(_text(c), tests, entry_point, timeout=self.timeout))
            for c, tests, entry_point in zip(
                completions, kwargs[self.tests_column], kwargs[self.entry_point_column], strict=True
            )
        ]
