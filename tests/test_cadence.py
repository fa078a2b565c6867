"""The training cadence callback extends, holds and aborts on scripted metrics."""

import json

import pytest
import torch
from datasets import Dataset
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerControl, TrainerState, TrainingArguments

from hf_reason.trainers import CadenceConfig, TrainingCadenceCallback


GOOD = {"evaluator": 0.7, "judge": 0.6}
LOW = {"evaluator": 0.5, "judge": 0.6}


def _config(**kwargs):
    return CadenceConfig(
        thresholds={"evaluator": 0.6, "judge": 0.5},
        abort_below={"evaluator": 0.3},
        initial_chunk_steps=2,
        max_chunk_steps=8,
        **kwargs,
    )


def test_extends_after_two_good_chunks_holds_otherwise_and_aborts_under_the_floor():
    callback = TrainingCadenceCallback(_config())
    script = [GOOD, GOOD, LOW, GOOD, GOOD, GOOD, GOOD, {"evaluator": 0.2, "judge": 0.9}]
    step, actions = 0, []
    for metrics in script:
        step = callback.next_boundary
        actions.append((callback.decide(step, metrics)["action"], callback.chunk))
    assert actions == [
        ("hold", 2),
        ("extend", 4),
        ("hold", 4),  # one low chunk restarts the count
        ("hold", 4),
        ("extend", 8),
        ("hold", 8),
        ("hold", 8),  # at max_chunk_steps
        ("abort", 8),
    ]
    assert callback.abort_reason == "evaluator = 0.2 fell under its floor 0.3"
    assert [d["step"] for d in callback.decisions] == [2, 4, 8, 12, 16, 24, 32, 40]


def test_aborts_on_a_drop_from_the_best_and_on_a_missing_score():
    callback = TrainingCadenceCallback(_config(max_drop=0.15))
    callback.decide(2, {"evaluator": 0.9, "judge": 0.9})
    assert callback.decide(4, {"evaluator": 0.7, "judge": 0.9})["action"] == "abort"
    assert "under its best 0.9" in callback.abort_reason
    assert TrainingCadenceCallback(_config()).decide(2, {"evaluator": 0.9})["reason"].startswith("the score 'judge'")


def test_config_checks_its_fields():
    with pytest.raises(ValueError, match="thresholds"):
        CadenceConfig(thresholds={})
    with pytest.raises(ValueError, match="max_chunk_steps"):
        CadenceConfig(thresholds={"a": 1}, initial_chunk_steps=8, max_chunk_steps=4)
    with pytest.raises(ValueError, match="growth"):
        CadenceConfig(thresholds={"a": 1}, growth=1.0)


def test_without_metrics_fn_it_asks_the_trainer_to_evaluate_and_reads_the_result(tmp_path):
    callback = TrainingCadenceCallback(_config(), output_dir=str(tmp_path))
    args, state, control = TrainingArguments(str(tmp_path), report_to=[]), TrainerState(), TrainerControl()
    state.global_step = 2
    callback.on_step_end(args, state, control)
    assert control.should_evaluate
    callback.on_evaluate(args, state, control, metrics={"evaluator": 0.1, "judge": 0.9, "epoch": 1.0})
    assert control.should_training_stop and control.should_save
    logged = [json.loads(line) for line in (tmp_path / "progress.jsonl").read_text().splitlines()]
    assert logged[0]["action"] == "abort" and logged[0]["scores"]["epoch"] == 1.0


def test_a_fall_during_training_saves_a_checkpoint_stops_and_logs_why(tmp_path):
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=32, n_positions=16, n_embd=16, n_layer=1, n_head=2))
    data = Dataset.from_dict({"input_ids": torch.randint(0, 32, (64, 8)).tolist()})
    data = data.map(lambda row: {"labels": row["input_ids"]})
    scripted = iter([GOOD, GOOD, GOOD, {"evaluator": 0.25, "judge": 0.6}])
    seen_models = []

    def metrics_fn(model, step):
        seen_models.append(model)
        return next(scripted)

    callback = TrainingCadenceCallback(_config(), metrics_fn=metrics_fn)
    args = TrainingArguments(
        str(tmp_path),
        max_steps=40,
        per_device_train_batch_size=2,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        logging_strategy="no",
    )
    Trainer(model=model, args=args, train_dataset=data, callbacks=[callback]).train()
    # boundaries at 2, 4 (extend to 4), 8, 12 (abort)
    assert [d["action"] for d in callback.decisions] == ["hold", "extend", "hold", "abort"]
    assert (tmp_path / "checkpoint-12" / "model.safetensors").exists()
    assert not (tmp_path / "checkpoint-40").exists() and seen_models[0] is model
    logged = [json.loads(line) for line in (tmp_path / "progress.jsonl").read_text().splitlines()]
    assert logged[-1]["reason"] == "evaluator = 0.25 fell under its floor 0.3" and logged[-1]["step"] == 12
