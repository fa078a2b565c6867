"""Using a reward model: batched scoring, calibration coverage, a TRL reward function and best-of-N selection."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Optional

import torch


def score_texts(
    model, tokenizer, texts: Sequence[str], batch_size: int = 16, max_length: Optional[int] = None, append_eos=True
):
    """Run `model` over `texts` in batches (right padding); returns the concatenated output fields
    (`logits` and, where the model has them, `quantiles`, `attribute_scores`) as a dict of tensors.

    `append_eos` adds the tokenizer's EOS as TRL's `RewardTrainer` does in training, so the pooled last token is the
    same one the model was trained to score from.
    """
    eos = tokenizer.eos_token if append_eos and tokenizer.eos_token else ""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    fields: dict[str, list[torch.Tensor]] = {}
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            chunk = [t if t.endswith(eos) else t + eos for t in texts[start : start + batch_size]]
            encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in chunk]
            if max_length is not None:
                encoded = [ids[-max_length:] for ids in encoded]  # keep the end: the response and its EOS
            width = max(len(ids) for ids in encoded)
            input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
            attention_mask = torch.zeros((len(encoded), width), dtype=torch.long)
            for row, ids in enumerate(encoded):
                input_ids[row, : len(ids)] = torch.tensor(ids)
                attention_mask[row, : len(ids)] = 1
            out = model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device))
            for name in ("logits", "quantiles", "attribute_scores"):
                value = getattr(out, name, None)
                if value is not None:
                    fields.setdefault(name, []).append(value.float().cpu())
    model.train(was_training)
    return {name: torch.cat(values) for name, values in fields.items()}


def quantile_coverage(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Empirical coverage `(attributes, quantiles)`: the share of held-out targets at or below each predicted
    quantile. A calibrated level-tau quantile covers a share tau; `coverage - levels` is the calibration error.

    Args:
        predicted (`torch.Tensor` of shape `(N, attributes, quantiles)`).
        target (`torch.Tensor` of shape `(N, attributes)`): NaN entries are left out of their attribute.
    """
    if predicted.dim() != 3 or target.shape != predicted.shape[:2]:
        raise ValueError(f"need predicted (N, A, Q) and target (N, A), got {tuple(predicted.shape)}, {target.shape}")
    present = (~torch.isnan(target)).unsqueeze(-1).float()
    covered = (target.unsqueeze(-1) <= predicted).float() * present
    return covered.sum(0) / present.sum(0).clamp_min(1.0)


class RewardModelReward:
    """A sequence-scoring reward model as a TRL reward function: ``f(prompts, completions, **kwargs) -> list[float]``.

    Scores ``prompt + completion`` (plain or conversational completions) with the model's scalar `logits`, so it
    mixes with TRL's rewards in `GRPOTrainer(reward_funcs=[...])` and with `CombinedReward`.

    Args:
        model: a reward model returning `logits` of shape `(batch, 1)` (ours or a TRL-trained sequence classifier).
        tokenizer: its tokenizer.
        batch_size (`int`, defaults to 16).
        max_length (`int`, *optional*): keep at most this many tokens (the last ones).
    """

    def __init__(self, model, tokenizer, batch_size: int = 16, max_length: Optional[int] = None):
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.max_length = batch_size, max_length
        self.__name__ = f"{type(model).__name__}_reward"

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        from hf_reason.trainers.rewards import completion_text  # the trainers package pulls in TRL: only when used

        prompts = list(prompts) if prompts is not None else [""] * len(completions)
        texts = [completion_text(p) + completion_text(c) for p, c in zip(prompts, completions)]
        scores = score_texts(self.model, self.tokenizer, texts, self.batch_size, self.max_length)["logits"]
        return scores[:, 0].tolist()


class BranchRethinkReward:
    """A [`BranchRethinkRewardModel`] as a TRL reward function: both turns on ``prompt + completion``.

    The branches of the last call are kept in `last_branches` (for logging what the model worried about).

    Args:
        model ([`BranchRethinkRewardModel`]), tokenizer, batch_size (`int`, defaults to 8).
    """

    def __init__(self, model, tokenizer, batch_size: int = 8):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.last_branches: list[list[str]] = []
        self.__name__ = "branch_rethink_reward"

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        from hf_reason.trainers.rewards import completion_text  # the trainers package pulls in TRL: only when used

        prompts = list(prompts) if prompts is not None else [""] * len(completions)
        contexts = [completion_text(p) + completion_text(c) for p, c in zip(prompts, completions)]
        rewards, self.last_branches = self.model.score(self.tokenizer, contexts, self.batch_size)
        return rewards


def best_of_n(
    reward_fn: Callable[..., Sequence[float]], prompts: Sequence[str], candidates: Sequence[Sequence[str]], **kwargs
) -> list[int]:
    """Per prompt, the index of the candidate `reward_fn` scores highest (ties: the first).

    Args:
        reward_fn: a TRL-signature reward function (`RewardModelReward`, a verifier reward, ...).
        prompts (`Sequence[str]`): one per group.
        candidates (`Sequence[Sequence[str]]`): per prompt, its N completions.
        **kwargs: per-prompt columns (e.g. ``answer=[...]``), repeated for each candidate.
    """
    if len(prompts) != len(candidates):
        raise ValueError(f"need one candidate list per prompt, got {len(candidates)} for {len(prompts)} prompts")
    flat_prompts = [p for p, group in zip(prompts, candidates) for _ in group]
    flat = [c for group in candidates for c in group]
    flat_kwargs = {k: [v for v, group in zip(values, candidates) for _ in group] for k, values in kwargs.items()}
    scores = list(reward_fn(prompts=flat_prompts, completions=flat, **flat_kwargs))
    choices, offset = [], 0
    for group in candidates:
        group_scores = [(-1e30 if s is None else float(s)) for s in scores[offset : offset + len(group)]]
        choices.append(max(range(len(group)), key=lambda i: (group_scores[i], -i)))
        offset += len(group)
    return choices


__all__ = ["BranchRethinkReward", "RewardModelReward", "best_of_n", "quantile_coverage", "score_texts"]
