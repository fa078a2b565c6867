"""The self-critic head as a TRL reward function, and its training data from evaluator verdicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import torch


def _episode_text(prompt: Any, completion: Any, tokenizer) -> str:
    """Prompt + completion as one string, for standard or conversational (message-list) samples."""
    if isinstance(completion, list) or isinstance(prompt, list):
        messages = (prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt or ""}]) + (
            completion if isinstance(completion, list) else [{"role": "assistant", "content": completion}]
        )
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(messages, tokenize=False)
        return "\n".join(str(m["content"]) for m in messages)
    if not isinstance(completion, str) or not isinstance(prompt, (str, type(None))):
        raise ValueError(
            f"prompts and completions must be strings or message lists, got {type(prompt).__name__} / "
            f"{type(completion).__name__}"
        )
    return (prompt or "") + completion


class SelfCriticReward:
    """Scores episodes (prompt + report) with a self-critic; TRL's reward-function signature.

    `reward(prompts, completions, **kwargs) -> list[float]`: each value is the critic's score in
    (0, 1), `sigmoid` of its logit (the predicted probability that the episode passes, or its
    predicted evaluator score for a critic trained with `critic_loss="mse"`). Extra keyword
    arguments (dataset columns TRL passes along) are ignored.

    Args:
        model: a [`MetaAttentionForSequenceScoring`] (or any sequence classifier with one logit).
        tokenizer: its tokenizer (a pad token is required for batching).
        batch_size (`int`, defaults to 8): episodes scored per forward pass (>= 1).
        max_length (`int`, *optional*): truncate episodes to their last `max_length` tokens (the
            report's end carries the answer and reflection); defaults to the model's context size.
    """

    def __init__(self, model, tokenizer, batch_size: int = 8, max_length: Optional[int] = None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be an integer >= 1, got {batch_size!r}")
        context = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
        if max_length is None:
            max_length = context
        if max_length is not None and (
            isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1
        ):
            raise ValueError(f"`max_length` must be an integer >= 1 or None, got {max_length!r}")
        if tokenizer.pad_token_id is None:
            raise ValueError("`tokenizer` needs a pad token to batch episodes (set tokenizer.pad_token)")
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.max_length = batch_size, max_length
        self.__name__ = "self_critic"  # TRL logs rewards under the function's __name__

    def encode(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Left-truncated, padded batch of `texts` for the critic."""
        truncation_side = self.tokenizer.truncation_side
        self.tokenizer.truncation_side = "left"
        try:
            return self.tokenizer(
                list(texts),
                padding=True,
                truncation=self.max_length is not None,
                max_length=self.max_length,
                return_tensors="pt",
                add_special_tokens=False,
            )
        finally:
            self.tokenizer.truncation_side = truncation_side

    @torch.no_grad()
    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        if prompts is None:
            prompts = [None] * len(completions)
        if len(prompts) != len(completions):
            raise ValueError(f"got {len(prompts)} prompts for {len(completions)} completions")
        texts = [_episode_text(p, c, self.tokenizer) for p, c in zip(prompts, completions)]
        was_training = self.model.training
        self.model.eval()
        device = next(self.model.parameters()).device
        scores: list[float] = []
        try:
            for start in range(0, len(texts), self.batch_size):
                batch = {k: v.to(device) for k, v in self.encode(texts[start : start + self.batch_size]).items()}
                logits = self.model(**batch).logits
                scores.extend(torch.sigmoid(logits[:, 0].float()).tolist())
        finally:
            self.model.train(was_training)
        return scores


def critic_examples(
    prompts: Sequence[str],
    completions: Sequence[str],
    verdicts: Sequence[float],
    tokenizer,
    max_length: Optional[int] = None,
) -> list[dict]:
    """Training rows `{input_ids, attention_mask, labels}` for the critic from evaluator verdicts.

    `verdicts` are pass / fail (0 or 1, for `critic_loss="bce"`) or scores in [0, 1] (`"mse"`). The
    rows feed `transformers.Trainer` with `DataCollatorWithPadding`.
    """
    if not len(prompts) == len(completions) == len(verdicts):
        raise ValueError("`prompts`, `completions` and `verdicts` must have the same length")
    rows = []
    for prompt, completion, verdict in zip(prompts, completions, verdicts):
        if not isinstance(verdict, (int, float)) or not 0.0 <= float(verdict) <= 1.0:  # bools are pass / fail
            raise ValueError(f"every verdict must be a number in [0, 1], got {verdict!r}")
        ids = tokenizer(_episode_text(prompt, completion, tokenizer), add_special_tokens=False)["input_ids"]
        if max_length is not None:
            ids = ids[-max_length:]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": float(verdict)})
    return rows


def critic_rows(
    episodes: Sequence[dict],
    evaluator=None,
    results: Optional[Sequence[dict]] = None,
    label: str = "validator",
) -> list[dict]:
    """Critic training rows from `ReportEvaluator` verdicts: `{task_id, prompt, completion, text, label}`.

    Args:
        episodes (list of `dict`): reports in the evaluator's form, `{"completion", "task_id"?,
            "prompt"?, "introspection"?}`; a missing prompt is the task's prompt.
        evaluator (`ReportEvaluator`, *optional*): scores the episodes (`evaluator.score`); needed
            unless `results` are given, and to look up prompts by `task_id`.
        results (list of `dict`, *optional*): the evaluator's score dicts, one per episode, when they
            were already computed (a validator that runs code in the sandbox is not re-run).
        label (`str`, defaults to `"validator"`): the score that becomes the label: `"validator"`
            (pass 1 / fail 0, for `critic_loss="bce"`) or `"overall"` / any other evaluator score (in
            [0, 1], for `critic_loss="mse"`).

    Feed the rows to the critic with `critic_examples([r["prompt"] ...], [r["completion"] ...],
    [r["label"] ...], tokenizer)`; `text` is the episode exactly as `SelfCriticReward` scores it
    (for tokenizers without a chat template). An episode whose score is absent (e.g. `validator`
    for a report without a known task) is an error, not a silently dropped row.
    """
    from .reports import SCORE_NAMES

    if label not in (*SCORE_NAMES, "overall"):
        raise ValueError(f"`label` must be 'overall' or one of {list(SCORE_NAMES)}, got {label!r}")
    if results is None and evaluator is None:
        raise ValueError("pass `evaluator` (to score the episodes) or their `results`")
    if results is not None and len(results) != len(episodes):
        raise ValueError(f"got {len(results)} results for {len(episodes)} episodes")
    tasks = getattr(evaluator, "tasks", {}) if evaluator is not None else {}
    rows = []
    for i, episode in enumerate(episodes):
        if "completion" not in episode:
            raise ValueError(f"episode {i} has no `completion` field (fields: {sorted(episode)})")
        task_id = episode.get("task_id")
        prompt = episode.get("prompt")
        if prompt is None:
            prompt = tasks.get(task_id, {}).get("prompt", "")
        if results is not None:
            scores = results[i]
        else:
            scores = evaluator.score(episode["completion"], task_id, prompt, episode.get("introspection"))
        value = scores.get(label)
        if value is None:
            raise ValueError(
                f"episode {i} (task_id {task_id!r}) has no {label!r} score to learn from"
                + (" (unknown task)" if label == "validator" else "")
            )
        rows.append(
            {
                "task_id": task_id,
                "prompt": prompt,
                "completion": episode["completion"],
                "text": _episode_text(prompt, episode["completion"], None),
                "label": float(value),
            }
        )
    return rows


__all__ = ["SelfCriticReward", "critic_examples", "critic_rows"]
