# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""What several hf-reason trainers share: a hook right after each optimizer step, training metrics
reduced over all processes when they are logged, per-process state files in checkpoints, the check
behind the configs' error messages and the guard that keeps bitsandbytes 4-bit models trainable."""

import os
from collections.abc import Callable, Iterable

import torch
from safetensors.torch import load_file
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from hf_reason.file_io import save_safetensors_atomic


__all__ = [
    "AfterOptimizerStep",
    "CheckpointStateMixin",
    "MetricWindow",
    "check_4bit_weights_trainable",
    "check_value",
    "keep_4bit_weights_trainable",
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
    everything else of the checkpoint, so that its presence marks the process's part complete.

    Put it before the `Trainer` in the bases and define `_state_file` (the file name with a `{rank}`
    field for the process index), `_missing_state_message` (the error when a resumed checkpoint lacks
    the file, formatted with `path` and `checkpoint`), `_checkpoint_state()` (the tensors to save) and
    `_load_checkpoint_state(state, checkpoint)`; optionally `_save_checkpoint_files(folder)` for other
    files of the trainer, written before the state file.
    """

    _state_file: str
    _missing_state_message: str

    def _checkpoint_state(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _load_checkpoint_state(self, state: dict[str, torch.Tensor], checkpoint: str) -> None:
        raise NotImplementedError

    def _save_checkpoint_files(self, folder: str) -> None:
        pass

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        self._save_checkpoint_files(folder)
        path = os.path.join(folder, self._state_file.format(rank=self.args.process_index))
        save_safetensors_atomic(self._checkpoint_state(), path)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = os.path.join(resume_from_checkpoint, self._state_file.format(rank=self.args.process_index))
        if not os.path.isfile(path):
            raise FileNotFoundError(self._missing_state_message.format(path=path, checkpoint=resume_from_checkpoint))
        self._load_checkpoint_state(load_file(path), resume_from_checkpoint)


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
