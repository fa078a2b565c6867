"""The hierarchical reward model: step labels by construction, the process / outcome weighting, per-step scores
for search, training on step-labelled chains, save / load with a card, and use as a reward."""

import pytest
import torch
from decoding_testing import our_tokenizer

from hf_reason.data.arithmetic import solve_steps
from hf_reason.data.step_labels import generate_step_labelled_chains, step_is_valid, step_labels
from hf_reason.reward_models import (
    HierarchicalReward,
    HierarchicalRewardModel,
    HierarchicalRewardModelConfig,
    StepScorer,
    best_of_n,
    encode_steps,
    split_steps,
    step_accuracy,
)
from hf_reason.trainers import HierarchicalRewardConfig, HierarchicalRewardTrainer


def _tiny(tokenizer, seed=0, **config):
    torch.manual_seed(seed)
    backbone = dict(
        model_type="gpt2", vocab_size=len(tokenizer), n_positions=128, n_embd=48, n_layer=2, n_head=2,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    return HierarchicalRewardModel(HierarchicalRewardModelConfig(backbone_config=backbone, **config))


def test_a_corrupted_step_and_every_later_one_are_labelled_unsound():
    lines, value = solve_steps([3, 4, 2, 5], ["+", "*", "-"])
    assert lines == ["4 * 2 = 8", "3 + 8 = 11", "11 - 5 = 6"] and value == 6
    bad, wrong = solve_steps([3, 4, 2, 5], ["+", "*", "-"], errors={1: 2})
    assert bad == ["4 * 2 = 8", "3 + 8 = 13", "13 - 5 = 8"] and wrong == 8  # carries on from the wrong value
    assert [step_is_valid(s) for s in bad] == [True, False, True]
    assert step_labels(bad) == [1, 0, 0] and step_labels(lines) == [1, 1, 1]
    assert not step_is_valid("4 * 2 = = 8") and not step_is_valid("four = 4")
    chains = generate_step_labelled_chains(200, seed=1)
    for row in chains:
        labels = row["step_labels"]
        assert labels == sorted(labels, reverse=True)  # sound steps, then unsound ones
        assert row["first_error"] == (labels.index(0) if 0 in labels else -1)
        if row["first_error"] >= 0:
            assert row["outcome_label"] == 0
    kinds = {(row["first_error"] >= 0, row["outcome_label"]) for row in chains}
    assert kinds == {(True, 0), (False, 0), (False, 1)}  # step errors, outcome-only errors, clean chains


def test_the_combined_reward_follows_the_documented_weighting():
    tokenizer = our_tokenizer()
    probabilities = torch.tensor([[0.9, 0.5, 0.2, 0.8], [0.9, 0.5, 0.2, 0.8]])
    mask = torch.tensor([[1, 0, 1, 1], [0, 0, 0, 0]], dtype=torch.bool)
    outcome = torch.tensor([0.6, 0.3])
    for aggregate, expected in (("min", 0.2), ("mean", (0.9 + 0.2 + 0.8) / 3), ("product", 0.9 * 0.2 * 0.8)):
        model = _tiny(tokenizer, process_weight=0.25, process_aggregate=aggregate)
        process, reward = model.combine(probabilities, mask, outcome)
        assert process[0].item() == pytest.approx(expected)
        assert reward[0].item() == pytest.approx(0.25 * expected + 0.75 * 0.6)
        assert process[1].item() == pytest.approx(0.3) and reward[1].item() == pytest.approx(0.3)  # no steps
    with pytest.raises(ValueError, match="process_weight"):
        HierarchicalRewardModelConfig(process_weight=1.5)


def test_step_positions_and_per_step_scores_for_search():
    tokenizer = our_tokenizer()
    ids, ends = encode_steps(tokenizer, "Q: 1 + 2 = ?\nA:", ["1 + 2 = 3"], "#### 3")
    assert tokenizer.decode(ids[: ends[0] + 1]).endswith("1 + 2 = 3")
    model = _tiny(tokenizer).eval()
    scorer = StepScorer(model, tokenizer, batch_size=1)
    prompts = ["Q: 1 + 2 * 3 = ?\nA:", "Q: 5 - 1 = ?\nA:", "Q: 2 = ?\nA:"]
    steps = [["2 * 3 = 6", "1 + 6 = 7"], ["5 - 1 = 4"], []]
    scores = scorer(prompts, steps)
    assert [len(s) for s in scores] == [2, 1, 0]
    batched = StepScorer(model, tokenizer, batch_size=3)(prompts, steps)
    for a, b in zip(scores, batched):
        assert a == pytest.approx(b, abs=1e-5)
    assert split_steps(" 2 * 3 = 6\n1 + 6 = 7\n#### 7") == (["2 * 3 = 6", "1 + 6 = 7"], "#### 7")


def test_training_fits_step_labels_and_the_model_saves_loads_and_rewards(tmp_path):
    tokenizer = our_tokenizer()
    model = _tiny(tokenizer)
    chains = generate_step_labelled_chains(24, min_ops=2, max_ops=3, seed=4)
    args = HierarchicalRewardConfig(
        output_dir=str(tmp_path / "run"), max_steps=150, per_device_train_batch_size=8, learning_rate=3e-3,
        report_to=[], save_strategy="no", use_cpu=True, seed=0, disable_tqdm=True, logging_steps=50,
    )  # fmt: skip
    scorer = StepScorer(model, tokenizer)
    before = step_accuracy(scorer(chains["prompt"], chains["steps"]), chains["step_labels"])
    trainer = HierarchicalRewardTrainer(model, args=args, train_dataset=chains, processing_class=tokenizer)
    trainer.train()
    after = step_accuracy(scorer(chains["prompt"], chains["steps"]), chains["step_labels"])
    assert after >= 0.95 and after > before
    trainer.save_model(str(tmp_path / "saved"))
    card = (tmp_path / "saved" / "README.md").read_text()
    assert "process head" in card and "from hf_reason.reward_models import HierarchicalRewardModel" in card
    reloaded = HierarchicalRewardModel.from_pretrained(tmp_path / "saved").eval()
    reward = HierarchicalReward(reloaded, tokenizer)
    completions = [" " + "\n".join(s) + "\n" + f for s, f in zip(chains["steps"][:4], chains["final"][:4])]
    direct = StepScorer(model, tokenizer).score(chains["prompt"][:4], chains["steps"][:4], chains["final"][:4])
    assert reward(chains["prompt"][:4], completions) == pytest.approx(direct["reward"], abs=1e-5)
    candidates = [completions[0], " #### 12345"]
    scores = reward([chains["prompt"][0]] * 2, candidates)
    assert best_of_n(reward, [chains["prompt"][0]], [candidates]) == [int(scores[1] > scores[0])]


def test_the_hierarchical_and_branch_rethink_rewards_drive_a_grpo_step(tmp_path):
    from grpo_testing import grpo_trainer, tiny_gpt2

    from hf_reason.reward_models import BranchRethinkReward, BranchRethinkRewardModel
    from hf_reason.trainers import ReasoningGRPOConfig, ReasoningGRPOTrainer

    tokenizer = our_tokenizer()
    rewards = [
        HierarchicalReward(_tiny(tokenizer).eval(), tokenizer),
        BranchRethinkReward(BranchRethinkRewardModel.from_causal_lm(tiny_gpt2(tokenizer, seed=1)), tokenizer),
    ]
    trainer = grpo_trainer(
        ReasoningGRPOTrainer, ReasoningGRPOConfig, tiny_gpt2(tokenizer), tokenizer, tmp_path, reward_funcs=rewards
    )
    trainer.train()
    (log,) = [entry for entry in trainer.state.log_history if "reward" in entry]
    for reward in rewards:
        assert f"rewards/{reward.__name__}/mean" in log
    assert len(rewards[1].last_branches) == 8  # one branch list per completion of the step (2 prompts x 4)
