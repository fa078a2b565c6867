import os

import pytest
import torch
from conftest import KilledWhileSaving, StepsTaken, kill_before_the_state_file, tiny_trm_config
from datasets import Dataset
from safetensors.torch import load_file

from hf_reason import TRMForPuzzleSolving
from hf_reason.trainers import DeepSupervisionConfig, DeepSupervisionTrainer, SignSGD, last_complete_checkpoint


def toy_dataset(n: int, seq_len: int = 16, vocab: int = 11, seed: int = 0, puzzles: int = 0) -> Dataset:
    """A task with a known rule: each target token is the input token shifted by one (mod digits)."""
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randint(2, vocab, (n, seq_len), generator=gen)
    labels = (inputs - 2 + 1) % (vocab - 2) + 2
    data = {"input_ids": inputs.tolist(), "labels": labels.tolist()}
    if puzzles:
        data["puzzle_identifiers"] = torch.randint(0, puzzles, (n,), generator=gen).tolist()
    return Dataset.from_dict(data)


def make_args(tmp_path, **overrides) -> DeepSupervisionConfig:
    kwargs = dict(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,
        per_device_eval_batch_size=16,
        max_steps=6,
        learning_rate=3e-3,
        warmup_steps=2,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        data_seed=0,
    )
    kwargs.update(overrides)
    return DeepSupervisionConfig(**kwargs)


def make_trainer(tmp_path, model_overrides=None, train_size=64, **arg_overrides) -> DeepSupervisionTrainer:
    torch.manual_seed(0)
    model = TRMForPuzzleSolving(tiny_trm_config(**(model_overrides or {})))
    puzzles = (model_overrides or {}).get("num_puzzle_identifiers", 0) if model.config.puzzle_emb_ndim else 0
    return DeepSupervisionTrainer(
        model=model,
        args=make_args(tmp_path, **arg_overrides),
        train_dataset=toy_dataset(train_size, puzzles=puzzles),
        eval_dataset=toy_dataset(32, seed=1, puzzles=puzzles),
    )


def test_only_halted_rows_take_new_examples(tmp_path):
    trainer = make_trainer(tmp_path)
    model = trainer.model.train()
    a = {k: torch.tensor(v) for k, v in toy_dataset(4, seed=2)[:4].items()}
    b = {k: torch.tensor(v) for k, v in toy_dataset(4, seed=3)[:4].items()}
    trainer.compute_loss(model, a)
    assert torch.equal(trainer._current["input_ids"], a["input_ids"])
    assert trainer._carry.steps.tolist() == [1, 1, 1, 1]
    trainer._carry.halted = torch.tensor([True, False, True, False])
    trainer.compute_loss(model, b)
    current = trainer._current["input_ids"]
    assert torch.equal(current[[0, 2]], b["input_ids"][[0, 2]])
    assert torch.equal(current[[1, 3]], a["input_ids"][[1, 3]])
    assert trainer._carry.steps.tolist() == [1, 2, 1, 2]


def test_resume_continues_the_loss_curve_exactly(tmp_path):
    overrides = dict(model_overrides=dict(halt_exploration_prob=0.5, halt_max_steps=3), max_steps=6)
    straight = make_trainer(tmp_path / "a", **overrides)
    straight.train()
    straight_losses = {h["step"]: h["loss"] for h in straight.state.log_history if "loss" in h}

    first = make_trainer(tmp_path / "b", save_strategy="steps", save_steps=3, **overrides)
    first.args.max_steps = 3  # "killed" after the checkpoint at step 3
    first.train()
    checkpoint = last_complete_checkpoint(tmp_path / "b" / "out")
    assert checkpoint and checkpoint.endswith("checkpoint-3")
    assert os.path.isfile(os.path.join(checkpoint, "ema", "model.safetensors"))

    resumed = make_trainer(tmp_path / "b", save_strategy="steps", save_steps=3, **overrides)
    resumed.train(resume_from_checkpoint=checkpoint)
    resumed_losses = {h["step"]: h["loss"] for h in resumed.state.log_history if "loss" in h}
    assert sorted(resumed_losses) == [1, 2, 3, 4, 5, 6]
    for step in (4, 5, 6):
        assert resumed_losses[step] == straight_losses[step], (step, resumed_losses, straight_losses)
    for name, param in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], param, rtol=0, atol=0, msg=name)
    for name, param in straight.ema.module.state_dict().items():
        torch.testing.assert_close(resumed.ema.module.state_dict()[name], param, rtol=0, atol=0, msg=name)


