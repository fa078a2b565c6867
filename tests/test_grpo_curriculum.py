"""GRPO's difficulty curriculum: `CurriculumRepeatSampler` keeps TRL's `RepeatSampler` stream and draws easy to hard."""

import json

import numpy as np
import pytest
from grpo_testing import grpo_trainer, leveled_arithmetic, tiny_gpt2
from trl.trainer.utils import RepeatSampler

from hf_reason.data.curriculum import CurriculumRepeatSampler, DifficultyBuckets
from hf_reason.data.text import build_tokenizer
from hf_reason.trainers import ReasoningGRPOConfig, ReasoningGRPOTrainer


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(vocab_size=384)


class PromptRecorder:
    """A reward function (0 for all) that keeps, per call, the prompts and difficulty of the rows it scored."""

    __name__ = "prompt_recorder"

    def __init__(self):
        self.calls = []

    def __call__(self, prompts, completions, num_ops, **kwargs):
        self.calls.append((list(prompts), list(num_ops)))
        return [float(len(c)) for c in completions]


def curriculum_trainer(tokenizer, out_dir, recorder=None, **options):
    """A tiny curriculum GRPO trainer (grpo_testing's builder) on `leveled_arithmetic`, by `num_ops`."""
    options = {"difficulty_column": "num_ops", "train_dataset": leveled_arithmetic(), **options}
    if recorder is not None:
        options["reward_funcs"] = recorder
    return grpo_trainer(ReasoningGRPOTrainer, ReasoningGRPOConfig, tiny_gpt2(tokenizer), tokenizer, out_dir, **options)


def structure(stream, mini_repeat_count, batch_size, repeat_count):
    """The chunks of a GRPO index stream, checking its shape: each index `mini_repeat_count` times in a row,
    `batch_size` distinct indices per chunk, each chunk `repeat_count` times in a row."""
    block = mini_repeat_count * batch_size
    assert len(stream) % (block * repeat_count) == 0
    chunks = []
    for start in range(0, len(stream), block * repeat_count):
        first = stream[start : start + block]
        assert stream[start : start + block * repeat_count] == first * repeat_count
        groups = [first[i : i + mini_repeat_count] for i in range(0, block, mini_repeat_count)]
        assert all(g == [g[0]] * mini_repeat_count for g in groups)
        chunk = [g[0] for g in groups]
        assert len(set(chunk)) == batch_size
        chunks.append(chunk)
    return chunks


@pytest.mark.parametrize("shuffle", [True, False])
def test_with_every_bucket_unlocked_the_stream_is_trls_repeat_sampler(shuffle):
    shape = dict(mini_repeat_count=3, batch_size=4)
    ours = CurriculumRepeatSampler(
        np.ones(30), **shape, repeat_count=2, schedule_length=5, num_buckets=4, shuffle=shuffle, seed=11
    )
    assert len(ours.difficulty_buckets) == 1  # one difficulty: every row unlocked from the start
    stock = RepeatSampler(list(range(30)), **shape, repeat_count=2, shuffle=shuffle, seed=11)
    assert len(ours) == len(stock) == 7 * 4 * 3 * 2
    for epoch in range(3):  # the Trainer's set_epoch; stock's generator moves on at each iteration
        ours.set_epoch(epoch)
        assert list(ours) == list(stock), epoch
    # a fresh sampler set to epoch 2 (a run resumed there) draws what the one that ran epochs 0 and 1 drew
    fresh = CurriculumRepeatSampler(
        np.ones(30), **shape, repeat_count=2, schedule_length=5, num_buckets=4, shuffle=shuffle, seed=11
    )
    fresh.set_epoch(2)
    assert list(fresh) == list(ours)


def test_early_chunks_come_from_the_easiest_bucket_and_later_ones_from_all():
    difficulty = np.repeat([1.0, 2.0, 3.0, 4.0], 10)  # buckets of rows 0-9, 10-19, 20-29, 30-39
    sampler = CurriculumRepeatSampler(
        difficulty, mini_repeat_count=2, batch_size=3, repeat_count=2, schedule_length=13, warmup_fraction=0.5, seed=0
    )
    chunks = structure(list(sampler), 2, 3, 2)
    assert len(chunks) == 13
    bucket = [[int(difficulty[i]) for i in chunk] for chunk in chunks]
    # chunk k unlocks 1 + floor(min(k / 13 / 0.5, 1) * 3) buckets: 1 for k < 3, 2 for k < 5, 3 for k < 7, then 4
    assert [max(b) <= 1 for b in bucket[:3]] == [True] * 3
    assert max(max(b) for b in bucket[:5]) == 2 and max(max(b) for b in bucket[:7]) == 3
    assert {d for b in bucket[7:] for d in b} == {1, 2, 3, 4}
    # within a pass over the unlocked rows no row repeats: the easiest bucket's 10 rows fill the first 3 chunks
    assert len({i for chunk in chunks[:3] for i in chunk}) == 9
    # the last unlocked bucket's rows are all drawn once the schedule ends (no harder row is left out)
    assert {i for chunk in chunks for i in chunk} >= set(range(30, 40))


