# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Learned halting as reinforcement learning: a DQN trainer for TRM's halting Q-head.

The environment is a TRM solving puzzles one supervision step at a time. After step `t` the agent
sees the answer state (summarised by the Q-head, `q_head.summarize`) and either halts (the
episode ends with a terminal reward if the whole answer is right) or continues (step `t + 1`
runs; reward = weighted change in cell accuracy minus a per-step cost). At `halt_max_steps` the
episode ends by itself. The Q-head (`TRMConfig.q_head_type`) is trained with Double-DQN targets
from a soft-updated target network, a Huber loss, uniform replay and epsilon-greedy exploration.

Two ways to produce the transitions, chosen by the config:

- `freeze_trm=True, precompute_trajectories=True` (the default): the frozen TRM is deterministic
  given its inputs, so every supervision step of every training puzzle is run once up front
  (`collect_trajectories`) and episodes replay from that table. Every rollout step then costs a
  table lookup instead of a TRM forward, which is what makes thousands of episodes affordable
  on a CPU; the agent still acts epsilon-greedily and learns only from the transitions it takes.
  The replay buffer then stores a transition's states as (trajectory, step) pairs and looks
  them up in the table when it samples: the attention head's states are whole token-state
  matrices, and a buffer of 50k transitions holding two of them each would take gigabytes.
- otherwise the TRM runs online, one supervision step per rollout step with the carry kept per
  puzzle (as in deep supervision); with `freeze_trm=False` its own token loss is added, so TRM
  and head train jointly.

