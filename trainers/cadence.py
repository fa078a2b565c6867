# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Training cadence for RL runs: short chunks alternate with evaluation; chunks grow only while the
scores hold; a fall aborts the run with a checkpoint and a reason.

`TrainingCadenceCallback` is a `TrainerCallback`. At the end of every chunk it gets the scores,
either from `metrics_fn` (called with the model; e.g. evaluator and judge scores on held-out
prompts) or, without one, from the trainer's own evaluation (it asks for one, then reads the
`on_evaluate` metrics). Then it decides:

- **abort**: a watched score is under its floor (`abort_below`), or has fallen more than
  `max_drop` under its best so far: a checkpoint is saved, training stops, and the reason is logged;
- **extend**: every watched score has been at or above its threshold for `consecutive` chunks in a
  row: the next chunk is `growth` times longer (up to `max_chunk_steps`), and the count restarts;
- **hold**: otherwise, the chunk length stays.

Every decision (step, chunk length, scores, reason) is appended to ``progress.jsonl`` in the
output folder (`hf_reason.file_io.append_jsonl`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from typing import Optional

from transformers import TrainerCallback

from hf_reason.file_io import append_jsonl


__all__ = ["CadenceConfig", "TrainingCadenceCallback"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class CadenceConfig:
    """The cadence's settings.

    Args:
        thresholds (`dict[str, float]`): watched score name -> the value it must reach for a chunk to
            count as good (e.g. ``{"evaluator": 0.6, "judge": 0.5}``); names as `metrics_fn` returns
            them, or as the trainer's evaluation logs them (``eval_`` prefix included).
        abort_below (`dict[str, float]`, defaults to `{}`): score name -> floor; under it the run aborts.
        max_drop (`float`, *optional*): abort when a watched score falls more than this under its best.
        initial_chunk_steps (`int`, defaults to 10): steps of the first chunk (>= 1).
        max_chunk_steps (`int`, defaults to 160): the longest chunk (>= `initial_chunk_steps`).
        growth (`float`, defaults to 2.0): factor of an extension (> 1).
        consecutive (`int`, defaults to 2): good chunks in a row before an extension (>= 1).
        progress_file (`str`, defaults to ``"progress.jsonl"``): the log's name in the output folder.
    """

    thresholds: dict[str, float]
    abort_below: dict[str, float] = dataclasses.field(default_factory=dict)
    max_drop: Optional[float] = None
    initial_chunk_steps: int = 10
    max_chunk_steps: int = 160
    growth: float = 2.0
    consecutive: int = 2
    progress_file: str = "progress.jsonl"

    def __post_init__(self):
        if not self.thresholds:
            raise ValueError("`thresholds` must name at least one score to watch")
        if not isinstance(self.initial_chunk_steps, int) or self.initial_chunk_steps < 1:
            raise ValueError(f"`initial_chunk_steps` must be an int >= 1, got {self.initial_chunk_steps!r}")
        if not isinstance(self.max_chunk_steps, int) or self.max_chunk_steps < self.initial_chunk_steps:
            raise ValueError(f"`max_chunk_steps` must be an int >= initial_chunk_steps, got {self.max_chunk_steps!r}")
        if not self.growth > 1:
            raise ValueError(f"`growth` must be > 1, got {self.growth!r}")
        if not isinstance(self.consecutive, int) or self.consecutive < 1:
            raise ValueError(f"`consecutive` must be an int >= 1, got {self.consecutive!r}")
        if self.max_drop is not None and not self.max_drop > 0:
            raise ValueError(f"`max_drop` must be > 0 or None, got {self.max_drop!r}")


class TrainingCadenceCallback(TrainerCallback):
    """Chunked training with evaluation between chunks, extension on sustained scores, abort on a fall.

    Args:
        config ([`CadenceConfig`]): thresholds, floors and chunk lengths.
        metrics_fn (`Callable`, *optional*): ``metrics_fn(model=..., step=...) -> dict[str, float]``; the
            scores of the model at a chunk's end. Without it the trainer's evaluation is used (the
            trainer needs an `eval_dataset`).
        output_dir (`str`, *optional*): where ``progress.jsonl`` goes (default: the run's output folder).

    After training, `decisions` lists every decision and `abort_reason` says why the run stopped
    (None when it did not abort).
    """

    def __init__(
        self,
        config: CadenceConfig,
        metrics_fn: Optional[Callable[..., Mapping[str, float]]] = None,
        output_dir: Optional[str] = None,
    ):
        self.config, self.metrics_fn, self.output_dir = config, metrics_fn, output_dir
        self.chunk = config.initial_chunk_steps
        self.next_boundary = config.initial_chunk_steps
        self.streak = 0
        self.best: dict[str, float] = {}
        self.decisions: list[dict] = []
        self.abort_reason: Optional[str] = None
        self._awaiting_eval = False

    def _problem(self, metrics: Mapping[str, float]) -> Optional[str]:
        config = self.config
        for name in config.thresholds:
            if name not in metrics:
                return f"the score {name!r} is missing from the metrics {sorted(metrics)}"
        for name, floor in config.abort_below.items():
            if name in metrics and metrics[name] < floor:
                return f"{name} = {metrics[name]:.4g} fell under its floor {floor:.4g}"
        if config.max_drop is not None:
            for name in config.thresholds:
                if name in self.best and metrics[name] < self.best[name] - config.max_drop:
                    return (
                        f"{name} = {metrics[name]:.4g} fell more than {config.max_drop:.4g} "
                        f"under its best {self.best[name]:.4g}"
                    )
        return None

    def decide(self, step: int, metrics: Mapping[str, float]) -> dict:
        """Records the scores of the chunk ending at `step` and returns the decision (also logged)."""
        metrics = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        problem = self._problem(metrics)
        if problem is not None:
            action, reason = "abort", problem
            self.abort_reason = problem
        else:
            for name in self.config.thresholds:
                self.best[name] = max(self.best.get(name, metrics[name]), metrics[name])
            good = all(metrics[name] >= t for name, t in self.config.thresholds.items())
            self.streak = self.streak + 1 if good else 0
            if self.streak >= self.config.consecutive and self.chunk < self.config.max_chunk_steps:
                self.chunk = min(int(round(self.chunk * self.config.growth)), self.config.max_chunk_steps)
                self.streak = 0
                action, reason = "extend", f"scores at or above their thresholds for {self.config.consecutive} chunks"
            else:
                action = "hold"
                reason = "scores above their thresholds" if good else "a score is under its threshold"
        self.next_boundary = step + self.chunk
        decision = {
            "step": step,
            "action": action,
            "next_chunk_steps": self.chunk,
            "reason": reason,
            "scores": metrics,
        }
        self.decisions.append(decision)
        return decision

    def _log(self, args, decision: dict) -> None:
        folder = self.output_dir or args.output_dir
        os.makedirs(folder, exist_ok=True)
        append_jsonl(os.path.join(folder, self.config.progress_file), {"event": "cadence", **decision})

    def _apply(self, args, control, decision: dict) -> None:
        self._log(args, decision)
        if decision["action"] == "abort":
            logger.warning("Training aborted at step %d: %s", decision["step"], decision["reason"])
            control.should_save = True
            control.should_training_stop = True

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step < self.next_boundary:
            return control
        if self.metrics_fn is None:
            control.should_evaluate = True
            self._awaiting_eval = True
            return control
        was_training = model.training if model is not None else None
        decision = self.decide(state.global_step, self.metrics_fn(model=model, step=state.global_step))
        if was_training:
            model.train()
        self._apply(args, control, decision)
        return control

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.metrics_fn is not None or not self._awaiting_eval:
            return control
        self._awaiting_eval = False
        self._apply(args, control, self.decide(state.global_step, metrics or {}))
        return control