def test_too_few_easy_rows_for_a_batch_unlock_the_next_bucket_early():
    sampler = CurriculumRepeatSampler(
        np.repeat([1.0, 2.0, 3.0], [2, 2, 8]), mini_repeat_count=1, batch_size=3, repeat_count=1, schedule_length=4
    )
    assert sampler.min_unlocked == 2
    first = next(sampler.chunks())
    assert len(set(first.tolist())) == 3 and set(first.tolist()) <= {0, 1, 2, 3}


def test_pass_rate_unlocks_the_next_bucket_from_the_first_chunk_not_yet_drawn():
    difficulty = np.repeat([1.0, 2.0, 3.0], 8)  # buckets of rows 0-7, 8-15, 16-23
    shape = dict(mini_repeat_count=1, batch_size=2, repeat_count=1, schedule_length=12)
    sampler = CurriculumRepeatSampler(difficulty, **shape, schedule="pass_rate", pass_threshold=0.75, pass_window=4)
    chunks = sampler.chunks()
    drawn = [next(chunks), next(chunks)]  # one chunk trained on, the next already drawn (the data loader's lookahead)
    assert sampler.next_chunk == 2 and all(set(c.tolist()) <= set(range(8)) for c in drawn)
    # outcomes on other buckets are not counted; the window is not full yet with 3 of the newest bucket's
    assert not sampler.report_rollouts([2.0, 3.0, 1.0, 1.0, 1.0], [True, True, True, True, False])
    assert sampler.pass_rate == pytest.approx(2 / 3)
    # the newest bucket's last 4: True, False, False, True -> 0.5; then False, True, True, True -> 0.75
    assert not sampler.report_rollouts([1.0, 1.0], [False, True])
    assert sampler.report_rollouts([1.0, 1.0], [True, True])
    assert sampler.unlock_chunks == [2] and sampler.pass_rate is None  # the window restarts on the new bucket
    later = [next(chunks) for _ in range(6)]
    assert all(set(c.tolist()) <= set(range(16)) for c in later)
    assert {i for c in later for i in c.tolist()} & set(range(8, 16))
    # below the threshold nothing unlocks, however many outcomes come
    assert not sampler.report_rollouts([2.0] * 40, [True, False] * 20) and sampler.unlock_chunks == [2]
    assert sampler.report_rollouts([2.0] * 4, [True] * 4) and sampler.unlock_chunks == [2, 8]
    # every bucket is open: nothing left to decide
    assert not sampler.report_rollouts([3.0] * 8, [True] * 8) and sampler.unlocked_at(8) == 3
    with pytest.raises(ValueError, match="one value per rollout"):
        sampler.report_rollouts([1.0, 2.0], [True])
    # the stream is a function of the arguments and the unlocks: a sampler given the state replays it exactly
    rest = list(chunks)
    replay = CurriculumRepeatSampler(difficulty, **shape, schedule="pass_rate", pass_threshold=0.75, pass_window=4)
    replay.load_state_dict(json.loads(json.dumps(sampler.state_dict())))
    assert [c.tolist() for c in replay.chunks()] == [c.tolist() for c in drawn + later + rest]
    with pytest.raises(ValueError, match="saved curriculum state is for schedule='pass_rate'"):
        CurriculumRepeatSampler(difficulty, **shape).load_state_dict(sampler.state_dict())


def test_the_rating_schedule_ignores_rollouts_and_bad_settings_are_named():
    sampler = CurriculumRepeatSampler(np.repeat([1.0, 2.0], 4), 1, 2, 1, schedule_length=4)
    assert not sampler.report_rollouts([1.0] * 8, [True] * 8) and sampler.unlock_chunks == []
    for options, match in [
        ({"schedule": "loss"}, r"schedule must be one of \('rating', 'pass_rate'\), got 'loss'"),
        ({"pass_threshold": 0.0}, r"pass_threshold must be in \(0, 1\]"),
        ({"pass_window": 0}, "pass_window must be an integer in"),
    ]:
        with pytest.raises(ValueError, match=match):
            CurriculumRepeatSampler(np.ones(4), 1, 2, 1, schedule_length=4, **options)