A rollout step is one `compute_loss` call (one micro-batch): every puzzle in flight advances one
supervision step and one Q-loss is taken on a replay sample. With `gradient_accumulation_steps=k`
an optimizer step (`state.global_step`, what `max_steps`, the epsilon schedule and the target
network's soft updates count) covers `k` rollout steps.
"""

import copy
import math
from typing import Optional

import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import Trainer
from transformers.utils import logging

from hf_reason.evaluation.halting import (
    HaltingTrajectories,
    collect_trajectories,
    evaluate_halting,
    greedy_halting_steps,
    halting_metrics,
)
from hf_reason.evaluation.puzzles import PUZZLE_KEYS
from hf_reason.models.trm.modeling_trm import score_cells

from ._model_card import ModelCardMixin
from .dqn_halting_config import DQNHaltingConfig
from .dqn_halting_episodes import CONTINUE, HALT, HaltingEpisodes, PendingContinue, Transitions
from .rl_utils import CountBonus, ReplayBuffer, RNDBonus, epsilon_at, soft_update
from .utils import AfterOptimizerStep, CheckpointStateMixin, MetricWindow


logger = logging.get_logger(__name__)

__all__ = ["DQNHaltingTrainer"]

STATE_FILE = "dqn_halting_state_rank{rank}.safetensors"


class DQNHaltingTrainer(ModelCardMixin, CheckpointStateMixin, Trainer):
    """
    Trains the halting Q-head of a [`TRMForPuzzleSolving`] with DQN (see the module docstring).

    The model's `config.halting` is set to `"dqn"`: `solve()` and evaluation then halt where
    `Q_halt > Q_continue`, and the model's own loss drops its halting terms. The train dataset
    holds puzzles (`input_ids`, `labels`, optionally `puzzle_identifiers`); alternatively pass
    `trajectories` (a [`HaltingTrajectories`]) to learn from a given table of supervision steps.
    `eval_dataset` may be puzzles (scored with the model's forward, `evaluate_halting`) or a
    `HaltingTrajectories` (scored on the table).

    Logged during training: `loss` (TD), `q_halt_mean`, `q_continue_mean`, `q_max`, `q_min`,
    `td_error`, `epsilon`, `buffer_fill`, `intrinsic_share` (intrinsic part of all rewards, in
    absolute value), and over the episodes that ended since the last log: `mean_steps`,
    `exact_accuracy` (at halt), `premature_halt_rate` (table rollouts only: an online rollout
    replaces a halted puzzle at once, so whether a later step would have been right is never
    computed; `evaluate()` runs every step and reports it in both modes), `episodes`.
    """

    training_state_files = (STATE_FILE.format(rank="*"),)
    _state_file = STATE_FILE
    _missing_state_message = (
        "{path} is missing: {checkpoint} is incomplete (interrupted while saving) or was not written by "
        "DQNHaltingTrainer. Resume from an earlier checkpoint."
    )

    # Logged as means over the window since the last log; the totals give `intrinsic_share` and `episodes`.
    METRIC_KEYS = (
        "buffer_fill",
        "epsilon",
        "exact_accuracy",
        "mean_steps",
        "premature_halt_rate",
        "q_continue_mean",
        "q_halt_mean",
        "q_max",
        "q_min",
        "td_error",
    )
    TOTAL_KEYS = ("extrinsic_abs", "intrinsic_abs", "episodes")

    def __init__(
        self,
        model=None,
        args: Optional[DQNHaltingConfig] = None,
        train_dataset=None,
        eval_dataset=None,
        trajectories: Optional[HaltingTrajectories] = None,
        **kwargs,
    ):
        if args is None:
            args = DQNHaltingConfig(output_dir="trm-dqn-halting")
        if not isinstance(args, DQNHaltingConfig):
            raise ValueError(f"`args` must be a DQNHaltingConfig, got {type(args).__name__}.")
        if model is None or not hasattr(model, "q_head") or not hasattr(model, "q_values"):
            raise ValueError("`model` must be a TRMForPuzzleSolving (a model with `q_head` and `q_values`).")
        if model.config.halt_max_steps < 2:
            raise ValueError("`config.halt_max_steps` must be >= 2: with one step there is no halting decision.")
        if trajectories is None and train_dataset is None:
            raise ValueError("Pass `train_dataset` (puzzles) or `trajectories` (a HaltingTrajectories).")
        if model.config.q_head_type == "linear":
            logger.warning(
                "DQN with the 'linear' Q-head: it reads only the first position, has no step input and starts "
                "at the method's -5 bias, so it learns slowly; 'mlp', 'gru' or 'attention' heads are recommended "
                "(`model.replace_q_head('mlp')`)."
            )
        if args.memory_bonus_weight > 0 and not getattr(model.config, "memory_slots", 0):
            raise ValueError(
                "`memory_bonus_weight` > 0 needs a TRM with a pattern memory bank (`memory_slots` > 0 in its "
                "config); this model has none. Set `memory_bonus_weight=0`."
            )
        model.config.halting = "dqn"
        if args.freeze_trm:
            model.requires_grad_(False)
            model.q_head.requires_grad_(True)
        self.use_table = trajectories is not None or (args.freeze_trm and args.precompute_trajectories)
        if self.use_table:
            if trajectories is None:
                trajectories = collect_trajectories(
                    model, train_dataset, args.per_device_train_batch_size, desc="precomputing trajectories"
                )
            if args.memory_bonus_weight > 0 and trajectories.memory_use is None:
                raise ValueError(
                    "`memory_bonus_weight` > 0 needs `trajectories.memory_use`: collect them with "
                    "`collect_trajectories` from the memory-enabled model."
                )
            if trajectories.max_steps != model.config.halt_max_steps:
                raise ValueError(
                    f"`trajectories` have {trajectories.max_steps} steps; the model's halt_max_steps is "
                    f"{model.config.halt_max_steps}."
                )
            train_dataset = Dataset.from_dict({"trajectory_index": list(range(trajectories.num_puzzles))})
        else:
            train_dataset = train_dataset.select_columns([c for c in PUZZLE_KEYS if c in train_dataset.column_names])
        self.trajectories = trajectories
        super().__init__(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset, **kwargs)
        # TRM's forward takes **kwargs, which makes Trainer assume the loss is already normalised by
        # `num_items_in_batch` and skip dividing it by the accumulation steps. Our loss is a mean
        # per rollout step (the TD loss plus the TRM's per-example loss): let Trainer scale it.
        self.model_accepts_loss_kwargs = False
        self.q_head = model.q_head
        self.target_q_head = copy.deepcopy(model.q_head).requires_grad_(False).eval()
        self.buffer = ReplayBuffer(
            args.buffer_capacity,
            torch.bfloat16 if args.buffer_bf16 else torch.float32,
            seed=args.seed + args.process_index,
        )
        self.intrinsic_bonus = None
        self._generator = torch.Generator().manual_seed(args.seed + 1000 * args.process_index)
        self._episodes: Optional[HaltingEpisodes] = None
        self._pending_intrinsic_state: Optional[dict] = None
        self._metrics = MetricWindow(self.METRIC_KEYS, self.TOTAL_KEYS)
        self.add_callback(AfterOptimizerStep(self._after_optimizer_step))

    def _after_optimizer_step(self) -> None:
        soft_update(self.target_q_head, self.q_head, self.args.tau)

    # ----------------------------------------------------------------- rollouts
    def current_epsilon(self) -> float:
        a = self.args
        return epsilon_at(self.state.global_step, a.epsilon_schedule, a.epsilon_start, a.epsilon_end, a.epsilon_steps)

    @property
    def q_head_dtype(self) -> torch.dtype:
        return next(self.q_head.parameters()).dtype

    def _start_episodes(self, model, episodes: Optional[HaltingEpisodes], batch: dict) -> HaltingEpisodes:
        """Episodes for a first batch (or one of another size); otherwise `episodes` with the finished
        rows replaced by the batch's puzzles."""
        size = next(iter(batch.values())).shape[0]
        if episodes is None or episodes.done.shape[0] != size:
            carry = None if self.use_table else self.accelerator.unwrap_model(model).model.initial_carry(size)
            return HaltingEpisodes(
                puzzle=dict(batch),
                done=torch.ones(size, dtype=torch.bool),
                steps=torch.zeros(size, dtype=torch.long),
                carry=carry,
            )
        episodes.replace_finished(batch, self.args.device)
        return episodes

    def _environment_step(self, model, episodes: HaltingEpisodes) -> tuple:
        """One supervision step for every row: (observations, cell accuracy, exact, memory use or None,
        TRM loss or None)."""
        if self.use_table:
            index, t = episodes.puzzle["trajectory_index"].cpu(), episodes.steps - 1
            table = self.trajectories
            obs = table.observations[index, t].to(self.args.device, self.q_head_dtype)
            use = table.memory_use[index, t] if table.memory_use is not None else None
            return obs, table.cell_accuracy[index, t], table.exact[index, t], use, None
        out = model(**episodes.puzzle, carry=episodes.carry, return_dict=True)
        episodes.carry = out.carry.continued()  # the trainer decides when episodes end
        obs = self.q_head.summarize(out.carry.y).detach()
        scores = score_cells(out.logits.detach().argmax(-1), episodes.puzzle["labels"])
        lm_loss = out.loss if not self.args.freeze_trm else None
        use = out.memory_use.detach().float().cpu() if out.memory_use is not None else None
        return obs, scores.accuracy.cpu(), scores.exact.cpu(), use, lm_loss

    def _push(self, transitions: Transitions) -> None:
        # With the table, states are stored as (trajectory, step) references (`_lookup_states`).
        self.buffer.add(**transitions.buffer_fields("obs_ref" if self.use_table else "obs"))

    @torch.no_grad()
    def _rollout(self, model, batch: dict) -> Optional[torch.Tensor]:
        """Advances every episode by one supervision step, acts epsilon-greedily, stores transitions."""
        a = self.args
        episodes = self._episodes = self._start_episodes(model, self._episodes, batch)
        episodes.steps += 1
        steps, max_steps = episodes.steps, self.model.config.halt_max_steps
        with torch.set_grad_enabled(not a.freeze_trm):
            obs, cells, exact, memory_use, lm_loss = self._environment_step(model, episodes)
        obs = obs.to(self.q_head_dtype)
        fraction = steps.float() / max_steps
        if episodes.hidden is None and hasattr(self.q_head, "initial_hidden"):
            episodes.hidden = self.q_head.initial_hidden(obs.shape[0], obs.device, obs.dtype)
        hidden_in = episodes.hidden
        q_halt, q_continue, hidden_out = self.q_head.q_values(obs, fraction.to(obs.device), hidden_in)
        episodes.hidden = hidden_out
        last = steps >= max_steps
        q_halt, q_continue = q_halt.cpu(), q_continue.cpu()
        # Transitions are assembled on the CPU, where the replay buffer lives.
        if self.use_table:
            states = torch.stack((episodes.puzzle["trajectory_index"].cpu(), steps - 1), dim=-1)
        else:
            states = obs.cpu()
        hidden_in = hidden_in.cpu() if hidden_in is not None else None
        hidden_out = hidden_out.cpu() if hidden_out is not None else None

        pending = episodes.pending
        if pending is not None and pending.rows.any():
            self._finish_continued(pending, obs, states, cells, fraction, exact, last, memory_use)

        # Epsilon-greedy decisions (none at the step limit: the episode ends there).
        greedy_halt = q_halt > q_continue
        explore = torch.rand(steps.shape, generator=self._generator) < self.current_epsilon()
        random_halt = torch.rand(steps.shape, generator=self._generator) < 0.5
        halt = torch.where(explore, random_halt, greedy_halt) & ~last
        if halt.any():
            reward = a.reward_terminal_correct * exact[halt].float()
            self._metrics.add("extrinsic_abs", reward.abs().sum().item())
            self._push(
                Transitions(
                    obs=states[halt],
                    action=torch.full((int(halt.sum()),), HALT),
                    reward=reward,
                    next_obs=states[halt],
                    step_fraction=fraction[halt],
                    next_step_fraction=fraction[halt],
                    done=torch.ones(int(halt.sum()), dtype=torch.bool),
                    hidden=hidden_in[halt] if hidden_in is not None else None,
                    next_hidden=hidden_out[halt] if hidden_out is not None else None,
                )
            )
        episodes.pending = PendingContinue(
            rows=~halt & ~last, obs=states, cells=cells, fraction=fraction, hidden=hidden_in, next_hidden=hidden_out
        )
        ended = halt | last
        episodes.done = ended
        self._record_episodes(episodes, ended, exact, steps)
        self._metrics.add("q_halt_mean", q_halt.mean().item())
        self._metrics.add("q_continue_mean", q_continue.mean().item())
        self._metrics.add("q_max", torch.maximum(q_halt, q_continue).max().item())
        self._metrics.add("q_min", torch.minimum(q_halt, q_continue).min().item())
        return lm_loss

    def _finish_continued(
        self, pending: PendingContinue, obs, states, cells, fraction, exact, last, memory_use=None
    ) -> None:
        """Stores the transitions of the rows that continued at the previous step, now that the state
        they reached (`obs`, `states`), its cell accuracy and its memory use are known."""
        a = self.args
        rows = pending.rows
        extrinsic = a.reward_accuracy_delta * (cells - pending.cells) - a.reward_step_cost
        extrinsic = extrinsic + a.reward_terminal_correct * (last & exact).float()
        intrinsic = a.intrinsic_weight * self._intrinsic(obs)
        if a.memory_bonus_weight > 0:
            intrinsic = intrinsic + a.memory_bonus_weight * memory_use
        reward = extrinsic + intrinsic
        self._metrics.add("extrinsic_abs", extrinsic[rows].abs().sum().item())
        self._metrics.add("intrinsic_abs", intrinsic[rows].abs().sum().item())
        has_hidden = pending.hidden is not None
        self._push(
            Transitions(
                obs=pending.obs[rows],
                action=torch.full((int(rows.sum()),), CONTINUE),
                reward=reward[rows],
                next_obs=states[rows],
                step_fraction=pending.fraction[rows],
                next_step_fraction=fraction[rows],
                done=last[rows],
                hidden=pending.hidden[rows] if has_hidden else None,
                next_hidden=pending.next_hidden[rows] if has_hidden else None,
            )
        )

    def _intrinsic(self, obs: torch.Tensor) -> torch.Tensor:
        if self.args.intrinsic == "none":
            return torch.zeros(obs.shape[0])
        if self.intrinsic_bonus is None:
            features = math.prod(obs.shape[1:])
            seed = self.args.seed + 7
            if self.args.intrinsic == "count":
                self.intrinsic_bonus = CountBonus(features, self.args.count_hash_bits, seed=seed)
            else:
                self.intrinsic_bonus = RNDBonus(features, seed=seed).to(obs.device)
            if self._pending_intrinsic_state is not None:
                self.intrinsic_bonus.load_state_dict(self._pending_intrinsic_state)
        with torch.enable_grad():
            return self.intrinsic_bonus(obs.float()).detach().cpu()

    def _record_episodes(self, episodes: HaltingEpisodes, ended, exact, steps) -> None:
        if not ended.any():
            return
        self._metrics.add("mean_steps", steps[ended].float().mean().item())
        self._metrics.add("exact_accuracy", exact[ended].float().mean().item())
        self._metrics.add("episodes", float(ended.sum()))
        if self.use_table:
            index = episodes.puzzle["trajectory_index"][ended.to(self.args.device)].cpu()
            later = torch.arange(self.trajectories.max_steps).unsqueeze(0) >= steps[ended].unsqueeze(1)
            right_later = (self.trajectories.exact[index] & later).any(1)
            self._metrics.add("premature_halt_rate", (~exact[ended] & right_later).float().mean().item())

    # ----------------------------------------------------------------- loss
    def _lookup_states(self, sample: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Replaces a sample's `(trajectory, step)` references by the table's states, rounded to the
        buffer's storage dtype (what storing them would have done) and cast to the Q-head's."""
        if "obs_ref" not in sample:
            return sample
        table = self.trajectories.observations
        for key in ("obs", "next_obs"):
            ref = sample.pop(f"{key}_ref").cpu()
            states = table[ref[:, 0], ref[:, 1]]
            if states.is_floating_point():
                states = states.to(self.buffer.state_dtype)
            sample[key] = states.to(self.q_head_dtype)
        return sample

    def dqn_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Huber loss between Q(s, a) and the (Double-)DQN target; minus the optional entropy bonus."""
        a = self.args
        hidden, next_hidden = batch.get("hidden"), batch.get("next_hidden")
        q_halt, q_continue, _ = self.q_head.q_values(batch["obs"], batch["step_fraction"], hidden)
        q = torch.stack((q_halt, q_continue), -1)
        q_taken = q.gather(1, batch["action"].long().unsqueeze(1)).squeeze(1)
        with torch.no_grad():
            target_halt, target_continue, _ = self.target_q_head.q_values(
                batch["next_obs"], batch["next_step_fraction"], next_hidden
            )
            target_q = torch.stack((target_halt, target_continue), -1)
            if a.double_dqn:
                online_halt, online_continue, _ = self.q_head.q_values(
                    batch["next_obs"], batch["next_step_fraction"], next_hidden
                )
                best = torch.stack((online_halt, online_continue), -1).argmax(-1, keepdim=True)
                next_value = target_q.gather(1, best).squeeze(1)
            else:
                next_value = target_q.max(-1).values
            target = batch["reward"] + a.gamma * (1.0 - batch["done"]) * next_value
        loss = F.huber_loss(q_taken, target, delta=a.huber_delta)
        if a.entropy_coef > 0:
            entropy = -(F.softmax(q, -1) * F.log_softmax(q, -1)).sum(-1).mean()
            loss = loss - a.entropy_coef * entropy
        return loss, {"td_error": (q_taken - target).abs().mean().item()}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:
            raise ValueError("DQNHaltingTrainer's loss has no model outputs to return.")
        batch = {k: v for k, v in inputs.items() if k in PUZZLE_KEYS or k == "trajectory_index"}
        lm_loss = self._rollout(model, batch)
        a = self.args
        self._metrics.add("epsilon", self.current_epsilon())
        self._metrics.add("buffer_fill", len(self.buffer) / self.buffer.capacity)
        if len(self.buffer) >= a.learning_starts:
            sample = self._lookup_states(self.buffer.sample(a.dqn_batch_size, dtype=self.q_head_dtype))
            sample = {k: v.to(a.device) for k, v in sample.items()}
            loss, stats = self.dqn_loss(sample)
            for key, value in stats.items():
                self._metrics.add(key, value)
        else:
            # No update yet, but every trainable parameter still gets a (zero) gradient so the
            # optimizer step and, under DDP, the gradient reduction stay uniform across steps.
            loss = sum(p.sum() * 0.0 for p in model.parameters() if p.requires_grad)
        if lm_loss is not None:
            loss = loss + a.lm_loss_weight * lm_loss
        return loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.accelerator.num_processes > 1 and self.args.freeze_trm:
            # The Q-head is called outside the DDP wrapper's forward, so DDP does not average its
            # gradients: average them here so every process takes the same step.
            for param in self.q_head.parameters():
                if param.grad is not None:
                    torch.distributed.all_reduce(param.grad, op=torch.distributed.ReduceOp.AVG)
        return loss

    def log(self, logs: dict[str, float], start_time: Optional[float] = None) -> None:
        if self._metrics and "loss" in logs:
            means, totals = self._metrics.reduce(self.accelerator)
            logs.update(means)
            extrinsic, intrinsic = totals["extrinsic_abs"], totals["intrinsic_abs"]
            logs["intrinsic_share"] = round(intrinsic / (extrinsic + intrinsic), 6) if extrinsic + intrinsic else 0.0
            logs["episodes"] = totals["episodes"]
        super().log(logs, start_time)

    # ----------------------------------------------------------------- evaluation
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Greedy-policy halting metrics: `exact_accuracy` at halt, `mean_steps`,
        `premature_halt_rate`, `exact_accuracy_max_steps`, `num_exact`, `num_exact_max_steps`,
        `num_puzzles`."""
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if dataset is None:
            raise ValueError("`evaluate` needs an `eval_dataset` (puzzles or HaltingTrajectories).")
        model = self.accelerator.unwrap_model(self.model)
        was_training = self.q_head.training
        self.q_head.eval()
        if isinstance(dataset, HaltingTrajectories):
            results = halting_metrics(greedy_halting_steps(self.q_head, dataset), dataset.exact)
        else:
            results = evaluate_halting(model, dataset, self.args.per_device_eval_batch_size)
        self.q_head.train(was_training)
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in results.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    # ----------------------------------------------------------------- checkpoints
    def _checkpoint_state(self) -> dict[str, torch.Tensor]:
        state = {f"target.{k}": v.contiguous() for k, v in self.target_q_head.state_dict().items()}
        if self.intrinsic_bonus is not None:
            state.update({f"intrinsic.{k}": v.contiguous() for k, v in self.intrinsic_bonus.state_dict().items()})
        return state

    def _load_checkpoint_state(self, state: dict[str, torch.Tensor], checkpoint: str) -> None:
        self.target_q_head.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("target.")})
        intrinsic = {k[10:]: v for k, v in state.items() if k.startswith("intrinsic.")}
        self._pending_intrinsic_state = intrinsic or None
