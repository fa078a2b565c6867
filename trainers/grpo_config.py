# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
import math
from dataclasses import dataclass, field
from typing import Optional

from trl import GRPOConfig

from hf_reason.data.curriculum import CURRICULUM_SCHEDULES, check_fraction
from hf_reason.data.grid import check_int


__all__ = ["ReasoningGRPOConfig"]


@dataclass
class ReasoningGRPOConfig(GRPOConfig):
    r"""
    Configuration for [`ReasoningGRPOTrainer`]: every option of `trl.GRPOConfig`, plus:

    Parameters:
        share_prompt_prefill (`bool`, *optional*, defaults to `True`):
            Run each distinct prompt once per group instead of once per completion, with the same
            results as stock:
            - in generation: prefill each prompt once and expand its KV cache to the
              `num_generations` completions (token-for-token the same completions under the same
              seed). Only on the plain transformers path (`use_vllm=False`,
              `use_transformers_paged=False`) with a dynamic cache (`cache_implementation` None or
              `"dynamic"`) and no active dropout.
            - in the log-probability forwards (the policy's loss forward with gradients, the
              old-policy and reference log-probabilities): run each distinct prompt of a micro-batch
              once and score every completion against its shared keys / values (the recurrent state
              after the prompt for Mamba layers, e.g. CRSM), so the loss and its
              gradients equal stock's up to floating-point reassociation. Works with LoRA, `accelerate
              launch` (DDP) and gradient checkpointing (the checkpointed layers are checkpointed
              non-reentrant whatever `gradient_checkpointing_kwargs` say, since reentrant checkpointing
              cannot pass gradients through the cache). Falls back to the stock forward, logging why
              once per reason, for Mamba layers on mamba_ssm's CUDA kernels, sliding-window caches, active
              dropout (set `disable_dropout=True` for models with dropout), multimodal inputs, MoE
              auxiliary losses, FSDP / DeepSpeed, prompt-learning PEFT, micro-batches in which no prompt
              repeats (keep `per_device_train_batch_size` a multiple of `num_generations` so that
              groups stay together), and models whose shared-prompt log-probabilities differ from the
              full forward's in a one-time check on the first repeated prompt.

        > Parameters that control the difficulty curriculum

        difficulty_column (`str`, *optional*):
            Name of a numeric column of the training dataset giving each prompt's difficulty (higher is harder, e.g.
            `num_ops` of generated arithmetic). If set, the prompts are drawn easy to hard
            ([`~hf_reason.data.curriculum.CurriculumRepeatSampler`]): they are split into `curriculum_num_buckets`
            quantile buckets, the first generation batches draw from the easiest bucket only, and more buckets unlock
            as `curriculum_schedule` says. The groups and their reuse are stock's (each prompt `num_generations` times
            in a row, the same order on every process), and a resumed run continues the schedule. Map-style datasets
            only. If `None`, prompts are drawn uniformly as in stock GRPO.
        curriculum_num_buckets (`int`, *optional*, defaults to `4`):
            Difficulty buckets (quantiles of `difficulty_column`; prompts of equal difficulty share a bucket, so there
            may be fewer). At least 1.
        curriculum_schedule (`str`, *optional*, defaults to `"rating"`):
            When the next bucket unlocks. `"rating"`: on a fixed schedule, one more at each step until all are
            unlocked at `curriculum_warmup_fraction` of training. `"pass_rate"`: when the policy's own rollouts on the
            newest bucket's prompts pass (total weighted reward at least `curriculum_pass_reward`) at a rate of at
            least `curriculum_pass_threshold` over its last `curriculum_pass_window` rollouts there; the rollouts are
            gathered from every process, so all unlock together, and the unlocks are saved with each checkpoint.
            Needs the column in the rollouts' inputs (`remove_unused_columns=False`, GRPO's default).
        curriculum_warmup_fraction (`float`, *optional*, defaults to `0.5`):
            `"rating"`: fraction of training (of `max_steps`, or of the epochs) at which every bucket is unlocked;
            from then on the prompts are drawn from all of them. In (0, 1].
        curriculum_pass_threshold (`float`, *optional*, defaults to `0.5`):
            `"pass_rate"`: the pass rate on the newest bucket that unlocks the next one. In (0, 1].
        curriculum_pass_window (`int`, *optional*, defaults to `32`):
            `"pass_rate"`: the newest bucket's last rollouts the pass rate is taken over; no bucket unlocks before
            that many. At least 1.
        curriculum_pass_reward (`float`, *optional*, defaults to `1.0`):
            `"pass_rate"`: the total reward (the `reward_weights`-weighted sum of the reward functions, before any
            normalisation) at which a rollout passes, e.g. `1.0` for a right answer in format when the weights sum
            to 1 and each reward is at most 1.
    """

    share_prompt_prefill: bool = field(
        default=True,
        metadata={
            "help": "Run each distinct prompt once per group instead of once per completion, with stock's results: in "
            "generation (prefill once, KV cache expanded to the `num_generations` completions; plain transformers "
            "path, dynamic cache, no active dropout) and in the log-probability forwards (policy loss with gradients, "
            "old-policy and reference log-probabilities: each distinct prompt of a micro-batch runs once and every "
            "completion attends to its shared keys / values, or continues from the recurrent state after the prompt for "
            "Mamba layers such as CRSM's; LoRA, DDP and gradient checkpointing supported). Falls back to stock, "
            "logging why once, for Mamba on mamba_ssm's CUDA kernels, sliding-window caches, active dropout, "
            "multimodal inputs, MoE auxiliary losses, FSDP / DeepSpeed, prompt-learning PEFT and micro-batches in "
            "which no prompt repeats."
        },
    )

    difficulty_column: Optional[str] = field(
        default=None,
        metadata={
            "help": "Numeric column of the training dataset giving each prompt's difficulty (higher is harder). If set, "
            "prompts are drawn easy to hard: `curriculum_num_buckets` quantile buckets, unlocked one by one until all "
            "are at `curriculum_warmup_fraction` of training, with stock's groups and reuse. Map-style datasets only. "
            "If `None`, prompts are drawn uniformly as in stock GRPO."
        },
    )
    curriculum_num_buckets: int = field(
        default=4,
        metadata={"help": "Difficulty buckets (quantiles of `difficulty_column`). At least 1."},
    )
    curriculum_schedule: str = field(
        default="rating",
        metadata={
            "help": "When the next difficulty bucket unlocks: 'rating' (fixed schedule, all unlocked at "
            "`curriculum_warmup_fraction`) or 'pass_rate' (the policy's pass rate on the newest bucket's prompts "
            "reaches `curriculum_pass_threshold` over its last `curriculum_pass_window` rollouts there).",
            "choices": list(CURRICULUM_SCHEDULES),
        },
    )
    curriculum_warmup_fraction: float = field(
        default=0.5,
        metadata={"help": "'rating': fraction of training at which every difficulty bucket is unlocked. In (0, 1]."},
    )
    curriculum_pass_threshold: float = field(
        default=0.5,
        metadata={"help": "'pass_rate': the pass rate on the newest bucket that unlocks the next one. In (0, 1]."},
    )
    curriculum_pass_window: int = field(
        default=32,
        metadata={"help": "'pass_rate': the newest bucket's last rollouts the pass rate is taken over. At least 1."},
    )
    curriculum_pass_reward: float = field(
        default=1.0,
        metadata={"help": "'pass_rate': the total weighted reward (before normalisation) at which a rollout passes."},
    )

    def __post_init__(self):
        super().__post_init__()
        if self.difficulty_column is not None and (
            not isinstance(self.difficulty_column, str) or not self.difficulty_column
        ):
            raise ValueError(
                f"difficulty_column must be a column name (a non-empty str) or None, got {self.difficulty_column!r}"
            )
        self.curriculum_num_buckets = check_int("curriculum_num_buckets", self.curriculum_num_buckets, minimum=1)
        self.curriculum_warmup_fraction = check_fraction(self.curriculum_warmup_fraction, "curriculum_warmup_fraction")
        if self.curriculum_schedule not in CURRICULUM_SCHEDULES:
            raise ValueError(
                f"curriculum_schedule must be one of {CURRICULUM_SCHEDULES}, got {self.curriculum_schedule!r}"
            )
        self.curriculum_pass_threshold = check_fraction(self.curriculum_pass_threshold, "curriculum_pass_threshold")
        self.curriculum_pass_window = check_int("curriculum_pass_window", self.curriculum_pass_window, minimum=1)
        if (
            isinstance(self.curriculum_pass_reward, bool)
            or not isinstance(self.curriculum_pass_reward, (int, float))
            or not math.isfinite(self.curriculum_pass_reward)
        ):
            raise ValueError(f"curriculum_pass_reward must be a finite number, got {self.curriculum_pass_reward!r}")
