"""A generated instruction-following set: a grounded base task plus 1-3 verifiable constraints.

Each row asks to describe an object from a fact sheet under constraints checked by
`hf_reason.evaluation.instruction_following`. The *chosen* response is built by construction from
the facts and verified by those very checks (a row is re-drawn until it passes); the *rejected*
response is a hard negative of one of three kinds:

- ``refusal``: a polite refusal ("I'm sorry, but I can't help with that.");
- ``hallucination``: the chosen response plus one invented fact absent from the fact sheet; it
  still passes every format check, so only grounding tells it apart;
- ``format_violation``: the same content rendered without one of the constraints, verified to fail
  exactly that constraint's check.

Objects are split by name into ``train`` and ``held_out`` so the held-out prompts never share an
object (or its facts) with training. Constraint arguments are kept as JSON strings in the rows
(`kwargs`), since their fields differ per type and Arrow needs one schema per column.
"""

from __future__ import annotations

import json
import random
from typing import Optional

import datasets

from ..evaluation.instruction_following import check_instruction, describe_instruction, follows_instructions


__all__ = [
    "INSTRUCTION_GENERATOR_TYPES",
    "INVENTED_FACTS",
    "NEGATIVE_KINDS",
    "REFUSAL",
    "generate_instruction_tasks",
    "instruction_prompt",
    "unconstrained_example",
]

NEGATIVE_KINDS = ("refusal", "hallucination", "format_violation")

_OBJECTS = {
    "train": ("lamp", "kettle", "bridge", "garden", "violin", "lighthouse", "bicycle", "library", "market", "ferry"),
    "held_out": ("clock", "harbour", "telescope", "orchard", "piano", "windmill"),
}
_COLOURS = ("red", "blue", "green", "grey", "white", "yellow", "black", "brown")
_MATERIALS = ("wood", "steel", "stone", "glass", "brass", "clay")
_TOWNS = ("Oslo", "Lyon", "Porto", "Gdansk", "Bergen", "Turin", "Leeds", "Ghent")
_KEYWORDS = ("quiet", "sturdy", "useful", "simple", "bright", "careful", "local", "famous")
_FORBIDDEN = ("amazing", "very", "really", "awesome", "literally", "basically")
_END_PHRASES = ("Is there anything else I can help with?", "That is all.", "Let me know if you have more questions.")
_START_PHRASES = ("Here is a short description.", "In brief:")
INVENTED_FACTS = (
    "It was designed by Ada Brook in 1874.",
    "It won a national prize in 1962.",
    "Its first owner was Captain Ivo Marsh.",
    "It weighs exactly 812 tonnes.",
)
REFUSAL = "I'm sorry, but I can't help with that request."

# the constraint types the generator composes (the evaluation checks more)
INSTRUCTION_GENERATOR_TYPES = (
    "keywords:existence",
    "keywords:forbidden_words",
    "length_constraints:number_words",
    "length_constraints:number_sentences",
    "length_constraints:number_paragraphs",
    "detectable_content:number_placeholders",
    "detectable_content:postscript",
    "detectable_format:number_bullet_lists",
    "detectable_format:number_highlighted_sections",
    "detectable_format:title",
    "detectable_format:json_format",
    "startend:end_checker",
    "startend:start_checker",
    "startend:quotation",
    "change_case:english_lowercase",
    "change_case:english_capital",
    "punctuation:no_comma",
)
# pairs that cannot hold together in one response
_EXCLUSIVE = {
    "detectable_format:json_format": {
        "length_constraints:number_paragraphs",
        "detectable_content:postscript",
        "detectable_format:number_bullet_lists",
        "detectable_format:title",
        "startend:end_checker",
        "startend:start_checker",
        "startend:quotation",
        "punctuation:no_comma",
        "detectable_content:number_placeholders",
        "detectable_format:number_highlighted_sections",
    },
    "change_case:english_lowercase": {"change_case:english_capital"},
}


def _compatible(chosen: list[str], candidate: str) -> bool:
    return all(
        candidate not in _EXCLUSIVE.get(c, ()) and c not in _EXCLUSIVE.get(candidate, ()) and c != candidate
        for c in chosen
    )


def _facts(name: str, rng: random.Random) -> dict:
    return {
        "colour": rng.choice(_COLOURS),
        "material": rng.choice(_MATERIALS),
        "town": rng.choice(_TOWNS),
        "age": rng.randint(3, 90),
        "keyword_pool": rng.sample(_KEYWORDS, 2),
    }


def _sentences(name: str, facts: dict, rng: random.Random) -> list[str]:
    sentences = [
        f"The {name} is {facts['colour']}, and it is made of {facts['material']}.",
        f"It stands in {facts['town']}, where people see it every day.",
        f"It is {facts['age']} years old.",
    ]
    rng.shuffle(sentences)
    return sentences


