# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Multi-pass reflection: answer, reflect on the attempt, revise; remember the reflection.

Pass 0 answers the prompt (with the prompt's past reflection from the episodic memory, when it has
one: Reflexion-style). Every later pass is generated from a reflection prompt that quotes the
previous attempt by section, the validator's verdict, the tokens the model attended to most
(`attended_terms`, from the meta-attention model's `introspect`) and asks for a ``Reflection:``
then an ``Answer:``. The last reflection is stored in the memory. When sampled pass-0 answers
disagree (a local majority vote), one extra pass is run.

`reflection_outcome` / `ReflectionReward` score a revision against the attempt it revises (fixed,
kept, broke, uncertain, repeated, verbatim copy) as a TRL reward function.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

import torch
from transformers import StoppingCriteria

from ..evaluation.reports import parse_report
from ..evaluation.validators import validate
from .memory import EpisodicMemory


__all__ = [
    "REFLECTION_REWARDS",
    "Attempt",
    "ReflectionConfig",
    "ReflectionReward",
    "ReflectionTrace",
    "attended_terms",
    "majority_vote",
    "normalize_answer",
    "reflection_outcome",
    "reflection_prompt",
    "run_reflection",
    "states_uncertainty",
]

_UNCERTAINTY_RE = re.compile(
    r"\b(not sure|unsure|uncertain|uncertainty|might be wrong|may be wrong|could be wrong|low confidence|"
    r"not confident|cannot be certain|can't be certain|i do not know|i don't know)\b",
    re.IGNORECASE,
)

# What each outcome of a revision earns; see `reflection_outcome`.
REFLECTION_REWARDS: dict[str, float] = {
    "fixed": 1.0,
    "kept": 0.25,
    "uncertain": 0.25,
    "changed": 0.0,
    "repeated": -0.5,
    "broke": -1.0,
    "verbatim": -1.0,
}


def normalize_answer(answer: Optional[str]) -> Optional[str]:
    """Case-folded, whitespace-collapsed, without trailing punctuation (None stays None)."""
    if answer is None:
        return None
    text = " ".join(answer.casefold().split()).rstrip(".!")
    return text or None


def states_uncertainty(text: str) -> bool:
    """Whether the text says the answer may be wrong (``not sure``, ``uncertain``, ``might be wrong`` ...)."""
    return bool(_UNCERTAINTY_RE.search(text))


def majority_vote(answers: Sequence[Optional[str]]) -> tuple[Optional[str], float]:
    """The most frequent normalised answer (ties: the first seen) and its share of all answers."""
    normalized = [normalize_answer(a) for a in answers]
    counted = Counter(a for a in normalized if a is not None)
    if not counted:
        return None, 0.0
    best = max(counted, key=lambda a: (counted[a], -normalized.index(a)))
    return best, counted[best] / len(answers)


def reflection_outcome(previous: str, revision: str, previous_passed: bool, passed: bool) -> str:
    """How a revision relates to the attempt it revises.

    Returns one of ``"verbatim"`` (the whole previous completion copied), ``"fixed"`` (wrong to
    right), ``"broke"`` (right to wrong), ``"kept"`` (right, still right), ``"uncertain"`` (still
    wrong, but the revision says it may be wrong), ``"repeated"`` (the same wrong answer again) or
    ``"changed"`` (a different wrong answer).
    """
    if " ".join(previous.split()) == " ".join(revision.split()):
        return "verbatim"
    if passed:
        return "kept" if previous_passed else "fixed"
    if previous_passed:
        return "broke"
    if states_uncertainty(revision):
        return "uncertain"
    same = normalize_answer(parse_report(previous).answer) == normalize_answer(parse_report(revision).answer)
    return "repeated" if same else "changed"


@dataclasses.dataclass
class ReflectionConfig:
    """How reflection runs.

    Args:
        num_passes (`int`, defaults to 2): passes including the first answer (>= 2).
        votes (`int`, defaults to 0): pass-0 samples for the self-consistency vote (0 or 1: no vote).
        agreement_threshold (`float`, defaults to 0.6): below this share of the majority answer, one
            extra reflection pass runs.
        show_validator (`bool`, defaults to True): quote the validator's verdict in the reflection
            prompt (Reflexion's environment feedback); False reflects on the attempt alone.
        use_memory (`bool`, defaults to True): feed the prompt's past reflection in and store the new one.
        top_attended (`int`, defaults to 5): attended tokens quoted in the reflection prompt.
    """

    num_passes: int = 2
    votes: int = 0
    agreement_threshold: float = 0.6
    show_validator: bool = True
    use_memory: bool = True
    top_attended: int = 5

    def __post_init__(self):
        if not isinstance(self.num_passes, int) or self.num_passes < 2:
            raise ValueError(f"`num_passes` must be an int >= 2, got {self.num_passes!r}")
        if not isinstance(self.votes, int) or self.votes < 0:
            raise ValueError(f"`votes` must be an int >= 0, got {self.votes!r}")
        if not 0.0 < self.agreement_threshold <= 1.0:
            raise ValueError(f"`agreement_threshold` must be in (0, 1], got {self.agreement_threshold!r}")


@dataclasses.dataclass
class Attempt:
    """One pass: the text it was generated from, the completion, its answer and the validator's verdict."""

    index: int
    prompt: str
    completion: str
    answer: Optional[str]
    passed: bool
    reason: str
    attended: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ReflectionTrace:
    """All passes of one prompt, the vote that may have added a pass, and the past reflection used."""

    prompt: str
    attempts: list[Attempt]
    vote: Optional[tuple[Optional[str], float]] = None
    past_reflection: Optional[str] = None

    @property
    def first_passed(self) -> bool:
        return self.attempts[0].passed

    @property
    def final_passed(self) -> bool:
        return self.attempts[-1].passed

    def outcomes(self) -> list[str]:
        """`reflection_outcome` of every pass after the first against the one before it."""
        return [
            reflection_outcome(a.completion, b.completion, a.passed, b.passed)
            for a, b in zip(self.attempts, self.attempts[1:])
        ]


class StopAfterAnswerLine(StoppingCriteria):
    """A `StoppingCriteria` that stops a report once its ``Answer:`` line is complete: the evaluator and the
    validators read nothing after it, and a reflection pass's report ends there too.

    Args:
        tokenizer: decodes the generated tokens.
        prompt_length (`int`): tokens of the prompt; an ``Answer:`` inside it does not count.
    """

    def __init__(self, tokenizer, prompt_length: int):
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        done = []
        for row in input_ids:
            text = self.tokenizer.decode(row[self.prompt_length :], skip_special_tokens=True)
            start = text.find("Answer:")
            done.append(start >= 0 and "\n" in text[start:])
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _with_memory(prompt: str, past: Optional[str]) -> str:
    return prompt if not past else f"Past reflection on this task: {past}\n\n{prompt}"


def reflection_prompt(
    prompt: str,
    previous: Attempt,
    attended: Sequence[str] = (),
    validator_reason: Optional[str] = None,
    past_reflection: Optional[str] = None,
) -> str:
    """The text a reflection pass is generated from.

    It quotes the previous attempt's sections by name (``Pass 0 / Step 2: ...``) so the reflection can
    refer to them, the attended tokens, the validator's verdict (when given) and the past reflection.
    """
    lines = [_with_memory(prompt, past_reflection), "", f"Pass {previous.index} attempt:"]
    parsed = parse_report(previous.completion)
    if parsed.sections:
        lines += [f"Pass {previous.index} / {name}: {body}" for name, body in parsed.sections]
    else:
        lines.append(previous.completion.strip())
    if attended:
        lines.append("Attended: " + ", ".join(attended))
    if validator_reason is not None:
        lines.append(f"Validator: {validator_reason}")
    lines.append("Reflection:")
    return "\n".join(lines)


def attended_terms(model, tokenizer, text: str, start: int, top: int = 5) -> list[str]:
    """The `top` prompt tokens a meta-attention model attended to most while writing `text[start:]`.

    Args:
        model ([`MetaAttentionForCausalLM`]): the model (its `introspect`).
        tokenizer: its tokenizer.
        text (`str`): prompt plus completion.
        start (`int`): the token index where the completion starts.
        top (`int`): how many distinct tokens to return, heaviest total attention first.
    """
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"].to(model.device)
    context = getattr(model.config, "n_positions", None)
    if context and ids.size(1) > context:  # keep the nearest context: cut the prompt from the left
        cut = ids.size(1) - context
        ids, start = ids[:, cut:], start - cut
    if ids.size(1) < 2:
        return []
    start = min(max(start, 1), ids.size(1) - 1)
    out = model.introspect(ids, start=start, top_k=top)
    totals: Counter = Counter()
    for token, position, weight in zip(
        out.attended_token_ids[0].flatten().tolist(),
        out.attended_positions[0].flatten().tolist(),
        out.weights[0].flatten().tolist(),
    ):
        word = tokenizer.decode([token]).strip()
        if position < start and word:
            totals[word] += weight
    return [word for word, _ in totals.most_common(top)]


def _check(completion: str, validator) -> tuple[bool, str]:
    if callable(validator):
        passed, reason = validator(completion)
        return bool(passed), str(reason)
    result = validate(completion, validator)
    return bool(result.passed), "passed" if result.passed else f"failed: {result.reason}"


def run_reflection(
    generate: Callable[[list[str]], list[str]],
    prompt: str,
    validator: Mapping[str, Any] | Callable[[str], tuple[bool, str]],
    config: Optional[ReflectionConfig] = None,
    memory: Optional[EpisodicMemory] = None,
    sample: Optional[Callable[[list[str]], list[str]]] = None,
    attended: Optional[Callable[[str, str], list[str]]] = None,
) -> ReflectionTrace:
    """Runs the passes on one prompt.

    Args:
        generate (`Callable[[list[str]], list[str]]`): texts to completions (greedy, say).
        prompt (`str`): the task.
        validator: a curated-task validator spec (``{"kind", "config"}``, see `validate`) or a callable
            ``completion -> (passed, reason)``.
        config ([`ReflectionConfig`], *optional*): passes, vote, what the reflection prompt shows.
        memory ([`EpisodicMemory`], *optional*): past reflections in, the new one out.
        sample (`Callable`, *optional*): like `generate` but sampling; draws the pass-0 vote.
        attended (`Callable[[str, str], list[str]]`, *optional*): ``(text, completion) -> tokens`` attended
            while writing the completion (e.g. a partial of `attended_terms`).
    """
    config = config or ReflectionConfig()
    past = None
    if memory is not None and config.use_memory:
        record = memory.latest(prompt)
        past = record["reflection"] if record else None

    def attempt(index: int, text: str, completion: str) -> Attempt:
        passed, reason = _check(completion, validator)
        seen = attended(text, completion)[: config.top_attended] if attended is not None else []
        return Attempt(index, text, completion, parse_report(completion).answer, passed, reason, seen)

    first_text = _with_memory(prompt, past)
    attempts = [attempt(0, first_text, generate([first_text])[0])]
    passes, vote = config.num_passes, None
    if config.votes > 1 and sample is not None:
        answers = [parse_report(c).answer for c in sample([first_text] * config.votes)]
        vote = majority_vote(answers)
        if vote[1] < config.agreement_threshold:
            passes += 1
    for index in range(1, passes):
        previous = attempts[-1]
        reason = previous.reason if config.show_validator else None
        text = reflection_prompt(prompt, previous, previous.attended, reason, past)
        # the prompt ends with the section header, so the generated text is the reflection's body onwards
        completion = "Reflection:" + generate([text])[0]
        attempts.append(attempt(index, text, completion))
    trace = ReflectionTrace(prompt, attempts, vote, past)
    if memory is not None and config.use_memory:
        final = attempts[-1]
        reflection = next((body for name, body in parse_report(final.completion).sections if name == "Reflection"), "")
        memory.add(prompt, reflection or final.completion.strip(), final.answer, final.passed)
    return trace


def reflection_training_row(
    prompt: str,
    attempt: str,
    validator: Mapping[str, Any] | Callable[[str], tuple[bool, str]],
    gold: str,
    attended: Sequence[str] = (),
    index: int = 0,
) -> dict:
    """A supervised example of a reflection pass, from a model's own attempt and the gold report.

    The prompt is what `run_reflection` generates the pass from (`reflection_prompt`, with the validator's
    verdict and the attended tokens); the completion, after its ``Reflection:`` header, names the attempt's
    answer and the verdict, then keeps the attempt when it passed and writes the gold report when it did
    not. SFT on such rows teaches the pass `ReflectionReward` rewards: fix a wrong answer, keep a right one.

    Args:
        prompt (`str`): the task, as pass 0 saw it.
        attempt (`str`): the model's pass-`index` completion.
        validator: a validator spec (``{"kind", "config"}``) or a callable ``completion -> (passed, reason)``.
        gold (`str`): a report that passes the validator.
        attended (`Sequence[str]`): tokens the model attended to while writing the attempt.
        index (`int`): the pass the attempt is.

    Returns ``{"prompt", "completion", "passed"}`` (``passed``: the attempt's verdict).
    """
    passed, reason = _check(attempt, validator)
    answer = parse_report(attempt).answer
    previous = Attempt(index, prompt, attempt, answer, passed, reason, list(attended))
    seen = f" The attempt attended to {', '.join(attended[:3])}." if attended else ""
    if passed:
        body, report = f" Pass {index} / Answer {answer} passed the validator.{seen} It stands.", attempt
    else:
        stated = f"Pass {index} / Answer {answer}" if answer else f"Pass {index} gave no answer and"
        body = f" {stated} failed the validator ({reason}).{seen} The revision works the task again."
        report = gold
    return {
        "prompt": reflection_prompt(prompt, previous, attended, reason),
        "completion": body + "\n" + report.strip(),
        "passed": passed,
    }


class ReflectionReward:
    """A TRL reward function for reflection passes: `REFLECTION_REWARDS[reflection_outcome(...)]`.

    The dataset gives each prompt its ``previous_completion`` (the attempt being revised) and its
    ``validator`` (a spec dict or its JSON string). `rewards` overrides entries of `REFLECTION_REWARDS`.
    """

    def __init__(self, rewards: Optional[Mapping[str, float]] = None):
        unknown = set(rewards or {}) - set(REFLECTION_REWARDS)
        if unknown:
            raise ValueError(f"`rewards` keys must be among {sorted(REFLECTION_REWARDS)}, got {sorted(unknown)}")
        self.rewards = {**REFLECTION_REWARDS, **(rewards or {})}
        self.__name__ = "reflection_reward"

    def __call__(self, prompts, completions, previous_completion, validator, **kwargs) -> list[float]:
        out = []
        for previous, completion, spec in zip(previous_completion, completions, validator):
            spec = json.loads(spec) if isinstance(spec, str) else spec
            outcome = reflection_outcome(
                previous, completion, validate(previous, spec).passed, validate(completion, spec).passed
            )
            out.append(self.rewards[outcome])
        return out
