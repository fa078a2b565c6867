import math
import os
from typing import Optional

import pytest
import torch
from conftest import (
    REPO_ROOT,
    KilledWhileSaving,
    StepsTaken,
    accelerate_launch,
    kill_before_the_state_file,
    tiny_trm_config,
)
from datasets import Dataset
from torch import nn

from hf_reason import TRMForPuzzleSolving
from hf_reason.trainers import (
    DQNHaltingConfig,
    DQNHaltingTrainer,
    HaltingTrajectories,
    ReplayBuffer,
    collect_trajectories,
    evaluate_halting,
)
from hf_reason.trainers.dqn_halting import (
    STATE_FILE,
    CountBonus,
    RNDBonus,
    epsilon_at,
    greedy_halting_steps,
    halting_metrics,
    soft_update,
)


def dqn_args(tmp_path, **overrides) -> DQNHaltingConfig:
    kwargs = dict(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=64,
        max_steps=600,
        learning_rate=1e-3,
        epsilon_steps=200,
        dqn_batch_size=128,
        learning_starts=128,
        reward_step_cost=0.05,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        logging_steps=100,
        disable_tqdm=True,
        seed=0,
    )
    kwargs.update(overrides)
    return DQNHaltingConfig(**kwargs)


# ----------------------------------------------------------------------------- replay buffer
def test_buffer_capacity_and_wrap_around():
    buffer = ReplayBuffer(capacity=10)
    buffer.add(x=torch.arange(7.0).unsqueeze(1), r=torch.arange(7.0))
    assert len(buffer) == 7 and buffer.position == 7
    buffer.add(x=torch.arange(7.0, 13.0).unsqueeze(1), r=torch.arange(7.0, 13.0))
    assert len(buffer) == 10 and buffer.position == 3 and buffer.added == 13
    # items 10, 11, 12 overwrote slots 0-2; 3..9 are untouched
    assert buffer.storage["r"].tolist() == [10, 11, 12, 3, 4, 5, 6, 7, 8, 9]
    assert buffer.storage["x"].shape == (10, 1)  # pre-allocated once, never grown
    # a batch larger than the capacity keeps its newest items
    buffer.add(x=torch.arange(100.0, 125.0).unsqueeze(1), r=torch.arange(100.0, 125.0))
    assert sorted(buffer.storage["r"].tolist()) == list(range(115, 125)) and len(buffer) == 10
    with pytest.raises(ValueError, match="differ"):
        buffer.add(y=torch.zeros(1, 1))
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(capacity=0)


