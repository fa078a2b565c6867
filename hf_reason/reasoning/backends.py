"""Stepping a causal LM from cached states, so that a search branch never recomputes its prefix.

`LMStepper` wraps any PyTorch causal LM of the package or of `transformers`: attention models keep
their keys / values (`past_key_values`, e.g. GPT-2, meta-attention), recurrent ones their state
(`cache_params`: CRSM, Mamba). A `LMState` is the cache after a prefix plus the next-token logits;
branching copies the cache (a copy of tensors, never a forward pass over the prefix again) and
advancing feeds only the new tokens.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import torch


__all__ = ["CostMeter", "LMState", "LMStepper", "StepSample", "stepping_model"]


class _ORTAttentionStepModel:
    """`ORTMetaAttentionForCausalLM` with the PyTorch call `model(input_ids, past_key_values, use_cache)`.

    Its cache is a list of numpy `(key, value)` pairs that the session never writes into, so a branch
    can hold its parent's cache as it is.
    """

    training = False
    device = torch.device("cpu")

    def __init__(self, ort_model):
        self.ort_model = ort_model
        self.config = ort_model.config

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def __call__(self, input_ids, past_key_values=None, use_cache: bool = True, **kwargs):
        return self.ort_model.forward(input_ids, past_key_values=past_key_values)


def stepping_model(model):
    """What `LMStepper` and the scorers call: `model` itself, or for the package's ONNX Runtime wrappers
    an adapter with the PyTorch call (`ORTCRSMForCausalLM`: the adapter its own MCTS runs on, value
    head included; `ORTMetaAttentionForCausalLM`: `past_key_values` in and out)."""
    # Imported only for exported models: the export stack (onnx, Optimum) is not needed otherwise.
    if type(model).__module__.startswith("hf_reason.export"):
        from ..export.ort_crsm import ORTCRSMForCausalLM, _ORTCRSMSearchModel
        from ..export.ort_meta_attention import ORTMetaAttentionForCausalLM

        if isinstance(model, ORTCRSMForCausalLM):
            return _ORTCRSMSearchModel(model)
        if isinstance(model, ORTMetaAttentionForCausalLM):
            return _ORTAttentionStepModel(model)
    return model


def model_device(model) -> torch.device:
    """The device of a PyTorch model or of a stepping adapter (CPU for ONNX Runtime)."""
    device = getattr(model, "device", None)
    return device if isinstance(device, torch.device) else next(model.parameters()).device


@dataclass
class CostMeter:
    """What one problem cost: tokens sampled (every branch counts), model forward calls, scorer calls, seconds."""

    generated_tokens: int = 0
    model_calls: int = 0
    scorer_calls: int = 0
    prompt_tokens: int = 0
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0

    def stop(self) -> CostMeter:
        self.seconds = time.perf_counter() - self.started
        return self

    def as_dict(self) -> dict:
        return {
            "generated_tokens": self.generated_tokens,
            "model_calls": self.model_calls,
            "scorer_calls": self.scorer_calls,
            "prompt_tokens": self.prompt_tokens,
            "seconds": self.seconds,
        }


@dataclass
class LMState:
    """A prefix as the model sees it: the cache after it, the logits for the next token and its length."""

    cache: Any
    logits: torch.Tensor
    length: int
    finished: bool = False


@dataclass
class StepSample:
    """One sampled step: its text and tokens, the sum of its token log-probabilities and the state after it."""

    text: str
    token_ids: list[int]
    logprob: float
    state: LMState
    ended_with_eos: bool


class LMStepper:
    """Prefill, branch and advance one sequence of a causal LM with its cache.

    Args:
        model: a PyTorch causal LM returning `logits` and `past_key_values` (attention) or
            `cache_params` (Mamba / CRSM) with `use_cache=True`, or one of the package's ONNX Runtime
            wrappers (`ORTCRSMForCausalLM`, `ORTMetaAttentionForCausalLM`; see `stepping_model`).
        tokenizer: its tokenizer (decodes steps; `eos_token_id` ends a completion).
        step_delimiter (`str`, defaults to ``"\\n"``): a step ends with the token whose text contains it.
        max_step_tokens (`int`, defaults to 32): a step is cut after this many tokens.
    """

    def __init__(self, model, tokenizer, step_delimiter: str = "\n", max_step_tokens: int = 32):
        if max_step_tokens < 1:
            raise ValueError(f"`max_step_tokens` must be >= 1, got {max_step_tokens}")
        self.model = stepping_model(model)
        self.tokenizer = tokenizer
        self.step_delimiter = step_delimiter
        self.max_step_tokens = max_step_tokens
        self.eos_token_id = tokenizer.eos_token_id
        self.device = model_device(self.model)
        config = self.model.config
        self.recurrent = hasattr(config, "conv_kernel") and hasattr(config, "state_size")
        self._conv_kernel = getattr(config, "conv_kernel", None)
        self._token_text = {}

    def token_text(self, token_id: int) -> str:
        if token_id not in self._token_text:
            self._token_text[token_id] = self.tokenizer.decode([token_id], skip_special_tokens=False)
        return self._token_text[token_id]

    @torch.no_grad()
    def prefill(self, prompt: str, meter: Optional[CostMeter] = None) -> LMState:
        """The state after `prompt` (one forward pass)."""
        ids = self.tokenizer(prompt, return_tensors="pt").input_ids.to(self.device)
        if ids.shape[1] == 0:
            raise ValueError("the prompt encodes to no tokens")
        out = self.model(input_ids=ids, use_cache=True)
        if meter is not None:
            meter.model_calls += 1
            meter.prompt_tokens += ids.shape[1]
        return LMState(self._cache_of(out), out.logits[0, -1].float(), ids.shape[1])

    def _cache_of(self, out):
        cache = getattr(out, "cache_params", None) if self.recurrent else getattr(out, "past_key_values", None)
        if cache is None:
            raise ValueError(f"{type(self.model).__name__} returned no cache with `use_cache=True`")
        return cache

    @torch.no_grad()
    def advance(self, state: LMState, token_ids: list[int], meter: Optional[CostMeter] = None) -> LMState:
        """The state after feeding `token_ids` on top of `state`, which is left untouched (its cache is copied)."""
        if not token_ids:
            return state
        cache = copy.deepcopy(state.cache)
        if self.recurrent:
            # Mamba's mixer continues a cache one token at a time (a position > 0 picks the recurrent path).
            logits = None
            for i, token in enumerate(token_ids):
                position = torch.tensor([state.length + i], device=self.device)
                out = self.model(
                    input_ids=torch.tensor([[token]], device=self.device),
                    cache_params=cache,
                    cache_position=position,
                    use_cache=True,
                )
                cache, logits = out.cache_params, out.logits[0, -1]
                if meter is not None:
                    meter.model_calls += 1
        else:
            out = self.model(
                input_ids=torch.tensor([token_ids], device=self.device), past_key_values=cache, use_cache=True
            )
            cache, logits = out.past_key_values, out.logits[0, -1]
            if meter is not None:
                meter.model_calls += 1
        return LMState(cache, logits.float(), state.length + len(token_ids))

    @torch.no_grad()
    def sample_step(
        self,
        state: LMState,
        temperature: float = 1.0,
        max_tokens: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
        meter: Optional[CostMeter] = None,
    ) -> StepSample:
        """Samples one step from `state` (greedy when `temperature` is 0), feeding each token to a private copy.

        Stops after the token containing `step_delimiter`, at EOS, or after `max_tokens`
        (default `max_step_tokens`). `state` itself is not modified.
        """
        limit = self.max_step_tokens if max_tokens is None else min(max_tokens, self.max_step_tokens)
        tokens, logprob, text = [], 0.0, ""
        current = LMState(copy.deepcopy(state.cache), state.logits, state.length)
        eos = False
        while len(tokens) < max(limit, 0):
            logp = torch.log_softmax(current.logits, dim=-1)
            if temperature == 0:
                token = int(torch.argmax(logp))
            else:
                probs = torch.softmax(current.logits / temperature, dim=-1)
                token = int(torch.multinomial(probs, 1, generator=generator))
            logprob += float(logp[token])
            tokens.append(token)
            if meter is not None:
                meter.generated_tokens += 1
            if token == self.eos_token_id:
                eos = True
                break
            text += self.token_text(token)
            # The cache is ours (copied above), so feed in place instead of copying again per token.
            current = self._feed_in_place(current, token, meter)
            if self.step_delimiter in text:
                break
        return StepSample(text, tokens, logprob, LMState(current.cache, current.logits, current.length, eos), eos)

    def _feed_in_place(self, state: LMState, token: int, meter: Optional[CostMeter]) -> LMState:
        ids = torch.tensor([[token]], device=self.device)
        if self.recurrent:
            position = torch.tensor([state.length], device=self.device)
            out = self.model(input_ids=ids, cache_params=state.cache, cache_position=position, use_cache=True)
            cache = out.cache_params
        else:
            out = self.model(input_ids=ids, past_key_values=state.cache, use_cache=True)
            cache = out.past_key_values
        if meter is not None:
            meter.model_calls += 1
        return LMState(cache, out.logits[0, -1].float(), state.length + 1)

    def token_logprob_mean(self, sample: StepSample) -> float:
        """Mean log-probability per token of a step (a length-fair model confidence)."""
        return sample.logprob / max(len(sample.token_ids), 1) if sample.token_ids else -math.inf
