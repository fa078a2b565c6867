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


def fake_state(step: int):
    from types import SimpleNamespace

    return SimpleNamespace(global_step=step, max_steps=1_000_000, is_world_process_zero=True)


def test_curriculum_follows_a_given_progress_clock_and_resumes_its_buckets(tmp_path):
    from types import SimpleNamespace

    args = SimpleNamespace(output_dir=str(tmp_path))
    rows = Dataset.from_dict({"input_ids": [[1]] * 8, "labels": [[1]] * 8})
    clock = {"fraction": 0.0}

    def callback(schedule):
        sampler = CurriculumSampler(np.arange(8.0), num_samples=8, num_buckets=4, schedule=schedule, seed=0)
        return trm_common.CurriculumCallback(sampler, rows, 1, 2, progress=lambda: clock["fraction"])

    # "rating" with a budget other than steps (max_steps is huge): the given clock moves it
    rating = callback("rating")
    rating.on_train_begin(args, fake_state(0), None)
    rating.on_step_begin(args, fake_state(5), None)
    assert rating.sampler.unlocked == 1
    clock["fraction"] = 0.5
    rating.on_step_begin(args, fake_state(6), None)
    assert rating.sampler.unlocked == 4
    # "pass_rate": what the probes unlocked survives a resume from the checkpoint
    first = callback("pass_rate")
    first.on_train_begin(args, fake_state(0), None)
    first.sampler.report_pass_rate(1.0)
    (tmp_path / "checkpoint-10").mkdir()
    first.on_save(args, fake_state(10), None)
    resumed = callback("pass_rate")
    resumed.on_train_begin(args, fake_state(10), None)
    assert resumed.sampler.unlocked == first.sampler.unlocked == 2
    assert resumed.offset >= 0.0 and callback("pass_rate").sampler.unlocked == 1


def test_time_budget_resumes_with_what_is_left(tmp_path):
    from types import SimpleNamespace

    args, control = SimpleNamespace(output_dir=str(tmp_path)), SimpleNamespace(should_training_stop=False)
    budget = trm_common.TimeBudget(60.0)
    budget.on_train_begin(args, fake_state(0), control)
    budget.offset = 59.0  # as if 59 s had been spent before the checkpoint
    (tmp_path / "checkpoint-4").mkdir()
    budget.on_save(args, fake_state(4), control)
    resumed = trm_common.TimeBudget(60.0)
    resumed.on_train_begin(args, fake_state(4), control)
    assert resumed.offset >= 59.0
    resumed.offset = 61.0
    resumed.on_step_end(args, fake_state(5), control)
    assert control.should_training_stop
    fresh = trm_common.TimeBudget(60.0)
    fresh.on_train_begin(args, fake_state(0), control)
    assert fresh.offset == 0.0