def test_sampling_is_uniform_not_biased_to_recent_items():
    capacity = 1000
    buffer = ReplayBuffer(capacity, seed=123)
    for start in range(0, 2500, 100):  # wraps 2.5 times
        buffer.add(age=torch.arange(start, start + 100, dtype=torch.long))
    ages = torch.cat([buffer.sample(5000)["age"] for _ in range(40)])  # 200k draws, fixed seed
    assert ages.min() >= 1500 and ages.max() < 2500  # only the items still stored
    # ten equal age bins (oldest to newest) must be equally likely: chi-square with 9 degrees of
    # freedom below 27.88 (p = 0.001). A sampler with even a 10% tilt towards the newest half gives
    # a statistic in the hundreds at this sample size.
    counts = torch.bincount((ages - 1500) // 100, minlength=10).double()
    expected = ages.numel() / 10
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 27.88, (chi2, counts.tolist())
    newest_share = (ages >= 2400).double().mean().item()
    assert abs(newest_share - 0.1) < 0.005  # 5 standard deviations at n=200k


def test_bf16_storage_round_trip_error_bound():
    gen = torch.Generator().manual_seed(0)
    states = torch.randn(256, 40, generator=gen) * 10
    rewards = torch.rand(256, generator=gen) * 0.7 + 0.0123
    buffer = ReplayBuffer(256, state_dtype=torch.bfloat16)
    buffer.add(obs=states, reward=rewards, action=torch.randint(0, 2, (256,), generator=gen))
    assert buffer.storage["obs"].dtype == torch.bfloat16
    assert buffer.storage["reward"].dtype == torch.float32  # scalars are kept exact
    assert buffer.storage["action"].dtype == torch.long
    stored = buffer.storage["obs"].float()
    # bfloat16 keeps 8 significant bits: round-to-nearest error <= 2^-8 relative
    assert ((stored - states).abs() <= states.abs() * 2**-8).all()
    assert (stored != states).any()  # it really is compressed
    assert torch.equal(buffer.storage["reward"], rewards)
    sample = buffer.sample(8)
    assert sample["obs"].dtype == torch.float32


# ----------------------------------------------------------------------------- schedules and updates
def test_soft_update_math():
    torch.manual_seed(0)
    online, target = nn.Linear(4, 3), nn.Linear(4, 3)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    soft_update(target, online, tau=0.25)
    for key, value in target.state_dict().items():
        torch.testing.assert_close(value, 0.25 * online.state_dict()[key] + 0.75 * before[key])
    # repeated updates converge geometrically: after n steps the gap is (1 - tau)^n of the start
    gap = (target.weight - online.weight).abs().max().item()
    for _ in range(10):
        soft_update(target, online, tau=0.25)
    assert math.isclose((target.weight - online.weight).abs().max().item(), gap * 0.75**10, rel_tol=1e-3)
    soft_update(target, online, tau=1.0)
    assert torch.equal(target.weight, online.weight)


@pytest.mark.parametrize("schedule", ["linear", "exponential"])
def test_epsilon_schedule_endpoints(schedule):
    assert epsilon_at(0, schedule, 0.5, 0.05, 100) == pytest.approx(0.5)
    assert epsilon_at(100, schedule, 0.5, 0.05, 100) == pytest.approx(0.05)
    assert epsilon_at(10_000, schedule, 0.5, 0.05, 100) == pytest.approx(0.05)
    middle = epsilon_at(50, schedule, 0.5, 0.05, 100)
    assert middle == pytest.approx(0.275 if schedule == "linear" else math.sqrt(0.5 * 0.05))
    values = [epsilon_at(s, schedule, 0.5, 0.05, 100) for s in range(101)]
    assert all(a > b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize(
    "field,value,words",
    [
        ("tau", 0.0, "(0, 1]"),
        ("gamma", 1.5, "[0, 1]"),
        ("epsilon_schedule", "cosine", "'linear', 'exponential'"),
        ("epsilon_end", 0.0, "'exponential'"),
        ("intrinsic", "icm", "'none', 'count', 'rnd'"),
        ("buffer_capacity", 0, ">= 1"),
        ("huber_delta", 0.0, "> 0"),
        ("count_hash_bits", 30, "[1, 24]"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(tmp_path, field, value, words):
    overrides = {field: value}
    if field == "epsilon_end":
        overrides["epsilon_schedule"] = "exponential"
    with pytest.raises(ValueError) as excinfo:
        DQNHaltingConfig(output_dir=str(tmp_path), report_to="none", **overrides)
    assert f"`{field}`" in str(excinfo.value) or field == "epsilon_end"
    assert words in str(excinfo.value)


def test_double_dqn_target_uses_online_argmax_and_target_value(tmp_path):
    torch.manual_seed(0)
    model = TRMForPuzzleSolving(tiny_trm_config(q_head_type="mlp", halt_max_steps=4))
    trajectories = toy_trajectories(8, 4, 64, seed=0)[0]
    trainer = DQNHaltingTrainer(model=model, args=dqn_args(tmp_path, gamma=0.9), trajectories=trajectories)
    with torch.no_grad():  # make the two networks disagree
        for p in trainer.q_head.parameters():
            p.normal_(0, 0.3)
        for p in trainer.target_q_head.parameters():
            p.normal_(0, 0.3)
    gen = torch.Generator().manual_seed(1)
    batch = {
        "obs": torch.randn(16, 64, generator=gen),
        "next_obs": torch.randn(16, 64, generator=gen),
        "step_fraction": torch.full((16,), 0.25),
        "next_step_fraction": torch.full((16,), 0.5),
        "action": torch.randint(0, 2, (16,), generator=gen),
        "reward": torch.rand(16, generator=gen),
        "done": (torch.rand(16, generator=gen) < 0.3).float(),
    }
    loss, _ = trainer.dqn_loss(batch)
    with torch.no_grad():
        online_next = torch.stack(trainer.q_head.q_values(batch["next_obs"], batch["next_step_fraction"])[:2], -1)
        target_next = torch.stack(
            trainer.target_q_head.q_values(batch["next_obs"], batch["next_step_fraction"])[:2], -1
        )
        value = target_next.gather(1, online_next.argmax(-1, keepdim=True)).squeeze(1)
        target = batch["reward"] + 0.9 * (1 - batch["done"]) * value
        q = torch.stack(trainer.q_head.q_values(batch["obs"], batch["step_fraction"])[:2], -1)
        taken = q.gather(1, batch["action"].unsqueeze(1)).squeeze(1)
    torch.testing.assert_close(loss, nn.functional.huber_loss(taken, target, delta=1.0))
    assert not torch.equal(online_next.argmax(-1), target_next.argmax(-1))  # the test can tell the two apart


def test_entropy_bonus_is_subtracted_from_the_td_loss_as_defined(tmp_path):
    torch.manual_seed(0)
    model = TRMForPuzzleSolving(tiny_trm_config(q_head_type="mlp", halt_max_steps=4))
    trajectories = toy_trajectories(8, 4, 64, seed=0)[0]
    plain = DQNHaltingTrainer(model=model, args=dqn_args(tmp_path), trajectories=trajectories)
    with torch.no_grad():
        for p in plain.q_head.parameters():
            p.normal_(0, 0.3)
    gen = torch.Generator().manual_seed(1)
    batch = {
        "obs": torch.randn(16, 64, generator=gen),
        "next_obs": torch.randn(16, 64, generator=gen),
        "step_fraction": torch.full((16,), 0.25),
        "next_step_fraction": torch.full((16,), 0.5),
        "action": torch.randint(0, 2, (16,), generator=gen),
        "reward": torch.rand(16, generator=gen),
        "done": (torch.rand(16, generator=gen) < 0.3).float(),
    }
    td, _ = plain.dqn_loss(batch)
    plain.args.entropy_coef = 0.3
    regularised, _ = plain.dqn_loss(batch)
    with torch.no_grad():
        q = torch.stack(plain.q_head.q_values(batch["obs"], batch["step_fraction"])[:2], -1)
        p_halt = torch.sigmoid(q[:, 0] - q[:, 1])  # softmax over the two actions
        entropy = -(p_halt * p_halt.log() + (1 - p_halt) * (1 - p_halt).log()).mean()
    assert 0.1 < entropy < math.log(2)  # neither degenerate nor uniform: the check has teeth
    torch.testing.assert_close(regularised, td - 0.3 * entropy)


def test_intrinsic_bonuses_favour_novel_states():
    gen = torch.Generator().manual_seed(0)
    count = CountBonus(feature_dim=8, bits=12, seed=0)
    seen = torch.randn(1, 8, generator=gen)
    first = count(seen).item()
    for _ in range(8):
        later = count(seen).item()
    assert first == 1.0 and later == pytest.approx(1 / 3)  # 1/sqrt(9)
    novel = count(torch.randn(1, 8, generator=gen) * 5).item()
    assert novel > later
    rnd = RNDBonus(feature_dim=8, seed=0)
    familiar = torch.randn(64, 8, generator=gen)
    for _ in range(200):
        rnd(familiar)
    assert rnd(torch.randn(64, 8, generator=gen) * 4 + 3).mean() > 2 * rnd(familiar).mean()


# ----------------------------------------------------------------------------- end to end
def toy_trajectories(num: int, max_steps: int, dim: int, seed: int, tokens: Optional[int] = None):
    """Puzzles whose answer becomes right at a known step and stays right; one noisy feature says
    whether it is right now. The optimal policy halts exactly at that step. With `tokens`, each
    observation is a `(tokens, dim)` matrix of token states (the attention head's input) and the
    feature is on every token."""
    gen = torch.Generator().manual_seed(seed)
    first_right = torch.randint(1, max_steps + 1, (num,), generator=gen)
    step = torch.arange(1, max_steps + 1)
    exact = step.unsqueeze(0) >= first_right.unsqueeze(1)
    shape = (num, max_steps, dim) if tokens is None else (num, max_steps, tokens, dim)
    observations = 0.3 * torch.randn(shape, generator=gen)
    signal = 2.0 * exact.float() - 1.0
    observations[..., 0] += signal if tokens is None else signal.unsqueeze(-1)
    cells = torch.where(exact, 1.0, 0.5 + 0.4 * step.unsqueeze(0) / max_steps)
    return HaltingTrajectories(observations, cells, exact), first_right


def policy_return(metrics: dict, cost: float) -> float:
    return metrics["exact_accuracy"] - cost * (metrics["mean_steps"] - 1)


@pytest.mark.slow
@pytest.mark.parametrize("q_head_type", ["mlp", "gru", "attention"])
def test_learned_halting_beats_random_halting_on_a_toy_task_with_known_optimum(tmp_path, q_head_type):
    torch.manual_seed(0)
    model = TRMForPuzzleSolving(tiny_trm_config(q_head_type=q_head_type, q_head_hidden_size=32, halt_max_steps=6))
    # mlp / gru read a pooled summary (2 * hidden_size); attention reads the token states
    shape = dict(dim=32, tokens=4) if q_head_type == "attention" else dict(dim=64)
    train, _ = toy_trajectories(512, 6, seed=0, **shape)
    test, first_right = toy_trajectories(512, 6, seed=1, **shape)
    trainer = DQNHaltingTrainer(
        model=model, args=dqn_args(tmp_path, buffer_bf16=True), trajectories=train, eval_dataset=test
    )
    trainer.train()
    learned = trainer.evaluate()
    optimal = halting_metrics(first_right, test.exact)
    # random policy: halt with probability 1/2 at every step
    gen = torch.Generator().manual_seed(2)
    random_steps = torch.full((512,), 6)
    for t in range(5, 0, -1):
        random_steps = torch.where(torch.rand(512, generator=gen) < 0.5, t, random_steps)
    random = halting_metrics(random_steps, test.exact)
    cost = trainer.args.reward_step_cost
    learned = {k.removeprefix("eval_"): v for k, v in learned.items()}
    assert policy_return(learned, cost) > policy_return(random, cost) + 0.3
    assert learned["exact_accuracy"] >= 0.97
    assert learned["mean_steps"] <= optimal["mean_steps"] + 0.6  # close to the known optimal stop
    assert learned["mean_steps"] < 0.8 * 6  # it really stops early
    logged = [h for h in trainer.state.log_history if "epsilon" in h]
    assert logged and {"buffer_fill", "q_halt_mean", "mean_steps", "premature_halt_rate"} <= set(logged[-1])
    assert logged[-1]["epsilon"] == pytest.approx(trainer.args.epsilon_end)


def test_table_rollouts_store_trajectory_references_not_token_states(tmp_path):
    """The attention head's states are token matrices: the buffer keeps (trajectory, step) and a
    sample looks them up in the table, rounded as bf16 storage would round them."""
    torch.manual_seed(0)
    model = TRMForPuzzleSolving(tiny_trm_config(q_head_type="attention", q_head_hidden_size=16, halt_max_steps=4))
    table, _ = toy_trajectories(64, 4, 32, seed=0, tokens=16)
    args = dqn_args(
        tmp_path,
        per_device_train_batch_size=16,
        max_steps=12,
        learning_starts=16,
        dqn_batch_size=16,
        buffer_capacity=1000,
        buffer_bf16=True,
        logging_steps=6,
    )
    trainer = DQNHaltingTrainer(model=model, args=args, trajectories=table)
    trainer.train()
    storage = trainer.buffer.storage
    assert "obs" not in storage and storage["obs_ref"].shape == (1000, 2) and storage["obs_ref"].dtype == torch.long
    per_transition = sum(v[0].numel() * v.element_size() for v in storage.values())
    assert per_transition <= 64  # bytes; two stored 16 x 32 float states would be 4096
    n = len(trainer.buffer)
    ref, next_ref = storage["obs_ref"][:n], storage["next_obs_ref"][:n]
    action, done = storage["action"][:n], storage["done"][:n].bool()
    assert ((ref[:, 1] >= 0) & (ref[:, 1] < 4)).all() and n > 32
    assert torch.equal(next_ref[:, 0], ref[:, 0])  # the same puzzle
    continued = action == 1
    assert torch.equal(next_ref[continued, 1], ref[continued, 1] + 1) and torch.equal(
        next_ref[~continued], ref[~continued]
    )
    assert torch.equal(done[continued], next_ref[continued, 1] == 3) and done[~continued].all()
    torch.testing.assert_close(storage["step_fraction"][:n], (ref[:, 1] + 1).float() / 4)
    sample = trainer.buffer.sample(32)
    refs = sample["obs_ref"].clone()
    looked = trainer._lookup_states(sample)
    assert "obs_ref" not in looked and looked["obs"].dtype == torch.float32
    stored = table.observations[refs[:, 0], refs[:, 1]]
    torch.testing.assert_close(looked["obs"], stored.to(torch.bfloat16).float(), rtol=0, atol=0)
    assert ((looked["obs"] - stored).abs() <= stored.abs() * 2**-8).all() and not torch.equal(looked["obs"], stored)


def test_the_gru_memory_restarts_with_every_new_episode(tmp_path):
    """Every first-step transition, including those of episodes that replaced a finished one in
    its batch row, starts from the zero GRU state; later steps carry a non-zero one."""
    torch.manual_seed(0)
    model = TRMForPuzzleSolving(tiny_trm_config(q_head_type="gru", q_head_hidden_size=16, halt_max_steps=4))
    table, _ = toy_trajectories(64, 4, 64, seed=0)
    args = dqn_args(
        tmp_path,
        per_device_train_batch_size=8,
        max_steps=40,
        learning_starts=16,
        dqn_batch_size=16,
        epsilon_start=0.8,
        epsilon_end=0.8,
        logging_steps=20,
    )
    trainer = DQNHaltingTrainer(model=model, args=args, trajectories=table)
    trainer.train()
    n = len(trainer.buffer)
    first = trainer.buffer.storage["step_fraction"][:n] == 0.25
    hidden = trainer.buffer.storage["hidden"][:n]
    assert first.sum() > 3 * 8  # many episodes began after the first ones ended
    assert (hidden[first] == 0).all()
    assert (hidden[~first].abs().sum(-1) > 0).all()


def test_gradient_accumulation_scales_the_loss_like_any_trainer_loss(tmp_path):
    """With labels in the batch (online rollouts) Trainer would take our **kwargs forward as
    normalising by `num_items_in_batch` itself and skip the division by the accumulation steps."""

    class Recording(DQNHaltingTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            self.computed.append(loss.item())
            return loss

        def training_step(self, model, inputs, num_items_in_batch=None):
            loss = super().training_step(model, inputs, num_items_in_batch)
            self.returned.append(loss.item())
            return loss

    torch.manual_seed(0)
    model = TRMForPuzzleSolving(tiny_trm_config(q_head_type="mlp", halt_max_steps=3))
    data = puzzle_dataset(model.config, 32, seed=0)
    args = dqn_args(
        tmp_path,
        per_device_train_batch_size=4,
        max_steps=2,
        gradient_accumulation_steps=2,
        learning_starts=4,
        dqn_batch_size=4,
        freeze_trm=False,
        precompute_trajectories=False,
        logging_steps=1,
    )
    trainer = Recording(model=model, args=args, train_dataset=data)
    trainer.computed, trainer.returned = [], []
    trainer.train()
    assert trainer.model_accepts_loss_kwargs is False
    assert len(trainer.computed) == 4 and all(c > 0 for c in trainer.computed)  # the TRM's loss is in every one
    assert trainer.returned == pytest.approx([c / 2 for c in trainer.computed], rel=1e-6)
    assert trainer.state.global_step == 2


def puzzle_dataset(config, num: int, seed: int) -> Dataset:
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, config.vocab_size, (num, config.seq_len), generator=gen)
    # a learnable toy target: the input shifted by one token value
    labels = (input_ids % (config.vocab_size - 1)) + 1
    return Dataset.from_dict({"input_ids": input_ids.tolist(), "labels": labels.tolist()})


def test_precomputed_trajectories_agree_with_running_the_model():
    """The table the trainer learns from gives the same halting decisions as the live model."""
    torch.manual_seed(0)
    model = TRMForPuzzleSolving(tiny_trm_config(q_head_type="gru", halting="dqn", q_head_hidden_size=16)).eval()
    with torch.no_grad():
        for p in model.q_head.parameters():
            p.normal_(0, 0.1)  # this seed's random head halts at steps 1, 2 and 4
    data = puzzle_dataset(model.config, 20, seed=0)
    table = collect_trajectories(model, data, batch_size=8)
    assert table.observations.shape == (20, 4, 64) and table.exact.shape == (20, 4)
    live = evaluate_halting(model, data, batch_size=7)
    from_table = halting_metrics(greedy_halting_steps(model.q_head, table), table.exact)
    assert from_table == live
    assert 1 < live["mean_steps"] < 4  # the head halts at different steps: the comparison is not trivial


@pytest.mark.slow
@pytest.mark.parametrize("freeze_trm", [True, False])
def test_online_rollouts_with_a_frozen_or_jointly_trained_trm(tmp_path, freeze_trm):
    torch.manual_seed(0)
    model = TRMForPuzzleSolving(tiny_trm_config(q_head_type="mlp", halt_max_steps=3))
    trm_before = model.model.layers[0].mlp.down_proj.weight.clone()
    head_before = model.q_head.output_proj.weight.clone()
    data = puzzle_dataset(model.config, 64, seed=0)
    args = dqn_args(
        tmp_path,
        per_device_train_batch_size=8,
        max_steps=12,
        learning_starts=16,
        dqn_batch_size=16,
        freeze_trm=freeze_trm,
        precompute_trajectories=False,
        logging_steps=6,
        intrinsic="count",
    )
    trainer = DQNHaltingTrainer(model=model, args=args, train_dataset=data, eval_dataset=data.select(range(16)))
    assert not trainer.use_table
    trainer.train()
    assert len(trainer.buffer) > 16
    assert not torch.equal(model.q_head.output_proj.weight, head_before)
    changed = not torch.equal(model.model.layers[0].mlp.down_proj.weight, trm_before)
    assert changed == (not freeze_trm)
    logs = [h for h in trainer.state.log_history if "intrinsic_share" in h]
    assert logs and 0 < logs[-1]["intrinsic_share"] < 1
    metrics = trainer.evaluate()
    assert metrics["eval_num_puzzles"] == 16 and 1 <= metrics["eval_mean_steps"] <= 3
    assert model.config.halting == "dqn"


@pytest.mark.slow
def test_checkpoint_saves_and_restores_the_target_network(tmp_path):
    torch.manual_seed(0)
    model = TRMForPuzzleSolving(tiny_trm_config(q_head_type="mlp", halt_max_steps=4))
    train, _ = toy_trajectories(128, 4, 64, seed=0)
    args = dqn_args(tmp_path, max_steps=40, save_strategy="steps", save_steps=20, learning_starts=32, intrinsic="rnd")
    trainer = DQNHaltingTrainer(model=model, args=args, trajectories=train)
    trainer.train()
    checkpoint = os.path.join(args.output_dir, "checkpoint-40")
    assert os.path.isfile(os.path.join(checkpoint, STATE_FILE.format(rank=0)))
    assert not [f for f in os.listdir(checkpoint) if f.endswith(".tmp")]
    saved_target = {k: v.clone() for k, v in trainer.target_q_head.state_dict().items()}

    torch.manual_seed(1)
    fresh = TRMForPuzzleSolving(tiny_trm_config(q_head_type="mlp", halt_max_steps=4))
    resumed = DQNHaltingTrainer(
        model=fresh, args=dqn_args(tmp_path, max_steps=40, learning_starts=32, intrinsic="rnd"), trajectories=train
    )
    resumed.train(resume_from_checkpoint=checkpoint)  # already at max_steps: loads, no new step
    for key, value in resumed.target_q_head.state_dict().items():
        torch.testing.assert_close(value, saved_target[key], rtol=0, atol=0)
    torch.testing.assert_close(fresh.q_head.output_proj.weight, model.q_head.output_proj.weight, rtol=0, atol=0)
    assert resumed._pending_intrinsic_state is not None


def test_a_kill_while_saving_keeps_the_previous_checkpoint_under_save_total_limit(tmp_path):
    def trainer():
        torch.manual_seed(0)
        model = TRMForPuzzleSolving(tiny_trm_config(q_head_type="mlp", halt_max_steps=4))
        settings = dict(save_strategy="steps", save_steps=2, save_total_limit=1, max_steps=4, learning_starts=8)
        args = dqn_args(tmp_path, per_device_train_batch_size=8, dqn_batch_size=8, **settings)
        return DQNHaltingTrainer(model=model, args=args, trajectories=toy_trajectories(16, 4, 64, seed=0)[0])

    killed = trainer()
    kill_before_the_state_file(killed, step=4)
    with pytest.raises(KilledWhileSaving):
        killed.train()
    out = tmp_path / "run"
    assert not (out / "checkpoint-4" / STATE_FILE.format(rank=0)).exists()
    assert (out / "checkpoint-2" / STATE_FILE.format(rank=0)).is_file()

    resumed, steps = trainer(), StepsTaken()
    resumed.add_callback(steps)
    resumed.train(resume_from_checkpoint="last")
    assert steps.taken == [3, 4]
    assert sorted(os.listdir(out)) == ["checkpoint-4"]


def test_trainer_rejects_bad_inputs(tmp_path):
    model = TRMForPuzzleSolving(tiny_trm_config(halt_max_steps=1))
    with pytest.raises(ValueError, match="halt_max_steps"):
        DQNHaltingTrainer(model=model, args=dqn_args(tmp_path), trajectories=toy_trajectories(4, 1, 32, 0)[0])
    model = TRMForPuzzleSolving(tiny_trm_config(halt_max_steps=4))
    with pytest.raises(ValueError, match="train_dataset"):
        DQNHaltingTrainer(model=model, args=dqn_args(tmp_path))
    with pytest.raises(ValueError, match="halt_max_steps"):
        DQNHaltingTrainer(model=model, args=dqn_args(tmp_path), trajectories=toy_trajectories(4, 3, 32, 0)[0])
    with pytest.raises(ValueError, match="DQNHaltingConfig"):
        DQNHaltingTrainer(model=model, args=object(), trajectories=toy_trajectories(4, 4, 32, 0)[0])


@pytest.mark.slow
def test_example_documents_every_flag_and_runs(tmp_path, capsys):
    import dataclasses
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    script = str(root / "examples" / "train_halting_dqn.py")
    result = subprocess.run(
        [sys.executable, script, "--help"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for f in dataclasses.fields(DQNHaltingConfig):
        if f.name in DQNHaltingConfig.__annotations__:
            assert f.metadata.get("help") and f"--{f.name}" in result.stdout, f.name
    for flag in ("--model_name_or_path", "--q_head_type", "--num_train_puzzles", "--min_givens"):
        assert flag in result.stdout

    torch.manual_seed(0)
    model = TRMForPuzzleSolving(tiny_trm_config(vocab_size=6, seq_len=16, halt_max_steps=3))
    model.save_pretrained(tmp_path / "trm")
    # the run itself in this process (the 2-process test runs it under accelerate launch)
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_halting_dqn", script)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    flags = [
        "--model_name_or_path",
        str(tmp_path / "trm"),
        "--size",
        "4",
        "--min_givens",
        "8",
        "--num_train_puzzles",
        "32",
        "--num_eval_puzzles",
        "8",
        "--q_head_type",
        "gru",
        "--per_device_train_batch_size",
        "8",
        "--max_steps",
        "6",
        "--learning_starts",
        "8",
        "--dqn_batch_size",
        "8",
        "--disable_tqdm",
        "true",
    ]
    metrics = example.main([*flags, "--output_dir", str(tmp_path / "out")])
    assert metrics["eval_num_puzzles"] == 8 and 1 <= metrics["eval_mean_steps"] <= 3
    assert "exact accuracy at halt" in capsys.readouterr().out
    saved = TRMForPuzzleSolving.from_pretrained(tmp_path / "out")
    assert saved.config.halting == "dqn" and saved.config.q_head_type == "gru"
    # --seed fixes the new Q-head's initial weights too: a second run saves the same model
    example.main([*flags, "--output_dir", str(tmp_path / "again")])
    weights = [(tmp_path / name / "model.safetensors").read_bytes() for name in ("out", "again")]
    assert weights[0] == weights[1]
    with pytest.raises(FileNotFoundError, match="no checkpoint in"):
        example.main([*flags, "--output_dir", str(tmp_path / "new"), "--resume_from_checkpoint", "last"])


@pytest.mark.slow
def test_two_processes_average_the_q_head_gradients_and_agree_on_the_weights(tmp_path):
    """Table mode averages the Q-head's gradients by hand (the head runs outside DDP's forward);
    joint training leaves it to DDP; the example runs under `accelerate launch` too."""
    import json

    result = accelerate_launch(str(REPO_ROOT / "tests" / "scripts" / "dqn_ddp_check.py"), str(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    zero, one = ranks
    # each rank rolled out its own puzzles into its own buffer, so the agreement is the averaging's doing
    assert zero["table_first_indices"] != one["table_first_indices"]
    assert zero["table_head_after"] == one["table_head_after"] != zero["table_head_before"]
    assert zero["table_target_after"] == one["table_target_after"]
    assert zero["table_trm_unchanged"] and one["table_trm_unchanged"]
    assert zero["joint_after"] == one["joint_after"] != zero["joint_before"]
    assert zero["joint_head_after"] == one["joint_head_after"] != zero["joint_head_before"]
    assert zero["example_metrics"]["eval_num_puzzles"] == 8
    saved = TRMForPuzzleSolving.from_pretrained(tmp_path / "example")
    assert saved.config.halting == "dqn" and saved.config.q_head_type == "gru"


def memory_model() -> TRMForPuzzleSolving:
    """A tiny TRM with a written memory bank and random values, so `memory_use` varies by state."""
    torch.manual_seed(0)
    model = TRMForPuzzleSolving(tiny_trm_config(q_head_type="mlp", halt_max_steps=4, memory_slots=16))
    model.train()
    for seed in range(4):
        model(torch.randint(1, 11, (8, 16), generator=torch.Generator().manual_seed(seed)))
    with torch.no_grad():
        model.model.memory.values.normal_()
    return model.eval()


def test_memory_use_bonus_adds_the_reached_states_memory_use_to_continue_rewards(tmp_path):
    data = puzzle_dataset(memory_model().config, 24, seed=1)
    table = collect_trajectories(memory_model(), data, batch_size=8)
    assert table.memory_use.shape == (24, 4) and table.memory_use.gt(0).any()
    rewards = {}
    for weight in (0.0, 0.5):
        # no Q-update before the end (learning_starts): both runs take the same actions
        args = dqn_args(
            tmp_path,
            per_device_train_batch_size=8,
            max_steps=10,
            learning_starts=10_000,
            memory_bonus_weight=weight,
            logging_steps=5,
        )
        trainer = DQNHaltingTrainer(model=memory_model(), args=args, trajectories=table)
        trainer.train()
        n = len(trainer.buffer)
        rewards[weight] = {k: v[:n].clone() for k, v in trainer.buffer.storage.items()}
    plain, bonus = rewards[0.0], rewards[0.5]
    assert torch.equal(plain["obs_ref"], bonus["obs_ref"]) and torch.equal(plain["action"], bonus["action"])
    continued = plain["action"] == 1
    assert continued.any() and (~continued).any()
    reached = bonus["next_obs_ref"][continued]
    expected = 0.5 * table.memory_use[reached[:, 0], reached[:, 1]]
    torch.testing.assert_close(bonus["reward"][continued] - plain["reward"][continued], expected)
    torch.testing.assert_close(bonus["reward"][~continued], plain["reward"][~continued])


def test_memory_use_bonus_needs_a_memory_bank(tmp_path):
    model = TRMForPuzzleSolving(tiny_trm_config(q_head_type="mlp", halt_max_steps=4))
    data = puzzle_dataset(model.config, 8, seed=0)
    with pytest.raises(ValueError, match="`memory_bonus_weight` > 0 needs a TRM with a pattern memory bank"):
        DQNHaltingTrainer(model=model, args=dqn_args(tmp_path, memory_bonus_weight=0.1), train_dataset=data)
    with pytest.raises(ValueError, match="`memory_bonus_weight`"):
        dqn_args(tmp_path, memory_bonus_weight=-1.0)