def _render(name: str, facts: dict, ids: list[str], kwargs: dict, rng_seed: int, extra: Optional[str] = None) -> str:
    """The response for `ids` (arguments in `kwargs`), from the facts; `extra` adds one sentence to the content."""
    rng = random.Random(rng_seed)
    sentences = _sentences(name, facts, rng)
    if extra:
        sentences.append(extra)
    if "keywords:existence" in ids:
        sentences.append(f"It is {' and '.join(kwargs['keywords:existence']['keywords'])}.")
    if "detectable_content:number_placeholders" in ids:
        sentences.append("Ask [name] at [address] for a visit.")
    if "detectable_format:number_highlighted_sections" in ids:
        sentences = [s.replace(" is ", " is *", 1).replace(".", "*.", 1) if " is " in s else s for s in sentences]
    if "detectable_format:json_format" in ids:
        body = json.dumps({"object": name, "description": " ".join(sentences)})
    else:
        if "length_constraints:number_paragraphs" in ids:
            count = kwargs["length_constraints:number_paragraphs"]["num_paragraphs"]
            chunks = [sentences[i::count] for i in range(count)]
            blocks = [" ".join(chunk) for chunk in chunks]
        else:
            blocks = [" ".join(sentences)]
        if "detectable_format:number_bullet_lists" in ids:
            count = kwargs["detectable_format:number_bullet_lists"]["num_bullets"]
            bullets = ["* " + s for s in _sentences(name, facts, rng)[:count]]
            blocks[-1] += "\nKey facts:\n" + "\n".join(bullets)
        body = "\n***\n".join(blocks) if "length_constraints:number_paragraphs" in ids else "\n\n".join(blocks)
        if "detectable_format:title" in ids:
            body = f"<<The {name}>>\n" + body
        if "startend:start_checker" in ids:
            body = kwargs["startend:start_checker"]["start_phrase"] + "\n" + body
        if "detectable_content:postscript" in ids:
            body += f"\n\nP.S. The {name} is worth a visit."
        if "startend:end_checker" in ids:
            body += "\n" + kwargs["startend:end_checker"]["end_phrase"]
    if "punctuation:no_comma" in ids:
        body = body.replace(", and", " and").replace(",", "")
    if "change_case:english_lowercase" in ids:
        body = body.lower()
    if "change_case:english_capital" in ids:
        body = body.upper()
    if "startend:quotation" in ids:
        body = f'"{body}"'
    return body


def _arguments(instruction_id: str, facts: dict, rng: random.Random) -> dict:
    if instruction_id == "keywords:existence":
        return {"keywords": facts["keyword_pool"]}
    if instruction_id == "keywords:forbidden_words":
        return {"forbidden_words": rng.sample(_FORBIDDEN, 2)}
    if instruction_id == "length_constraints:number_paragraphs":
        return {"num_paragraphs": rng.randint(2, 3)}
    if instruction_id == "detectable_content:number_placeholders":
        return {"num_placeholders": rng.randint(1, 2)}
    if instruction_id == "detectable_content:postscript":
        return {"postscript_marker": "P.S."}
    if instruction_id == "detectable_format:number_bullet_lists":
        return {"num_bullets": rng.randint(2, 3)}
    if instruction_id == "detectable_format:number_highlighted_sections":
        return {"num_highlights": rng.randint(1, 2)}
    if instruction_id == "startend:end_checker":
        return {"end_phrase": rng.choice(_END_PHRASES)}
    if instruction_id == "startend:start_checker":
        return {"start_phrase": rng.choice(_START_PHRASES)}
    return {}  # length constraints are set from the rendered response; the rest take no arguments


def _set_length_arguments(ids: list[str], kwargs: dict, response: str, rng: random.Random) -> None:
    from ..evaluation.instruction_following import split_sentences, split_words

    for instruction_id, count in (
        ("length_constraints:number_words", len(split_words(response))),
        ("length_constraints:number_sentences", len(split_sentences(response))),
    ):
        if instruction_id in ids:
            field = "num_words" if instruction_id.endswith("words") else "num_sentences"
            if rng.random() < 0.5:
                kwargs[instruction_id] = {field: max(1, count - rng.randint(0, 3)), "relation": "at least"}
            else:
                kwargs[instruction_id] = {field: count + rng.randint(1, 5), "relation": "less than"}


def instruction_prompt(name: str, facts: dict, ids: list[str], kwargs: dict) -> str:
    """The prompt: the grounded task, its fact sheet and the constraints in IFEval's wording."""
    sheet = (
        f"colour: {facts['colour']}; material: {facts['material']}; town: {facts['town']}; age: {facts['age']} years"
    )
    constraints = " ".join(describe_instruction(i, **kwargs[i]) for i in ids)
    return f"Describe the {name} using only these facts ({sheet}).{' ' + constraints if constraints else ''}\n"


