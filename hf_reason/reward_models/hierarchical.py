"""Using the hierarchical reward model: step encoding, a collator, per-step scores for search, a TRL reward."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import torch


def encode_steps(
    tokenizer, prompt: str, steps: Sequence[str], final: Optional[str] = None, separator: str = "\n", eos: bool = True
) -> tuple[list[int], list[int]]:
    """Token ids of ``prompt + " " + steps joined by separator (+ separator + final) (+ EOS)`` and the position of
    each step's last token. Pieces are tokenised one at a time so step boundaries are exact token positions; the
    same function builds training and scoring inputs, so both see the same tokens."""
    ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    ends = []
    for index, step in enumerate(steps):
        ids += tokenizer((" " if index == 0 else separator) + step, add_special_tokens=False)["input_ids"]
        ends.append(len(ids) - 1)
    if final:
        ids += tokenizer((separator if steps else " ") + final, add_special_tokens=False)["input_ids"]
    if eos and tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return ids, ends


def _pad_batch(tokenizer, sequences: list[list[int]], ends: list[list[int]]) -> dict[str, torch.Tensor]:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(s) for s in sequences)
    batch = {
        "input_ids": torch.full((len(sequences), width), pad, dtype=torch.long),
        "attention_mask": torch.zeros((len(sequences), width), dtype=torch.long),
        "step_mask": torch.zeros((len(sequences), width), dtype=torch.bool),
    }
    for row, (ids, row_ends) in enumerate(zip(sequences, ends)):
        batch["input_ids"][row, : len(ids)] = torch.tensor(ids)
        batch["attention_mask"][row, : len(ids)] = 1
        batch["step_mask"][row, row_ends] = True
    return batch


@dataclass
class StepRewardCollator:
    """Batches rows of `generate_step_labelled_chains` (`prompt`, `steps`, `final`, `step_labels`,
    `outcome_label`) for [`HierarchicalRewardModel`]: right padding, `step_mask`, labels at the step ends.

    Args:
        tokenizer: the tokenizer.
        separator (`str`, defaults to `"\\n"`): between steps.
        max_length (`int`, *optional*): rows longer than this raise (truncating would cut steps off).
    """

    tokenizer: Any
    separator: str = "\n"
    max_length: Optional[int] = None

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        sequences, ends = [], []
        for example in examples:
            ids, row_ends = encode_steps(
                self.tokenizer, example["prompt"], example["steps"], example.get("final"), self.separator
            )
            if self.max_length is not None and len(ids) > self.max_length:
                raise ValueError(f"a chain of {len(ids)} tokens exceeds `max_length` {self.max_length}")
            sequences.append(ids)
            ends.append(row_ends)
        batch = _pad_batch(self.tokenizer, sequences, ends)
        labels = torch.zeros(batch["input_ids"].shape, dtype=torch.float)
        for row, (example, row_ends) in enumerate(zip(examples, ends)):
            if len(example["step_labels"]) != len(row_ends):
                raise ValueError(f"row {row}: {len(example['step_labels'])} step labels for {len(row_ends)} steps")
            labels[row, row_ends] = torch.tensor(example["step_labels"], dtype=torch.float)
        batch["step_labels"] = labels
        batch["outcome_labels"] = torch.tensor([float(e["outcome_label"]) for e in examples])
        return batch


class StepScorer:
    """Per-step soundness scores as a plain batched callable ``(prompts, steps_lists) -> list[list[float]]``, for
    best-of-N and step-level search: one probability per given step, in order.

    Args:
        model ([`HierarchicalRewardModel`]).
        tokenizer: its tokenizer.
        batch_size (`int`, defaults to 16).
    """

    def __init__(self, model, tokenizer, batch_size: int = 16):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    def score(self, prompts: Sequence[str], steps_lists: Sequence[Sequence[str]], finals=None) -> dict[str, list]:
        """Step probabilities, process scores and combined rewards (`finals`: optional final-answer lines)."""
        if len(prompts) != len(steps_lists):
            raise ValueError(f"need one steps list per prompt, got {len(steps_lists)} for {len(prompts)}")
        finals = list(finals) if finals is not None else [None] * len(prompts)
        separator = self.model.config.step_separator
        result = {"steps": [], "process": [], "reward": []}
        was_training = self.model.training
        self.model.eval()
        device = next(self.model.parameters()).device
        with torch.no_grad():
            for start in range(0, len(prompts), self.batch_size):
                encoded = [
                    encode_steps(self.tokenizer, p, list(s), f, separator)
                    for p, s, f in zip(
                        prompts[start : start + self.batch_size],
                        steps_lists[start : start + self.batch_size],
                        finals[start : start + self.batch_size],
                    )
                ]
                batch = _pad_batch(self.tokenizer, [e[0] for e in encoded], [e[1] for e in encoded])
                out = self.model(**{k: v.to(device) for k, v in batch.items()})
                probabilities = torch.sigmoid(out.step_logits).float().cpu()
                for row, (_, row_ends) in enumerate(encoded):
                    result["steps"].append(probabilities[row, row_ends].tolist())
                result["process"] += out.process_scores.float().cpu().tolist()
                result["reward"] += out.logits[:, 0].float().cpu().tolist()
        self.model.train(was_training)
        return result

    def __call__(self, prompts: Sequence[str], steps_lists: Sequence[Sequence[str]]) -> list[list[float]]:
        return self.score(prompts, steps_lists)["steps"]


def split_steps(
    completion: str, separator: str = "\n", outcome_prefix: str = "####"
) -> tuple[list[str], Optional[str]]:
    """A completion's steps (non-empty pieces between separators) and its final-answer line (or None)."""
    steps, final = [], None
    for piece in completion.split(separator):
        piece = piece.strip()
        if not piece:
            continue
        if outcome_prefix and piece.startswith(outcome_prefix):
            final = piece
        elif final is None:
            steps.append(piece)
    return steps, final


