"""The multi-attribute quantile reward model: pinball loss, ordered quantiles, aggregates, training on a planted
attribute, calibration coverage, save / load with a card, and use as a GRPO / best-of-N reward."""

import random

import pytest
import torch
from datasets import Dataset
from decoding_testing import our_tokenizer
from grpo_testing import grpo_trainer, tiny_gpt2

from hf_reason.reward_models import (
    QuantileRewardModel,
    QuantileRewardModelConfig,
    RewardModelReward,
    best_of_n,
    pinball_loss,
    quantile_coverage,
    score_texts,
)
from hf_reason.trainers import (
    QuantileRegressionConfig,
    QuantileRegressionTrainer,
    QuantileRewardConfig,
    QuantileRewardTrainer,
    ReasoningGRPOConfig,
    ReasoningGRPOTrainer,
)


WORDS = ["red", "blue", "sea", "stone", "river", "lamp", "tree", "road", "cloud", "bird"]
MARKER = "banana"  # the planted attribute: present -> score 1, absent -> 0


def _tiny_rm(tokenizer, seed=0, **config):
    torch.manual_seed(seed)
    backbone = dict(
        model_type="gpt2", vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=1, n_head=2,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    return QuantileRewardModel(QuantileRewardModelConfig(backbone_config=backbone, **config))


def _planted(n, seed):
    rng = random.Random(seed)
    rows = {"text": [], "labels": []}
    for _ in range(n):
        words = rng.choices(WORDS, k=rng.randint(4, 9))
        planted = rng.random() < 0.5
        if planted:
            words.insert(rng.randint(0, len(words)), MARKER)
        # attribute 0 is the planted one (with noise, so its quantiles have a spread); attribute 1 is pure noise
        rows["text"].append(" ".join(words))
        rows["labels"].append([float(planted) + rng.gauss(0, 0.2), rng.gauss(0, 1)])
    return Dataset.from_dict(rows)


def test_pinball_loss_is_minimised_at_the_quantile():
    torch.manual_seed(0)
    samples = torch.randn(4000)
    levels = torch.tensor([0.1, 0.5, 0.9])
    grid = torch.linspace(-2.5, 2.5, 501)
    losses = torch.stack(
        [pinball_loss(g.expand(4000, 1, 3), samples.unsqueeze(-1), levels, None) for g in grid]
    )  # same guess for every level: compare per level below
    for k, level in enumerate(levels):
        per_level = torch.stack(
            [pinball_loss(g.expand(4000, 1, 1), samples.unsqueeze(-1), levels[k : k + 1]) for g in grid]
        )
        assert grid[per_level.argmin()].item() == pytest.approx(torch.quantile(samples, level).item(), abs=0.03)
    assert losses.shape == (501,)
    # a hand-checked value: tau = 0.9, target 1 above the prediction -> 0.9; 1 below -> 0.1
    assert pinball_loss(torch.zeros(2, 1, 1), torch.tensor([[1.0], [-1.0]]), torch.tensor([0.9])).item() == 0.5
    # NaN labels are left out
    nan_target = torch.tensor([[1.0], [float("nan")]])
    assert pinball_loss(torch.zeros(2, 1, 1), nan_target, torch.tensor([0.9])).item() == pytest.approx(0.9)


def test_quantiles_are_ordered_whatever_the_weights_and_the_aggregates_read_them():
    tokenizer = our_tokenizer()
    model = _tiny_rm(tokenizer, attributes=["a", "b"], attribute_weights={"a": 1.0, "b": -0.5}).eval()
    with torch.no_grad():
        model.head.weight.normal_(0, 5.0)
    ids = torch.randint(0, len(tokenizer), (6, 9))
    out = model(input_ids=ids)
    assert (out.quantiles.diff(dim=-1) >= 0).all()  # never crossing (increments underflow to 0 at worst)
    assert torch.allclose(out.attribute_scores, out.quantiles.mean(-1))
    assert torch.allclose(out.logits[:, 0], out.attribute_scores[:, 0] - 0.5 * out.attribute_scores[:, 1])
    model.config.aggregate, model.config.aggregate_quantile = "quantile", 0.1
    risky = model(input_ids=ids)
    assert torch.allclose(risky.attribute_scores, out.quantiles[..., 0])
    with pytest.raises(ValueError, match="aggregate_quantile"):
        QuantileRewardModelConfig(aggregate="quantile", aggregate_quantile=0.3)
    with pytest.raises(ValueError, match="strictly increasing"):
        QuantileRewardModelConfig(quantiles=[0.5, 0.1])


def test_left_and_right_padding_pool_the_same_last_token():
    tokenizer = our_tokenizer()
    model = _tiny_rm(tokenizer).eval()
    ids = tokenizer("red sea stone")["input_ids"]
    pad = tokenizer.pad_token_id
    right = model(input_ids=torch.tensor([ids + [pad, pad]]), attention_mask=torch.tensor([[1] * len(ids) + [0, 0]]))
    alone = model(input_ids=torch.tensor([ids]))
    assert torch.allclose(right.logits, alone.logits, atol=1e-5)


def test_regression_on_a_planted_attribute_learns_it_in_seconds_and_is_calibrated(tmp_path):
    tokenizer = our_tokenizer()
    model = _tiny_rm(tokenizer, attributes=["planted", "noise"], attribute_weights=[1.0, 0.0])
    args = QuantileRegressionConfig(
        output_dir=str(tmp_path / "rm"), max_steps=120, per_device_train_batch_size=16, learning_rate=3e-3,
        report_to=[], save_strategy="no", use_cpu=True, seed=0, disable_tqdm=True, logging_steps=1000,
    )  # fmt: skip
    trainer = QuantileRegressionTrainer(model, args=args, train_dataset=_planted(640, 0), processing_class=tokenizer)
    trainer.train()
    rng = random.Random(5)
    held_out_pairs = []
    for _ in range(60):
        words = rng.choices(WORDS, k=rng.randint(4, 9))
        with_marker = list(words)
        with_marker.insert(rng.randint(0, len(words)), MARKER)
        held_out_pairs.append((" ".join(with_marker), " ".join(rng.choices(WORDS, k=len(words)))))
    chosen = score_texts(model, tokenizer, [c for c, _ in held_out_pairs])["logits"][:, 0]
    rejected = score_texts(model, tokenizer, [r for _, r in held_out_pairs])["logits"][:, 0]
    assert (chosen > rejected).float().mean().item() >= 0.9  # chance is 0.5
    held_out = _planted(400, 9)
    predicted = score_texts(model, tokenizer, held_out["text"])["quantiles"]
    coverage = quantile_coverage(predicted, torch.tensor(held_out["labels"]))
    # the noise attribute is pure N(0, 1): its outer quantiles must bracket the middle of the data
    assert coverage[1, 0] < 0.35 and coverage[1, -1] > 0.65
    assert coverage.shape == (2, 5) and ((coverage >= 0) & (coverage <= 1)).all()


def test_quantile_coverage_counts_targets_at_or_below_each_quantile():
    predicted = torch.tensor([[[0.0, 1.0]], [[0.0, 1.0]], [[0.0, 1.0]], [[0.0, 1.0]]])
    target = torch.tensor([[-1.0], [0.5], [1.0], [float("nan")]])
    assert torch.equal(quantile_coverage(predicted, target), torch.tensor([[1 / 3, 1.0]]))


def test_pairwise_reward_trainer_subclass_learns_the_planted_preference_and_uses_attribute_labels(tmp_path):
    tokenizer = our_tokenizer()
    model = _tiny_rm(tokenizer, attributes=["planted", "noise"], attribute_weights=[1.0, 0.0])
    rng = random.Random(1)
    rows = {"prompt": [], "chosen": [], "rejected": [], "chosen_labels": [], "rejected_labels": []}
    for _ in range(256):
        words = rng.choices(WORDS, k=5)
        rows["prompt"].append("Describe: ")
        rows["chosen"].append(" ".join(words[:3] + [MARKER] + words[3:]))
        rows["rejected"].append(" ".join(rng.choices(WORDS, k=6)))
        rows["chosen_labels"].append([1.0, float("nan")])
        rows["rejected_labels"].append([0.0, float("nan")])
    args = QuantileRewardConfig(
        output_dir=str(tmp_path / "pairs"), max_steps=40, per_device_train_batch_size=16, learning_rate=3e-3,
        report_to=[], save_strategy="no", use_cpu=True, seed=0, disable_tqdm=True, logging_steps=10, bf16=False,
    )  # fmt: skip
    trainer = QuantileRewardTrainer(
        model, args=args, train_dataset=Dataset.from_dict(rows), processing_class=tokenizer
    )
    trainer.train()
    logged = [log for log in trainer.state.log_history if "pinball_loss" in log]
    assert logged and logged[-1]["accuracy"] >= 0.9
    trainer.save_model(str(tmp_path / "saved"))
    card = (tmp_path / "saved" / "README.md").read_text()
    assert "quantile reward model" in card and "from hf_reason.reward_models import QuantileRewardModel" in card
    reloaded = QuantileRewardModel.from_pretrained(tmp_path / "saved").eval()
    texts = ["Describe: red sea banana lamp", "Describe: red sea road lamp"]
    assert torch.allclose(
        score_texts(reloaded, tokenizer, texts)["logits"], score_texts(model, tokenizer, texts)["logits"]
    )
    with pytest.raises(ValueError, match="at least one > 0"):
        QuantileRewardConfig(
            output_dir=str(tmp_path), use_cpu=True, bf16=False, bradley_terry_weight=0, pinball_weight=0
        )


def test_reward_function_plugs_into_best_of_n_and_grpo(tmp_path):
    tokenizer = our_tokenizer()
    model = _tiny_rm(tokenizer).eval()
    reward = RewardModelReward(model, tokenizer, batch_size=2)
    prompts, candidates = ["Q: a", "Q: b"], [["x", "yy", "zzz"], ["p", "q"]]
    scores = reward(prompts=[p for p, g in zip(prompts, candidates) for _ in g], completions=sum(candidates, []))
    choices = best_of_n(reward, prompts, candidates)
    assert choices == [max(range(3), key=lambda i: scores[i]), max(range(2), key=lambda i: scores[3 + i])]
    assert reward(prompts=["Q: a"], completions=[[{"role": "assistant", "content": "x"}]]) == pytest.approx(scores[:1])
    policy = tiny_gpt2(tokenizer)
    trainer = grpo_trainer(
        ReasoningGRPOTrainer, ReasoningGRPOConfig, policy, tokenizer, tmp_path, reward_funcs=[reward]
    )
    trainer.train()
    assert any("rewards/" in key for log in trainer.state.log_history for key in log)


@pytest.mark.parametrize("family", ["gpt2", "meta_attention", "crsm"])
def test_the_head_sits_on_any_of_our_language_models(family, tmp_path):
    from grpo_testing import TINY_MODELS

    tokenizer = our_tokenizer()
    model = QuantileRewardModel.from_causal_lm(TINY_MODELS[family](tokenizer), attributes=["a"]).eval()
    ids = torch.tensor([tokenizer("red sea")["input_ids"]])
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.tensor([[0.5]]))
    assert out.quantiles.shape == (1, 1, 5) and out.loss.item() > 0
    model.save_pretrained(tmp_path)
    reloaded = QuantileRewardModel.from_pretrained(tmp_path).eval()
    assert torch.allclose(reloaded(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-5)
