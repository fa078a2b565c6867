# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Evaluation results on a card: `EvaluationResult`, the Wilson intervals of a Trainer's metrics, the results table.

Each result becomes an `huggingface_hub.EvalResult` in the card's `model-index` metadata (the Hub's
results widget) and a row of the card's results table, which also shows the interval and sample size.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Optional

from huggingface_hub import EvalResult


@dataclass
class EvaluationResult:
    """One evaluation number for the card, with its uncertainty.

    It becomes an `huggingface_hub.EvalResult` in the card's `model-index` (the Hub's results
    widget) and a row of the card's results table, where the interval and sample size are shown.

    Args:
        metric_type: Hub metric id, e.g. `"accuracy"`, `"perplexity"`, `"loss"`.
        value: the estimate.
        dataset_name: human-readable dataset name, e.g. `"Sudoku (45 givens, held out)"`.
        dataset_type: Hub dataset id, or a short id for generated data (e.g. `"generated-sudoku"`).
        metric_name: human-readable metric name (defaults to `metric_type`).
        interval: `(low, high)` confidence interval containing `value`, or None.
        interval_method: how the interval was computed, e.g. `"Wilson 95%"`.
        num_samples: number of evaluated examples, or None.
        dataset_split: split evaluated, e.g. `"test"`.
        task_type: Hub task id; defaults to the family's.
    """

    metric_type: str
    value: float
    dataset_name: str
    dataset_type: str
    metric_name: Optional[str] = None
    interval: Optional[tuple[float, float]] = None
    interval_method: Optional[str] = None
    num_samples: Optional[int] = None
    dataset_split: Optional[str] = None
    task_type: Optional[str] = None

    def __post_init__(self):
        for name in ("metric_type", "dataset_name", "dataset_type"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"`{name}` must be a non-empty string, got {getattr(self, name)!r}.")
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)) or not math.isfinite(self.value):
            raise ValueError(f"`value` must be a finite number, got {self.value!r}.")
        if self.interval is not None:
            low, high = (float(v) for v in self.interval)
            if not low <= self.value <= high:
                raise ValueError(
                    f"`interval` must be (low, high) with low <= value <= high; got {self.interval!r} "
                    f"for value {self.value!r}."
                )
            self.interval = (low, high)
        if self.num_samples is not None and (
            isinstance(self.num_samples, bool) or not isinstance(self.num_samples, int) or self.num_samples < 1
        ):
            raise ValueError(f"`num_samples` must be an integer >= 1 or None, got {self.num_samples!r}.")

    def to_eval_result(self, default_task_type: str, task_name: Optional[str] = None) -> EvalResult:
        return EvalResult(
            task_type=self.task_type or default_task_type,
            task_name=task_name,
            dataset_type=self.dataset_type,
            dataset_name=self.dataset_name,
            dataset_split=self.dataset_split,
            metric_type=self.metric_type,
            metric_name=self.metric_name or self.metric_type,
            metric_value=self.value,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> "EvaluationResult":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"Unknown evaluation-result fields {sorted(unknown)}; allowed: {sorted(known)}.")
        data = dict(data)
        if data.get("interval") is not None:
            data["interval"] = tuple(data["interval"])
        return cls(**data)


# Trainer metrics that are a mean of one 0/1 outcome per example, so a binomial (Wilson) interval
# is valid for them; a mean of per-cell fractions is not binomial and gets no interval.
BINARY_METRICS = ("exact_accuracy", "exact_accuracy_max_steps", "accuracy")
_COUNT_KEYS = ("num_puzzles", "num_samples", "num_examples")
_SKIPPED_METRICS = ("runtime", "samples_per_second", "steps_per_second", "epoch")


def results_from_metrics(
    metrics: Mapping[str, float],
    dataset_name: str,
    dataset_type: str = "generated",
    dataset_split: Optional[str] = "test",
    prefix: str = "eval_",
    binary_metrics: Sequence[str] = BINARY_METRICS,
) -> list[EvaluationResult]:
    """Turns a `trainer.evaluate()` dict into `EvaluationResult`s, with Wilson 95% intervals where valid.

    Metrics in `binary_metrics` (a mean of one 0/1 outcome per example) get a Wilson interval when
    the dict also holds the example count (`{prefix}num_puzzles`, `num_samples` or `num_examples`).
    """
    from hf_reason.evaluation.statistics import wilson_interval

    values = {k[len(prefix) :]: v for k, v in metrics.items() if k.startswith(prefix)}
    count = next((int(values[k]) for k in _COUNT_KEYS if k in values), None)
    results = []
    for name, value in values.items():
        if name in _COUNT_KEYS or name.startswith("num_") or name in _SKIPPED_METRICS:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        metric_type = "accuracy" if "accuracy" in name else ("perplexity" if "perplexity" in name else name)
        interval, method = None, None
        if name in binary_metrics and count:
            successes = round(value * count)
            interval, method = wilson_interval(successes, count), "Wilson 95%"
            interval = (min(interval[0], value), max(interval[1], value))
        results.append(
            EvaluationResult(
                metric_type=metric_type,
                value=float(value),
                metric_name=name.replace("_", " "),
                dataset_name=dataset_name,
                dataset_type=dataset_type,
                dataset_split=dataset_split,
                interval=interval,
                interval_method=method,
                num_samples=count,
            )
        )
    return results


def _eval_table(results: Sequence[EvaluationResult]) -> str:
    """The card's results table (Markdown), with a note on the intervals when any is a Wilson interval."""
    lines = ["| dataset | split | metric | value | 95% interval | n |", "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        interval = "—"
        if r.interval is not None:
            interval = f"[{_fmt(r.interval[0])}, {_fmt(r.interval[1])}]"
            if r.interval_method and r.interval_method != "Wilson 95%":
                interval += f" ({r.interval_method})"
        lines.append(
            f"| {r.dataset_name} | {r.dataset_split or '—'} | {r.metric_name or r.metric_type} | "
            f"{_fmt(r.value)} | {interval} | {r.num_samples if r.num_samples is not None else '—'} |"
        )
    if any(r.interval_method == "Wilson 95%" for r in results):
        lines.append(
            "\nIntervals are Wilson 95% score intervals over independent examples; metrics without an "
            "interval are means of per-example fractions, for which a binomial interval does not hold."
        )
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _as_results(eval_results) -> list[EvaluationResult]:
    """`eval_results` as `EvaluationResult`s; dicts (from saved card inputs) are read with `from_dict`."""
    out = []
    for r in eval_results or []:
        if isinstance(r, EvaluationResult):
            out.append(r)
        elif isinstance(r, Mapping):
            out.append(EvaluationResult.from_dict(r))
        else:
            raise ValueError(f"`eval_results` items must be EvaluationResult or dict; got {type(r).__name__}.")
    return out
