"""The under-specified quantity stories: splits, kinds, gold answers in every format, scoring."""

import json
import re

import jsonschema
import pytest
from decoding_testing import our_tokenizer

from hf_reason.data import (
    evaluate_arithmetic,
    generate_clarification_tasks,
    score_clarification,
    story_answer,
    story_answer_schema,
)
from hf_reason.decoding import ARITHMETIC_GBNF, GrammarSpec, compile_grammar


def test_splits_are_disjoint_and_reproducible():
    prompts = {
        split: set(generate_clarification_tasks(200, split=split, seed=1)["prompt"])
        for split in ("train", "validation", "test")
    }
    assert not prompts["train"] & prompts["test"] and not prompts["train"] & prompts["validation"]
    assert not prompts["validation"] & prompts["test"]
    # a different seed draws other stories, never from another split
    other = set(generate_clarification_tasks(200, split="test", seed=2)["prompt"])
    assert not other & prompts["train"]
    assert generate_clarification_tasks(5, seed=3)["prompt"] == generate_clarification_tasks(5, seed=3)["prompt"]


def test_under_specified_stories_lack_exactly_what_is_asked():
    data = generate_clarification_tasks(300, split="validation", seed=0, underspecified_fraction=0.5)
    share = sum(data["needs_clarification"]) / len(data)
    assert 0.4 < share < 0.6
    for row in data:
        story = row["prompt"].split("Q: ", 1)[1]
        asked = re.search(r"do (.*) have\?", story).group(1).replace(" and ", ", ").split(", ")
        given = dict(re.findall(r"(\w+) has (\d+|some) \w+\.", story))
        if row["kind"] == "specified":
            assert all(given.get(name, "some") != "some" for name in asked)
            assert row["answer"] == sum(int(given[name]) for name in asked)
        else:
            assert row["needs_clarification"] and row["completion"] == "<clarify>" and row["answer"] == -1
            assert row["unknown"] in asked
            expected = None if row["kind"] == "missing" else "some"
            assert given.get(row["unknown"]) == expected
    assert not any(generate_clarification_tasks(50, underspecified_fraction=0.0)["needs_clarification"])


def test_gold_answers_comply_with_the_format_grammars_and_score_right():
    tokenizer = our_tokenizer()
    data = generate_clarification_tasks(
        80, split="test", seed=0, underspecified_fraction=0.0, formats=("plain", "json", "arithmetic", "python")
    )
    grammars = {
        "json": compile_grammar(tokenizer, GrammarSpec.json_schema(story_answer_schema())),
        "arithmetic": compile_grammar(tokenizer, GrammarSpec("grammar", ARITHMETIC_GBNF)),
        "python": compile_grammar(tokenizer, GrammarSpec.python()),
    }
    formats = set()
    for row in data:
        formats.add(row["format"])
        completion = row["completion"]
        if row["format"] in grammars:
            matcher = grammars[row["format"]].matcher()
            assert all(matcher.consume(t) for t in tokenizer(completion)["input_ids"]) and matcher.is_accepting()
        if row["format"] == "json":
            jsonschema.validate(json.loads(completion), story_answer_schema())
        if row["format"] == "python":
            namespace = {}
            exec(compile(completion, "<gold>", "exec"), namespace)  # the generator's own gold code
            assert namespace["answer"] == row["answer"]
        else:
            assert story_answer(completion, row["format"]) == row["answer"], completion
    assert formats == {"plain", "json", "arithmetic", "python"}


def test_scoring_helpers():
    scores = score_clarification([True, True, False, False, True], [True, False, True, False, True])
    assert (scores["tp"], scores["fp"], scores["fn"], scores["tn"]) == (2, 1, 1, 1)
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)
    assert score_clarification([False], [False])["f1"] == 0.0
    with pytest.raises(ValueError, match="pair up"):
        score_clarification([True], [True, False])
    assert evaluate_arithmetic("3+4*(2-1)") == 7
    assert evaluate_arithmetic("__import__('os')") is None and evaluate_arithmetic("3+") is None
    assert story_answer('{"answer":7,"unit":"pens"}', "json") == 7 and story_answer("{", "json") is None
    assert story_answer("<thought>3+4=7</thought> 7", "plain") == 7
    with pytest.raises(ValueError, match="`split` must be one of"):
        generate_clarification_tasks(3, split="dev")
