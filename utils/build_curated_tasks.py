"""Builds the shipped curated task set from its hand-written sources and the generated share.

    python utils/build_curated_tasks.py      # checks every entry, then rewrites tasks.jsonl

The hand-written entries live in ``hf_reason/data/curated/sources/<category>.yaml``, one file per
category, one list item per entry, with named fields (docs/curated_dataset.md lists them). This
script is the only reader of those files; the library only reads the built
``hf_reason/data/curated/tasks.jsonl``. Each entry is turned into the task schema (the gold report
assembled from its sections by `build_report`), then the generated share is appended
(`GENERATED`, seed 0) and every entry is checked: the schema (`check_entry`), unique ids, at least
`MIN_HAND_WRITTEN_PER_CATEGORY` hand-written entries per category, every introspection hint of a
hand-written entry cited in its Reflection as the hint states it, and every gold completion passing
its own validator (the programming ones run in the sandbox). A failed check raises
`CuratedTaskError` naming the file, the line, the entry and the field, and nothing is written.
"""

import argparse
import dataclasses
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import yaml

from hf_reason.data.curated_tasks import CATEGORIES, CuratedTaskError, build_report, check_entry, generated_entries
from hf_reason.evaluation.reports import parse_report
from hf_reason.evaluation.validators import validate
from hf_reason.file_io import atomic_write


REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCES_DIR = REPO_ROOT / "hf_reason" / "data" / "curated" / "sources"
TASKS_PATH = REPO_ROOT / "hf_reason" / "data" / "curated" / "tasks.jsonl"

# The hand-written core must hold at least this many entries per category (tests assert it too).
MIN_HAND_WRITTEN_PER_CATEGORY = 8
# Generated entries per generatable category: a minority, so the set stays mostly hand-curated.
GENERATED = {"math": 5, "theory_of_mind": 6, "planning": 6}
GENERATED_SEED = 0

