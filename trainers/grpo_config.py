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
            Prefill each distinct prompt once and expand its KV cache to the `num_generations`
            completions instead of prefilling every copy. Outputs are the same as stock generation
            under the same seed; it applies only on the plain transformers generation path
            (`use_vllm=False`, `use_transformers_paged=False`) with a dynamic cache
            (`cache_implementation` None or `"dynamic"`) and no active dropout (set
            `disable_dropout=True` for models with dropout); elsewhere stock generation runs.
            Generation only: the training (loss) forward still runs each prompt copy, as stock
            does. Under gradient checkpointing (TRL's default) transformers turns the KV cache off
            in training forwards, so there are no prompt states to hand to the completions; with
            `gradient_checkpointing=False` sharing them is possible but not implemented here (it
            would replace TRL's loss forward, `_get_per_token_logps_and_entropies`).
    """

    share_prompt_prefill: bool = field(
        default=True,
        metadata={
            "help": "Prefill each distinct prompt once and expand the KV cache to its `num_generations` completions "
            "(same outputs as stock generation). Only on the plain transformers path with a dynamic cache and no "
            "active dropout; otherwise stock generation runs. Generation only: the training forward still runs each "
            "prompt copy, because under gradient checkpointing (TRL's default) transformers disables the KV cache in "
            "training forwards, leaving no prompt states to share; without checkpointing it is possible but not "
            "implemented (it would replace TRL's loss forward)."
        },
    )
