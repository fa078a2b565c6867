# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Entropic steering: watch the next-token entropy while generating, and act on its spikes.

`EntropyMonitor` is a transformers `LogitsProcessor` that computes the entropy (nats) of each
row's next-token distribution as the model will sample it (after the processors before it, e.g.
a grammar's mask), compares it with the row's running baseline and, on a spike, either records
the position (`action="record"`) or forces the reserved `<clarify>` token (`action="clarify"`);
its `stopping_criteria()` then stops that row, so the caller can ask the user and resume. The
traces are kept per row, saved as JSON and plotted as PNG.

A spike at step `t` is `H_t >= threshold` and `H_t - baseline_t >= delta`, where `baseline_t` is
the mean of the row's last `window` non-spike entropies (`initial_baseline` before it has any).
An absolute floor alone fires on rows that are uncertain throughout; a relative test alone fires
on noise in confident rows; both together ask for an uncertainty that is high and sudden.
"""

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Union

import torch
from transformers import LogitsProcessor, StoppingCriteria

from ..file_io import atomic_write_json, save_figure_atomic
from .processor import PromptTracker, follow_tags


STEERING_ACTIONS = ("clarify", "record")


@dataclass
class EntropySteeringConfig:
    """
    Args:
        action (`str`, defaults to `"clarify"`): on a spike, `"clarify"` forces the `<clarify>` token
            and stops the row; `"record"` only records the position.
        threshold (`float`, defaults to 1.0): the least entropy (nats) of a spike (>= 0).
        delta (`float`, defaults to 0.5): how far above the running baseline a spike must be (>= 0).
        window (`int`, defaults to 8): the baseline averages the row's last `window` non-spike
            entropies (>= 1).
        initial_baseline (`float`, defaults to 0.0): the baseline before the row has any entropy
            recorded (the first generated token); calibrate it to the mean entropy of confident
            outputs to keep the relative test meaningful at the first step.
        watch_thoughts (`bool`, defaults to `True`): watch inside `<thought>` spans as well (an
            uncertain value is often first looked up inside a thought).
        max_spikes (`int`, *optional*): with `"record"`, stop recording a row after this many.
    """

    action: str = "clarify"
    threshold: float = 1.0
    delta: float = 0.5
    window: int = 8
    initial_baseline: float = 0.0
    watch_thoughts: bool = True
    max_spikes: Optional[int] = None

    def __post_init__(self):
        if self.action not in STEERING_ACTIONS:
            raise ValueError(f"`action` must be one of {STEERING_ACTIONS}, got {self.action!r}")
        for name in ("threshold", "delta", "initial_baseline"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"`{name}` must be a finite number >= 0, got {value!r}")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"`window` must be an integer >= 1, got {self.window!r}")
        if self.max_spikes is not None and (not isinstance(self.max_spikes, int) or self.max_spikes < 1):
            raise ValueError(f"`max_spikes` must be None or an integer >= 1, got {self.max_spikes!r}")


def next_token_entropy(scores: torch.Tensor) -> torch.Tensor:
    """Entropy in nats `(batch,)` of the softmax of `scores` `(batch, vocab)`; masked (`-inf`) entries count 0."""
    probs = torch.softmax(scores.float(), dim=-1)
    return torch.special.entr(probs).sum(-1)


class SpikeDetector:
    """The spike rule of one row, fed one entropy at a time (see the module docstring)."""

    def __init__(self, config: EntropySteeringConfig):
        self.config = config
        self.history: list[float] = []

    @property
    def baseline(self) -> float:
        recent = self.history[-self.config.window :]
        return sum(recent) / len(recent) if recent else self.config.initial_baseline

    def update(self, entropy: float) -> bool:
        """True when `entropy` is a spike; non-spikes join the baseline."""
        spike = entropy >= self.config.threshold and entropy - self.baseline >= self.config.delta
        if not spike:
            self.history.append(entropy)
        return spike


@dataclass
class _RowTrace:
    entropies: list = field(default_factory=list)
    steps: list = field(default_factory=list)  # the generated position of each entropy
    spikes: list = field(default_factory=list)
    clarified: bool = False
    done: bool = False
    depth: int = 0


class EntropyMonitor(LogitsProcessor):
    """Tracks next-token entropy per row, detects spikes, and records them or asks for clarification.

    Use it through `generate(..., entropy_monitor=monitor)` (which also adds the stopping criterion)
    or directly: `model.generate(..., logits_processor=[monitor], stopping_criteria=[monitor.stopping_criteria()])`.
    After a generation, `traces`, `spike_positions` and `clarified` describe each row; `save_traces`
    and `plot` write them.

    Args:
        config ([`EntropySteeringConfig`], *optional*): thresholds, window and action; its fields may
            be given as keyword arguments instead.
        clarify_token_id (`int`, *optional*): the `<clarify>` id (required for `action="clarify"`).
        eos_token_id (`int` or `list[int]`, *optional*): a row stops being watched after it.
        thought_token_ids (`tuple[int, int]`, *optional*): `<thought>` / `</thought>`, to skip thoughts
            when `watch_thoughts=False`.
    """

    def __init__(
        self,
        config: Optional[EntropySteeringConfig] = None,
        clarify_token_id: Optional[int] = None,
        eos_token_id: Union[int, Sequence[int], None] = None,
        thought_token_ids: Optional[tuple[int, int]] = None,
        **config_kwargs,
    ):
        if config is not None and config_kwargs:
            raise ValueError(
                f"Pass the settings either as `config` or as arguments, not both: {sorted(config_kwargs)}"
            )
        self.config = config if config is not None else EntropySteeringConfig(**config_kwargs)
        if self.config.action == "clarify" and clarify_token_id is None:
            raise ValueError("action='clarify' needs `clarify_token_id` (add_control_tokens adds <clarify>).")
        self.clarify_token_id = clarify_token_id
        self.start(eos_token_id, thought_token_ids)

    def start(self, eos_token_id=None, thought_token_ids=None) -> None:
        """Sets the end-of-output and thought ids and forgets the previous generation."""
        eos = [] if eos_token_id is None else ([eos_token_id] if isinstance(eos_token_id, int) else eos_token_id)
        self.end_ids = set(eos) | ({self.clarify_token_id} if self.clarify_token_id is not None else set())
        self.thought_ids = tuple(thought_token_ids) if thought_token_ids is not None else None
        self.tracker = PromptTracker()
        self._rows: list[_RowTrace] = []
        self._detectors: list[SpikeDetector] = []

    # --- results ------------------------------------------------------------------------------
    @property
    def traces(self) -> list[list[float]]:
        """Per row, the entropy (nats) at each watched step."""
        return [row.entropies for row in self._rows]

    @property
    def spike_positions(self) -> list[list[int]]:
        """Per row, the generated positions (0 = first new token) where a spike was detected."""
        return [row.spikes for row in self._rows]

    @property
    def clarified(self) -> list[bool]:
        """Per row, whether `<clarify>` was inserted."""
        return [row.clarified for row in self._rows]

    # --- generation ---------------------------------------------------------------------------
    def _follow(self, row: _RowTrace, token: int) -> None:
        follow_tags(row, token, self.end_ids, self.thought_ids)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.tracker.update(input_ids):
            self._rows = [_RowTrace() for _ in range(input_ids.shape[0])]
            self._detectors = [SpikeDetector(self.config) for _ in range(input_ids.shape[0])]
        position = input_ids.shape[1] - self.tracker.prompt_length
        if position > 0:
            for row, token in zip(self._rows, input_ids[:, -1].tolist()):
                if not row.done:
                    self._follow(row, token)
        entropy = next_token_entropy(scores).tolist()
        forced = []
        for index, (row, detector) in enumerate(zip(self._rows, self._detectors)):
            if row.done or (row.depth > 0 and not self.config.watch_thoughts):
                continue
            if self.config.max_spikes is not None and len(row.spikes) >= self.config.max_spikes:
                continue
            row.entropies.append(entropy[index])
            row.steps.append(position)
            if detector.update(entropy[index]):
                row.spikes.append(position)
                if self.config.action == "clarify":
                    row.clarified = True
                    forced.append(index)
        if forced:
            scores = scores.clone()
            scores[forced] = float("-inf")
            scores[forced, self.clarify_token_id] = 0.0
        return scores

    def stopping_criteria(self) -> StoppingCriteria:
        """Stops each row right after its `<clarify>` token."""
        return _ClarifyStop(self.clarify_token_id)

    # --- saving -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "config": asdict(self.config),
            "rows": [
                {"entropies": r.entropies, "steps": r.steps, "spikes": r.spikes, "clarified": r.clarified}
                for r in self._rows
            ],
        }

    def save_traces(self, path: Union[str, os.PathLike]) -> Path:
        """Writes the settings and every row's trace as JSON (atomically; folders created)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_json(path, self.to_dict(), indent=1)

    def plot(self, path: Union[str, os.PathLike], rows: Optional[Sequence[int]] = None, title: str = "") -> Path:
        """Plots the traces of `rows` (default: the first 8) as a PNG: entropy per generated position,
        spikes marked, the absolute threshold dashed."""
        return plot_entropy_traces(self.to_dict(), path, rows=rows, title=title)


