"""The curated reasoning task set: loader, schema check and generated entries.

The set ships as JSONL package data (``hf_reason/data/curated/tasks.jsonl``, built from the
hand-written sources by ``utils/build_curated_tasks.py``); the schema and the report format are
documented in docs/curated_dataset.md. `load_curated_tasks` checks every line and returns a
`datasets.Dataset` (nested fields `validator`, `introspection` and `reflection_memo` are JSON
strings there, so that rows with different validator configurations share one Arrow schema).
`generated_entries` builds more entries of the generatable categories (math, theory_of_mind,
planning) in the same schema.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any, Optional

import datasets


__all__ = [
    "CATEGORIES",
    "CuratedTaskError",
    "build_report",
    "check_entry",
    "generated_entries",
    "load_curated_tasks",
    "read_curated_jsonl",
]

CATEGORIES = ("math", "diagnostics", "planning", "theory_of_mind", "programming", "narrative")
_SECTION_ORDER_RE = re.compile(r"^(Plan|Step \d+|Monitor|Diagnosis|Reflection|Answer):", re.MULTILINE)
_LAYER_HINTS = ("early", "middle", "late")
_VERDICTS = ("confirmed", "critique")
_ENTRY_KEYS = (
    "id",
    "category",
    "source",
    "prompt",
    "completion",
    "answer",
    "validator",
    "introspection",
    "reflection_memo",
)


class CuratedTaskError(ValueError):
    """A malformed entry: names the file, the line, the entry (where its id is known) and the field.

    Attributes `source`, `line` (`None` for what has no line, e.g. a whole file), `entry`, `field`
    and `reason` (the message without the location) let a caller report or re-locate it.
    """

    def __init__(
        self,
        line: Optional[int],
        field: str,
        message: str,
        source: str = "tasks.jsonl",
        entry: Optional[str] = None,
    ):
        where = source + ("" if line is None else f", line {line}") + ("" if entry is None else f", entry `{entry}`")
        super().__init__(f"{where}, field `{field}`: {message}")
        self.source, self.line, self.entry, self.field, self.reason = source, line, entry, field, message


def build_report(
    plan: str,
    steps: Sequence[str],
    monitor: str,
    diagnosis: str,
    reflection: str,
    answer: str,
    code: Optional[str] = None,
) -> str:
    """The gold report text in the documented format (one section per line, code fenced after the steps)."""
    lines = [f"Plan: {plan}"] + [f"Step {i}: {s}" for i, s in enumerate(steps, 1)]
    if code is not None:
        lines.append("```python\n" + code.strip("\n") + "\n```")
    lines += [f"Monitor: {monitor}", f"Diagnosis: {diagnosis}", f"Reflection: {reflection}", f"Answer: {answer}"]
    return "\n".join(lines)


def check_entry(entry: Any, line: int = 0, source: str = "tasks.jsonl") -> dict:
    """Raises `CuratedTaskError` (line + field) unless `entry` follows the schema; returns it."""
    from ..evaluation.validators import check_validator_spec, extract_final_answer

    def fail(field, message):
        raise CuratedTaskError(line, field, message, source)

    if not isinstance(entry, dict):
        fail("<entry>", "must be a JSON object")

    def known_keys(value: dict, where: str, allowed: Sequence[str]):
        # a misspelt optional field would otherwise vanish without a word
        for key in value:
            if key not in allowed:
                fail(f"{where}{key}", f"is not a known key (allowed: {list(allowed)})")

    known_keys(entry, "", _ENTRY_KEYS)
    for name, kind in (
        ("id", str),
        ("category", str),
        ("source", str),
        ("prompt", str),
        ("completion", str),
        ("answer", str),
        ("validator", dict),
        ("introspection", dict),
        ("reflection_memo", list),
    ):
        if name not in entry:
            fail(name, "is required")
        if not isinstance(entry[name], kind):
            fail(name, f"must be a {kind.__name__}, got {type(entry[name]).__name__}")
        if kind is str and not entry[name].strip():
            fail(name, "must not be empty")
    if not re.fullmatch(r"[a-z_]+-[\w-]+", entry["id"]):
        fail("id", f"must look like '<category>-<name>' (lowercase prefix), got {entry['id']!r}")
    if entry["category"] not in CATEGORIES:
        fail("category", f"must be one of {list(CATEGORIES)}, got {entry['category']!r}")
    if entry["source"] not in ("hand-written",) and not entry["source"].startswith("generated:"):
        fail("source", f"must be 'hand-written' or 'generated:<generator>', got {entry['source']!r}")
    names = _SECTION_ORDER_RE.findall(entry["completion"])
    kinds = ["Step" if n.startswith("Step") else n for n in names]
    expected = ["Plan", "Step", "Monitor", "Diagnosis", "Reflection", "Answer"]
    collapsed = [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1] or k != "Step"]
    if collapsed != expected:
        fail(
            "completion",
            f"sections must be Plan, Step 1.., Monitor, Diagnosis, Reflection, Answer in that order, got {names}",
        )
    if extract_final_answer(entry["completion"]) != entry["answer"].strip():
        fail("answer", "must equal the completion's final `Answer:` line")
    problem = check_validator_spec(entry["validator"])
    if problem:
        fail(problem[0], problem[1])
    intro = entry["introspection"]
    known_keys(intro, "introspection.", ("focus_terms", "hints"))
    terms = intro.get("focus_terms")
    if not isinstance(terms, list) or not terms or not all(isinstance(t, str) and t for t in terms):
        fail("introspection.focus_terms", "must be a non-empty list of strings")
    prompt = entry["prompt"].lower()
    for term in terms:
        if term.lower() not in prompt:
            fail("introspection.focus_terms", f"term {term!r} does not occur in the prompt")
    hints = intro.get("hints")
    if not isinstance(hints, list) or not hints:
        fail("introspection.hints", "must be a non-empty list")
    for i, hint in enumerate(hints):
        where = f"introspection.hints[{i}]"
        if not isinstance(hint, dict) or not isinstance(hint.get("token"), str):
            fail(where, "must be an object with a string `token`")
        known_keys(hint, f"{where}.", ("token", "layer", "head", "why"))
        if hint["token"].lower() not in prompt:
            fail(f"{where}.token", f"{hint['token']!r} does not occur in the prompt")
        layer = hint.get("layer")
        if not (layer in _LAYER_HINTS or (isinstance(layer, int) and not isinstance(layer, bool) and layer >= 0)):
            fail(f"{where}.layer", f"must be one of {list(_LAYER_HINTS)} or an int >= 0, got {layer!r}")
        head = hint.get("head")
        if head is not None and not (isinstance(head, int) and head >= 0):
            fail(f"{where}.head", f"must be null or an int >= 0, got {head!r}")
        if not isinstance(hint.get("why"), str) or not hint["why"]:
            fail(f"{where}.why", "must be a non-empty string")
    if not entry["reflection_memo"]:
        fail("reflection_memo", "must critique or confirm at least one section")
    for i, item in enumerate(entry["reflection_memo"]):
        where = f"reflection_memo[{i}]"
        if not isinstance(item, dict):
            fail(where, "must be an object {section, verdict, note}")
        known_keys(item, f"{where}.", ("section", "verdict", "note"))
        if item.get("section") not in names:
            fail(f"{where}.section", f"must name a section of the completion {names}, got {item.get('section')!r}")
        if item.get("verdict") not in _VERDICTS:
            fail(f"{where}.verdict", f"must be one of {list(_VERDICTS)}, got {item.get('verdict')!r}")
        if not isinstance(item.get("note"), str) or not item["note"]:
            fail(f"{where}.note", "must be a non-empty string")
    step_names = [n for n in names if n.startswith("Step")]
    covered = {item["section"] for item in entry["reflection_memo"]}
    if not set(step_names) <= covered:
        fail("reflection_memo", f"must cover every step; missing {sorted(set(step_names) - covered)}")
    return entry


def read_curated_jsonl(path: Optional[str] = None) -> list[dict]:
    """Reads and checks a task JSONL file (default: the shipped set); raises `CuratedTaskError`."""
    if path is None:
        text = resources.files("hf_reason.data").joinpath("curated/tasks.jsonl").read_text(encoding="utf-8")
        source = "hf_reason/data/curated/tasks.jsonl"
    else:
        source = os.path.basename(path)
        with open(path, "rb") as handle:
            data = handle.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            raise CuratedTaskError(line, "<encoding>", f"not UTF-8 (byte {data[error.start]:#04x})", source) from None
    entries, seen = [], {}
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except json.JSONDecodeError as error:
            raise CuratedTaskError(
                number, "<json>", f"invalid JSON ({error.msg} at column {error.colno})", source
            ) from None
        check_entry(entry, number, source)
        if entry["id"] in seen:
            raise CuratedTaskError(number, "id", f"duplicate of line {seen[entry['id']]}", source)
        seen[entry["id"]] = number
        entries.append(entry)
    return entries


def load_curated_tasks(path: Optional[str] = None, categories: Optional[Sequence[str]] = None) -> datasets.Dataset:
    """The curated task set as a `datasets.Dataset` (nested fields as JSON strings).

    Args:
        path (`str`, *optional*): a JSONL file in the same schema; defaults to the shipped set.
        categories (list of `str`, *optional*): keep only these categories (each one of `CATEGORIES`).
    """
    if categories is not None:
        bad = [c for c in categories if c not in CATEGORIES]
        if bad:
            raise ValueError(f"`categories` must be among {list(CATEGORIES)}, got {bad}")
    entries = read_curated_jsonl(path)
    if categories is not None:
        entries = [e for e in entries if e["category"] in categories]
    columns = ["id", "category", "source", "prompt", "completion", "answer"]
    data = {c: [e[c] for e in entries] for c in columns}
    for nested in ("validator", "introspection", "reflection_memo"):
        data[nested] = [json.dumps(e[nested]) for e in entries]
    return datasets.Dataset.from_dict(data)


def _memo(steps: Sequence[str], notes: Sequence[str]) -> list[dict]:
    return [{"section": f"Step {i}", "verdict": "confirmed", "note": n} for i, n in enumerate(notes, 1)]


def _math_entries(n: int, seed: int) -> list[dict]:
    from .arithmetic import generate_arithmetic, solve_steps

    out = []
    for i, row in enumerate(generate_arithmetic(n, min_ops=2, max_ops=3, max_value=12, seed=seed)):
        expression = row["prompt"].split("Q:", 1)[1].split("=", 1)[0].strip()
        tokens = expression.split()
        lines, value = solve_steps([int(t) for t in tokens[::2]], tokens[1::2])
        has_mul = "*" in tokens[1::2]
        steps = [f"{line}." for line in lines]
        first_op = "*" if has_mul else tokens[1]
        report = build_report(
            plan="Multiply before adding or subtracting, then work left to right, one operation per step.",
            steps=steps,
            monitor=f"Each step uses the result of the previous one; {len(lines)} operations for {len(lines)} operators.",
            diagnosis="The usual slip is evaluating strictly left to right and ignoring precedence."
            if has_mul
            else "No multiplication, so left to right is correct; the risk is a sign error on subtraction.",
            reflection=f"Step 1 was chosen by the operator [focus: {first_op} @ middle]; the final step combines "
            f"the partial results [focus: {tokens[0]} @ late]. All steps confirmed.",
            answer=str(value),
        )
        out.append(
            {
                "id": f"math-gen-{seed}-{i:03d}",
                "category": "math",
                "source": "generated:arithmetic",
                "prompt": f"Compute {expression}. Show one operation per step.",
                "completion": report,
                "answer": str(value),
                "validator": {"kind": "numeric", "config": {"answer": value}},
                "introspection": {
                    "focus_terms": [first_op, tokens[0]],
                    "hints": [
                        {
                            "token": first_op,
                            "layer": "middle",
                            "head": None,
                            "why": "the operator with the highest precedence decides the first step",
                        },
                        {
                            "token": tokens[0],
                            "layer": "late",
                            "head": None,
                            "why": "the leading operand enters only in the last combination",
                        },
                    ],
                },
                "reflection_memo": _memo(steps, [f"{line} is exact." for line in lines]),
            }
        )
    return out


def _tom_entries(n: int, seed: int) -> list[dict]:
    from .theory_of_mind import generate_tom_stories

    out = []
    for i, row in enumerate(generate_tom_stories(n, seed=seed)):
        a, b = row["agents"]
        obj, answer, order = row["object"], row["answer"], row["order"]
        # the placement, then every move and exit in story order: the events that change beliefs
        steps = [row["trace"][2]] + [s for s in row["trace"][3:] if " moved the " in s or " exited " in s]
        kind = ["reality", "first-order belief", "second-order belief"][order]
        report = build_report(
            plan=f"Track where the {obj} is and who was present at each move; the question asks a {kind}.",
            steps=[s.rstrip(".") + "." for s in steps],
            monitor="Beliefs change only for agents present at a move; I checked presence before every move.",
            diagnosis=(
                "The trap is answering with the real location for a belief question."
                if order
                else "Beliefs do not matter here: only the last move counts."
            ),
            reflection=f"The answer hinges on [focus: {answer} @ late] and on who saw the moves "
            f"[focus: {a} @ middle]. Steps confirmed.",
            answer=answer,
        )
        prompt = row["story"] + "\nQuestion: " + row["question"]
        out.append(
            {
                "id": f"theory_of_mind-gen-{seed}-{i:03d}",
                "category": "theory_of_mind",
                "source": "generated:tomi",
                "prompt": prompt,
                "completion": report,
                "answer": answer,
                "validator": {
                    "kind": "tom_answer",
                    "config": {"answer": answer, "distractors": row["distractors"], "order": order},
                },
                "introspection": {
                    "focus_terms": [answer, a],
                    "hints": [
                        {
                            "token": answer,
                            "layer": "late",
                            "head": None,
                            "why": "the container named in the deciding sentence",
                        },
                        {
                            "token": a,
                            "layer": "middle",
                            "head": None,
                            "why": "whose presence decides which moves were seen",
                        },
                    ],
                },
                "reflection_memo": _memo(steps, [f"'{s}' read correctly." for s in steps]),
            }
        )
    return out


def _planning_entries(n: int, seed: int, kind: str) -> list[dict]:
    from .planning import generate_planning

    out = []
    for i, row in enumerate(generate_planning(n, kind=kind, num_items=3 if kind == "blocks" else 4, seed=seed)):
        puzzle = json.loads(row["puzzle"])
        steps = [s + "." for s in row["steps"]]
        first = row["steps"][0].split()[1] if kind == "blocks" else row["steps"][0]
        token = "Goal" if kind == "blocks" else "Rules"
        report = build_report(
            plan=(
                "Free the blocks the goal needs lower down, then build the goal stacks bottom-up."
                if kind == "blocks"
                else "Repeatedly take the alphabetically first task whose prerequisites are done."
            ),
            steps=steps,
            monitor="Each move/task was legal when taken; I re-checked the state after each one.",
            diagnosis=(
                "A longer plan would also reach the goal; breadth-first search confirms this one is shortest."
                if kind == "blocks"
                else "Taking a task before its prerequisite would break the schedule."
            ),
            reflection=f"The first step was chosen from [focus: {token} @ middle] and [focus: {first} @ late]. "
            "All steps confirmed.",
            answer=row["answer"],
        )
        out.append(
            {
                "id": f"planning-gen-{kind}-{seed}-{i:03d}",
                "category": "planning",
                "source": f"generated:{kind}",
                "prompt": row["prompt"],
                "completion": report,
                "answer": row["answer"],
                "validator": {"kind": "plan_check", "config": {"puzzle": puzzle, "require_optimal": kind == "blocks"}},
                "introspection": {
                    "focus_terms": [token, first],
                    "hints": [
                        {"token": token, "layer": "middle", "head": None, "why": "the constraint list"},
                        {"token": first, "layer": "late", "head": None, "why": "the item moved first"},
                    ],
                },
                "reflection_memo": _memo(steps, [f"'{s}' is legal in the state before it." for s in steps]),
            }
        )
    return out


def generated_entries(category: str, num_examples: int, seed: int = 0) -> list[dict]:
    """New checked entries for a generatable category: ``math``, ``theory_of_mind`` or ``planning``.

    Planning alternates blocks-world and scheduling puzzles. Every entry passes `check_entry`.
    """
    if category not in ("math", "theory_of_mind", "planning"):
        raise ValueError(f"`category` must be 'math', 'theory_of_mind' or 'planning', got {category!r}")
    if not isinstance(num_examples, int) or num_examples < 1:
        raise ValueError(f"`num_examples` must be an int >= 1, got {num_examples!r}")
    if category == "math":
        entries = _math_entries(num_examples, seed)
    elif category == "theory_of_mind":
        entries = _tom_entries(num_examples, seed)
    else:
        half = (num_examples + 1) // 2
        entries = _planning_entries(half, seed, "blocks")
        if num_examples - half:
            entries += _planning_entries(num_examples - half, seed, "schedule")
    for entry in entries:
        check_entry(entry, source=f"generated:{category}")
    return entries