def test_bucket_of_maps_values_to_the_non_empty_buckets():
    values = [1, 1, 1, 1, 1, 1, 2, 3]
    buckets = DifficultyBuckets(values, num_buckets=4)  # quantile edges 1, 1, 1.25: the slot below 1 is empty
    assert [b.tolist() for b in buckets.buckets] == [[0, 1, 2, 3, 4, 5], [6, 7]]
    assert buckets.bucket_of(values).tolist() == [0] * 6 + [1, 1]
    assert buckets.bucket_of([1.2, 2.5, 0.5]).tolist() == [0, 1, 0]  # unseen values land by the same edges


def test_a_grpo_run_draws_easy_prompts_first_and_trains(tokenizer, tmp_path):
    recorder = PromptRecorder()
    trainer = curriculum_trainer(tokenizer, tmp_path, recorder, max_steps=4, curriculum_warmup_fraction=0.5)
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, CurriculumRepeatSampler)
    assert (sampler.batch_size, sampler.mini_repeat_count, sampler.repeat_count) == (2, 4, 1)
    assert sampler.schedule_length == 4 and len(sampler.difficulty_buckets) == 4
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    assert trainer.state.global_step == 4
    assert any(not (before[n] == p).all() for n, p in trainer.model.named_parameters())
    levels = [ops for _, ops in recorder.calls]
    assert len(levels) == 4
    # step 1: the easiest bucket only, each of its 2 prompts as one group of 4; step 2: up to 2 operators;
    # steps 3-4: every bucket unlocked (at half of training)
    assert set(levels[0]) == {1} and max(levels[1]) <= 2
    for prompts, _ in recorder.calls:
        assert prompts[:4] == [prompts[0]] * 4 and prompts[4:] == [prompts[4]] * 4 and prompts[0] != prompts[4]
    # the same config without the column is stock's sampler
    plain = curriculum_trainer(tokenizer, tmp_path / "p", difficulty_column=None)
    assert isinstance(plain._get_train_sampler(), RepeatSampler)


def test_an_epoch_run_with_reused_generations_spans_the_schedule(tokenizer, tmp_path):
    recorder = PromptRecorder()
    trainer = curriculum_trainer(
        tokenizer, tmp_path, recorder, max_steps=-1, num_train_epochs=1, steps_per_generation=2,
        curriculum_warmup_fraction=0.75,
    )  # fmt: skip
    sampler = trainer._get_train_sampler()
    # 16 prompts, 4 per generation batch (2 steps x 8 rows / 4), each batch reused for 2 steps: 8 steps, 4 batches
    assert (sampler.batch_size, sampler.repeat_count, sampler.schedule_length) == (4, 2, 4)
    trainer.train()
    assert trainer.state.global_step == 8 and len(recorder.calls) == sampler.schedule_length
    # batch k of 4 opens 1 + floor(min(k / 4 / 0.75, 1) * 3) buckets: 1, 2, 3, 4; each prompt once in the epoch
    assert [max(ops) for _, ops in recorder.calls] == [1, 2, 3, 4]
    prompts = [p for call, _ in recorder.calls for p in call[::4]]
    assert len(set(prompts)) == 16


def test_the_column_is_read_from_the_training_dataset_when_unused_columns_are_removed(tokenizer, tmp_path):
    trainer = curriculum_trainer(tokenizer, tmp_path, remove_unused_columns=True)
    stripped = trainer._remove_unused_columns(trainer.train_dataset, description="training")
    assert "num_ops" not in stripped.column_names  # what the Trainer hands `_get_train_sampler`
    sampler = trainer._get_train_sampler(stripped)
    assert [b.tolist() for b in sampler.difficulty_buckets.buckets] == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9, 10, 11],
        [12, 13, 14, 15],
    ]
    with pytest.raises(ValueError, match="the sampler's dataset has 8 rows but .* has 16"):
        trainer._get_train_sampler(stripped.select(range(8)))


