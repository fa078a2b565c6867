# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
from dataclasses import dataclass, field

from trl import DPOConfig


__all__ = ["LengthBalancedDPOConfig"]


@dataclass
class LengthBalancedDPOConfig(DPOConfig):
    r"""
    Configuration for [`LengthBalancedDPOTrainer`]: every option of `trl.DPOConfig`, plus:

    Parameters:
        think_alpha (`float`, *optional*, defaults to `0.3`):
            Weight of the thought-segment tokens beyond the length the pair's two thought segments
            share. Must be in [0, 1]: 1 = no desensitisation, 0 = tokens beyond the shared thought
            length are ignored.
        answer_alpha (`float`, *optional*, defaults to `1.0`):
            The same for the answer segment. Must be in [0, 1]; the default 1.0 scores the answer
            in full.
        think_start_token (`list[str]`, *optional*, defaults to `["<think>", "<thought>"]`):
            The tags that open a thought segment (a single string is read as a one-element list).
            Each pairs with the `think_end_token` at the same index; the pairs the tokenizer has
            (both tags single tokens: add them as special tokens, e.g. `add_control_tokens` for
            `<thought>` or `build_tokenizer(extra_special_tokens=("<think>", "</think>"))`) are used,
            and at least one pair must be there.
        think_end_token (`list[str]`, *optional*, defaults to `["</think>", "</thought>"]`):
            The closing tags, one per `think_start_token`.
        length_balanced_batches (`bool`, *optional*, defaults to `True`):
            Order training pairs with [`LengthBalancedSampler`] so that the chosen-minus-rejected
            length difference averages to about zero within each per-device batch. Needs pairs
            whose chosen completion is shorter as well as longer.

    `ld_alpha` (stock LD-DPO), `use_weighting` (WPO) and the `"sft"` loss type read the per-token
    log-probs this trainer re-weights, so they cannot be combined with it.
    """

    think_alpha: float = field(
        default=0.3,
        metadata={"help": "Weight of thought tokens beyond the pair's shared thought length; in [0, 1] (1 = stock)."},
    )
    answer_alpha: float = field(
        default=1.0,
        metadata={"help": "Weight of answer tokens beyond the pair's shared answer length; in [0, 1] (1 = in full)."},
    )
    think_start_token: list[str] = field(
        default_factory=lambda: ["<think>", "<thought>"],
        metadata={
            "help": "Tags that open a thought segment; the tokenizer must have at least one pair as single tokens."
        },
    )
    think_end_token: list[str] = field(
        default_factory=lambda: ["</think>", "</thought>"],
        metadata={"help": "The closing tags, one per `think_start_token` (same index)."},
    )
    length_balanced_batches: bool = field(
        default=True,
        metadata={"help": "Sample batches whose chosen-minus-rejected length difference averages to ~0."},
    )

    def __post_init__(self):
        super().__post_init__()
        for name in ("think_start_token", "think_end_token"):
            value = getattr(self, name)
            value = [value] if isinstance(value, str) else list(value)
            if not value or not all(isinstance(t, str) and t for t in value):
                raise ValueError(f"`{name}` must be a non-empty string or list of non-empty strings, got {value!r}")
            setattr(self, name, value)
        if len(self.think_start_token) != len(self.think_end_token):
            raise ValueError(
                f"`think_start_token` and `think_end_token` pair up by index, got {len(self.think_start_token)} and "
                f"{len(self.think_end_token)} tags"
            )
        for name in ("think_alpha", "answer_alpha"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"`{name}` must be a number in [0, 1], got {value!r}")
        if self.ld_alpha is not None:
            raise ValueError(
                "`ld_alpha` must be None with LengthBalancedDPOConfig: `think_alpha` / `answer_alpha` replace it"
            )
        if self.use_weighting:
            raise ValueError("`use_weighting` (WPO) must be False with LengthBalancedDPOConfig")
        loss_types = self.loss_type if isinstance(self.loss_type, (list, tuple)) else [self.loss_type]
        if "sft" in loss_types:
            raise ValueError("`loss_type` may not include 'sft' with LengthBalancedDPOConfig")