def test_incomplete_checkpoint_is_skipped_and_refused(tmp_path):
    trainer = make_trainer(tmp_path, save_strategy="steps", save_steps=2, max_steps=4)
    trainer.train()
    out = tmp_path / "out"
    assert last_complete_checkpoint(out).endswith("checkpoint-4")
    os.remove(out / "checkpoint-4" / "deep_supervision_state_rank0.safetensors")  # killed mid-save
    assert last_complete_checkpoint(out).endswith("checkpoint-2")
    with pytest.raises(FileNotFoundError, match="incomplete"):
        make_trainer(tmp_path, max_steps=6).train(resume_from_checkpoint=str(out / "checkpoint-4"))


def test_a_kill_while_saving_keeps_the_previous_checkpoint_under_save_total_limit(tmp_path):
    settings = dict(save_strategy="steps", save_steps=2, save_total_limit=1, max_steps=4)
    trainer = make_trainer(tmp_path, **settings)
    kill_before_the_state_file(trainer, step=4)
    with pytest.raises(KilledWhileSaving):
        trainer.train()
    out = tmp_path / "out"
    assert (out / "checkpoint-4").is_dir() and not (
        out / "checkpoint-4" / "deep_supervision_state_rank0.safetensors"
    ).exists()
    assert last_complete_checkpoint(out) == str(out / "checkpoint-2")

    resumed = make_trainer(tmp_path, **settings)
    steps = StepsTaken()
    resumed.add_callback(steps)
    resumed.train(resume_from_checkpoint="last")
    assert steps.taken == [3, 4]  # continued, not restarted
    # the rotation ran once checkpoint-4 was complete: only it is left
    assert sorted(os.listdir(out)) == ["checkpoint-4"]
    assert last_complete_checkpoint(out) == str(out / "checkpoint-4")


def test_rotation_deletes_incomplete_checkpoints_first_and_never_the_new_one(tmp_path):
    out = tmp_path / "out"
    # left by a killed run: a folder numbered beyond the resumed checkpoint, without state files
    (out / "checkpoint-9").mkdir(parents=True)
    (out / "checkpoint-9" / "config.json").write_text("{}")
    trainer = make_trainer(tmp_path, save_strategy="steps", save_steps=2, save_total_limit=2, max_steps=6)
    trainer.train()
    assert sorted(os.listdir(out)) == ["checkpoint-4", "checkpoint-6"]


def test_resume_last_without_a_complete_checkpoint_is_an_error_not_a_new_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        make_trainer(tmp_path).train(resume_from_checkpoint="last")
    (tmp_path / "out" / "checkpoint-4").mkdir(parents=True)
    for resume in ("last", True):
        with pytest.raises(FileNotFoundError, match=r"no complete checkpoint .*checkpoint-4"):
            make_trainer(tmp_path).train(resume_from_checkpoint=resume)


def test_puzzle_embeddings_use_their_own_sign_sgd_optimizer(tmp_path):
    trainer = make_trainer(
        tmp_path,
        model_overrides=dict(puzzle_emb_ndim=32, num_puzzle_identifiers=4),
        max_steps=1,
        warmup_steps=0,
        puzzle_emb_lr=0.05,
        puzzle_emb_weight_decay=0.0,
    )
    before = trainer.model.model.puzzle_embedding.weight.detach().clone()
    trainer.train()
    assert isinstance(trainer.puzzle_optimizer, SignSGD)
    puzzle_weight = trainer.model.model.puzzle_embedding.weight
    main_params = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert id(puzzle_weight) not in main_params
    delta = (puzzle_weight.detach() - before).abs()
    changed = delta[delta > 0]
    assert changed.numel() > 0
    torch.testing.assert_close(changed, torch.full_like(changed, 0.05))  # sign steps of exactly lr


def test_push_to_hub_uploads_the_ema_weights(tmp_path, monkeypatch):
    import transformers.trainer

    trainer = make_trainer(tmp_path, max_steps=3, ema_decay=0.9, hub_model_id="org/trm")
    trainer.train()
    uploaded = {}
    monkeypatch.setattr(
        transformers.trainer,
        "upload_folder",
        lambda **kwargs: (
            uploaded.update(load_file(os.path.join(kwargs["folder_path"], "model.safetensors"))) or "commit"
        ),
    )
    trainer.hub_model_id = "org/trm"  # what init_hf_repo sets after creating the repo (network)
    trainer.push_to_hub()
    key = "model.layers.0.mlp.down_proj.weight"
    ema = trainer.ema.module.model.layers[0].mlp.down_proj.weight
    assert not torch.equal(trainer.model.model.layers[0].mlp.down_proj.weight, ema)
    torch.testing.assert_close(uploaded[key], ema, rtol=0, atol=0)


