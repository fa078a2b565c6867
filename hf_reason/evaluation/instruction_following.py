"""Instruction-following evaluation: typed, deterministic checks with strict and loose accuracy.

The checks follow the published IFEval definitions (Zhou et al., 2023, "Instruction-Following
Evaluation for Large Language Models", `instructions.py` of google-research/instruction_following_eval):
the same instruction ids, arguments, counting rules and the same loose variants. They are written
here because the reference implementation ships inside a research repository (not a package) and
pulls in nltk and langdetect for its tokenisers; the deviations are named where they occur:

- words are ``\\w+`` runs (IFEval: nltk's ``RegexpTokenizer(r"\\w+")``, the same pattern);
- sentences are split by `split_sentences` (IFEval: a regex splitter of the same shape, with
  abbreviation handling; here common English abbreviations and decimals are protected);
- ``punctuation:no_comma`` forbids the comma of every script (ASCII ``,``, full-width ``，``,
  ideographic ``、``, Arabic ``،``), not only the ASCII one, so the rule is language-agnostic;
- ``change_case:english_capital`` / ``english_lowercase`` check the case only (IFEval also runs a
  language detector); ``language:response_language`` is not provided (it needs a language model);
- ``startend:start_checker`` is an addition (the counterpart of ``startend:end_checker``).

Strict: a response follows an instruction when it is non-empty and the check passes. Loose (as in
IFEval): the check passes on any of eight variants of the response (as is, without ``*``, without
its first line, its last line, or both, each with and without ``*``), which forgives a leading
"Sure, here it is:" or a trailing sign-off and markdown emphasis.

Accuracy at the prompt level counts prompts whose every instruction is followed; at the
instruction level it counts instructions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional


__all__ = [
    "INSTRUCTION_CHECKERS",
    "InstructionFollowingResult",
    "check_instruction",
    "describe_instruction",
    "evaluate_instruction_following",
    "follows_instructions",
    "loose_variants",
    "split_sentences",
    "split_words",
]

RELATIONS = ("less than", "at least")
COMMAS = (",", "\uff0c", "\u3001", "\u060c")
_ABBREVIATIONS = ("Mr", "Mrs", "Ms", "Dr", "Prof", "Sr", "Jr", "St", "vs", "etc", "e.g", "i.e", "Inc", "Ltd", "Co")


def split_words(text: str) -> list[str]:
    """Words as IFEval counts them: maximal runs of word characters (``\\w+``)."""
    return re.findall(r"\w+", text)


def split_sentences(text: str) -> list[str]:
    """Sentences: text up to ``.``, ``!`` or ``?`` (runs of them and closing quotes included) followed by
    whitespace or the end; abbreviations such as "Dr." and decimals such as "3.5" do not end a sentence."""
    protected = text
    for abbreviation in _ABBREVIATIONS:
        protected = re.sub(rf"\b{re.escape(abbreviation)}\.", abbreviation.replace(".", "\0") + "\0", protected)
    protected = re.sub(r"(\d)\.(\d)", "\\1\0\\2", protected)
    parts = re.split(r"(?<=[.!?])[\"')\]]*\s+", protected)
    return [p.replace("\0", ".").strip() for p in parts if p.strip()]


def _compare(value: int, relation: str, threshold: int) -> bool:
    if relation == "less than":
        return value < threshold
    if relation == "at least":
        return value >= threshold
    raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")


# ----------------------------------------------------------------------------- the checks
def _keywords_existence(response: str, keywords: Sequence[str]) -> bool:
    return all(re.search(re.escape(k), response, flags=re.IGNORECASE) for k in keywords)


def _keyword_frequency(response: str, keyword: str, frequency: int, relation: str) -> bool:
    return _compare(len(re.findall(re.escape(keyword), response, flags=re.IGNORECASE)), relation, frequency)


def _forbidden_words(response: str, forbidden_words: Sequence[str]) -> bool:
    return not any(re.search(rf"\b{re.escape(w)}\b", response, flags=re.IGNORECASE) for w in forbidden_words)


def _letter_frequency(response: str, letter: str, let_frequency: int, let_relation: str) -> bool:
    return _compare(response.lower().count(letter.lower()), let_relation, let_frequency)


def _number_words(response: str, num_words: int, relation: str) -> bool:
    return _compare(len(split_words(response)), relation, num_words)


def _number_sentences(response: str, num_sentences: int, relation: str) -> bool:
    return _compare(len(split_sentences(response)), relation, num_sentences)


def _number_paragraphs(response: str, num_paragraphs: int) -> bool:
    # IFEval: paragraphs are separated by the markdown divider ***; an empty one in the middle fails
    paragraphs = re.split(r"\s?\*\*\*\s?", response)
    count = len(paragraphs)
    for index, paragraph in enumerate(paragraphs):
        if not paragraph.strip():
            if index in (0, len(paragraphs) - 1):
                count -= 1
            else:
                return False
    return count == num_paragraphs


def _nth_paragraph_first_word(response: str, num_paragraphs: int, nth_paragraph: int, first_word: str) -> bool:
    paragraphs = [p for p in re.split(r"\n\n", response) if p.strip()]
    if len(paragraphs) != num_paragraphs or nth_paragraph > len(paragraphs):
        return False
    words = paragraphs[nth_paragraph - 1].strip().split()
    if not words:
        return False
    word = words[0].lstrip("'\"").rstrip(".,!?;:'\"").lower()
    return word == first_word.lower()


def _number_placeholders(response: str, num_placeholders: int) -> bool:
    return len(re.findall(r"\[.*?\]", response)) >= num_placeholders


def _postscript(response: str, postscript_marker: str) -> bool:
    lowered = response.lower()
    if postscript_marker == "P.P.S":
        pattern = r"\s*p\.\s?p\.\s?s.*$"
    elif postscript_marker == "P.S.":
        pattern = r"\s*p\.\s?s\..*$"
    else:
        pattern = r"\s*" + re.escape(postscript_marker.lower()) + r".*$"
    return bool(re.findall(pattern, lowered, flags=re.MULTILINE))


def _number_bullet_lists(response: str, num_bullets: int) -> bool:
    stars = re.findall(r"^\s*\*[^\*].*$", response, flags=re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", response, flags=re.MULTILINE)
    return len(stars) + len(dashes) == num_bullets


CONSTRAINED_RESPONSES = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


def _constrained_response(response: str) -> bool:
    return any(option in response.strip() for option in CONSTRAINED_RESPONSES)


def _number_highlighted_sections(response: str, num_highlights: int) -> bool:
    count = 0
    for highlight in re.findall(r"\*[^\n\*]*\*", response):
        count += bool(highlight.strip("*").strip())
    for highlight in re.findall(r"\*\*[^\n\*]*\*\*", response):
        count += bool(highlight.removeprefix("**").removesuffix("**").strip())
    return count >= num_highlights


def _multiple_sections(response: str, section_spliter: str, num_sections: int) -> bool:
    sections = re.split(r"\s?" + re.escape(section_spliter) + r"\s?\d+\s?", response)
    return len(sections) - 1 >= num_sections


def _json_format(response: str) -> bool:
    value = response.strip()
    for prefix in ("```json", "```Json", "```JSON", "```"):
        value = value.removeprefix(prefix)
    value = value.removesuffix("```").strip()
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def _title(response: str) -> bool:
    return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", response))


def _two_responses(response: str) -> bool:
    parts = [p.strip() for p in response.split("******")]
    non_empty = [p for p in parts if p]
    # IFEval: empty parts are allowed only at the very start or end
    if any(not p for p in parts[1:-1]):
        return False
    return len(non_empty) == 2 and non_empty[0] != non_empty[1]


def _repeat_prompt(response: str, prompt_to_repeat: str) -> bool:
    return response.strip().lower().startswith(prompt_to_repeat.strip().lower())


def _end_checker(response: str, end_phrase: str) -> bool:
    return response.strip().strip('"').lower().endswith(end_phrase.strip().lower())


def _start_checker(response: str, start_phrase: str) -> bool:
    return response.strip().strip('"').lower().startswith(start_phrase.strip().lower())


def _quotation(response: str) -> bool:
    value = response.strip()
    return len(value) > 1 and value[0] == '"' and value[-1] == '"'


def _capital_word_frequency(response: str, capital_frequency: int, capital_relation: str) -> bool:
    capitals = [w for w in split_words(response) if w.isupper()]
    return _compare(len(capitals), capital_relation, capital_frequency)


def _english_capital(response: str) -> bool:
    return response.isupper()


def _english_lowercase(response: str) -> bool:
    return response.islower()


def _no_comma(response: str) -> bool:
    return not any(comma in response for comma in COMMAS)


@dataclass(frozen=True)
class _Checker:
    check: Callable[..., bool]
    describe: Callable[..., str]


def _quoted(words: Sequence[str]) -> str:
    return " and ".join(f'"{w}"' for w in words)


INSTRUCTION_CHECKERS: dict[str, _Checker] = {
    "keywords:existence": _Checker(
        _keywords_existence, lambda keywords: f"Include the keywords {_quoted(keywords)} in the response."
    ),
    "keywords:frequency": _Checker(
        _keyword_frequency,
        lambda keyword, frequency, relation: (
            f'In your response, the word "{keyword}" should appear {relation} {frequency} times.'
        ),
    ),
    "keywords:forbidden_words": _Checker(
        _forbidden_words,
        lambda forbidden_words: f"Do not include the words {_quoted(forbidden_words)} in the response.",
    ),
    "keywords:letter_frequency": _Checker(
        _letter_frequency,
        lambda letter, let_frequency, let_relation: (
            f'In your response, the letter "{letter}" should appear {let_relation} {let_frequency} times.'
        ),
    ),
    "length_constraints:number_words": _Checker(
        _number_words, lambda num_words, relation: f"Answer with {relation} {num_words} words."
    ),
    "length_constraints:number_sentences": _Checker(
        _number_sentences,
        lambda num_sentences, relation: f"Your response should contain {relation} {num_sentences} sentences.",
    ),
    "length_constraints:number_paragraphs": _Checker(
        _number_paragraphs,
        lambda num_paragraphs: (
            f"There should be {num_paragraphs} paragraphs. Paragraphs are separated with the markdown divider: ***"
        ),
    ),
    "length_constraints:nth_paragraph_first_word": _Checker(
        _nth_paragraph_first_word,
        lambda num_paragraphs, nth_paragraph, first_word: (
            f"There should be {num_paragraphs} paragraphs, separated "
            f'by two new lines. Paragraph {nth_paragraph} must start with the word "{first_word}".'
        ),
    ),
    "detectable_content:number_placeholders": _Checker(
        _number_placeholders,
        lambda num_placeholders: (
            f"The response must contain at least {num_placeholders} placeholders represented "
            "by square brackets, such as [address]."
        ),
    ),
    "detectable_content:postscript": _Checker(
        _postscript,
        lambda postscript_marker: (
            f"At the end of your response, please explicitly add a postscript starting with {postscript_marker}"
        ),
    ),
    "detectable_format:number_bullet_lists": _Checker(
        _number_bullet_lists,
        lambda num_bullets: (
            f"Your answer must contain exactly {num_bullets} bullet points. Use the markdown bullet "
            "points such as:\n* This is point 1."
        ),
    ),
    "detectable_format:constrained_response": _Checker(
        _constrained_response, lambda: "Answer with one of the following options: " + ", ".join(CONSTRAINED_RESPONSES)
    ),
    "detectable_format:number_highlighted_sections": _Checker(
        _number_highlighted_sections,
        lambda num_highlights: (
            f"Highlight at least {num_highlights} sections in your answer with markdown, i.e. *highlighted section*."
        ),
    ),
    "detectable_format:multiple_sections": _Checker(
        _multiple_sections,
        lambda section_spliter, num_sections: (
            f"Your response must have {num_sections} sections. Mark the "
            f"beginning of each section with {section_spliter} X, such as: {section_spliter} 1"
        ),
    ),
    "detectable_format:json_format": _Checker(
        _json_format, lambda: "Entire output should be wrapped in JSON format. You can use markdown ticks such as ```."
    ),
    "detectable_format:title": _Checker(
        _title,
        lambda: "Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>.",
    ),
    "combination:two_responses": _Checker(
        _two_responses,
        lambda: (
            "Give two different responses. Responses and only responses should be separated by 6 asterisk "
            "symbols: ******."
        ),
    ),
    "combination:repeat_prompt": _Checker(
        _repeat_prompt,
        lambda prompt_to_repeat: (
            "First repeat the request word for word without change, then give your answer "
            f"(1. do not say any words or characters before repeating the request; 2. the request you need to repeat "
            f"does not include this sentence) {prompt_to_repeat}"
        ),
    ),
    "startend:end_checker": _Checker(
        _end_checker,
        lambda end_phrase: (
            f'Finish your response with this exact phrase "{end_phrase}". No other words should follow this phrase.'
        ),
    ),
    "startend:start_checker": _Checker(
        _start_checker, lambda start_phrase: f'Start your response with this exact phrase "{start_phrase}".'
    ),
    "startend:quotation": _Checker(_quotation, lambda: "Wrap your entire response with double quotation marks."),
    "change_case:capital_word_frequency": _Checker(
        _capital_word_frequency,
        lambda capital_frequency, capital_relation: (
            f"In your response, words with all capital letters should "
            f"appear {capital_relation} {capital_frequency} times."
        ),
    ),
    "change_case:english_capital": _Checker(
        _english_capital, lambda: "Your entire response should be in English, and in all capital letters."
    ),
    "change_case:english_lowercase": _Checker(
        _english_lowercase,
        lambda: (
            "Your entire response should be in English, and in all lowercase letters. No capital letters are allowed."
        ),
    ),
    "punctuation:no_comma": _Checker(
        _no_comma, lambda: "In your entire response, refrain from the use of any commas."
    ),
}


def _checker(instruction_id: str) -> _Checker:
    if instruction_id not in INSTRUCTION_CHECKERS:
        raise ValueError(f"unknown instruction id {instruction_id!r}; known: {sorted(INSTRUCTION_CHECKERS)}")
    return INSTRUCTION_CHECKERS[instruction_id]


def _call(function: Callable[..., Any], instruction_id: str, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except TypeError as error:
        raise ValueError(f"instruction {instruction_id!r}: bad arguments {sorted(kwargs)}: {error}") from None


def describe_instruction(instruction_id: str, **kwargs) -> str:
    """The instruction's text as a prompt states it, in IFEval's wording (e.g. "Answer with at least 50 words.")."""
    return _call(_checker(instruction_id).describe, instruction_id, **kwargs)


def check_instruction(response: str, instruction_id: str, **kwargs) -> bool:
    """Strict check of one instruction: `response` is non-empty and follows `instruction_id` with `kwargs`.

    Args:
        response (`str`): the model's response.
        instruction_id (`str`): a key of `INSTRUCTION_CHECKERS` (e.g. ``"detectable_format:title"``).
        **kwargs: the instruction's arguments (e.g. ``num_words=50, relation="at least"``); unknown or
            missing ones raise `ValueError` naming the instruction.
    """
    function = _checker(instruction_id).check
    if not response.strip():
        _call(function, instruction_id, "x", **kwargs)  # still reject bad arguments on empty responses
        return False
    return bool(_call(function, instruction_id, response, **kwargs))


def loose_variants(response: str) -> list[str]:
    """IFEval's eight loose variants: the response, without its first / last / both lines, each also without ``*``."""
    lines = response.split("\n")
    trimmed = [response, "\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    return trimmed + [t.replace("*", "") for t in trimmed]


def follows_instructions(
    response: str, instruction_ids: Sequence[str], kwargs: Sequence[Mapping[str, Any]], loose: bool = False
) -> list[bool]:
    """Per instruction, whether `response` follows it (strict, or loose with `loose=True`)."""
    if len(instruction_ids) != len(kwargs):
        raise ValueError(f"need one kwargs dict per instruction id, got {len(kwargs)} for {len(instruction_ids)}")
    candidates = loose_variants(response) if loose else [response]
    return [
        any(check_instruction(candidate, iid, **dict(kw)) for candidate in candidates if candidate.strip())
        for iid, kw in zip(instruction_ids, kwargs)
    ]


@dataclass
class InstructionFollowingResult:
    """Accuracy of a set of responses, strict and loose, at the prompt and the instruction level.

    Attributes:
        prompt_strict, prompt_loose (`list[bool]`): per prompt, every instruction followed.
        instruction_strict, instruction_loose (`list[list[bool]]`): per prompt, per instruction.
        instruction_ids (`list[list[str]]`): the prompts' instruction ids, aligned with the above.
    """

    prompt_strict: list[bool]
    prompt_loose: list[bool]
    instruction_strict: list[list[bool]]
    instruction_loose: list[list[bool]]
    instruction_ids: list[list[str]]
    summary: dict = field(default_factory=dict)

    def per_type(self, loose: bool = False) -> dict[str, list[bool]]:
        """Outcomes grouped by instruction id (one entry per occurrence, in prompt order)."""
        outcomes = self.instruction_loose if loose else self.instruction_strict
        grouped: dict[str, list[bool]] = {}
        for ids, followed in zip(self.instruction_ids, outcomes):
            for iid, ok in zip(ids, followed):
                grouped.setdefault(iid, []).append(ok)
        return grouped


def evaluate_instruction_following(
    responses: Sequence[str],
    instruction_id_lists: Sequence[Sequence[str]],
    kwargs_lists: Sequence[Sequence[Optional[Mapping[str, Any]]]],
) -> InstructionFollowingResult:
    """Score responses against their prompts' instructions (IFEval's four accuracies).

    Args:
        responses (`Sequence[str]`): one response per prompt.
        instruction_id_lists (`Sequence[Sequence[str]]`): per prompt, its instruction ids.
        kwargs_lists (`Sequence[Sequence[dict]]`): per prompt, per instruction, its arguments (`None` = none).

    Returns:
        `InstructionFollowingResult`; its `summary` holds ``prompt_strict``, ``prompt_loose``,
        ``instruction_strict`` and ``instruction_loose`` accuracies and ``num_prompts``.
    """
    if not len(responses) == len(instruction_id_lists) == len(kwargs_lists):
        raise ValueError(
            f"need one instruction list and one kwargs list per response, got {len(responses)} responses, "
            f"{len(instruction_id_lists)} instruction lists and {len(kwargs_lists)} kwargs lists"
        )
    strict, loose = [], []
    for response, ids, kwargs in zip(responses, instruction_id_lists, kwargs_lists):
        kwargs = [kw or {} for kw in kwargs]
        strict.append(follows_instructions(response, ids, kwargs))
        loose.append(follows_instructions(response, ids, kwargs, loose=True))
    result = InstructionFollowingResult(
        prompt_strict=[all(s) for s in strict],
        prompt_loose=[all(s) for s in loose],
        instruction_strict=strict,
        instruction_loose=loose,
        instruction_ids=[list(ids) for ids in instruction_id_lists],
    )
    n_prompts = max(len(responses), 1)
    n_instructions = max(sum(len(s) for s in strict), 1)
    result.summary = {
        "num_prompts": len(responses),
        "prompt_strict": sum(result.prompt_strict) / n_prompts,
        "prompt_loose": sum(result.prompt_loose) / n_prompts,
        "instruction_strict": sum(map(sum, strict)) / n_instructions,
        "instruction_loose": sum(map(sum, loose)) / n_instructions,
    }
    return result
