"""Multi-pass reflection: reward cases, the vote, the passes and the memory between visits."""

import json

import pytest

from hf_reason.workspace import (
    REFLECTION_REWARDS,
    EpisodicMemory,
    ReflectionConfig,
    ReflectionReward,
    attended_terms,
    majority_vote,
    reflection_outcome,
    reflection_prompt,
    reflection_training_row,
    run_reflection,
)
from hf_reason.workspace.reflection import Attempt


VALIDATOR = {"kind": "numeric", "config": {"answer": 391}}
WRONG = "Plan: multiply.\nStep 1: 17 * 23 = 381.\nAnswer: 381"
RIGHT = "Reflection: Step 1 dropped a carry; 17 * 20 + 17 * 3 = 391.\nAnswer: 391"


@pytest.mark.parametrize(
    "previous, revision, outcome",
    [
        (WRONG, RIGHT, "fixed"),
        (WRONG, WRONG, "verbatim"),
        (WRONG, "Reflection: I checked Step 1 again.\nAnswer: 381", "repeated"),
        (WRONG, "Reflection: I am not sure Step 1 is right.\nAnswer: 381", "uncertain"),
        (WRONG, "Reflection: redo.\nAnswer: 392", "changed"),
        (RIGHT, "Reflection: fine.\nAnswer: 391", "kept"),
        (RIGHT, "Reflection: hmm.\nAnswer: 390", "broke"),
    ],
)
def test_reflection_reward_cases(previous, revision, outcome):
    reward = ReflectionReward()
    assert reflection_outcome(previous, revision, previous == RIGHT, "391" in revision) == outcome
    got = reward(["p"], [revision], previous_completion=[previous], validator=[json.dumps(VALIDATOR)])
    assert got == [REFLECTION_REWARDS[outcome]]


def test_reward_order_prefers_fixing_then_doubt_over_repeating():
    r = REFLECTION_REWARDS
    assert r["fixed"] > r["uncertain"] > r["changed"] > r["repeated"] > r["verbatim"]
    assert ReflectionReward({"fixed": 2.0}).rewards["fixed"] == 2.0
    with pytest.raises(ValueError, match="keys must be among"):
        ReflectionReward({"fix": 1.0})


def test_majority_vote_normalises_and_reports_agreement():
    assert majority_vote(["391", " 391.", "381", None]) == ("391", 0.5)
    assert majority_vote(["a", "b"]) == ("a", 0.5)
    assert majority_vote([None, None]) == (None, 0.0)


def test_reflection_prompt_quotes_sections_attention_validator_and_memory():
    previous = Attempt(0, "p", WRONG, "381", False, "failed: expected 391")
    text = reflection_prompt("What is 17 * 23?", previous, ["17", "23"], "failed: expected 391", "check carries")
    assert text.splitlines()[0] == "Past reflection on this task: check carries"
    assert "Pass 0 / Step 1: 17 * 23 = 381." in text and "Attended: 17, 23" in text
    assert "Validator: failed: expected 391" in text and text.endswith("\nReflection:")


class ScriptedModel:
    """Answers 381 unless the text it continues shows a failed validator or a past reflection."""

    def __init__(self):
        self.seen = []

    def __call__(self, texts):
        self.seen += texts
        out = []
        for text in texts:
            if "Validator: failed" in text or "Past reflection" in text:
                out.append(" Step 1 dropped a carry.\nAnswer: 391")
            else:
                out.append(WRONG)
        return out


def test_second_pass_fixes_the_answer_and_the_memory_feeds_the_next_visit(tmp_path):
    memory = EpisodicMemory(tmp_path)
    model = ScriptedModel()
    trace = run_reflection(model, "What is 17 * 23?", VALIDATOR, memory=memory)
    assert [a.passed for a in trace.attempts] == [False, True] and trace.outcomes() == ["fixed"]
    assert memory.latest("what is 17 * 23?")["reflection"] == "Step 1 dropped a carry."
    again = run_reflection(model, "What is  17 * 23?", VALIDATOR, memory=EpisodicMemory(tmp_path))
    assert again.past_reflection == "Step 1 dropped a carry." and again.first_passed
    assert model.seen[-2].startswith("Past reflection on this task: Step 1 dropped a carry.")


def test_without_validator_feedback_or_memory_the_scripted_model_repeats_itself(tmp_path):
    config = ReflectionConfig(num_passes=3, show_validator=False, use_memory=False)
    trace = run_reflection(ScriptedModel(), "What is 17 * 23?", VALIDATOR, config, EpisodicMemory(tmp_path))
    assert len(trace.attempts) == 3 and not trace.final_passed
    assert len(EpisodicMemory(tmp_path)) == 0