def test_ema_weights_are_evaluated_and_saved(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=5, ema_decay=0.9)
    trainer.train()
    raw = trainer.model.model.layers[0].mlp.down_proj.weight
    ema = trainer.ema.module.model.layers[0].mlp.down_proj.weight
    assert not torch.equal(raw, ema)
    assert trainer.evaluation_model() is trainer.ema.module
    trainer.save_model(str(tmp_path / "final"))
    saved = load_file(tmp_path / "final" / "model.safetensors")
    torch.testing.assert_close(saved["model.layers.0.mlp.down_proj.weight"], ema, rtol=0, atol=0)
    assert TRMForPuzzleSolving.from_pretrained(tmp_path / "final") is not None


def test_training_learns_the_toy_rule_and_eval_reports_the_metrics(tmp_path):
    trainer = make_trainer(
        tmp_path,
        train_size=256,
        max_steps=120,
        learning_rate=1e-2,
        ema_decay=0.9,
        model_overrides=dict(halt_max_steps=2),
        logging_steps=20,
    )
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    expected = {
        "eval_loss",
        "eval_cell_accuracy",
        "eval_exact_accuracy",
        "eval_exact_accuracy_max_steps",
        "eval_mean_steps",
        "eval_halting_accuracy",
        "eval_num_exact",
        "eval_num_puzzles",
    }
    assert expected <= set(after)
    assert after["eval_num_puzzles"] == 32
    assert 1 <= after["eval_mean_steps"] <= 2
    assert after["eval_cell_accuracy"] > before["eval_cell_accuracy"] + 0.3
    assert after["eval_loss"] < before["eval_loss"]
    logged = [h for h in trainer.state.log_history if "lm_loss" in h]
    assert logged and {"q_halt_loss", "halt_rate", "halting_accuracy"} <= set(logged[-1])


def test_evaluation_counts_every_puzzle_even_with_drop_last(tmp_path):
    trainer = make_trainer(tmp_path, per_device_eval_batch_size=4)
    assert trainer.args.dataloader_drop_last  # kept for training batches
    metrics = trainer.evaluate(toy_dataset(5, seed=4))
    assert metrics["eval_num_puzzles"] == 5
    assert trainer.args.dataloader_drop_last


def test_bad_config_values_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        make_args(tmp_path, gradient_accumulation_steps=2)
    with pytest.raises(ValueError, match="ema_decay"):
        make_args(tmp_path, ema_decay=1.0)
    with pytest.raises(ValueError, match="puzzle_emb_lr"):
        make_args(tmp_path, puzzle_emb_lr=-1.0)
    with pytest.raises(ValueError, match="eval_max_steps"):
        make_args(tmp_path, eval_max_steps=0)


def test_sign_sgd_touches_only_the_rows_of_the_batch(tmp_path):
    # Weight decay on: the rows of puzzles that are not in the batch must stay exactly as they were.
    trainer = make_trainer(
        tmp_path,
        model_overrides=dict(puzzle_emb_ndim=32, num_puzzle_identifiers=16),
        max_steps=3,
        warmup_steps=0,
        puzzle_emb_lr=0.05,
        puzzle_emb_weight_decay=1.0,
    )
    with torch.no_grad():
        trainer.model.model.puzzle_embedding.weight.normal_()
    before = trainer.model.model.puzzle_embedding.weight.detach().clone()
    trainer.train()
    after = trainer.model.model.puzzle_embedding.weight.detach()
    assert trainer._carry.steps.tolist() == [3] * 8  # nothing halted: the first batch's 8 puzzles all along
    used = torch.zeros(16, dtype=torch.bool)
    used[trainer._current["puzzle_identifiers"]] = True
    assert 0 < used.sum() < 16
    torch.testing.assert_close(after[~used], before[~used], rtol=0, atol=0)
    assert (after[used] != before[used]).all(-1).all()  # the used rows were decayed and moved


def test_sign_sgd_step_decays_and_moves_only_rows_with_a_gradient():
    weight = torch.nn.Parameter(torch.ones(4, 3))
    optimizer = SignSGD([weight], lr=0.1, weight_decay=0.5)
    weight.grad = torch.zeros(4, 3)
    weight.grad[1] = torch.tensor([2.0, -3.0, 0.0])
    optimizer.step()
    expected = torch.ones(4, 3)
    expected[1] = 1 * (1 - 0.1 * 0.5) - 0.1 * torch.tensor([1.0, -1.0, 0.0])
    torch.testing.assert_close(weight.detach(), expected, rtol=0, atol=1e-7)


