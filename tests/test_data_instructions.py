"""The generated instruction set: verified chosen responses, hard negatives of each kind, disjoint splits."""

import json

import pytest

from hf_reason.data.instructions import INVENTED_FACTS, NEGATIVE_KINDS, REFUSAL, generate_instruction_tasks
from hf_reason.evaluation.instruction_following import follows_instructions


@pytest.fixture(scope="module")
def tasks():
    return generate_instruction_tasks(150, seed=3)


def _followed(response, row):
    return follows_instructions(response, row["instruction_id_list"], [json.loads(k) for k in row["kwargs"]])


def test_every_chosen_response_follows_all_its_constraints(tasks):
    assert all(all(_followed(row["chosen"], row)) for row in tasks)
    assert all(1 <= len(row["instruction_id_list"]) <= 3 for row in tasks)
    assert len({i for row in tasks for i in row["instruction_id_list"]}) >= 12


def test_hard_negatives_are_refusals_hallucinations_and_single_format_violations(tasks):
    kinds = {row["negative_kind"] for row in tasks}
    assert kinds == set(NEGATIVE_KINDS)
    for row in tasks:
        followed = _followed(row["rejected"], row)
        if row["negative_kind"] == "format_violation":
            assert followed.count(False) == 1  # exactly one constraint broken, the rest kept
        elif row["negative_kind"] == "hallucination":
            # format checks cannot tell it apart: it adds a fact the sheet does not hold
            assert all(followed)
            assert any(fact.lower() in row["rejected"].lower() for fact in INVENTED_FACTS)
            assert not any(fact.lower() in row["chosen"].lower() for fact in INVENTED_FACTS)
        else:
            assert row["rejected"] == REFUSAL


def test_held_out_objects_are_disjoint_from_training_and_generation_is_seeded():
    train = generate_instruction_tasks(40, split="train", seed=1)
    held_out = generate_instruction_tasks(40, split="held_out", seed=1)
    assert not set(train["object"]) & set(held_out["object"])
    assert generate_instruction_tasks(40, split="train", seed=1)["prompt"] == train["prompt"]
    with pytest.raises(ValueError, match="negative_kinds"):
        generate_instruction_tasks(2, negative_kinds=("nonsense",))
