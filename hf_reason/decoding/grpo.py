# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
r"""Grammar-constrained GRPO: rollouts sampled under a grammar, scored with the same mask.

**What is sampled.** With the grammar's allowed set `A_t` at completion step `t`, a rollout token
is drawn from the constrained policy

    q_theta(y_t | x, y_<t) = pi_theta(y_t | ...) 1[y_t in A_t] / Z_t,   Z_t = sum_{v in A_t} pi_theta(v | ...)

(after the temperature, as TRL samples). **What the loss must score.** The deployed policy is
`q_theta`: the grammar is always on at inference. So every log-probability the GRPO loss reads,
the policy's, the old policy's (importance ratio) and the reference's (KL), is `log q` under the
same mask, recomputed at training time by replaying the grammar over the completion tokens (the
mask is a function of the tokens alone, so the replay gives exactly the sampling-time mask).
Scoring with the unmasked `log pi` instead would make the importance ratio
`pi_theta / pi_old = (q_theta / q_old) (Z_theta / Z_old)`, biased by how much mass either policy
puts outside the grammar, and would add a `-grad log Z_t` term that only pushes mass into `A_t`,
which the mask already guarantees. tests/test_decoding_grpo.py checks that the masked
log-probabilities equal the log of the distribution the rollout was sampled from.

**How.** `GrammarConstrainedGRPOMixin` overrides two of TRL's `GRPOTrainer` hooks and nothing
else: `_generate_single_turn` (the model's `generate` gets a fresh `GrammarLogitsProcessor` for the
duration of the call) and `_get_per_token_logps_and_entropies` (masked log-probabilities and
entropies). Mix it in front of any GRPO trainer built on TRL's:

    class ConstrainedGRPO(GrammarConstrainedGRPOMixin, GRPOTrainer): ...
    trainer = ConstrainedGRPO(..., grammar=GrammarSpec.json_schema(schema))

Text-only models, generation through transformers (not vLLM).
"""

import functools
from contextlib import contextmanager
from typing import Optional

import torch
from transformers import LogitsProcessorList

from .engines import GrammarSpec, compile_grammar
from .generation import _vocab_size
from .processor import GrammarLogitsProcessor
from .thoughts import thought_token_ids


@contextmanager
def generate_with_processors(model, make_processors):
    """Within the block, `model.generate(...)` also applies `make_processors()` (fresh for every call).

    An instance attribute shadows the class's `generate` for the block and is removed after it, so
    code that calls `model.generate` without a `logits_processor` argument (a trainer's rollout)
    samples under the processors.
    """
    original = model.generate

    @functools.wraps(original)
    def generate(*args, **kwargs):
        extra = list(kwargs.pop("logits_processor", None) or [])
        return original(*args, logits_processor=LogitsProcessorList(make_processors() + extra), **kwargs)

    model.generate = generate
    try:
        yield model
    finally:
        del model.generate


def masked_completion_logps(
    model,
    input_ids: torch.LongTensor,
    attention_mask: torch.LongTensor,
    logits_to_keep: int,
    allowed: torch.BoolTensor,
    temperature: float = 1.0,
    compute_entropy: bool = False,
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Per-token `log q` of the last `logits_to_keep` tokens under the masks they were sampled with.

    Args:
        input_ids, attention_mask (`(batch, prompt + completion)`): prompts and completions.
        logits_to_keep (`int`): the completion length (the last columns).
        allowed (`torch.BoolTensor` of shape `(batch, logits_to_keep, vocab)`): the allowed set before
            each completion token (`GrammarLogitsProcessor.replay_masks`).
        temperature (`float`): the sampling temperature (logits are divided by it, as TRL does).

    Returns `(logps, entropies)`, each `(batch, logits_to_keep)` (entropies None unless asked).
    """
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    logits = logits[:, -logits_to_keep - 1 : -1].float() / temperature
    logits = logits.masked_fill(~allowed.to(logits.device), float("-inf"))
    log_probs = torch.log_softmax(logits, dim=-1)
    completion = input_ids[:, -logits_to_keep:]
    logps = log_probs.gather(-1, completion.unsqueeze(-1)).squeeze(-1)
    entropies = None
    if compute_entropy:
        entropies = torch.special.entr(log_probs.exp()).sum(-1)
    return logps, entropies


class GrammarConstrainedGRPOMixin:
    """Grammar-constrained rollouts and mask-consistent log-probabilities for a TRL `GRPOTrainer`.

    Args (besides the trainer's own):
        grammar ([`GrammarSpec`]): the constraint of every completion.
        grammar_engine (`str`, *optional*): `"llguidance"` (default) or `"xgrammar"`.
    """

    def __init__(self, *args, grammar: GrammarSpec, grammar_engine: Optional[str] = None, **kwargs):
        if not isinstance(grammar, GrammarSpec):
            raise ValueError(f"`grammar` must be a GrammarSpec, got {type(grammar).__name__}")
        self.grammar_spec, self.grammar_engine = grammar, grammar_engine
        super().__init__(*args, **kwargs)
        if getattr(self, "use_vllm", False):
            raise ValueError("Grammar-constrained GRPO samples through transformers' generate; set use_vllm=False.")

    def grammar_processor(self) -> GrammarLogitsProcessor:
        """A fresh processor for one generation (or one replay)."""
        tokenizer = getattr(self.processing_class, "tokenizer", self.processing_class)
        model = self.accelerator.unwrap_model(self.model)
        compiled = compile_grammar(tokenizer, self.grammar_spec, _vocab_size(model, tokenizer), self.grammar_engine)
        return GrammarLogitsProcessor(compiled, self.eos_token_ids, thought_token_ids(tokenizer), tokenizer=tokenizer)

    def _generate_single_turn(self, *args, **kwargs):
        unwrapped = self.accelerator.unwrap_model(self.model_wrapped)
        with generate_with_processors(unwrapped, lambda: [self.grammar_processor()]):
            return super()._generate_single_turn(*args, **kwargs)

    def _get_per_token_logps_and_entropies(
        self,
        model,
        input_ids,
        attention_mask,
        logits_to_keep,
        batch_size=None,
        compute_entropy=False,
        compute_aux_loss=False,
        **multimodal,
    ):
        if compute_aux_loss or any(v is not None for v in multimodal.values()):
            raise ValueError("Grammar-constrained GRPO supports text-only, non-MoE models.")
        batch_size = batch_size or input_ids.size(0)
        completions = input_ids[:, -logits_to_keep:].tolist()
        allowed = self.grammar_processor().replay_masks(completions, logits_to_keep)
        all_logps, all_entropies = [], []
        for start in range(0, input_ids.size(0), batch_size):
            end = start + batch_size
            with self.accelerator.autocast():
                logps, entropies = masked_completion_logps(
                    model,
                    input_ids[start:end],
                    attention_mask[start:end],
                    logits_to_keep,
                    allowed[start:end],
                    self.temperature,
                    compute_entropy,
                )
            all_logps.append(logps)
            all_entropies.append(entropies)
        logps = torch.cat(all_logps)
        entropies = torch.cat(all_entropies) if compute_entropy else None
        return logps, entropies, None


__all__ = ["GrammarConstrainedGRPOMixin", "generate_with_processors", "masked_completion_logps"]