def test_gradients_are_not_clipped_by_default(tmp_path):
    # The TRM reference does not clip; TrainingArguments would clip at 1.0.
    assert make_args(tmp_path).max_grad_norm == 0.0
    assert DeepSupervisionConfig(output_dir=str(tmp_path)).max_grad_norm == 0.0
    trainer = make_trainer(
        tmp_path, max_steps=1, warmup_steps=0, learning_rate=1.0, optim="sgd", weight_decay=0.0, ema_decay=0.0
    )
    model = trainer.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = {}
    for name, param in model.named_parameters():
        param.register_hook(lambda g, name=name: grads.__setitem__(name, g.detach().clone()))
    trainer.train()
    total_norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads.values()]))
    assert total_norm > 1.0  # clipping at 1.0 would have scaled this step
    for name, param in model.named_parameters():  # plain SGD at lr 1: the step is the raw gradient
        torch.testing.assert_close(before[name] - param.detach(), grads[name], rtol=1e-5, atol=1e-6, msg=name)


def test_halted_only_metrics_are_absent_when_nothing_halted(tmp_path):
    # halt_max_steps 8 > max_steps and a head biased against halting: no example halts, so the
    # accuracies over halted examples have nothing to average and are not logged (no NaN, no 0).
    trainer = make_trainer(tmp_path, max_steps=2, logging_steps=2, model_overrides=dict(halt_max_steps=8))
    trainer.train()
    log = next(h for h in trainer.state.log_history if "lm_loss" in h)
    assert log["halt_rate"] == 0.0
    assert not {"cell_accuracy", "exact_accuracy", "mean_steps"} & set(log)
    # with a step limit of 1 every example halts at its first step
    trainer = make_trainer(tmp_path / "b", max_steps=2, logging_steps=2, model_overrides=dict(halt_max_steps=1))
    trainer.train()
    log = next(h for h in trainer.state.log_history if "lm_loss" in h)
    assert log["halt_rate"] == 1.0 and log["mean_steps"] == 1.0 and 0 <= log["cell_accuracy"] <= 1


def test_checkpoint_needs_every_process_state_file(tmp_path):
    trainer = make_trainer(tmp_path, save_strategy="steps", save_steps=2, max_steps=4)
    trainer.train()
    out = tmp_path / "out"
    assert load_file(out / "checkpoint-4" / "deep_supervision_state_rank0.safetensors")["world_size"].item() == 1
    # As if a 2-process run had been killed after rank 0 but before rank 1 wrote its state.
    from safetensors.torch import save_file

    state = load_file(out / "checkpoint-4" / "deep_supervision_state_rank0.safetensors")
    state["world_size"] = torch.tensor(2)
    save_file(state, out / "checkpoint-4" / "deep_supervision_state_rank0.safetensors")
    assert last_complete_checkpoint(out).endswith("checkpoint-2")
    save_file(state, out / "checkpoint-4" / "deep_supervision_state_rank1.safetensors")
    assert last_complete_checkpoint(out).endswith("checkpoint-4")


def test_ema_resume_refuses_incomplete_ema_weights(tmp_path):
    trainer = make_trainer(tmp_path, save_strategy="steps", save_steps=2, max_steps=2, ema_decay=0.9)
    trainer.train()
    checkpoint = tmp_path / "out" / "checkpoint-2"
    from safetensors.torch import save_file

    ema_file = checkpoint / "ema" / "model.safetensors"
    weights = load_file(ema_file)
    weights.pop("lm_head.weight")
    save_file(weights, ema_file, metadata={"format": "pt"})
    with pytest.raises(RuntimeError, match="lm_head.weight"):
        make_trainer(tmp_path, max_steps=4, ema_decay=0.9).train(resume_from_checkpoint=str(checkpoint))


def test_tensorboard_logging_writes_an_event_file(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logging_dir = tmp_path / "tb"
    trainer = make_trainer(tmp_path, max_steps=2, report_to=["tensorboard"], logging_dir=str(logging_dir))
    trainer.train()
    events = list(logging_dir.rglob("events.out.tfevents.*"))
    assert events
    accumulator = EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    assert {"train/lm_loss", "train/halt_rate", "train/loss"} <= set(accumulator.Tags()["scalars"])