def unconstrained_example(name: str, facts: dict, seed: int = 0) -> tuple[str, str]:
    """A prompt and response for the grounded task with no constraint: the text a base model is pretrained on.

    Args:
        name (`str`): the object.
        facts (`dict`): its fact sheet (``colour``, ``material``, ``town``, ``age``), e.g. a row's `facts` parsed.
        seed (`int`, defaults to 0): the sentence order.
    """
    return instruction_prompt(name, facts, [], {}), _render(name, facts, [], {}, seed)


def _violation(name, facts, ids, kwargs, seed) -> Optional[str]:
    """The response rendered without one constraint, verified to fail exactly that one; None when none does."""
    for dropped in random.Random(seed).sample(ids, len(ids)):
        kept = [i for i in ids if i != dropped]
        response = _render(name, facts, kept, kwargs, seed)
        followed = follows_instructions(response, ids, [kwargs[i] for i in ids])
        if followed == [i != dropped for i in ids]:
            return response
    return None


def generate_instruction_tasks(
    num_tasks: int,
    split: str = "train",
    min_constraints: int = 1,
    max_constraints: int = 3,
    negative_kinds: tuple[str, ...] = NEGATIVE_KINDS,
    seed: int = 0,
) -> datasets.Dataset:
    """Instruction-following tasks with a verified chosen response and a hard negative.

    Args:
        num_tasks (`int`): rows (>= 1).
        split (`str`, defaults to `"train"`): `"train"` or `"held_out"` (disjoint objects).
        min_constraints, max_constraints (`int`, defaults to 1 and 3): constraints per prompt (1 <= min <= max <= 3).
        negative_kinds (`tuple[str, ...]`, defaults to all of `NEGATIVE_KINDS`): the kinds drawn for `rejected`
            (a format violation falls back to a hallucination when no single constraint can be dropped cleanly).
        seed (`int`, defaults to 0).

    Returns:
        `datasets.Dataset` with `prompt`, `chosen`, `rejected`, `negative_kind`, `instruction_id_list`
        (list of str), `kwargs` (list of JSON strings, one per instruction), `object`, `facts` (JSON).
    """
    if split not in _OBJECTS:
        raise ValueError(f"`split` must be one of {sorted(_OBJECTS)}, got {split!r}")
    if not isinstance(num_tasks, int) or num_tasks < 1:
        raise ValueError(f"`num_tasks` must be an int >= 1, got {num_tasks!r}")
    if not 1 <= min_constraints <= max_constraints <= 3:
        raise ValueError(
            f"need 1 <= min_constraints <= max_constraints <= 3, got {min_constraints}, {max_constraints}"
        )
    unknown = set(negative_kinds) - set(NEGATIVE_KINDS)
    if not negative_kinds or unknown:
        raise ValueError(f"`negative_kinds` must be a non-empty subset of {NEGATIVE_KINDS}, got {negative_kinds!r}")
    rng = random.Random(f"{seed}-{split}")
    rows = {k: [] for k in ("prompt", "chosen", "rejected", "negative_kind", "instruction_id_list", "kwargs")}
    rows.update(object=[], facts=[])
    while len(rows["prompt"]) < num_tasks:
        name = rng.choice(_OBJECTS[split])
        facts = _facts(name, rng)
        ids: list[str] = []
        for _ in range(rng.randint(min_constraints, max_constraints)):
            options = [c for c in INSTRUCTION_GENERATOR_TYPES if _compatible(ids, c)]
            ids.append(rng.choice(options))
        kwargs = {i: _arguments(i, facts, rng) for i in ids}
        render_seed = rng.randrange(2**31)
        chosen = _render(name, facts, ids, kwargs, render_seed)
        _set_length_arguments(ids, kwargs, chosen, rng)
        if not all(check_instruction(chosen, i, **kwargs[i]) for i in ids):
            continue  # an unlucky combination (e.g. a count the content cannot meet): draw again
        kind = rng.choice(negative_kinds)
        rejected = None
        if kind == "format_violation":
            rejected = _violation(name, facts, ids, kwargs, render_seed)
            if rejected is None:
                kind = "hallucination"
        if kind == "hallucination":
            rejected = _render(name, facts, ids, kwargs, render_seed, extra=rng.choice(INVENTED_FACTS))
            if not all(check_instruction(rejected, i, **kwargs[i]) for i in ids):
                kind, rejected = "refusal", None
        if kind == "refusal":
            rejected = REFUSAL
        rows["prompt"].append(instruction_prompt(name, facts, ids, kwargs))
        rows["chosen"].append(chosen)
        rows["rejected"].append(rejected)
        rows["negative_kind"].append(kind)
        rows["instruction_id_list"].append(list(ids))
        rows["kwargs"].append([json.dumps(kwargs[i], sort_keys=True) for i in ids])
        rows["object"].append(name)
        rows["facts"].append(json.dumps({k: v for k, v in facts.items() if k != "keyword_pool"}, sort_keys=True))
    return datasets.Dataset.from_dict(rows)
