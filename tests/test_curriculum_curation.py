"""The cosine structure -> semantics curriculum (schedule values, weights set in a GRPO run) and the curation
filters (difficulty band, quality floor, n-gram diversity, the 75/25 mix, length-controlled seed sets)."""

import math
from collections import Counter

import pytest
from datasets import Dataset
from decoding_testing import our_tokenizer
from grpo_testing import grpo_trainer, text_length_reward, tiny_gpt2

from hf_reason.data.curation import (
    curate,
    length_controlled_sample,
    mix_single_and_multi_turn,
    ngram_clusters,
    pass_rates,
)
from hf_reason.trainers import CombinedReward, ReasoningGRPOConfig, ReasoningGRPOTrainer
from hf_reason.trainers.curriculum import CosineRewardCurriculum, cosine_structure_weight


def test_cosine_schedule_values():
    assert cosine_structure_weight(0.0) == 1.0
    assert cosine_structure_weight(0.5) == pytest.approx(0.5)
    assert cosine_structure_weight(1.0) == pytest.approx(0.0)
    assert cosine_structure_weight(0.25) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert cosine_structure_weight(2.0) == pytest.approx(0.0) and cosine_structure_weight(-1) == 1.0
    assert cosine_structure_weight(0.5, start=0.8, end=0.2) == pytest.approx(0.5)


def test_the_callback_moves_a_combined_rewards_weight_from_structure_to_semantics():
    combined = CombinedReward([text_length_reward, text_length_reward, text_length_reward])
    curriculum = CosineRewardCurriculum(combined, structure_indices=[0], semantic_indices=[2])
    assert curriculum.apply(0.0) == 1.0 and combined.weights == [1.0, 1.0, 0.0]
    curriculum.apply(1.0)
    assert combined.weights == pytest.approx([0.0, 1.0, 1.0])  # the unlisted reward keeps its weight
    with pytest.raises(ValueError, match="distinct positions"):
        CosineRewardCurriculum(combined, structure_indices=[0], semantic_indices=[0])


def test_the_callback_sets_grpo_reward_weights_every_step(tmp_path):
    tokenizer = our_tokenizer()

    def semantic(prompts, completions, **kwargs):
        return [0.0] * len(completions)

    trainer = grpo_trainer(
        ReasoningGRPOTrainer, ReasoningGRPOConfig, tiny_gpt2(tokenizer), tokenizer, tmp_path,
        reward_funcs=[text_length_reward, semantic], max_steps=3,
    )  # fmt: skip
    curriculum = CosineRewardCurriculum(trainer, structure_indices=[0], semantic_indices=[1])
    trainer.add_callback(curriculum)
    trainer.train()
    assert [step for step, _ in curriculum.history] == [0, 1, 2]
    assert [w for _, w in curriculum.history] == pytest.approx([cosine_structure_weight(s / 3) for s in range(3)])
    assert trainer.reward_weights.tolist() == pytest.approx([curriculum.history[-1][1], 1 - curriculum.history[-1][1]])


def test_curation_filters_by_difficulty_quality_and_diversity():
    texts = [
        "add three and four then double it",
        "add three and four then double it please",  # near duplicate of the first
        "list the colours of the rainbow in order",
        "name a prime number larger than ten",
        "name a prime number larger than twenty",
    ]
    data = Dataset.from_dict({"prompt": texts})
    rates = pass_rates([[True, True], [True, False], [False, True], [False, False], [True, False]])
    assert rates == [1.0, 0.5, 0.5, 0.0, 0.5]
    kept, report = curate(data, pass_rate=rates, min_pass_rate=0.1, max_pass_rate=0.9)
    assert kept["prompt"] == [texts[1], texts[2], texts[4]] and report["removed_by_difficulty"] == 2
    kept, report = curate(data, quality=[0.9, 0.2, 0.8, 0.7, 0.6], min_quality=0.5, max_per_cluster=1)
    assert report["removed_by_quality"] == 1
    clusters = ngram_clusters(texts, n=2, similarity=0.5)
    assert clusters == [0, 0, 1, 2, 2]  # the near duplicates share a cluster
    kept, report = curate(data, max_per_cluster=1, ngram=2, similarity=0.5)
    assert kept["prompt"] == [texts[0], texts[2], texts[3]] and report["removed_by_diversity"] == 2
    assert curate(data, max_per_cluster=1, ngram=2, similarity=0.9)[1]["removed_by_diversity"] == 0


def test_the_75_25_mix_and_length_controlled_seed_sets():
    single = Dataset.from_dict({"text": [f"s{i}" for i in range(3000)]})
    multi = Dataset.from_dict({"text": [f"m{i}" for i in range(400)]})
    mixed = mix_single_and_multi_turn(single, multi, multi_turn_fraction=0.25, seed=0)
    share = sum(t.startswith("m") for t in mixed["text"]) / len(mixed)
    assert 0.21 < share < 0.29
    pool = Dataset.from_dict({"completion": [" ".join(["w"] * (1 + i % 30)) for i in range(600)]})
    seed_set = length_controlled_sample(pool, 100, bins=[0, 10, 20, 31], fractions=[0.5, 0.3, 0.2], seed=1)
    lengths = Counter(min(len(c.split()) // 10, 2) for c in seed_set["completion"])
    assert lengths == {0: 50, 1: 30, 2: 20}
    with pytest.raises(ValueError, match="has 0 rows"):
        length_controlled_sample(pool, 10, bins=[100, 200], fractions=[1.0])
