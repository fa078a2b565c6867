"""Easy-to-hard curricula (hf_reason.data.curriculum) and their use in the TRM examples."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_trm_config
from datasets import Dataset

from hf_reason import TRMForPuzzleSolving
from hf_reason.data.curriculum import CurriculumSampler


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import trm_common  # noqa: E402


def test_buckets_are_difficulty_quantiles_and_unlock_on_the_rating_schedule():
    difficulty = np.repeat([1.0, 2.0, 3.0, 4.0], 25)
    sampler = CurriculumSampler(difficulty, num_samples=400, num_buckets=4, warmup_fraction=0.5, seed=0)
    assert [len(b) for b in sampler.buckets] == [25, 25, 25, 25]
    assert (difficulty[sampler.buckets[0]] == 1.0).all() and (difficulty[sampler.buckets[3]] == 4.0).all()
    drawn = np.array(list(sampler))
    assert (difficulty[drawn] == 1.0).all()  # nothing unlocked beyond the easiest
    sampler.set_progress(0.25)  # half-way through the warm-up: buckets 1..2 of 4 (1 + floor(0.5 * 3))
    assert sampler.unlocked == 2
    sampler.set_progress(0.5)
    assert sampler.unlocked == 4
    drawn = np.array(list(sampler))
    counts = np.bincount(difficulty[drawn].astype(int), minlength=5)[1:]
    assert counts.min() > 60  # uniform over every row once all are unlocked (expected 100 each)
    sampler.set_progress(0.1)
    assert sampler.unlocked == 4  # never locks again


def test_pass_rate_schedule_unlocks_when_the_frontier_is_solved():
    sampler = CurriculumSampler(np.arange(90.0), num_samples=10, schedule="pass_rate", num_buckets=3)
    assert sampler.frontier.tolist() == list(range(30))
    sampler.set_progress(1.0)  # progress alone moves nothing in this schedule
    assert sampler.unlocked == 1
    assert not sampler.report_pass_rate(0.4) and sampler.unlocked == 1
    assert sampler.report_pass_rate(0.6) and sampler.frontier.tolist() == list(range(30, 60))
    assert sampler.report_pass_rate(0.9) and not sampler.report_pass_rate(1.0)
    assert sampler.unlocked == 3


def test_draws_are_seeded_and_arguments_checked():
    a = list(CurriculumSampler(np.arange(50.0), num_samples=30, seed=3))
    assert a == list(CurriculumSampler(np.arange(50.0), num_samples=30, seed=3))
    assert a != list(CurriculumSampler(np.arange(50.0), num_samples=30, seed=4))
    for kwargs, match in [
        (dict(schedule="random"), "schedule"),
        (dict(warmup_fraction=0.0), "warmup_fraction"),
        (dict(pass_threshold=1.5), "pass_threshold"),
        (dict(num_buckets=0), "num_buckets"),
    ]:
        with pytest.raises(ValueError, match=match):
            CurriculumSampler(np.arange(5.0), num_samples=5, **kwargs)
    with pytest.raises(ValueError, match="finite numbers"):
        CurriculumSampler([1.0, float("nan")], num_samples=5)


@pytest.mark.parametrize("schedule", ["rating", "pass_rate"])
def test_examples_train_with_a_curriculum(tmp_path, schedule):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 11, (24, 16), generator=gen)
    data = Dataset.from_dict({"input_ids": ids.tolist(), "labels": ids.tolist(), "rating": list(range(24))})
    model = TRMForPuzzleSolving(tiny_trm_config())
    args = trm_common.DeepSupervisionConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        max_steps=4,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        logging_steps=2,
        ema_decay=0.0,
    )
    plan = trm_common.PlanArguments(
        curriculum=schedule,
        curriculum_buckets=3,
        curriculum_probe_every=1,
        curriculum_probe_size=4,
        curriculum_pass_threshold=0.0001,
    )
    trainer, _ = trm_common.train(model, data, None, args, plan=plan)
    sampler = trainer.curriculum_sampler
    assert isinstance(trainer, trm_common.CurriculumTrainer) and sampler.num_buckets == 3
    # rating: 3/4 of the steps is past the 0.5 warm-up; pass_rate: any solved probe unlocks
    assert sampler.unlocked == 3 if schedule == "rating" else sampler.unlocked >= 1
