"""GRPO with each prompt run once per group: in generation and in the log-probability forwards.

TRL's `GRPOTrainer` repeats every prompt G (`num_generations`) times. Its generation prefills each
copy, and its loss forward (`_get_per_token_logps_and_entropies`, also used for the old-policy and
reference log-probabilities) runs `[prompt | completion]` for every copy, although the prompt's
hidden states and keys / values depend on the prompt alone and the loss reads completion tokens only.
`ReasoningGRPOTrainer` overrides these two hooks:

- `_generate_single_turn` (plain transformers path): prefills each distinct prompt once (all but its
  last token, `logits_to_keep=1`), expands the KV cache to the G rows with the cache's own
  `batch_select_indices`, and lets `model.generate` continue from the last prompt token. The padded
  prompt, attention mask, position ids, logits processors and the sampling RNG stream are exactly
  those of stock generation, so completions are token-for-token the same under the same seed.
- `_get_per_token_logps_and_entropies`: runs each distinct prompt of a micro-batch once, with
  gradients, and scores every completion against the shared prompt keys / values
  (`shared_prefix.shared_prefix_logps`; for Mamba layers such as CRSM's, the recurrent state after
  the prompt: `shared_state.shared_state_logps`), so the loss and its gradients are stock's up to
  floating-point reassociation; under gradient checkpointing the same layers are checkpointed with
  a cache that survives it (`shared_prefix.checkpointing_with_cache`).

Each falls back to stock (with a one-line log of why, once per reason, for the log-probability
forward) wherever the shortcut could change results or does not apply: vLLM / paged generation,
multimodal inputs, MoE auxiliary losses, FSDP / DeepSpeed, prompt-learning PEFT, Mamba layers on
mamba_ssm's CUDA kernels, sliding-window caches, active dropout, no prompt repeated in a batch, or a model whose
shared-prompt log-probabilities differ from its full forward's in a one-time check.

With `difficulty_column` set in [`ReasoningGRPOConfig`], `_get_train_sampler` returns a
`CurriculumRepeatSampler` instead of TRL's `RepeatSampler`: the same groups and reuse, with the prompts of each
generation batch drawn from the difficulty buckets unlocked so far. Under `curriculum_schedule="pass_rate"`,
`_calculate_rewards` (whose rewards TRL gathers from every process) reports each rollout's difficulty and
outcome to the sampler, and the sampler's unlocks are saved and loaded with the optimizer's state.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import torch
from accelerate.utils import gather_object, is_peft_model
from datasets import IterableDataset
from transformers import DynamicCache, Trainer
from transformers.utils import logging
from trl import GRPOTrainer
from trl.extras.profiling import profiling_context
from trl.models import unwrap_model_for_generation
from trl.trainer.utils import pad

from hf_reason.data.curriculum import CurriculumRepeatSampler
from hf_reason.file_io import atomic_write_json

from ._model_card import ModelCardMixin
from .shared_prefix import group_prompt_rows, prefix_sharing_blocker, shared_prefix_logps
from .utils import check_4bit_weights_trainable, keep_4bit_weights_trainable


logger = logging.get_logger(__name__)

# the "pass_rate" curriculum's unlocks, in each checkpoint folder
CURRICULUM_STATE_NAME = "curriculum_state.json"


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
    """`trl.GRPOTrainer` that runs each prompt once per group in generation and in the log-probability
    forwards (see the module docstring).

    Takes exactly `GRPOTrainer`'s arguments; `args` may be a [`ReasoningGRPOConfig`] (a plain
    `GRPOConfig` means `share_prompt_prefill=True`). bitsandbytes 4-bit models are kept trainable
    across evaluations as in `LengthBalancedDPOTrainer` (see `check_4bit_weights_trainable`). With
    `args.difficulty_column` set, the training prompts follow an easy-to-hard curriculum (`_get_train_sampler`).
    """

    _tag_names = ["trl", "grpo", "hf-reason"]
    # max |shared - full| / max |full| over completion log-probabilities that the one-time check accepts: float
    # reassociation stays near 1e-6 in float32 and a few 1e-3 in 16-bit; a model reading later tokens goes far beyond
    _check_tolerance = {torch.float32: 1e-4, torch.float64: 1e-4}
    _check_tolerance_16bit = 5e-2

    def __init__(self, *args, **kwargs):
        self._prefix_fallbacks_logged = set()
        self._prefix_check = {}  # id(unwrapped model) -> None (verified) or the reason it failed
        super().__init__(*args, **kwargs)
        # an evaluation during training must not repack 4-bit weights into bitsandbytes' untrainable CPU layout
        keep_4bit_weights_trainable(self.model)
        # read once, from the dataset as given: a missing or non-numeric column fails here, not at train(), and
        # `remove_unused_columns=True` may drop the column from what the Trainer later hands `_get_train_sampler`
        self._difficulty_values = (
            self._difficulty(self.train_dataset) if getattr(self.args, "difficulty_column", None) is not None else None
        )
        self._curriculum_sampler = None  # the live CurriculumRepeatSampler, once the training data loader is built
        self._check_rewarded_tags_are_decoded()
        if self._pass_rate_curriculum and self.args.remove_unused_columns:
            raise ValueError(
                "curriculum_schedule='pass_rate' reads each rollout's difficulty_column "
                f"{self.args.difficulty_column!r} from its inputs; set remove_unused_columns=False (GRPO's default)"
            )

    def _check_rewarded_tags_are_decoded(self) -> None:
        """TRL decodes completions with `skip_special_tokens=True` before the reward functions see them: a format
        reward whose tags are special tokens of the tokenizer would score every completion as if they were missing."""
        tokenizer = getattr(self.processing_class, "tokenizer", self.processing_class)
        special = set(getattr(tokenizer, "all_special_tokens", ()))
        for func in self.reward_funcs:
            hidden = [
                t for t in (getattr(func, "think_open", None), getattr(func, "think_close", None)) if t in special
            ]
            if hidden:
                raise ValueError(
                    f"reward function {getattr(func, '__name__', func)!r} reads the tags {hidden}, which are special "
                    "tokens of the tokenizer: GRPO decodes completions with skip_special_tokens=True, so it would never "
                    "see them. Make them ordinary added tokens (`build_tokenizer(extra_tokens=...)`, or "
                    "`tokenizer.add_tokens(..., special_tokens=False)`)"
                )

    @property
    def curriculum_sampler(self):
        """The `CurriculumRepeatSampler` of the training data loader (its `unlock_chunks`, `pass_rate`), or None
        before the loader is built and without `difficulty_column`."""
        return self._curriculum_sampler

    @property
    def _pass_rate_curriculum(self) -> bool:
        return self._difficulty_values is not None and self.args.curriculum_schedule == "pass_rate"

    def _difficulty(self, dataset) -> np.ndarray:
        """The `difficulty_column` values of `dataset`, or a `ValueError` naming what is wrong."""
        column = self.args.difficulty_column
        if isinstance(dataset, IterableDataset):
            raise ValueError(
                f"difficulty_column={column!r} needs a map-style training dataset (the curriculum picks rows by "
                "index); got a datasets.IterableDataset"
            )
        names = getattr(dataset, "column_names", None)
        if names is None or column not in names:
            raise ValueError(
                f"difficulty_column={column!r} is not a column of the training dataset; its columns: {names}"
            )
        try:
            values = np.asarray(dataset[column], dtype=np.float64)
        except (TypeError, ValueError):
            values = None
        if values is None or values.ndim != 1 or not np.isfinite(values).all():
            raise ValueError(
                f"difficulty_column={column!r} must hold one finite number per row (higher is harder); "
                f"its first values: {dataset[column][:5]}"
            )
        return values

    def _get_train_sampler(self, dataset=None):
        """TRL's `RepeatSampler`, or with `args.difficulty_column` set a `CurriculumRepeatSampler` with its
        arguments and a schedule over the run's generation batches (from `max_steps`, else the epochs)."""
        if self._difficulty_values is None:
            return super()._get_train_sampler(dataset)
        dataset = self.train_dataset if dataset is None else dataset
        if len(dataset) != len(self._difficulty_values):
            raise ValueError(
                f"the sampler's dataset has {len(dataset)} rows but the training dataset's difficulty_column "
                f"{self.args.difficulty_column!r} has {len(self._difficulty_values)}"
            )
        batch_size = self.args.generation_batch_size // self.num_generations
        repeat_count = self.num_iterations * self.args.steps_per_generation
        accumulation = self.args.gradient_accumulation_steps
        if self.args.max_steps > 0:
            max_steps = self.args.max_steps
        else:  # as the Trainer counts them: the data loader yields one batch per micro-step, `repeat_count` per chunk
            updates_per_epoch = max(len(dataset) // batch_size * repeat_count // accumulation, 1)
            max_steps = math.ceil(self.args.num_train_epochs * updates_per_epoch)
        self._curriculum_sampler = CurriculumRepeatSampler(
            self._difficulty_values,
            mini_repeat_count=self.num_generations,
            batch_size=batch_size,
            repeat_count=repeat_count,
            schedule_length=max(1, math.ceil(max_steps * accumulation / repeat_count)),
            num_buckets=self.args.curriculum_num_buckets,
            warmup_fraction=self.args.curriculum_warmup_fraction,
            shuffle=self.shuffle_dataset,
            seed=self.args.seed,
            schedule=self.args.curriculum_schedule,
            pass_threshold=self.args.curriculum_pass_threshold,
            pass_window=self.args.curriculum_pass_window,
        )
        return self._curriculum_sampler

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        """TRL's rewards (gathered from every process); under the `"pass_rate"` curriculum, each training rollout's
        difficulty and outcome also go to the sampler, in the same order on every process."""
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        sampler = self._curriculum_sampler
        if not (self._pass_rate_curriculum and self.model.training and sampler is not None):
            return rewards_per_func
        difficulty = gather_object([row[self.args.difficulty_column] for row in inputs])
        weights = self.reward_weights.to(rewards_per_func.device).unsqueeze(0)
        total = (rewards_per_func * weights).nansum(dim=1)
        passed = (total >= self.args.curriculum_pass_reward).tolist()
        if sampler.report_rollouts(difficulty, passed):
            logger.info(
                f"curriculum: bucket {sampler.unlocked_at(sampler.next_chunk)} of {len(sampler.difficulty_buckets)} "
                f"unlocked from generation batch {sampler.next_chunk} (step {self.state.global_step})"
            )
        self._metrics["train"]["curriculum/unlocked_buckets"].append(float(sampler.unlocked_at(sampler.next_chunk)))
        if sampler.pass_rate is not None:
            self._metrics["train"]["curriculum/newest_bucket_pass_rate"].append(sampler.pass_rate)
        return rewards_per_func

    def _save_optimizer_and_scheduler(self, output_dir):
        super()._save_optimizer_and_scheduler(output_dir)
        # saved before the Trainer's state, which it writes last as the mark of a finished checkpoint
        if self._pass_rate_curriculum and self._curriculum_sampler is not None and self.args.should_save:
            atomic_write_json(os.path.join(output_dir, CURRICULUM_STATE_NAME), self._curriculum_sampler.state_dict())

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        # called on resume after the data loader is built and before any batch is drawn
        if checkpoint is None or not self._pass_rate_curriculum or self._curriculum_sampler is None:
            return
        path = os.path.join(checkpoint, CURRICULUM_STATE_NAME)
        if not os.path.isfile(path):
            raise ValueError(
                f"resuming curriculum_schedule='pass_rate' needs {CURRICULUM_STATE_NAME} in the checkpoint "
                f"{checkpoint}; it has none (a checkpoint of a run without the pass-rate curriculum?)"
            )
        with open(path) as f:
            self._curriculum_sampler.load_state_dict(json.load(f))

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

    # ------------------------------------------------------------------ log-probability forwards
    def _get_per_token_logps_and_entropies(
        self,
        model,
        input_ids,
        attention_mask,
        logits_to_keep,
        batch_size=None,
        compute_entropy=False,
        compute_aux_loss=False,
        **multimodal_inputs,
    ):
        """TRL's hook, with each distinct prompt of a chunk run once (see `shared_prefix_logps`).

        Arguments and returns as in `GRPOTrainer._get_per_token_logps_and_entropies`. Rows are chunked
        by `batch_size` as in stock; a chunk in which no prompt repeats runs the stock forward.
        """

        def stock(ids, mask):
            return super(ReasoningGRPOTrainer, self)._get_per_token_logps_and_entropies(
                model,
                ids,
                mask,
                logits_to_keep,
                batch_size=batch_size,
                compute_entropy=compute_entropy,
                compute_aux_loss=compute_aux_loss,
                **multimodal_inputs,
            )

        if not getattr(self.args, "share_prompt_prefill", True):
            return stock(input_ids, attention_mask)
        lm, reason = self._shareable_model(model)
        reason = reason or self._prefix_sharing_input_blocker(
            input_ids, logits_to_keep, compute_aux_loss, multimodal_inputs
        )
        if reason is not None:
            self._log_prefix_fallback(reason)
            self._record_rows_saved(0)
            return stock(input_ids, attention_mask)

        batch_size = batch_size or input_ids.size(0)
        prompt_len = input_ids.size(1) - logits_to_keep
        all_logps, all_entropies, rows_saved = [], [], 0
        for start in range(0, input_ids.size(0), batch_size):
            ids, mask = input_ids[start : start + batch_size], attention_mask[start : start + batch_size]
            groups = group_prompt_rows(ids[:, :prompt_len], mask[:, :prompt_len])
            repeated = groups[0].numel() < ids.size(0)
            if repeated and id(lm) not in self._prefix_check:
                self._prefix_check[id(lm)] = self._check_shared_forward(model, lm, ids, mask, logits_to_keep, groups)
            reason = "no prompt repeated within a micro-batch" if not repeated else self._prefix_check[id(lm)]
            if reason is not None:
                self._log_prefix_fallback(reason)
                logps, entropies, _ = stock(ids, mask)
            else:
                logps, entropies = shared_prefix_logps(
                    model,
                    lm,
                    ids,
                    mask,
                    logits_to_keep,
                    compute_entropy=compute_entropy,
                    autocast=self.accelerator.autocast,
                    groups=groups,
                )
                rows_saved += ids.size(0) - groups[0].numel()
            all_logps.append(logps)
            all_entropies.append(entropies)
        self._record_rows_saved(rows_saved)
        entropies = torch.cat(all_entropies, dim=0) if compute_entropy else None
        return torch.cat(all_logps, dim=0), entropies, None

    def _shareable_model(self, model):
        """The unwrapped causal LM whose backbone runs the prompts, or why there is none."""
        if self.is_fsdp_enabled or self.is_deepspeed_enabled:
            return (
                None,
                "FSDP / DeepSpeed gather parameters in the wrapped forward only; the prompt forward runs outside it",
            )
        unwrapped = self.accelerator.unwrap_model(model)
        if is_peft_model(unwrapped):
            if unwrapped.peft_config[unwrapped.active_adapter].is_prompt_learning:
                return None, "prompt-learning PEFT adds virtual tokens in the PEFT wrapper's forward"
            unwrapped = unwrapped.get_base_model()
        return unwrapped, prefix_sharing_blocker(unwrapped)

    @staticmethod
    def _prefix_sharing_input_blocker(input_ids, logits_to_keep, compute_aux_loss, multimodal_inputs):
        if any(value is not None for value in multimodal_inputs.values()):
            return "multimodal inputs"
        if compute_aux_loss:
            return "an MoE load-balancing loss, which stock computes over every prompt copy"
        if input_ids.size(1) - logits_to_keep < 2:
            return "a prompt block of fewer than 2 columns leaves no prefix to share"
        return None

    @torch.no_grad()
    def _check_shared_forward(self, model, lm, input_ids, attention_mask, logits_to_keep, groups):
        """Once per model: the shared forward on two rows of one repeated prompt against the full forward.

        Catches what the static checks cannot see: a model whose prompt positions read later tokens,
        that ignores or rejects the cache, or that positions a continuation differently.
        Returns `None` when they agree, else the reason to fall back.
        """
        _, inverse = groups
        rows = (inverse == int(torch.bincount(inverse).argmax())).nonzero().flatten()[:2]
        ids, mask = input_ids[rows], attention_mask[rows]
        # not through DDP: a wrapped forward is a collective (buffer broadcast), and only some ranks run this check
        model = self.accelerator.unwrap_model(model)
        try:
            ours, _ = shared_prefix_logps(model, lm, ids, mask, logits_to_keep, autocast=self.accelerator.autocast)
        except Exception as error:  # an architecture the shared forward does not fit: any error means stock
            return f"the shared forward failed on this model ({type(error).__name__}: {error})"
        full, _, _ = super()._get_per_token_logps_and_entropies(model, ids, mask, logits_to_keep)
        completion = mask[:, -logits_to_keep:].bool()
        if not completion.any():
            return None
        diff = float((ours - full)[completion].abs().max() / full[completion].abs().max().clamp(min=1.0))
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.accelerator.mixed_precision, lm.dtype)
        tolerance = self._check_tolerance.get(dtype, self._check_tolerance_16bit)
        if not diff <= tolerance:
            return (
                f"its shared-prompt log-probabilities differ from the full forward's by {diff:.3g} relative (> "
                f"{tolerance:g}): its prompt positions read later tokens, or it continues from a cache differently"
            )
        return None

    def _log_prefix_fallback(self, reason: str) -> None:
        if reason not in self._prefix_fallbacks_logged:
            self._prefix_fallbacks_logged.add(reason)
            logger.warning(
                f"ReasoningGRPOTrainer: the log-probability forward runs every prompt copy (stock): {reason}."
            )

    def _record_rows_saved(self, rows_saved: int) -> None:
        # the policy's forward (with gradients) only: the metric reads "prompt rows not recomputed per loss forward"
        if torch.is_grad_enabled():
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["loss_forward/prompt_rows_saved"].append(float(rows_saved))
