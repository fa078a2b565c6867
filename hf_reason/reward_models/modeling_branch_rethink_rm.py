"""The branch-and-rethink reward model: one causal LM, a branching turn and a rethinking turn from templates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from .configuration_branch_rethink_rm import NO_RISK, BranchRethinkRewardModelConfig


def select_branches(
    probabilities: Sequence[float], names: Sequence[str], max_branches: int, branch_mass: float
) -> list[str]:
    """Adaptive branching: names by decreasing probability, kept until their mass reaches `branch_mass` or
    `max_branches` are kept; `"none"` (no risk) stops the list where it ranks. Ties keep the given order."""
    order = sorted(range(len(names)), key=lambda i: (-probabilities[i], i))
    kept, mass = [], 0.0
    for i in order:
        if names[i] == NO_RISK or len(kept) == max_branches:
            break
        kept.append(names[i])
        mass += probabilities[i]
        if mass >= branch_mass:
            break
    return kept


class BranchRethinkRewardModel(PreTrainedModel):
    """A causal LM used as a two-turn reward model (see [`BranchRethinkRewardModelConfig`]).

    Training is the LM's: fit `model.lm` as a causal LM on `branch_rethink_examples` rows (e.g. with TRL's
    `SFTTrainer` and its completion-only loss); `branch`, `rethink` and `score` run the two turns. `forward` is the
    LM's own.

    Args:
        config ([`BranchRethinkRewardModelConfig`]).
        lm (`PreTrainedModel`, *optional*): an existing causal LM; defaults to one built from `config.lm_config`.
    """

    config_class = BranchRethinkRewardModelConfig
    base_model_prefix = "lm"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __init__(self, config: BranchRethinkRewardModelConfig, lm: Optional[PreTrainedModel] = None):
        super().__init__(config)
        self.lm = lm if lm is not None else AutoModelForCausalLM.from_config(config.lm_config)
        self.post_init()

    def _init_weights(self, module):
        pass  # the LM initialises itself when built

    @classmethod
    def from_causal_lm(cls, model: PreTrainedModel, **config_kwargs) -> BranchRethinkRewardModel:
        """A BR-RM around an existing causal LM (kept whole: both turns are its own next-token predictions)."""
        return cls(BranchRethinkRewardModelConfig(lm_config=model.config.to_dict(), **config_kwargs), lm=model)

    def get_input_embeddings(self):
        return self.lm.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.lm.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.lm.get_output_embeddings()

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        kwargs.pop("num_items_in_batch", None)
        return self.lm(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs)

    # ------------------------------------------------------------------------------------------- the two turns
    def _continuation_logprobs(self, tokenizer, contexts: Sequence[str], continuations: Sequence[str]) -> torch.Tensor:
        """Summed log-probability of each continuation's tokens after its context (one row per pair)."""
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        pairs = []
        for context, continuation in zip(contexts, continuations):
            ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
            cont = tokenizer(continuation, add_special_tokens=False)["input_ids"]
            pairs.append((ctx, cont))
        width = max(len(c) + len(t) for c, t in pairs)
        input_ids = torch.full((len(pairs), width), pad, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        for row, (ctx, cont) in enumerate(pairs):
            ids = ctx + cont
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention_mask[row, : len(ids)] = 1
        device = next(self.parameters()).device
        logits = self.lm(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).logits.float()
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
        totals = []
        for row, (ctx, cont) in enumerate(pairs):
            positions = torch.arange(len(ctx) - 1, len(ctx) + len(cont) - 1, device=logits.device)
            targets = input_ids[row, len(ctx) : len(ctx) + len(cont)].to(logits.device)
            totals.append(logprobs[row, positions, targets].sum())
        return torch.stack(totals)

    def branch_probabilities(self, tokenizer, contexts: Sequence[str]) -> torch.Tensor:
        """Turn 1: `(batch, attributes + 1)` probabilities that each attribute (then `"none"`) is the one at risk,
        normalised over the candidates from the LM's log-probability of each name."""
        names = [*self.config.attributes, NO_RISK]
        prefixed = [c + self.config.branch_template for c in contexts for _ in names]
        continuations = [" " + n for _ in contexts for n in names]
        with torch.no_grad():
            scores = self._continuation_logprobs(tokenizer, prefixed, continuations).view(len(contexts), len(names))
        return torch.softmax(scores, dim=-1).cpu()

    def branch(self, tokenizer, contexts: Sequence[str]) -> list[list[str]]:
        """Turn 1: per context, the attributes kept as branches (adaptive; may be empty)."""
        names = [*self.config.attributes, NO_RISK]
        probabilities = self.branch_probabilities(tokenizer, contexts)
        return [
            select_branches(row.tolist(), names, self.config.max_branches, self.config.branch_mass)
            for row in probabilities
        ]

    def rethink_prompt(self, context: str, branches: Sequence[str]) -> str:
        return context + self.config.rethink_template.format(branches=", ".join(branches) or NO_RISK)

    def rethink(self, tokenizer, contexts: Sequence[str], branches: Sequence[Sequence[str]]) -> torch.Tensor:
        """Turn 2: ``log p(positive) - log p(negative)`` of the verdict's first token, `(batch,)`."""
        positive = tokenizer(self.config.positive_token, add_special_tokens=False)["input_ids"][:1]
        negative = tokenizer(self.config.negative_token, add_special_tokens=False)["input_ids"][:1]
        if positive == negative:
            raise ValueError("the positive and negative verdicts start with the same token; choose other words")
        prompts = [self.rethink_prompt(c, b) for c, b in zip(contexts, branches)]
        with torch.no_grad():
            both = self._continuation_logprobs(
                tokenizer,
                prompts * 2,
                [tokenizer.decode(positive)] * len(prompts) + [tokenizer.decode(negative)] * len(prompts),
            )
        return (both[: len(prompts)] - both[len(prompts) :]).cpu()

    def score(self, tokenizer, contexts: Sequence[str], batch_size: int = 8) -> tuple[list[float], list[list[str]]]:
        """Both turns: (rewards, branches) for each context (prompt + response)."""
        was_training = self.training
        self.eval()
        rewards, branches = [], []
        for start in range(0, len(contexts), batch_size):
            chunk = list(contexts[start : start + batch_size])
            kept = self.branch(tokenizer, chunk)
            rewards += self.rethink(tokenizer, chunk, kept).tolist()
            branches += kept
        self.train(was_training)
        return rewards, branches


def branch_rethink_examples(
    config: BranchRethinkRewardModelConfig, context: str, at_risk: Sequence[str], acceptable: bool
) -> list[dict[str, str]]:
    """The supervised turns for one (prompt + response) `context`, as ``{"prompt", "completion"}`` rows (TRL's
    prompt-completion format): turn 1 names each attribute at risk (one row each; `"none"` when there is none),
    turn 2 gives the verdict conditioned on them."""
    unknown = set(at_risk) - set(config.attributes)
    if unknown:
        raise ValueError(f"unknown attributes at risk {sorted(unknown)}; known: {config.attributes}")
    names = list(at_risk)[: config.max_branches]
    # one turn-1 row per attribute at risk: the LM learns to spread its mass over them, which is what lets
    # branching keep several where several are at risk
    turn1 = [{"prompt": context + config.branch_template, "completion": " " + name} for name in names or [NO_RISK]]
    rethink = context + config.rethink_template.format(branches=", ".join(names) or NO_RISK)
    turn2 = {"prompt": rethink, "completion": config.positive_token if acceptable else config.negative_token}
    return [*turn1, turn2]


__all__ = ["BranchRethinkRewardModel", "branch_rethink_examples", "select_branches"]
