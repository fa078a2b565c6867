"""The curated task set: schema, loading, gold completions that pass their own validators, generators."""

import copy
import json
import re
from collections import Counter

import pytest

from hf_reason.data.curated_tasks import (
    CATEGORIES,
    CuratedTaskError,
    generated_entries,
    load_curated_tasks,
    read_curated_jsonl,
)
from hf_reason.data.planning import check_plan, generate_planning, solve_blocks
from hf_reason.data.theory_of_mind import generate_tom_stories, simulate_story
from hf_reason.evaluation.reports import ReportEvaluator
from hf_reason.evaluation.validators import validate


@pytest.fixture(scope="module")
def entries():
    return read_curated_jsonl()


MIN_HAND_WRITTEN_PER_CATEGORY = 8


def _hand_written(entries):
    return [e for e in entries if e["source"] == "hand-written"]


def _section(completion, name):
    return re.search(rf"^{name}: (.*)$", completion, re.MULTILINE).group(1)


def test_set_size_categories_and_hand_written_core(entries):
    assert 70 <= len(entries) <= 80
    counts = Counter(e["category"] for e in entries)
    assert set(counts) == set(CATEGORIES)
    hand = Counter(e["category"] for e in _hand_written(entries))
    short = {c: hand[c] for c in CATEGORIES if hand[c] < MIN_HAND_WRITTEN_PER_CATEGORY}
    assert not short, f"categories below {MIN_HAND_WRITTEN_PER_CATEGORY} hand-written entries: {short}"
    assert sum(hand.values()) > 2 * (len(entries) - sum(hand.values())), "the set must be mostly hand-curated"
    assert len({e["id"] for e in entries}) == len(entries)


def test_hand_written_reports_are_task_specific(entries):
    hand = _hand_written(entries)
    for name in ("Plan", "Monitor", "Diagnosis", "Reflection"):
        lines = Counter(_section(e["completion"], name) for e in hand)
        assert max(lines.values()) == 1, f"{name} lines repeated across hand-written entries: {lines.most_common(1)}"
    notes = Counter(m["note"] for e in hand for m in e["reflection_memo"])
    assert max(notes.values()) == 1, f"reflection memo notes reused: {notes.most_common(1)}"
    for e in hand:
        steps = re.findall(r"^(Step \d+):", e["completion"], re.MULTILINE)
        assert [m["section"] for m in e["reflection_memo"]] == steps, e["id"]


def test_hand_written_reflection_cites_each_introspection_hint(entries):
    for e in _hand_written(entries):
        reflection = _section(e["completion"], "Reflection")
        for h in e["introspection"]["hints"]:
            layer = h["layer"] if isinstance(h["layer"], str) else f"L{h['layer']}"
            head = f" H{h['head']}" if h["head"] is not None else ""
            assert f"[focus: {h['token']} @ {layer}{head}]" in reflection, (e["id"], h)
        assert len(e["introspection"]["hints"]) >= 2, e["id"]
        assert any(h["head"] is not None for h in e["introspection"]["hints"]), f"{e['id']}: no head hint"


def test_hand_written_theory_of_mind_covers_second_order_and_programming_runs_tests(entries):
    hand = _hand_written(entries)
    orders = Counter(e["validator"]["config"]["order"] for e in hand if e["category"] == "theory_of_mind")
    assert orders[2] >= 4 and orders[1] >= 2, orders
    assert all(e["validator"]["kind"] == "python_tests" for e in hand if e["category"] == "programming")


def test_gold_reports_score_full_marks_with_the_report_evaluator(entries):
    evaluator = ReportEvaluator(entries)
    for entry in entries:
        scores = evaluator.score(entry["completion"], entry["id"])
        assert not scores["warnings"], (entry["id"], scores["warnings"])
        for name in ("prefix_quality", "coverage", "validator", "reflection_alignment", "tool_sanity"):
            assert scores[name] == 1.0, (entry["id"], name, scores[name])
        assert scores["repetition"] >= 0.95, (entry["id"], scores["repetition"])


