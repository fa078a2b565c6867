# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
from dataclasses import dataclass, field

from trl import GRPOConfig


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
