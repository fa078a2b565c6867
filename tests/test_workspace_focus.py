"""Introspection supervision: focus claims from the model's own attention, their accuracy, the ToM check."""

import pytest

from hf_reason.data import build_tokenizer
from hf_reason.evaluation.reports import ReportEvaluator, focus_claim_accuracy, parse_report
from hf_reason.workspace import agent_of_question, focus_targets, refers_to_belief, relabel_focus_claims


PROMPT = (
    "Lena and Omar hide a birthday cake in the garage. Omar leaves for the shop. While he is away, Lena moves "
    "the cake to the basement. Omar returns.\nQuestion: Where will Omar look for the cake first?\n"
)
GOLD = (
    "Plan: Find Omar's last observation of the cake.\n"
    "Step 1: Both hid the cake in the garage, so Omar believes it is there.\n"
    "Diagnosis: Answering basement would report reality, not Omar's belief.\n"
    "Reflection: Decisive tokens: [focus: away @ middle H2] for the missed move and [focus: garage @ late].\n"
    "Answer: garage"
)


def test_relabel_replaces_claims_in_order_and_drops_extra_ones():
    targets = [{"term": "garage", "layer": 0, "head": 1}]
    out = relabel_focus_claims(GOLD, targets)
    assert "Reflection: Decisive tokens: [focus: garage @ L0 H1] for the missed move and." in out
    assert [c.term for c in parse_report(out).citations] == ["garage"]
    assert relabel_focus_claims(GOLD, []) == GOLD


def test_the_tom_check_wants_the_agents_belief_in_the_reflection():
    agent = agent_of_question(PROMPT)
    assert agent == "Omar"
    assert refers_to_belief(GOLD, agent)
    places_only = "Plan: x\nReflection: The cake went from the garage to the basement.\nAnswer: garage"
    assert not refers_to_belief(places_only, agent)
    assert refers_to_belief("Plan: x\nReflection: Omar never saw the move.\nAnswer: garage", agent)
    assert not refers_to_belief("Plan: x\nStep 1: Omar believes garage.\nAnswer: garage", agent)


def test_claims_taken_from_the_attention_are_true_of_it():
    from grpo_testing import tiny_meta_attention

    tokenizer = build_tokenizer(vocab_size=600, texts=[PROMPT + GOLD] * 4)  # fits the 128 positions
    model = tiny_meta_attention(tokenizer)
    targets = focus_targets(model, tokenizer, PROMPT, GOLD, top=2)
    assert 1 <= len(targets) <= 2 and all(t["term"] in PROMPT for t in targets)
    assert targets == sorted(targets, key=lambda t: -t["weight"])
    relabelled = relabel_focus_claims(GOLD, targets)
    ids = tokenizer(PROMPT + GOLD, return_tensors="pt", add_special_tokens=False)["input_ids"]
    start = len(tokenizer(PROMPT, add_special_tokens=False)["input_ids"])
    introspection = model.introspect(ids, start=start, top_k=8).to_json(tokenizer)
    # read from this attention, so every claim holds against it (the gold claims need not)
    assert focus_claim_accuracy(relabelled, introspection) == 1.0
    assert focus_claim_accuracy("Plan: x\nAnswer: 1", introspection) is None
    assert focus_claim_accuracy(relabelled, None) is None
    scores = ReportEvaluator().score(relabelled, prompt=PROMPT, introspection=introspection)
    assert scores["focus_accuracy"] == 1.0


@pytest.mark.parametrize("question", ["Where does Mia think the ball is?", "What does Ken believe?"])
def test_agent_of_other_question_forms(question):
    assert agent_of_question(question) in ("Mia", "Ken")


def test_a_prompt_longer_than_the_context_gives_no_targets():
    from grpo_testing import tiny_meta_attention

    tokenizer = build_tokenizer(vocab_size=300, texts=[PROMPT])
    model = tiny_meta_attention(tokenizer)
    assert focus_targets(model, tokenizer, PROMPT * 3, GOLD) == []
