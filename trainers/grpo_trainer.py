"""GRPO with one prompt prefill per group.

TRL's `GRPOTrainer` repeats every prompt G (`num_generations`) times and hands all copies to
`model.generate`, so each prompt's prefill runs G times. `ReasoningGRPOTrainer` overrides only
`_generate_single_turn` on the plain transformers path: it prefills each distinct prompt once
(all but its last token, `logits_to_keep=1`), expands the KV cache to the G rows with the cache's
own `batch_select_indices`, and lets `model.generate` continue from the last prompt token. The
padded prompt, attention mask, position ids, logits processors and the sampling RNG stream are
exactly those of stock generation (the first sampled token is drawn from G rows, as in stock),
so completions are token-for-token the same under the same seed; the prefill cost drops by G.

What it does not share: the training forward (`_get_per_token_logps_and_entropies`) still runs
the prompt G times; see the `share_prompt_prefill` help for why.

Falls back to stock generation (`super()`) whenever the shortcut could change results or is not
applicable: vLLM / paged generation, multimodal inputs, a static or otherwise non-dynamic cache,
models without a default `DynamicCache` (e.g. Mamba-style recurrent states), active dropout
(each extra forward would draw dropout masks from the RNG), or no prompt repeated in the batch.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache, Trainer
from trl import GRPOTrainer
from trl.extras.profiling import profiling_context
from trl.models import unwrap_model_for_generation
from trl.trainer.utils import pad

from ._model_card import ModelCardMixin
from .utils import check_4bit_weights_trainable, keep_4bit_weights_trainable


__all__ = ["ReasoningGRPOTrainer", "can_share_prefill", "shared_prefill_generate"]


def _has_active_dropout(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.Dropout) and m.training and m.p > 0 for m in model.modules())


def _base_model(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def can_share_prefill(model, generation_config) -> bool:
    """Whether `shared_prefill_generate` gives exactly what `model.generate` gives for this model."""
    base = _base_model(model)
    supports_dynamic = getattr(base, "_supports_default_dynamic_cache", lambda: False)()
    return (
        supports_dynamic
        and not base.config.is_encoder_decoder
        and generation_config.cache_implementation in (None, "dynamic")
        and generation_config.num_beams == 1
        and getattr(generation_config, "prompt_lookup_num_tokens", None) is None
        and not _has_active_dropout(model)
    )


@torch.no_grad()
def shared_prefill_generate(model, input_ids, attention_mask, generation_config, **generate_kwargs):
    """`model.generate(input_ids, attention_mask=...)` with each distinct row prefilled once.

    `input_ids` / `attention_mask` are the left-padded prompts, repeated rows included (as GRPO
    builds them). Returns the same tensor as `model.generate` (prompt and completion ids).
    Callers check `can_share_prefill` first.
    """
    if input_ids.size(1) < 2:
        raise ValueError("shared_prefill_generate needs prompts of at least 2 positions (one is left to generate())")
    rows = [tuple(r) for r in torch.cat([input_ids, attention_mask], dim=1).tolist()]
    first_of, unique_rows = {}, []
    inverse = []
    for i, r in enumerate(rows):
        if r not in first_of:
            first_of[r] = len(unique_rows)
            unique_rows.append(i)
        inverse.append(first_of[r])
    unique_idx = torch.tensor(unique_rows, device=input_ids.device)

    prefix_ids = input_ids[unique_idx, :-1]
    prefix_mask = attention_mask[unique_idx, :-1]
    # the position ids generate() derives from a left-padded mask, so the cache is the one it would build
    position_ids = prefix_mask.long().cumsum(-1) - 1
    position_ids.masked_fill_(prefix_mask == 0, 1)
    base = _base_model(model)
    cache = DynamicCache(config=base.config.get_text_config(decoder=True))
    out = model(
        input_ids=prefix_ids,
        attention_mask=prefix_mask,
        position_ids=position_ids,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    cache = out.past_key_values
    cache.batch_select_indices(torch.tensor(inverse, device=input_ids.device))
    # generate() sees a cache covering all but the last prompt token and runs only that token, then decodes
    return model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        past_key_values=cache,
        generation_config=generation_config,
        **generate_kwargs,
    )


class ReasoningGRPOTrainer(ModelCardMixin, GRPOTrainer):
    """`trl.GRPOTrainer` whose generation prefills each prompt once per group (see the module docstring).

    Takes exactly `GRPOTrainer`'s arguments; `args` may be a [`ReasoningGRPOConfig`] (a plain
    `GRPOConfig` means `share_prompt_prefill=True`). bitsandbytes 4-bit models are kept trainable
    across evaluations as in `LengthBalancedDPOTrainer` (see `check_4bit_weights_trainable`).
    """

    _tag_names = ["trl", "grpo", "hf-reason"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # an evaluation during training must not repack 4-bit weights into bitsandbytes' untrainable CPU layout
        keep_4bit_weights_trainable(self.model)

    def train(self, *args, **kwargs):
        check_4bit_weights_trainable(self.model)
        keep_4bit_weights_trainable(self.model)
        return super().train(*args, **kwargs)

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        use_shared = (
            getattr(self.args, "share_prompt_prefill", True)
            and not self.use_vllm
            and not self.use_transformers_continuous_batching
            and images is None
            and not multimodal_fields
            and not has_tool_images
            and len({tuple(p) for p in prompt_ids}) < len(prompt_ids)
        )
        if not use_shared:
            return super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images
            )

        device = self.accelerator.device
        prompt_tensors = [torch.tensor(ids) for ids in prompt_ids]
        padded_ids = pad(
            prompt_tensors,
            padding_value=self._tokenizer.pad_token_id,
            padding_side="left",
            pad_to_multiple_of=self.pad_to_multiple_of,
        )
        attention_mask = pad(
            [torch.ones_like(t) for t in prompt_tensors],
            padding_value=0,
            padding_side="left",
            pad_to_multiple_of=self.pad_to_multiple_of,
        )
        if padded_ids.size(1) < 2:
            return super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images
            )
        generate_inputs = Trainer._prepare_inputs(self, {"input_ids": padded_ids, "attention_mask": attention_mask})

        with (
            profiling_context(self, "transformers.generate"),
            unwrap_model_for_generation(
                self.model_wrapped,
                self.accelerator,
                gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                generation_kwargs=self.generation_kwargs,
                gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
            ) as unwrapped_model,
            torch.no_grad(),
            self._dist.summon_full_params(self.model_wrapped, recurse=False),
        ):
            if not can_share_prefill(unwrapped_model, self.generation_config):
                prompt_completion_ids = None
            else:
                prompt_completion_ids = shared_prefill_generate(
                    unwrapped_model,
                    generate_inputs["input_ids"],
                    generate_inputs["attention_mask"],
                    generation_config=self.generation_config,
                )
        if prompt_completion_ids is None:
            return super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images
            )

        completion_ids = prompt_completion_ids[:, generate_inputs["input_ids"].size(1) :]
        # Everything after the first EOS is dropped, as stock GRPOTrainer does
        is_eos = torch.isin(completion_ids, torch.tensor(self.eos_token_ids, device=device))
        eos_idx = torch.full((is_eos.size(0),), is_eos.size(1), dtype=torch.long, device=device)
        eos_idx[is_eos.any(dim=1)] = is_eos.int().argmax(dim=1)[is_eos.any(dim=1)]
        sequence_indices = torch.arange(is_eos.size(1), device=device).expand(is_eos.size(0), -1)
        completion_mask = sequence_indices <= eos_idx.unsqueeze(1)
        completion_ids = [c[m].tolist() for c, m in zip(completion_ids.cpu(), completion_mask.cpu(), strict=True)]
        mode = "train" if self.model.training else "eval"
        unique = len({tuple(p) for p in prompt_ids})
        self._metrics[mode]["generation/prefill_rows_saved"].append(float(len(prompt_ids) - unique))
        return completion_ids, None