def test_vote_disagreement_adds_a_pass():
    answers = iter(["Answer: 391", "Answer: 381", "Answer: 390", "Answer: 391"])

    def sample(texts):
        return [next(answers) for _ in texts]

    split = run_reflection(ScriptedModel(), "q", VALIDATOR, ReflectionConfig(votes=4), sample=sample)
    assert split.vote == ("391", 0.5) and len(split.attempts) == 3
    agreed = run_reflection(
        ScriptedModel(), "q", VALIDATOR, ReflectionConfig(votes=2), sample=lambda t: ["Answer: 7"] * len(t)
    )
    assert agreed.vote == ("7", 1.0) and len(agreed.attempts) == 2


def test_config_checks_its_fields():
    with pytest.raises(ValueError, match="num_passes"):
        ReflectionConfig(num_passes=1)
    with pytest.raises(ValueError, match="agreement_threshold"):
        ReflectionConfig(agreement_threshold=0.0)


def test_attended_terms_come_from_the_prompt_part_of_introspect():
    from grpo_testing import tiny_meta_attention

    from hf_reason.data import build_tokenizer

    tokenizer = build_tokenizer(vocab_size=320)
    model = tiny_meta_attention(tokenizer)
    prompt = "Sally put the marble in the basket."
    start = len(tokenizer(prompt)["input_ids"])
    terms = attended_terms(model, tokenizer, prompt + " Answer: basket", start, top=3)
    prompt_tokens = {tokenizer.decode([t]).strip() for t in tokenizer(prompt)["input_ids"]}
    assert 1 <= len(terms) <= 3 and set(terms) <= prompt_tokens


def test_reflection_training_rows_fix_a_wrong_attempt_and_keep_a_right_one():
    gold = "Plan: multiply.\nStep 1: 17 * 23 = 391.\nReflection: checked.\nAnswer: 391"
    wrong = reflection_training_row("Q: 17*23?\n", WRONG, VALIDATOR, gold, attended=["17", "23"])
    previous = Attempt(0, "Q: 17*23?\n", WRONG, "381", False, wrong_reason := "failed: answer 381 != 391")
    assert not wrong["passed"]
    # the prompt is exactly the one run_reflection generates the pass from
    assert wrong["prompt"] == reflection_prompt("Q: 17*23?\n", previous, ["17", "23"], wrong_reason)
    assert wrong["completion"] == (
        f" Pass 0 / Answer 381 failed the validator ({wrong_reason}). The attempt attended to 17, 23."
        " The revision works the task again.\n" + gold
    )
    assert reflection_outcome(WRONG, "Reflection:" + wrong["completion"], False, True) == "fixed"

    right = reflection_training_row("Q: 17*23?\n", gold, VALIDATOR, gold)
    assert right["passed"] and right["prompt"].endswith("Validator: passed\nReflection:")
    assert right["completion"] == " Pass 0 / Answer 391 passed the validator. It stands.\n" + gold
    assert reflection_outcome(gold, "Reflection:" + right["completion"], True, True) == "kept"


@pytest.mark.slow
def test_reflection_and_graph_rewards_drive_a_grpo_step(tmp_path):
    import datasets
    from grpo_testing import grpo_trainer, tiny_meta_attention

    from hf_reason.data import build_tokenizer
    from hf_reason.trainers import ReasoningGRPOConfig, ReasoningGRPOTrainer
    from hf_reason.workspace import GraphReward

    tokenizer = build_tokenizer(vocab_size=320)
    data = datasets.Dataset.from_list(
        [
            {
                # the tiny model's context is short: the task and the header, not the whole quoted attempt
                "prompt": "17*23? Pass 0: 381.\nReflection:",
                "previous_completion": WRONG,
                "validator": json.dumps(VALIDATOR),
                "attended": json.dumps(["17", "23"]),
                "evidence": json.dumps(["391"]),
            }
        ]
        * 2
    )
    trainer = grpo_trainer(
        ReasoningGRPOTrainer,
        ReasoningGRPOConfig,
        tiny_meta_attention(tokenizer),
        tokenizer,
        tmp_path,
        reward_funcs=[ReflectionReward(), GraphReward()],
        per_device_train_batch_size=4,
    )
    trainer.train_dataset = data  # the Trainer builds its dataloader from it when training starts
    trainer.train()
    assert trainer.state.global_step == 1
    logged = trainer.state.log_history[0]
    # TRL read both rewards' extra columns; a random model's 8 tokens hold no answer (a change, not a
    # fix) and no section (no graph node to reward or penalise)
    assert logged["rewards/reflection_reward/mean"] == REFLECTION_REWARDS["changed"]
    assert logged["rewards/graph_reward/mean"] == 0.0
