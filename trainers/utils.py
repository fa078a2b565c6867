# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""What several hf-reason trainers share: a hook right after each optimizer step, training metrics
reduced over all processes when they are logged, per-process state files in checkpoints (with the
rotation and the resume that respect them), the check behind the configs' error messages and the
guard that keeps bitsandbytes 4-bit models trainable."""

import json
import os
from collections.abc import Callable, Iterable
from typing import Optional, Union

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from transformers import TrainerCallback
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from hf_reason.file_io import save_safetensors_atomic


__all__ = [
    "AfterOptimizerStep",
    "CheckpointStateMixin",
    "MetricWindow",
    "check_4bit_weights_trainable",
    "check_value",
    "is_complete_checkpoint",
    "keep_4bit_weights_trainable",
    "last_complete_checkpoint",
    "resolve_resume_checkpoint",
]


def check_value(ok: bool, name: str, value, allowed: str) -> None:
    """Raises a `ValueError` naming `name`, what it must be (`allowed`) and the `value` it got."""
    if not ok:
        raise ValueError(f"`{name}` must be {allowed}, got {value!r}.")


class AfterOptimizerStep(TrainerCallback):
    """Calls `step_fn()` right after every optimizer step, before the learning-rate scheduler steps:
    the place to move what follows the weights (an EMA, a target network, a second optimizer)."""

    def __init__(self, step_fn: Callable[[], None]):
        self.step_fn = step_fn

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.step_fn()


class MetricWindow:
    """Sums and counts of training metrics since the last training log, reduced over all processes.

    `mean_keys` are logged as their mean over everything recorded in the window (keys with nothing
    recorded are left out of the log); `total_keys` are returned as plain sums. The key lists are fixed,
    so every process all-reduces tensors of the same length even when one recorded nothing for a key.

    Args:
        mean_keys (`Iterable[str]`): metrics logged as means.
        total_keys (`Iterable[str]`, defaults to `()`): metrics returned as sums.
    """

    def __init__(self, mean_keys: Iterable[str], total_keys: Iterable[str] = ()):
        self.mean_keys = tuple(mean_keys)
        self.total_keys = tuple(total_keys)
        self.reset()

    def reset(self) -> None:
        keys = self.mean_keys + self.total_keys
        self.sums = dict.fromkeys(keys, 0.0)
        self.counts = dict.fromkeys(keys, 0)
        self.recorded = False

    def add(self, key: str, total: float, count: int = 1) -> None:
        """Adds `total` over `count` items (one value by default) to `key`."""
        self.sums[key] += total
        self.counts[key] += count
        self.recorded = True

    def __bool__(self) -> bool:
        return self.recorded

    def reduce(self, accelerator) -> tuple[dict[str, float], dict[str, float]]:
        """`(means, totals)` over every process since the last call, rounded means to 6 digits; starts a
        new window. Every process must call it at the same point (it is a collective operation)."""
        keys = self.mean_keys + self.total_keys
        sums = torch.tensor([self.sums[k] for k in keys], dtype=torch.float64)
        counts = torch.tensor([self.counts[k] for k in keys], dtype=torch.float64)
        if accelerator.num_processes > 1:
            sums = accelerator.reduce(sums.to(accelerator.device), "sum").cpu()
            counts = accelerator.reduce(counts.to(accelerator.device), "sum").cpu()
        self.reset()
        sums, counts = dict(zip(keys, sums.tolist())), dict(zip(keys, counts.tolist()))
        means = {k: round(sums[k] / counts[k], 6) for k in self.mean_keys if counts[k] > 0}
        return means, {k: sums[k] for k in self.total_keys}


class CheckpointStateMixin:
    """Trainer state that the model, optimizer and scheduler do not hold (a carry, a target network, ...)
    in every checkpoint, and back on resume: one safetensors file per process, written atomically after
    everything else of the checkpoint, so that its presence marks the process's part complete. Rank 0's
    file also records the number of processes, so a checkpoint is complete when every process's file
    is there (`is_complete_checkpoint`).

    `save_total_limit` rotation runs only once the new checkpoint is complete on every process (after a
    barrier), deletes incomplete checkpoints before complete ones and never the one just saved: a run
    killed at any point of a save keeps a complete checkpoint to resume from. With
    `resume_from_checkpoint="last"` (or `True`), `train` resumes from the newest complete checkpoint in
    `output_dir` and raises when there is none, rather than starting over.

    Put it before the `Trainer` in the bases and define `_state_file` (the file name with a `{rank}`
    field for the process index), `_missing_state_message` (the error when a resumed checkpoint lacks
    the file, formatted with `path` and `checkpoint`), `_checkpoint_state()` (the tensors to save) and
    `_load_checkpoint_state(state, checkpoint)`; optionally `_save_checkpoint_files(folder)` for other
    files of the trainer, written before the state file.
    """

    _state_file: str
    _missing_state_message: str
    # Set while `Trainer._save_checkpoint` runs (its rotation waits) and to the checkpoint just completed
    # while the rotation runs (it stays).
    _holding_rotation: bool = False
    _just_saved: Optional[str] = None

    def _checkpoint_state(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _load_checkpoint_state(self, state: dict[str, torch.Tensor], checkpoint: str) -> None:
        raise NotImplementedError

    def _save_checkpoint_files(self, folder: str) -> None:
        pass

    def train(self, resume_from_checkpoint: Optional[Union[str, bool]] = None, *args, **kwargs):
        """`Trainer.train`, where `resume_from_checkpoint=True` or `"last"` means the newest complete
        checkpoint in `args.output_dir` (`resolve_resume_checkpoint`)."""
        resume = resolve_resume_checkpoint(resume_from_checkpoint, self.args.output_dir, self._state_file)
        return super().train(resume, *args, **kwargs)

    def _save_checkpoint(self, model, trial):
        self._holding_rotation = True
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._holding_rotation = False
        run_dir = self._get_output_dir(trial=trial)
        folder = os.path.join(run_dir, f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        self._save_checkpoint_files(folder)
        state = {"world_size": torch.tensor(self.args.world_size, dtype=torch.long), **self._checkpoint_state()}
        save_safetensors_atomic(state, os.path.join(folder, self._state_file.format(rank=self.args.process_index)))
        # Rank 0 rotates, but every process writes its own state file: only after all of them is the
        # new checkpoint one to resume from, and only then may an older one go.
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            self._just_saved = folder
            try:
                self._rotate_checkpoints(use_mtime=True, output_dir=run_dir)
            finally:
                self._just_saved = None

    def _rotate_checkpoints(self, use_mtime=False, output_dir=None) -> None:
        if not self._holding_rotation:
            super()._rotate_checkpoints(use_mtime=use_mtime, output_dir=output_dir)

    def _sorted_checkpoints(self, output_dir=None, checkpoint_prefix=PREFIX_CHECKPOINT_DIR, use_mtime=False):
        # Rotation deletes from the front of this list. The Trainer orders by age (or by step number when
        # the file system's times look unreliable, which ranks a stale folder of a killed run as newest);
        # on top of that, incomplete checkpoints go first, and the best and the just saved one last.
        ordered = super()._sorted_checkpoints(output_dir, checkpoint_prefix, use_mtime)
        keep_last = [os.path.abspath(p) for p in (self.state.best_model_checkpoint, self._just_saved) if p]

        def group(path: str) -> int:  # 0 incomplete, 1 complete, 2 the best, 3 the one just saved
            absolute = os.path.abspath(path)
            if absolute in keep_last:
                return 2 + keep_last.index(absolute)
            return int(is_complete_checkpoint(path, self._state_file))

        return sorted(ordered, key=group)  # stable: the Trainer's order within each group

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = os.path.join(resume_from_checkpoint, self._state_file.format(rank=self.args.process_index))
        if not os.path.isfile(path):
            raise FileNotFoundError(self._missing_state_message.format(path=path, checkpoint=resume_from_checkpoint))
        self._load_checkpoint_state(load_file(path), resume_from_checkpoint)


def _state_files(state_file: Optional[str]) -> tuple[str, ...]:
    """`(state_file,)`, or the `_state_file` of every `CheckpointStateMixin` trainer defined so far."""
    if state_file is not None:
        return (state_file,)
    patterns, pending = set(), [CheckpointStateMixin]
    while pending:
        cls = pending.pop()
        patterns.update([cls._state_file] if "_state_file" in vars(cls) else [])
        pending.extend(cls.__subclasses__())
    return tuple(sorted(patterns))


def is_complete_checkpoint(checkpoint: Union[str, os.PathLike], state_file: Optional[str] = None) -> bool:
    """Whether `checkpoint`'s save finished on every process: rank 0's state file is readable and
    names the number of processes, and each of them wrote its file.

    Args:
        checkpoint (`str` or `os.PathLike`): a `checkpoint-N` folder.
        state_file (`str`, *optional*): the trainer's state file name with a `{rank}` field (e.g.
            `DeepSupervisionTrainer._state_file`); by default any hf-reason trainer's. For a trainer
            without one (the GRPO and DPO trainers), pass `transformers.trainer.TRAINER_STATE_NAME`:
            the `Trainer` writes `trainer_state.json` on the main process after everything else.
    """
    if state_file == TRAINER_STATE_NAME:
        try:
            with open(os.path.join(checkpoint, TRAINER_STATE_NAME), encoding="utf-8") as handle:
                return isinstance(json.load(handle), dict)
        except (OSError, ValueError):
            return False
    for pattern in _state_files(state_file):
        rank0 = os.path.join(checkpoint, pattern.format(rank=0))
        if not os.path.isfile(rank0):
            continue
        try:
            with safe_open(rank0, framework="pt") as f:
                world_size = int(f.get_tensor("world_size"))
        except (SafetensorError, OSError):  # unreadable or without a world size: not one to resume from
            continue
        if all(os.path.isfile(os.path.join(checkpoint, pattern.format(rank=r))) for r in range(world_size)):
            return True
    return False


def _checkpoint_folders(output_dir: Union[str, os.PathLike]) -> list[tuple[int, str]]:
    if not os.path.isdir(output_dir):
        return []
    prefix = f"{PREFIX_CHECKPOINT_DIR}-"
    return sorted(
        (int(name[len(prefix) :]), os.path.join(output_dir, name))
        for name in os.listdir(output_dir)
        if name.startswith(prefix) and name[len(prefix) :].isdigit() and os.path.isdir(os.path.join(output_dir, name))
    )


def last_complete_checkpoint(output_dir: Union[str, os.PathLike], state_file: Optional[str] = None) -> Optional[str]:
    """The `checkpoint-N` in `output_dir` with the highest N whose save finished on every process, or None.

    A run killed while saving leaves a partial folder; resuming from it would fail or silently
    lose state. Each process writes its state file last, and rank 0's records the number of
    processes, so a checkpoint counts as complete when all of their files are there.

    Args:
        output_dir (`str` or `os.PathLike`): the training run's output folder.
        state_file (`str`, *optional*): the trainer's state file name with a `{rank}` field; by
            default any hf-reason trainer's.
    """
    complete = [path for _, path in _checkpoint_folders(output_dir) if is_complete_checkpoint(path, state_file)]
    return complete[-1] if complete else None


def resolve_resume_checkpoint(
    resume_from_checkpoint: Optional[Union[str, bool]],
    output_dir: Union[str, os.PathLike],
    state_file: Optional[str] = None,
) -> Optional[str]:
    """The checkpoint that `resume_from_checkpoint` asks for: None for None or False, the newest complete
    checkpoint in `output_dir` for True or `"last"`, the given path otherwise.

    Raises:
        `FileNotFoundError`: `"last"` or True, and `output_dir` has no complete checkpoint (the error lists
        the incomplete ones): a resume that was asked for never silently becomes a new run.
    """
    if resume_from_checkpoint is None or resume_from_checkpoint is False:
        return None
    if resume_from_checkpoint is not True and resume_from_checkpoint != "last":
        return str(resume_from_checkpoint)
    checkpoint = last_complete_checkpoint(output_dir, state_file)
    if checkpoint is not None:
        return checkpoint
    folders = [os.path.basename(path) for _, path in _checkpoint_folders(output_dir)]
    found = (
        f"no complete checkpoint in {output_dir} (incomplete, interrupted while saving: {', '.join(folders)})"
        if folders
        else f"no checkpoint in {output_dir}"
    )
    raise FileNotFoundError(
        f"resume_from_checkpoint={resume_from_checkpoint!r} asks to resume, but there is {found}. Pass a "
        "checkpoint folder to resume from, or leave out resume_from_checkpoint to start a new run."
    )


def _linear_4bit_layers(model) -> list[tuple[str, torch.nn.Module]]:
    return [
        (name, m)
        for name, m in model.named_modules()
        if getattr(getattr(m, "weight", None), "quant_state", None) is not None
    ]


def check_4bit_weights_trainable(model) -> None:
    """Raises if a bitsandbytes 4-bit layer of `model` was repacked for CPU inference.

    On CPUs with AVX512-BF16, bitsandbytes (0.48+) repacks a 4-bit weight in place the first time an
    eval-mode layer runs a no-grad forward, for a faster inference kernel. That kernel has no
    backward: training through a repacked model gets no gradient through those layers, silently or
    with an in-place error (docs/trainers.md). The layout also rounds the block scales to bfloat16,
    so the forward differs slightly from the trainable one. Our DPO and GRPO trainers call this when
    training starts; the remedy is to reload the model and train before any evaluation or
    generation, or to call `keep_4bit_weights_trainable` on it first.
    """
    repacked = [
        name
        for name, module in _linear_4bit_layers(model)
        if getattr(module.weight.quant_state, "packing_format_for_cpu", False)
    ]
    if repacked:
        raise ValueError(
            f"{len(repacked)} 4-bit layers (e.g. {repacked[0]!r}) were repacked for CPU inference by an earlier no-grad "
            "forward (evaluation or generation), and bitsandbytes cannot train through that layout; reload the model "
            "from disk and train it before running any evaluation or generation"
        )


def keep_4bit_weights_trainable(model) -> int:
    """Turns off bitsandbytes' CPU inference repacking on `model`'s 4-bit layers; returns how many.

    Evaluation during training (`eval_strategy`, reference forwards, generation) then runs the
    same dequantizing kernel as training, so it can never leave the weights in the layout that
    `check_4bit_weights_trainable` refuses. The price is the slower CPU inference kernel for this
    model object; reload it for fast CPU inference after training. A no-op without 4-bit layers.
    """
    layers = _linear_4bit_layers(model)
    for _, module in layers:
        if hasattr(module, "support_avx512bf16_for_cpu"):  # the switch bitsandbytes' forward reads
            module.support_avx512bf16_for_cpu = False
    return len(layers)