def test_trap_answers_fail_their_validators(entries):
    """The traps named in the Diagnosis lines (a distractor location, another option) are rejected."""
    checked = 0
    for entry in entries:
        validator = entry["validator"]
        head = entry["completion"].rsplit("Answer:", 1)[0]
        if validator["kind"] == "tom_answer":
            wrong = [f"the {d}" for d in validator["config"]["distractors"]]
        elif validator["kind"] == "multiple_choice":
            wrong = [k for k in validator["config"]["choices"] if k != validator["config"]["answer"]]
        else:
            continue
        for answer in wrong:
            assert not validate(head + "Answer: " + answer, validator).passed, (entry["id"], answer)
            checked += 1
    assert checked >= 30


@pytest.mark.parametrize(
    "task_id, good, bad",
    [
        ("programming-merge-intervals", "start <= merged[-1][1]", "start < merged[-1][1]"),
        (
            "programming-top-words",
            "sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:k]",
            "counts.most_common(k)",
        ),
        (
            "programming-first-index",
            "from bisect import bisect_left",
            "from bisect import bisect_right as bisect_left",
        ),
        ("programming-mutable-default", "def add_item(item, bucket=None):", "def add_item(item, bucket=[]):"),
    ],
)
def test_buggy_code_named_in_diagnosis_fails_in_sandbox(entries, task_id, good, bad):
    entry = next(e for e in entries if e["id"] == task_id)
    assert good in entry["completion"]
    result = validate(entry["completion"].replace(good, bad), entry["validator"])
    assert not result.passed and re.search(r"test \d+ failed", result.reason), result.reason


def test_every_gold_completion_passes_its_validator(entries):
    for entry in entries:
        result = validate(entry["completion"], entry["validator"])
        assert result.passed, (entry["id"], result.reason)


def test_gold_completion_fails_with_a_wrong_answer(entries):
    for entry in entries:
        if entry["validator"]["kind"] == "python_tests":
            continue
        wrong = entry["completion"].rsplit("Answer:", 1)[0] + "Answer: 123456789"
        assert not validate(wrong, entry["validator"]).passed, entry["id"]


def test_loads_as_dataset_with_json_columns():
    dataset = load_curated_tasks(categories=["programming"])
    assert dataset.num_rows >= 4 and set(dataset["category"]) == {"programming"}
    row = dataset[0]
    assert json.loads(row["validator"])["kind"] == "python_tests"
    assert json.loads(row["introspection"])["hints"][0]["token"]
    with pytest.raises(ValueError, match="categories"):
        load_curated_tasks(categories=["poetry"])


def _write(tmp_path, lines):
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda e: e.pop("prompt"), "prompt"),
        (lambda e: e.update(category="poetry"), "category"),
        (lambda e: e["validator"].update(kind="regex"), "validator.kind"),
        (lambda e: e["validator"]["config"].pop("answer"), "validator.config.answer"),
        (lambda e: e.update(completion=e["completion"].replace("Monitor:", "Watch:")), "completion"),
        (lambda e: e.update(answer="something else"), "answer"),
        (lambda e: e["introspection"]["hints"][0].update(layer="deep"), "introspection.hints[0].layer"),
        (lambda e: e["introspection"].update(focus_terms=["zebra-not-in-prompt"]), "introspection.focus_terms"),
        (lambda e: e["reflection_memo"][0].update(verdict="maybe"), "reflection_memo[0].verdict"),
        (lambda e: e["reflection_memo"].pop(), "reflection_memo"),
        # unknown keys (e.g. a misspelt optional field) are named, not silently ignored
        (lambda e: e.update(promt="typo"), "promt"),
        (lambda e: e["introspection"].update(focus_term=["x"]), "introspection.focus_term"),
        (lambda e: e["introspection"]["hints"][0].update(weight=0.5), "introspection.hints[0].weight"),
        (lambda e: e["reflection_memo"][0].update(score=1), "reflection_memo[0].score"),
        (lambda e: e["validator"].update(comment="x"), "validator.comment"),
        (lambda e: e["validator"]["config"].update(abs_tolerance=0.1), "validator.config.abs_tolerance"),
    ],
)
def test_schema_check_names_line_and_field(entries, tmp_path, mutate, field):
    good = entries[0]
    bad = copy.deepcopy(good)
    mutate(bad)
    bad["id"] = "math-bad"
    path = _write(tmp_path, [json.dumps(good), json.dumps(bad)])
    with pytest.raises(CuratedTaskError) as info:
        read_curated_jsonl(path)
    assert info.value.line == 2 and info.value.field == field
    assert "line 2" in str(info.value) and f"`{field}`" in str(info.value)
    if "not a known key" in str(info.value):
        assert "allowed" in str(info.value)


