# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""`ORTMetaAttentionForCausalLM`: `MetaAttentionForCausalLM` on ONNX Runtime.

`forward` returns a `MetaAttentionCausalLMOutput` with torch logits; its `past_key_values` is a list
of numpy `(key, value)` pairs (fed straight back to the session) rather than a transformers `Cache`.
`generate` returns a torch tensor of prompt + new tokens, as `model.generate(...)` does.
"""

from typing import Optional

import numpy as np
import torch

from ..models.meta_attention import MetaAttentionConfig
from ..models.meta_attention.modeling_meta_attention import MetaAttentionCausalLMOutput
from .sessions import (
    ORTModelForExport,
    as_numpy,
    check_generate_args,
    generate_tokens,
    resolve_pad_token_id,
    structured_options,
)


class ORTMetaAttentionForCausalLM(ORTModelForExport):
    """`MetaAttentionForCausalLM` on ONNX Runtime: cached decoding and `generate`.

    Ours rather than Optimum's `ORTModelForCausalLM`: that class does not know the model type, and
    its `generate` (transformers' generation loop over a session) adds milliseconds per token
    (docs/onnx.md, "ONNX Runtime wrappers"); this loop keeps the cache as numpy arrays fed straight
    back to the session.
    `generate` supports greedy decoding and sampling (temperature, top-k) with an EOS stop.
    """

    family = "meta_attention"
    config_class = MetaAttentionConfig
    file_name = "model.onnx"
    graph_files = required_files = (file_name,)

    def __init__(self, config, session):
        self.config = config
        self.session = session
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        self.num_layers = config.n_layer
        self.num_heads = config.n_head
        self.head_dim = config.n_embd // config.n_head
        # The meta-attention summaries take the top-k attended keys: the graph needs >= k keys.
        self.min_keys = config.meta_top_k if getattr(config, "use_meta_attention", False) else 1

    @classmethod
    def _from_sessions(cls, config, sessions: dict) -> "ORTMetaAttentionForCausalLM":
        return cls(config, sessions[cls.file_name])

    def empty_cache(self, batch_size: int) -> list:
        shape = (batch_size, self.num_heads, 0, self.head_dim)
        return [(np.zeros(shape, np.float32), np.zeros(shape, np.float32)) for _ in range(self.num_layers)]

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, input_ids, attention_mask=None, past_key_values: Optional[list] = None):
        """A `MetaAttentionCausalLMOutput`: `logits (batch, seq, vocab)` (torch) and `past_key_values`,
        the new cache as a list of numpy `(key, value)` pairs of shape `(batch, heads, positions, head_dim)`.

        `attention_mask` covers the cached and the new positions (as in transformers). The ids are
        checked as the PyTorch model checks them, with the same errors.
        """
        ids = self._input_ids(input_ids)
        cached_rows = {key.shape[0] for key, _ in past_key_values or ()}
        if cached_rows - {ids.shape[0]}:
            raise ValueError(
                f"`past_key_values` holds {sorted(cached_rows)} rows and `input_ids` {ids.shape[0]}: pass this "
                "wrapper's cache of the same batch."
            )
        return self._forward(ids, attention_mask, past_key_values)

    def _forward(self, ids: np.ndarray, attention_mask=None, past_key_values: Optional[list] = None):
        """`forward` for checked ids (the decoding loop's own tokens)."""
        batch_size = ids.shape[0]
        if past_key_values is None:
            past_key_values = self.empty_cache(batch_size)
        past_len = past_key_values[0][0].shape[2]
        mask = (
            np.ones((batch_size, past_len + ids.shape[1]), np.int64)
            if attention_mask is None
            else as_numpy(attention_mask).astype(np.int64, copy=False)
        )
        if mask.shape != (batch_size, past_len + ids.shape[1]):
            raise ValueError(
                f"`attention_mask` must cover the cached and the new positions, shape "
                f"{(batch_size, past_len + ids.shape[1])}; got {mask.shape}."
            )
        if past_len + ids.shape[1] < self.min_keys:
            raise ValueError(
                f"The meta-attention graph needs at least meta_top_k={self.min_keys} positions; left-pad the "
                "prompt (attention_mask 0), as `generate` does."
            )
        feed = {"input_ids": ids, "attention_mask": mask}
        for i, (key, value) in enumerate(past_key_values):
            feed[f"past_key_values.{i}.key"] = key
            feed[f"past_key_values.{i}.value"] = value
        logits, *present = self.session.run(None, feed)
        cache = [(present[2 * i], present[2 * i + 1]) for i in range(self.num_layers)]
        return MetaAttentionCausalLMOutput(logits=torch.from_numpy(logits), past_key_values=cache)

    @structured_options
    def generate(
        self,
        input_ids,
        attention_mask=None,
        max_new_tokens: int = 20,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int = 0,
        eos_token_id: Optional[int] = None,
        pad_token_id: Optional[int] = None,
        seed: Optional[int] = None,
        prefilled=None,
        logits_processor: Optional[list] = None,
        stopping_criteria: Optional[list] = None,
    ) -> torch.LongTensor:
        """Prompt + generated tokens `(batch, prompt + new)`, as `model.generate(...)` returns them.

        Finished rows (EOS) are filled with `pad_token_id`. Greedy decoding gives the PyTorch model's
        greedy tokens (up to float rounding at exact ties).

        Args:
            prefilled: this wrapper's output for the whole prompt (`self(input_ids, attention_mask)`):
                decoding starts from its last logits and cache instead of running the prompt again
                (branching several continuations off one prefill; timing decode alone).
            logits_processor, stopping_criteria: transformers' processors and criteria, called as
                `model.generate` calls them.
            `grammar=`, `json_schema=`, `regex=`, `python_code=True`, `hide_thoughts=`, `entropy_monitor=`,
                `stop_strings=` with `tokenizer=`: structured decoding (`hf_reason.decoding.generate`).
        """
        input_ids = self._input_ids(input_ids)
        check_generate_args(input_ids, max_new_tokens, do_sample, temperature)
        ids = input_ids
        batch_size, prompt_len = ids.shape
        mask = np.ones_like(ids) if attention_mask is None else as_numpy(attention_mask).astype(np.int64, copy=False)
        eos = self.config.eos_token_id if eos_token_id is None else eos_token_id
        pad = resolve_pad_token_id(pad_token_id, self.config, eos)
        if prefilled is not None:
            out = prefilled
            cached = out.past_key_values[0][0].shape[2]
            if out.logits.shape[0] != batch_size or mask.shape[1] != cached:
                raise ValueError(
                    f"`prefilled` must be this wrapper's output for `input_ids` / `attention_mask`: it holds "
                    f"{out.logits.shape[0]} rows and {cached} cached positions, but the mask is {tuple(mask.shape)}."
                )
        else:
            extra = max(0, self.min_keys - prompt_len)
            if extra:
                # Left padding with mask 0 leaves the model's outputs unchanged (positions and the
                # attention summaries count visible tokens only) and gives the top-k enough keys.
                ids = np.concatenate([np.full((batch_size, extra), pad if pad is not None else 0, np.int64), ids], 1)
                mask = np.concatenate([np.zeros((batch_size, extra), np.int64), mask], 1)
            out = self._forward(ids, mask)

        def advance(tokens: np.ndarray) -> np.ndarray:
            nonlocal mask, out
            mask = np.concatenate([mask, np.ones((batch_size, 1), np.int64)], 1)
            out = self._forward(tokens[:, None], mask, out.past_key_values)
            return out.logits[:, -1].numpy()

        return generate_tokens(
            input_ids,
            out.logits[:, -1].numpy(),
            advance,
            max_new_tokens,
            do_sample,
            temperature,
            top_k,
            eos,
            pad,
            seed,
            logits_processor,
            stopping_criteria,
        )


__all__ = ["ORTMetaAttentionForCausalLM"]