def test_a_missing_or_non_numeric_column_is_named(tokenizer, tmp_path):
    data = leveled_arithmetic()
    with pytest.raises(
        ValueError, match=r"difficulty_column='rating' is not a column .*\['prompt', 'answer', 'num_ops'\]"
    ):
        curriculum_trainer(tokenizer, tmp_path, train_dataset=data, difficulty_column="rating")
    with pytest.raises(ValueError, match=r"difficulty_column='answer' must hold one finite number per row"):
        curriculum_trainer(
            tokenizer, tmp_path, train_dataset=data.map(lambda row: {"answer": "n/a"}), difficulty_column="answer"
        )
    with pytest.raises(ValueError, match=r"difficulty_column='num_ops' needs a map-style training dataset"):
        curriculum_trainer(tokenizer, tmp_path, train_dataset=data.to_iterable_dataset())
    for field, value, match in [
        ("curriculum_num_buckets", 0, "curriculum_num_buckets must be an integer in"),
        ("curriculum_warmup_fraction", 1.5, r"curriculum_warmup_fraction must be in \(0, 1\]"),
        ("difficulty_column", "", "difficulty_column must be a column name"),
        ("curriculum_schedule", "loss", r"curriculum_schedule must be one of \('rating', 'pass_rate'\)"),
        ("curriculum_pass_threshold", 0, r"curriculum_pass_threshold must be in \(0, 1\]"),
        ("curriculum_pass_window", 0, "curriculum_pass_window must be an integer in"),
        ("curriculum_pass_reward", float("nan"), "curriculum_pass_reward must be a finite number"),
    ]:
        with pytest.raises(ValueError, match=match):
            ReasoningGRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, **{field: value})
    with pytest.raises(ValueError, match="set remove_unused_columns=False"):
        curriculum_trainer(tokenizer, tmp_path, curriculum_schedule="pass_rate", remove_unused_columns=True)


def test_a_resumed_run_continues_the_schedule(tokenizer, tmp_path):
    def run(out_dir, recorder, resume=None):
        trainer = curriculum_trainer(tokenizer, out_dir, recorder, max_steps=6, save_strategy="steps", save_steps=3)
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    whole, resumed = PromptRecorder(), PromptRecorder()
    run(tmp_path / "whole", whole)
    trainer = run(tmp_path / "resumed", resumed, resume=str(tmp_path / "whole" / "checkpoint-3"))
    assert trainer.state.global_step == 6
    assert len(whole.calls) == 6 and len(resumed.calls) == 3
    # steps 4-6 of the resumed run draw exactly the prompts of the uninterrupted run's steps 4-6
    assert resumed.calls == whole.calls[3:]
    assert max(whole.calls[0][1]) == 1 and max(max(ops) for _, ops in whole.calls[3:]) > 1


class ConstantReward(PromptRecorder):
    """A `PromptRecorder` whose reward is `value` for every completion."""

    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def __call__(self, prompts, completions, num_ops, **kwargs):
        super().__call__(prompts, completions, num_ops)
        return [self.value] * len(completions)


def pass_rate_run(tokenizer, out_dir, reward, resume=None, **options):
    options = {"max_steps": 6, "save_strategy": "steps", "save_steps": 3, **options}
    trainer = curriculum_trainer(
        tokenizer, out_dir, reward, curriculum_schedule="pass_rate", curriculum_pass_window=8, **options
    )
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def test_a_pass_rate_run_unlocks_when_the_rollouts_pass_and_not_before(tokenizer, tmp_path):
    failing = ConstantReward(0.0)
    trainer = pass_rate_run(tokenizer, tmp_path / "failing", failing, save_strategy="no")
    assert trainer.curriculum_sampler.unlock_chunks == []
    assert [set(ops) for _, ops in failing.calls] == [{1}] * 6  # the easiest bucket throughout
    passing = ConstantReward(1.0)
    trainer = pass_rate_run(tokenizer, tmp_path / "passing", passing)
    unlocks = trainer.curriculum_sampler.unlock_chunks
    # step 1's 8 rollouts fill the window and pass: the next bucket opens from the first chunk the data loader has
    # not drawn yet (it draws one ahead); each later unlock needs 8 rollouts of the newest bucket
    assert unlocks[0] == 2 and unlocks == sorted(set(unlocks)) and len(unlocks) >= 2
    for step, (_, ops) in enumerate(passing.calls):  # chunk k draws from its unlocked buckets only
        assert max(ops) <= trainer.curriculum_sampler.unlocked_at(step), step
    assert max(passing.calls[-1][1]) > 1
    logged = [
        log["curriculum/unlocked_buckets"] for log in trainer.state.log_history if "curriculum/unlocked_buckets" in log
    ]
    assert logged[0] == 2.0 and logged == sorted(logged) and len(logged) == 6
    assert json.loads((tmp_path / "passing" / "checkpoint-3" / "curriculum_state.json").read_text())["schedule"] == (
        "pass_rate"
    )