# The fields of a source entry and their types, in the order the source files write them.
SOURCE_FIELDS = {
    "id": str,
    "prompt": str,
    "plan": str,
    "steps": list,
    "code": str,
    "monitor": str,
    "diagnosis": str,
    "reflection": str,
    "answer": str,
    "validator": dict,
    "focus_terms": list,
    "hints": list,
    "reflection_memo": list,
}
OPTIONAL_SOURCE_FIELDS = ("code",)
HINT_FIELDS = ("token", "layer", "head", "why")
# A hint without a head is a claim about a layer band only.
OPTIONAL_HINT_FIELDS = ("head",)
MEMO_FIELDS = ("verdict", "note")


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where an entry comes from: a source file and the line its list item starts on, or a generator."""

    source: str
    line: Optional[int]

    def error(self, entry: Optional[str], field: str, message: str) -> CuratedTaskError:
        return CuratedTaskError(self.line, field, message, source=self.source, entry=entry)


class _SourceLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key repeated in one mapping is an error, not a silent overwrite."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping",
                        node.start_mark,
                        f"found the key {key_node.value!r} twice",
                        key_node.start_mark,
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def _relative(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _parse_source_file(path: Path) -> list[tuple[Any, int]]:
    """The list items of a source file with the line each starts on; YAML errors become `CuratedTaskError`."""
    source = _relative(path)
    loader = _SourceLoader(path.read_text(encoding="utf-8"))
    try:
        node = loader.get_single_node()
        items = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise CuratedTaskError(
            None if mark is None else mark.line + 1, "<yaml>", f"{error.context or ''} {error.problem}".strip(), source
        ) from None
    finally:
        loader.dispose()
    if not isinstance(items, list):
        raise CuratedTaskError(1, "<entries>", "must be a YAML list of entries, one item per entry", source)
    return list(zip(items, (item.start_mark.line + 1 for item in node.value)))


def _check_fields(
    value: Any,
    allowed: Sequence[str],
    optional: Sequence[str],
    origin: Origin,
    entry: Optional[str],
    where: str,
) -> None:
    """`value` is a mapping with every key of `allowed` but the `optional` ones, and no other key."""
    if not isinstance(value, dict):
        raise origin.error(entry, where or "<entry>", "must be a mapping of named fields")
    prefix = f"{where}." if where else ""
    for key in value:
        # a misspelt optional field would otherwise vanish without a word
        if key not in allowed:
            raise origin.error(entry, f"{prefix}{key}", f"is not a known field (allowed: {list(allowed)})")
    for key in allowed:
        if key not in optional and key not in value:
            raise origin.error(entry, f"{prefix}{key}", "is required")


def entry_from_source(item: Any, category: str, origin: Origin) -> dict:
    """One source entry (named fields) as a task entry of the shipped schema, its report assembled.

    Checks what the assembly relies on (fields, their types, one memo verdict per step); the rest of
    the schema is `check_entry`'s, run on the result.
    """
    entry_id = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
    _check_fields(item, list(SOURCE_FIELDS), OPTIONAL_SOURCE_FIELDS, origin, entry_id, "")
    for name, kind in SOURCE_FIELDS.items():
        if name not in item:
            continue
        value = item[name]
        if not isinstance(value, kind):
            quote = " (quote it in the YAML)" if kind is str and isinstance(value, (int, float, bool)) else ""
            raise origin.error(entry_id, name, f"must be a {kind.__name__}, got {type(value).__name__}{quote}")
        if kind is str and not value.strip():
            raise origin.error(entry_id, name, "must not be empty")
    if not item["id"].startswith(f"{category}-"):
        raise origin.error(entry_id, "id", f"must start with '{category}-', the category of this file")
    steps = item["steps"]
    if not steps or not all(isinstance(step, str) and step.strip() for step in steps):
        raise origin.error(entry_id, "steps", "must be a non-empty list of non-empty strings")
    for i, hint in enumerate(item["hints"]):
        _check_fields(hint, HINT_FIELDS, OPTIONAL_HINT_FIELDS, origin, entry_id, f"hints[{i}]")
    for i, memo in enumerate(item["reflection_memo"]):
        _check_fields(memo, MEMO_FIELDS, (), origin, entry_id, f"reflection_memo[{i}]")
    if len(item["reflection_memo"]) != len(steps):
        raise origin.error(
            entry_id,
            "reflection_memo",
            f"needs one verdict per step ({len(steps)}), got {len(item['reflection_memo'])}",
        )
    sections = {name: item[name] for name in ("plan", "steps", "monitor", "diagnosis", "reflection", "answer")}
    return {
        "id": item["id"],
        "category": category,
        "source": "hand-written",
        "prompt": item["prompt"],
        "completion": build_report(**sections, code=item.get("code")),
        "answer": item["answer"],
        "validator": item["validator"],
        "introspection": {
            "focus_terms": item["focus_terms"],
            "hints": [
                {"token": hint["token"], "layer": hint["layer"], "head": hint.get("head"), "why": hint["why"]}
                for hint in item["hints"]
            ],
        },
        "reflection_memo": [
            {"section": f"Step {i}", "verdict": memo["verdict"], "note": memo["note"]}
            for i, memo in enumerate(item["reflection_memo"], 1)
        ],
    }


def read_sources(sources_dir: Path = SOURCES_DIR) -> list[tuple[dict, Origin]]:
    """Every hand-written entry, in category order then file order, with where it comes from."""
    sources_dir = Path(sources_dir)
    expected = {f"{category}.yaml" for category in CATEGORIES}
    found = {path.name for path in sources_dir.glob("*.yaml")}
    unexpected, missing = sorted(found - expected), sorted(expected - found)
    if unexpected:
        raise CuratedTaskError(
            None,
            "<file>",
            f"is not a category (expected one of {sorted(expected)})",
            _relative(sources_dir / unexpected[0]),
        )
    if missing:
        raise CuratedTaskError(
            None, "<file>", "is missing: every category has a source file", _relative(sources_dir / missing[0])
        )
    entries = []
    for category in CATEGORIES:
        path = sources_dir / f"{category}.yaml"
        items = _parse_source_file(path)
        if len(items) < MIN_HAND_WRITTEN_PER_CATEGORY:
            raise CuratedTaskError(
                None,
                "<entries>",
                f"holds {len(items)} entries; every category needs at least {MIN_HAND_WRITTEN_PER_CATEGORY} hand-written",
                _relative(path),
            )
        for item, line in items:
            origin = Origin(_relative(path), line)
            entries.append((entry_from_source(item, category, origin), origin))
    return entries


def _check_cited_hints(entry: dict, origin: Origin) -> None:
    """The Reflection cites every hint as the introspection prior states it, parsed as the evaluator parses it."""
    reflection = dict(parse_report(entry["completion"]).sections)["Reflection"]
    cited = {(c.term, c.layer if c.band is None else c.band, c.head) for c in parse_report(reflection).citations}
    for i, hint in enumerate(entry["introspection"]["hints"]):
        if (hint["token"], hint["layer"], hint["head"]) not in cited:
            layer = hint["layer"] if isinstance(hint["layer"], str) else f"L{hint['layer']}"
            head = "" if hint["head"] is None else f" H{hint['head']}"
            raise origin.error(
                entry["id"], f"hints[{i}]", f"the Reflection must cite [focus: {hint['token']} @ {layer}{head}]"
            )
    missing = set(entry["introspection"]["focus_terms"]) - {term for term, _, _ in cited}
    if missing:
        raise origin.error(entry["id"], "focus_terms", f"{sorted(missing)} are not cited in the Reflection")


def check_entries(entries: Sequence[tuple[dict, Origin]]) -> None:
    """Schema, unique ids and hint citations of every entry, then every gold completion against its validator.

    The validators run last because they are the slow part (the programming ones start a sandbox).
    """
    seen = {}
    for entry, origin in entries:
        try:
            check_entry(entry, origin.line, origin.source)
        except CuratedTaskError as error:
            field, reason = error.field, error.reason
            if entry["source"] == "hand-written":
                # named as in the source file, where the introspection fields sit at the top
                field = field.removeprefix("introspection.")
                if field == "completion":
                    reason += " (the report assembled from plan, steps, code, monitor, diagnosis, reflection, answer)"
            raise origin.error(entry["id"], field, reason) from None
        if entry["id"] in seen:
            first = seen[entry["id"]]
            where = first.source + ("" if first.line is None else f", line {first.line}")
            raise origin.error(entry["id"], "id", f"is already the id of the entry at {where}")
        seen[entry["id"]] = origin
        if entry["source"] == "hand-written":
            _check_cited_hints(entry, origin)
    for entry, origin in entries:
        result = validate(entry["completion"], entry["validator"])
        if not result.passed:
            raise origin.error(entry["id"], "validator", f"rejects the gold completion: {result.reason}")


def build_entries(sources_dir: Path = SOURCES_DIR) -> list[dict]:
    """The whole checked set: the hand-written entries, then the generated share; raises `CuratedTaskError`."""
    entries = read_sources(sources_dir)
    for category, count in GENERATED.items():
        origin = Origin(f"generated_entries({category!r}, {count}, seed={GENERATED_SEED})", None)
        entries += [(entry, origin) for entry in generated_entries(category, count, seed=GENERATED_SEED)]
    check_entries(entries)
    return [entry for entry, _ in entries]


def render_jsonl(entries: Sequence[dict]) -> str:
    """The text of tasks.jsonl: one JSON object per line, non-ASCII characters kept as they are."""
    return "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--sources", type=Path, default=SOURCES_DIR, help="folder of the <category>.yaml files")
    parser.add_argument("--out", type=Path, default=TASKS_PATH, help="the JSONL file to (re)write")
    args = parser.parse_args(argv)
    entries = build_entries(args.sources)
    atomic_write(args.out, render_jsonl(entries))
    hand = Counter(entry["category"] for entry in entries if entry["source"] == "hand-written")
    print(
        f"wrote {len(entries)} tasks ({sum(hand.values())} hand-written: "
        + ", ".join(f"{category} {hand[category]}" for category in CATEGORIES)
        + f") to {args.out}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
