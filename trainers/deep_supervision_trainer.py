# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Deep-supervision training of recursive puzzle solvers (TRM), as a `transformers.Trainer`.

One Trainer step is one *supervision step*: the model continues every example from its carry,
takes one optimizer step, and examples that halted are replaced by fresh ones from the next
batch (the method's "ACT" data flow). Everything else (accelerate, DDP / FSDP, logging,
checkpoints, resume) is the Trainer's own machinery.
"""

import os
from typing import Optional

import torch
from safetensors.torch import load_file
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm
from transformers import Trainer

from hf_reason.evaluation.puzzles import PUZZLE_KEYS, run_supervision_steps, summarize
from hf_reason.hub import write_trainer_model_card
from hf_reason.models.trm.modeling_trm import TRMCarry, TRMPuzzleEmbedding, score_cells

from ._model_card import ModelCardMixin
from .deep_supervision_config import DeepSupervisionConfig
from .utils import AfterOptimizerStep, CheckpointStateMixin, MetricWindow, last_complete_checkpoint


__all__ = ["DeepSupervisionTrainer", "SignSGD", "last_complete_checkpoint"]

STATE_FILE = "deep_supervision_state_rank{rank}.safetensors"
EMA_DIR = "ema"
# Logged with every training log, averaged over the steps (losses, rates) or over the halted
# examples (accuracies, steps) since the previous log, across all processes.
TRAIN_METRIC_KEYS = (
    "lm_loss",
    "q_halt_loss",
    "q_continue_loss",
    "halt_rate",
    "halting_accuracy",
    "cell_accuracy",
    "exact_accuracy",
    "mean_steps",
)


class SignSGD(torch.optim.Optimizer):
    """Sign-SGD with decoupled weight decay, the method's optimizer for puzzle embeddings.

    Sparse in the rows, as the method's: only rows (first dimension) with a nonzero gradient,
    i.e. the puzzle identifiers of this step's batch on any process (DDP averages the gradients
    before the step), are decayed and moved. An embedding row of a puzzle not in the batch is
    left untouched; decaying every row at every step would shrink rarely seen puzzles towards zero.

    Stateless, so resuming needs nothing but the learning rate. Written here because torch has no
    sign-SGD; it is a few lines of arithmetic.
    """

    def __init__(self, params, lr: float, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                if grad.dim() < 2:  # no rows to select: a dense update
                    param.mul_(1 - group["lr"] * group["weight_decay"]).add_(torch.sign(grad), alpha=-group["lr"])
                    continue
                rows = grad.flatten(1).ne(0).any(-1).nonzero().squeeze(-1)
                if rows.numel() == 0:
                    continue
                updated = param[rows].mul_(1 - group["lr"] * group["weight_decay"])
                updated.add_(torch.sign(grad[rows]), alpha=-group["lr"])
                param[rows] = updated


class DeepSupervisionTrainer(ModelCardMixin, CheckpointStateMixin, Trainer):
    """
    Trainer for [`TRMForPuzzleSolving`] with deep supervision.

    The train dataset holds `input_ids`, `labels` and optionally `puzzle_identifiers`. Each training
    step runs one supervision step on the current batch of examples: rows that halted at the
    previous step are replaced by the rows of the new batch at the same positions, the others
    continue from their carry. The loss is the model's (stablemax cross-entropy + halting losses).

    Logged during training (over the examples of each step): `lm_loss`, `q_halt_loss`,
    `q_continue_loss`, `cell_accuracy`, `exact_accuracy` and `mean_steps` (averaged over the examples
    that halted since the previous log, on all processes; left out of a log when none halted),
    `halt_rate`, `halting_accuracy`. Evaluation (with the EMA weights) runs every
    supervision step on each puzzle and reports `cell_accuracy`, `exact_accuracy` (at the learned
    halting step), `exact_accuracy_max_steps`, `mean_steps` and `halting_accuracy`.
    """

    training_state_files = (STATE_FILE.format(rank="*"),)
    _state_file = STATE_FILE
    _missing_state_message = (
        "{path} is missing: {checkpoint} is incomplete (interrupted while saving), was written by fewer processes "
        "than this run has, or was not written by DeepSupervisionTrainer. Resume from an earlier checkpoint "
        "(hf_reason.trainers.last_complete_checkpoint finds the newest complete one) with the same number of "
        "processes."
    )

    def __init__(self, model=None, args: Optional[DeepSupervisionConfig] = None, **kwargs):
        if args is None:
            args = DeepSupervisionConfig(output_dir="trm-deep-supervision")
        if not isinstance(args, DeepSupervisionConfig):
            raise ValueError(f"`args` must be a DeepSupervisionConfig, got {type(args).__name__}.")
        super().__init__(model=model, args=args, **kwargs)
        # Our forward takes **kwargs, but its loss is already a per-example mean: let the Trainer
        # scale it for gradient accumulation as usual.
        self.model_accepts_loss_kwargs = False
        self.ema: Optional[AveragedModel] = None
        if args.ema_decay > 0 and self.is_fsdp_enabled:
            raise ValueError(
                "`ema_decay` > 0 is not supported with FSDP (the EMA needs full parameters); set `ema_decay=0`."
            )
        if args.ema_decay > 0:
            # Buffers are copied, not averaged: TRM's are constants, or the memory bank's written keys
            # and LRU counters, which an average would blend across the patterns a slot held.
            self.ema = AveragedModel(
                self.model, multi_avg_fn=get_ema_multi_avg_fn(args.ema_decay), use_buffers=False
            ).eval()
        self.puzzle_optimizer: Optional[SignSGD] = None
        self._carry: Optional[TRMCarry] = None
        self._current: Optional[dict[str, torch.Tensor]] = None
        self._metrics = MetricWindow(TRAIN_METRIC_KEYS)
        self.add_callback(AfterOptimizerStep(self._after_optimizer_step))

    # ----------------------------------------------------------------- optimizers
    def create_optimizer(self):
        """AdamW (or `args.optim`) on the network; sign-SGD on the puzzle embeddings."""
        if self.optimizer is not None:
            return self.optimizer
        model = self.model
        puzzle_params = [m.weight for m in model.modules() if isinstance(m, TRMPuzzleEmbedding)]
        puzzle_ids = {id(p) for p in puzzle_params}
        decay = set(self.get_decay_parameter_names(model))
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad and id(p) not in puzzle_ids]
        groups = [
            {"params": [p for n, p in named if n in decay], "weight_decay": self.args.weight_decay},
            {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
        ]
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
        self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        if puzzle_params:
            self.puzzle_optimizer = SignSGD(
                puzzle_params, lr=self.args.puzzle_emb_lr, weight_decay=self.args.puzzle_emb_weight_decay
            )
        return self.optimizer

    def _after_optimizer_step(self):
        if self.puzzle_optimizer is not None:
            # Same schedule as the main learning rate (warm-up), scaled to the puzzle lr.
            scale = self.lr_scheduler.get_last_lr()[0] / self.args.learning_rate if self.args.learning_rate else 1.0
            for group in self.puzzle_optimizer.param_groups:
                group["lr"] = self.args.puzzle_emb_lr * scale
            self.puzzle_optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.accelerator.unwrap_model(self.model))

    # ----------------------------------------------------------------- training step
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:  # e.g. Trainer.predict: one plain step from scratch
            outputs = model(**inputs)
            return (outputs.loss, outputs) if return_outputs else outputs.loss

        batch = {k: v for k, v in inputs.items() if k in PUZZLE_KEYS}
        if self._carry is None or self._carry.halted.shape[0] != batch["input_ids"].shape[0]:
            self._carry = self.accelerator.unwrap_model(model).model.initial_carry(batch["input_ids"].shape[0])
            self._current = {k: v.clone() for k, v in batch.items()}
        else:
            # Halted rows take the new batch's examples; the others keep theirs and continue.
            halted = self._carry.halted
            self._current = {
                k: torch.where(halted.view(-1, *([1] * (v.dim() - 1))), batch[k], v) for k, v in self._current.items()
            }
        outputs = model(**self._current, carry=self._carry, return_dict=True)
        self._carry = outputs.carry
        self._record_train_metrics(outputs, self._current["labels"])
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    @torch.no_grad()
    def _record_train_metrics(self, outputs, labels):
        cell = score_cells(outputs.logits.argmax(-1), labels).accuracy
        halted = outputs.carry.halted
        model = self.accelerator.unwrap_model(self.model)
        decision = model.halt_decision(outputs.q_halt_logits, outputs.q_continue_logits)
        # (sum, count) per key. Per-step values count once per step; as in the method, accuracy and
        # steps are scored on the examples that finished, so they count once per halted example
        # (count 0 in a step where none halted).
        num_halted = int(halted.sum())
        values = {
            "lm_loss": (outputs.lm_loss.item(), 1),
            "q_halt_loss": (outputs.q_halt_loss.item(), 1),
            "q_continue_loss": (outputs.q_continue_loss.item(), 1),
            "halt_rate": (halted.float().mean().item(), 1),
            "halting_accuracy": ((decision == outputs.is_correct).float().mean().item(), 1),
            "cell_accuracy": (cell[halted].sum().item(), num_halted),
            "exact_accuracy": (outputs.is_correct[halted].sum().item(), num_halted),
            "mean_steps": (outputs.carry.steps[halted].sum().item(), num_halted),
        }
        for key, (total, count) in values.items():
            self._metrics.add(key, total, count)

    def log(self, logs: dict[str, float], start_time: Optional[float] = None) -> None:
        if "loss" in logs:  # a training log (every process logs it): add our averages since the last one
            logs.update(self._metrics.reduce(self.accelerator)[0])
        super().log(logs, start_time)

    # ----------------------------------------------------------------- evaluation
    def evaluation_model(self):
        """The model evaluated and saved: the EMA weights when enabled."""
        return self.ema.module if self.ema is not None else self.accelerator.unwrap_model(self.model)

    def get_eval_dataloader(self, eval_dataset=None):
        # Every held-out puzzle counts: the drop_last that keeps training batches (and so the
        # carry's rows) full must not silently drop the last evaluation batch.
        drop_last = self.args.dataloader_drop_last
        self.args.dataloader_drop_last = False
        try:
            return super().get_eval_dataloader(eval_dataset)
        finally:
            self.args.dataloader_drop_last = drop_last

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Runs every supervision step on each eval puzzle and scores predictions and halting."""
        if isinstance(eval_dataset if eval_dataset is not None else self.eval_dataset, dict):
            metrics = {}
            for name, dataset in (eval_dataset or self.eval_dataset).items():
                metrics.update(self.evaluate(dataset, ignore_keys, f"{metric_key_prefix}_{name}"))
            return metrics
        dataloader = self.get_eval_dataloader(eval_dataset)
        model = self.evaluation_model()
        was_training = model.training
        model.eval()
        stats = []
        for inputs in tqdm(dataloader, desc="eval (all supervision steps)", disable=not self.is_local_process_zero()):
            inputs = self._prepare_inputs(inputs)
            result = run_supervision_steps(
                model,
                inputs["input_ids"],
                inputs["labels"],
                inputs.get("puzzle_identifiers"),
                max_steps=self.args.eval_max_steps,
            )
            # gather_for_metrics drops the samples duplicated to even out the last batch
            stats.append(type(result)(**self.accelerator.gather_for_metrics(result.as_dict())))
        model.train(was_training)
        summary = summarize(stats)
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in summary.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    # ----------------------------------------------------------------- saving and resuming
    def save_model(self, output_dir: Optional[str] = None, _internal_call: bool = False):
        """User-facing saves (and `push_to_hub`) write the EMA weights; checkpoints keep the raw ones (to resume)."""
        # Checkpoint saves always name their folder; `Trainer.push_to_hub` calls
        # `save_model(_internal_call=True)` without one, and what it uploads must be the EMA model.
        is_checkpoint = _internal_call and output_dir is not None
        if is_checkpoint or self.ema is None:
            super().save_model(output_dir, _internal_call)  # ModelCardMixin writes the card of a final save
            return
        output_dir = output_dir or self.args.output_dir
        if self.args.should_save:
            self.ema.module.save_pretrained(output_dir, safe_serialization=True)
            if self.processing_class is not None:
                self.processing_class.save_pretrained(output_dir)
            torch.save(self.args, os.path.join(output_dir, "training_args.bin"))
        write_trainer_model_card(self, output_dir)  # README.md: a Hub model card for the saved model

    def _save_checkpoint_files(self, folder: str) -> None:
        if self.ema is not None and self.args.should_save:
            self.ema.module.save_pretrained(os.path.join(folder, EMA_DIR), safe_serialization=True)

    def _checkpoint_state(self) -> dict[str, torch.Tensor]:
        state = {}
        if self._carry is not None:
            state.update({f"carry.{k}": v.contiguous() for k, v in self._carry.items()})
            state.update({f"current.{k}": v.contiguous() for k, v in self._current.items()})
        if self.ema is not None:
            state["ema.n_averaged"] = self.ema.n_averaged.clone()
        return state

    def _load_checkpoint_state(self, state: dict[str, torch.Tensor], checkpoint: str) -> None:
        carry = {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("carry.")}
        if carry:
            self._carry = TRMCarry(**carry)
            self._current = {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("current.")}
        if self.ema is not None:
            ema_weights = os.path.join(checkpoint, EMA_DIR, "model.safetensors")
            if not os.path.isfile(ema_weights) or "ema.n_averaged" not in state:
                raise FileNotFoundError(
                    f"{checkpoint} has no EMA state ({ema_weights}): it was saved with `ema_decay=0`. "
                    "Resume with `ema_decay=0`, or start a new run to use the EMA."
                )
            # strict: every EMA weight must come back, or evaluation would silently mix in fresh weights
            self.ema.module.load_state_dict(load_file(ema_weights), strict=True)
            self.ema.n_averaged.copy_(state["ema.n_averaged"])