def test_a_resumed_pass_rate_run_continues_from_the_saved_unlocks(tokenizer, tmp_path):
    import shutil

    whole, resumed = ConstantReward(1.0), ConstantReward(1.0)
    full = pass_rate_run(tokenizer, tmp_path / "whole", whole)
    checkpoint = tmp_path / "whole" / "checkpoint-3"
    trainer = pass_rate_run(tokenizer, tmp_path / "resumed", resumed, resume=str(checkpoint))
    assert trainer.state.global_step == 6 and resumed.calls == whole.calls[3:]
    assert trainer.curriculum_sampler.unlock_chunks == full.curriculum_sampler.unlock_chunks
    # without the saved unlocks the resumed stream would fall back to the easiest bucket: an error instead
    stripped = tmp_path / "stripped"
    shutil.copytree(checkpoint, stripped)
    (stripped / "curriculum_state.json").unlink()
    with pytest.raises(ValueError, match="needs curriculum_state.json in the checkpoint"):
        pass_rate_run(tokenizer, tmp_path / "again", ConstantReward(1.0), resume=str(stripped))


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["rating", "pass_rate"])
def test_two_processes_draw_whole_groups_of_one_stream(tmp_path, schedule):
    from conftest import REPO_ROOT, accelerate_launch

    script = str(REPO_ROOT / "tests" / "scripts" / "grpo_curriculum_ddp_check.py")
    result = accelerate_launch(script, str(tmp_path), schedule)
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    data = leveled_arithmetic()
    # one stream for both processes: a generation batch of 2 prompts x 4, rank r holding the r-th group
    expected = CurriculumRepeatSampler(data["num_ops"], 4, 2, 1, schedule_length=4, seed=0, schedule=schedule)
    if schedule == "pass_rate":
        # rank 0's rollouts all pass and rank 1's all fail: 0.5 over the gathered 8 unlocks at once, on both ranks
        assert ranks[0]["unlock_chunks"] == ranks[1]["unlock_chunks"] and ranks[0]["unlock_chunks"][0] == 2
        expected.load_state_dict({"schedule": schedule, "unlock_chunks": ranks[0]["unlock_chunks"], "outcomes": []})
    for step, chunk in zip(range(4), expected.chunks()):  # 4 steps of the epoch's 8 chunks
        for rank, index in enumerate(chunk.tolist()):
            prompts, ops = ranks[rank]["steps"][step]
            assert prompts == [data["prompt"][index]] * 4 and ops == [data["num_ops"][index]] * 4, (step, rank)
    assert [len(r["steps"]) for r in ranks] == [4, 4]
    assert {ops for r in ranks for ops in r["steps"][0][1]} == {1}  # the first step: the easiest bucket only


@pytest.mark.slow
@pytest.mark.parametrize("system", ["difficulty", "pass_rate"])
def test_the_bench_quick_mode_compares_the_difficulty_schedule_with_uniform_sampling(tmp_path, system):
    import importlib.util

    from conftest import REPO_ROOT

    spec = importlib.util.spec_from_file_location("bench_curriculum_grpo", REPO_ROOT / "bench" / "curriculum_grpo.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.main(["--quick", "--compare", system, "--output", str(tmp_path / "r.json")])
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(json.dumps(report))
    assert set(report["systems"]) == {"warm_start", "fixed", system} and report["n"] == 16
    assert set(report[f"{system}_vs_fixed"]["correct"]) >= {"b", "c", "p", "cohens_h"}
    # the curriculum's first step trains on a one-operator prompt; both runs see 2 steps of the same data
    trained = report["training_curves"]
    assert trained[system]["trained_num_ops"][0] == 1.0 and len(trained["fixed"]["zero_std_share"]) == 2
    assert set(report["systems"][system]["accuracy_by_num_ops"]) == {"1", "2", "3", "4"}
    if system == "pass_rate":  # the untrained quick policy passes nothing: nothing unlocks
        assert trained[system]["unlock_chunks"] == [] and trained[system]["trained_num_ops"] == [1.0, 1.0]