class _ClarifyStop(StoppingCriteria):
    def __init__(self, clarify_token_id: Optional[int]):
        self.clarify_token_id = clarify_token_id

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        if self.clarify_token_id is None:
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        return input_ids[:, -1] == self.clarify_token_id


def plot_entropy_traces(
    traces: dict, path: Union[str, os.PathLike], rows: Optional[Sequence[int]] = None, title: str = ""
) -> Path:
    """A PNG of `EntropyMonitor.to_dict()`-style traces (also read back from `save_traces`' JSON)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    all_rows = traces["rows"]
    rows = list(range(min(8, len(all_rows)))) if rows is None else list(rows)
    for r in rows:
        if not 0 <= r < len(all_rows):
            raise ValueError(f"`rows` must index the {len(all_rows)} traced rows, got {r}")
    fig, ax = plt.subplots(figsize=(8, 4))
    for r in rows:
        row = all_rows[r]
        (line,) = ax.plot(row["steps"], row["entropies"], marker=".", linewidth=1, label=f"row {r}")
        spike_values = [e for s, e in zip(row["steps"], row["entropies"]) if s in set(row["spikes"])]
        spike_steps = [s for s in row["steps"] if s in set(row["spikes"])]
        ax.scatter(spike_steps, spike_values, marker="x", s=60, color=line.get_color())
    ax.axhline(traces["config"]["threshold"], linestyle="--", color="grey", linewidth=1, label="threshold")
    ax.set_xlabel("generated position")
    ax.set_ylabel("next-token entropy (nats)")
    ax.set_title(title or "entropy traces (x: spike)", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return save_figure_atomic(fig, path, dpi=110)


__all__ = [
    "STEERING_ACTIONS",
    "EntropyMonitor",
    "EntropySteeringConfig",
    "SpikeDetector",
    "next_token_entropy",
    "plot_entropy_traces",
]
