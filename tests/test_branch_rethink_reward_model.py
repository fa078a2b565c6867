"""BR-RM: adaptive branch selection on scripted cases, both turns from one LM, training with TRL's SFTTrainer,
save / load with a card, and use as a reward function."""

import pytest
import torch
from datasets import Dataset
from decoding_testing import our_tokenizer
from grpo_testing import tiny_gpt2

from hf_reason.reward_models import (
    BranchRethinkReward,
    BranchRethinkRewardModel,
    BranchRethinkRewardModelConfig,
    branch_rethink_examples,
    select_branches,
)


NAMES = ["correctness", "helpfulness", "format", "none"]


@pytest.mark.parametrize(
    "probabilities, expected",
    [
        ([0.9, 0.05, 0.03, 0.02], ["correctness"]),  # a clear case: one branch reaches the mass
        ([0.35, 0.1, 0.3, 0.25], ["correctness", "format"]),  # unclear: two, capped by max_branches
        ([0.3, 0.3, 0.1, 0.3], ["correctness", "helpfulness"]),  # ties keep the given order
        ([0.1, 0.2, 0.1, 0.6], []),  # "none" ranks first: nothing at risk
        ([0.4, 0.05, 0.05, 0.5], []),
        ([0.45, 0.05, 0.1, 0.4], ["correctness"]),  # "none" ranks second: stops after one
    ],
)
def test_adaptive_branch_selection_on_scripted_cases(probabilities, expected):
    assert select_branches(probabilities, NAMES, max_branches=2, branch_mass=0.6) == expected


def test_a_single_branch_cap_and_full_mass():
    assert select_branches([0.35, 0.1, 0.3, 0.25], NAMES, max_branches=1, branch_mass=0.6) == ["correctness"]
    assert select_branches([0.3, 0.25, 0.25, 0.2], NAMES, max_branches=3, branch_mass=1.0) == NAMES[:3]


def _scripted_lm(tokenizer, token_id):
    """A tiny GPT-2 whose next token is always `token_id` (constant final hidden state, tied head)."""
    model = tiny_gpt2(tokenizer)
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.fill_(1.0)
        model.transformer.wte.weight[token_id] = 1.0
    return model


def test_both_turns_read_one_scripted_language_model():
    tokenizer = our_tokenizer()
    format_token = tokenizer(" format", add_special_tokens=False)["input_ids"][0]
    model = BranchRethinkRewardModel.from_causal_lm(_scripted_lm(tokenizer, format_token)).eval()
    assert model.branch(tokenizer, ["Q: x\nA: y", "Q: z\nA: w"]) == [["format"], ["format"]]
    good = tokenizer(" good", add_special_tokens=False)["input_ids"][0]
    model_good = BranchRethinkRewardModel.from_causal_lm(_scripted_lm(tokenizer, good)).eval()
    verdicts = model_good.rethink(tokenizer, ["Q: x\nA: y"], [["format"]])
    assert verdicts[0] > 5  # log p(good) - log p(bad) of a model that always says " good"
    assert model.rethink_prompt("ctx", []) == "ctx\n[rethink] none; verdict:"


def test_sft_trained_br_rm_branches_on_refusals_and_prefers_real_answers(tmp_path):
    from trl import SFTConfig, SFTTrainer

    tokenizer = our_tokenizer()
    model = BranchRethinkRewardModel.from_causal_lm(tiny_gpt2(tokenizer))
    answers = ["It is red.", "It is blue and old.", "The lamp stands in Oslo.", "It is made of glass."]
    refusal = " I'm sorry, but I can't help with that request."
    rows = []
    for i in range(48):
        prompt = f"Describe item {i}.\n"
        rows += branch_rethink_examples(model.config, prompt + " " + answers[i % 4], [], acceptable=True)
        rows += branch_rethink_examples(model.config, prompt + refusal, ["helpfulness"], acceptable=False)
    args = SFTConfig(
        output_dir=str(tmp_path / "sft"), max_steps=150, per_device_train_batch_size=16, learning_rate=5e-3,
        report_to=[], save_strategy="no", use_cpu=True, bf16=False, seed=0, disable_tqdm=True, logging_steps=1000,
    )  # fmt: skip
    SFTTrainer(model.lm, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer).train()
    reward = BranchRethinkReward(model, tokenizer)
    prompts = ["Describe item 100.\n"] * 2
    scores = reward(prompts, [" It is blue and old.", refusal])
    assert reward.last_branches == [[], ["helpfulness"]]
    assert scores[0] > scores[1]
    model.save_pretrained(tmp_path / "saved")
    from hf_reason.hub import write_model_card

    card = write_model_card(tmp_path / "saved", model)
    assert "adaptive branching" in str(card)
    reloaded = BranchRethinkRewardModel.from_pretrained(tmp_path / "saved")
    assert BranchRethinkReward(reloaded, tokenizer)(prompts, [" It is blue and old.", refusal]) == pytest.approx(
        scores, abs=1e-4
    )


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="max_branches"):
        BranchRethinkRewardModelConfig(max_branches=0)
    with pytest.raises(ValueError, match="attributes"):
        BranchRethinkRewardModelConfig(attributes=["none"])
    with pytest.raises(ValueError, match="rethink_template"):
        BranchRethinkRewardModelConfig(rethink_template="no slot")