def test_schema_check_rejects_bad_json_and_duplicates(entries, tmp_path):
    with pytest.raises(CuratedTaskError, match="line 2, field `<json>`"):
        read_curated_jsonl(_write(tmp_path, [json.dumps(entries[0]), "{not json"]))
    with pytest.raises(CuratedTaskError, match="line 2, field `id`: duplicate of line 1"):
        read_curated_jsonl(_write(tmp_path, [json.dumps(entries[0])] * 2))
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(json.dumps(entries[0]).encode() + b"\n" + '{"id": "caf\u00e9"}'.encode("latin-1"))
    with pytest.raises(CuratedTaskError, match=r"latin1.jsonl, line 2, field `<encoding>`: not UTF-8 \(byte 0xe9\)"):
        read_curated_jsonl(str(latin1))


def test_tom_simulation_first_and_second_order():
    events = [("enter", "S"), ("enter", "A"), ("place", "basket"), ("exit", "S"), ("move", "A", "box")]
    beliefs = simulate_story(events, ["S", "A"])
    assert beliefs["reality"] == "box"
    assert beliefs["first"] == {"S": "basket", "A": "box"}
    assert beliefs["second"]["A"]["S"] == "basket"  # A saw S leave before the move
    stories = generate_tom_stories(40, seed=3)
    assert set(stories["order"]) == {0, 1, 2}
    assert stories[:5] == generate_tom_stories(5, seed=3)[:5]
    # second-order false belief: B leaves after moving it, A moves it back unseen
    events = [("enter", "A"), ("enter", "B"), ("place", "c1"), ("move", "B", "c2"), ("exit", "B"), ("move", "A", "c1")]
    beliefs = simulate_story(events, ["A", "B"])
    assert beliefs["reality"] == "c1" and beliefs["second"]["B"]["A"] == "c2" and beliefs["first"]["B"] == "c2"


def test_planning_solver_and_checker():
    puzzle = {"type": "blocks", "initial": [["A", "B", "C"]], "goal": [["C", "B", "A"]]}
    assert len(solve_blocks(puzzle["initial"], puzzle["goal"])) == 3
    assert check_plan(puzzle, "move C onto table; move B onto C; move A onto B").valid
    assert not check_plan(puzzle, "move A onto table").valid  # A is not clear
    longer = "move C onto table; move B onto table; move B onto C; move A onto B"
    assert check_plan(puzzle, longer).valid and not check_plan(puzzle, longer, require_optimal=True).valid
    schedule = {"type": "schedule", "tasks": {"A": [], "B": ["A"], "C": ["A"]}}
    assert check_plan(schedule, "A, C, B").valid and not check_plan(schedule, "B, A, C").valid
    for kind in ("blocks", "schedule"):
        data = generate_planning(5, kind=kind, num_items=4, seed=1)
        for row in data:
            assert check_plan(json.loads(row["puzzle"]), row["answer"], require_optimal=True).valid
    with pytest.raises(ValueError, match="num_items"):
        generate_planning(1, kind="blocks", num_items=9)


def test_generated_entries_grow_the_set():
    for category in ("math", "theory_of_mind", "planning"):
        new = generated_entries(category, 4, seed=11)
        assert len(new) == 4
        for entry in new:
            assert validate(entry["completion"], entry["validator"]).passed
    with pytest.raises(ValueError, match="category"):
        generated_entries("narrative", 2)