class HierarchicalReward:
    """The hierarchical RM's combined reward as a TRL reward function ``f(prompts, completions, **kwargs)``: each
    completion is split into steps and a final line (`split_steps`) and scored as in training.

    Args:
        model ([`HierarchicalRewardModel`]), tokenizer, batch_size (`int`, defaults to 16).
        component (`str`, defaults to `"reward"`): `"reward"` (combined), `"process"` or `"outcome"`.
    """

    def __init__(self, model, tokenizer, batch_size: int = 16, component: str = "reward"):
        if component not in ("reward", "process", "outcome"):
            raise ValueError(f"`component` must be 'reward', 'process' or 'outcome', got {component!r}")
        self.scorer = StepScorer(model, tokenizer, batch_size)
        self.component = component
        self.__name__ = f"hierarchical_{component}"

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        from hf_reason.trainers.rewards import completion_text  # the trainers package pulls in TRL: only when used

        config = self.scorer.model.config
        split = [split_steps(completion_text(c), config.step_separator, config.outcome_prefix) for c in completions]
        scored = self.scorer.score([completion_text(p) for p in prompts], [s for s, _ in split], [f for _, f in split])
        if self.component == "outcome":
            w = config.process_weight
            # reward = w * process + (1 - w) * outcome, so the outcome is recovered exactly unless w == 1
            if w == 1.0:
                raise ValueError("component='outcome' needs process_weight < 1")
            return [(r - w * p) / (1 - w) for r, p in zip(scored["reward"], scored["process"])]
        return scored["reward"] if self.component == "reward" else scored["process"]


def step_accuracy(predicted: Sequence[Sequence[float]], labels: Sequence[Sequence[int]]) -> float:
    """Share of steps whose probability is on the right side of 0.5."""
    pairs = [(p >= 0.5, bool(y)) for ps, ys in zip(predicted, labels) for p, y in zip(ps, ys)]
    return sum(a == b for a, b in pairs) / len(pairs) if pairs else math.nan


__all__ = ["HierarchicalReward", "StepRewardCollator", "StepScorer", "encode_steps", "split_steps", "step_accuracy"]
