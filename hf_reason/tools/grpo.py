# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Tool use in GRPO rollouts: calls run while the rollout is sampled, results masked out of the loss.

`ToolUseGRPOMixin` overrides two of TRL's `GRPOTrainer` hooks: `_generate_single_turn` samples
under a fresh `ToolCallProcessor` (through `generate_with_processors`, so the shared-prefill path of
`ReasoningGRPOTrainer` and stock generation both get it), and `_generate` returns a `tool_mask`
that is 0 on the forced result tokens, which TRL multiplies into the loss mask (the policy is not
credited or blamed for text it did not choose). Mix it in front of any GRPO trainer built on TRL's:

    class ToolGRPO(ToolUseGRPOMixin, ReasoningGRPOTrainer): ...
    trainer = ToolGRPO(..., tool_registry=default_registry())

Plain-text prompts and generation through transformers (not vLLM); TRL's own chat-template tool
loop (``tools=``) is for chat models and stays unused here.
"""

from __future__ import annotations

from ..decoding.grpo import generate_with_processors
from .generation import ToolCallProcessor
from .registry import ToolRegistry


__all__ = ["ToolUseGRPOMixin"]


class ToolUseGRPOMixin:
    """Tool calls inside a TRL `GRPOTrainer`'s rollouts.

    Args (besides the trainer's own):
        tool_registry ([`ToolRegistry`]): the tools rollouts may call.
        max_tool_calls (`int`, defaults to 4): calls per completion.
    """

    def __init__(self, *args, tool_registry: ToolRegistry, max_tool_calls: int = 4, **kwargs):
        if not isinstance(tool_registry, ToolRegistry):
            raise ValueError(f"`tool_registry` must be a ToolRegistry, got {type(tool_registry).__name__}")
        self.tool_registry, self.max_tool_calls = tool_registry, max_tool_calls
        self._tool_processors: list[ToolCallProcessor] = []
        super().__init__(*args, **kwargs)
        if getattr(self, "use_vllm", False):
            raise ValueError("Tool-use GRPO runs calls inside transformers' generate; set use_vllm=False.")
        if getattr(self, "tools", None):
            raise ValueError("Pass tools through `tool_registry`, not TRL's chat-template `tools`.")

    def rollout_processors(self) -> list:
        """The logits processors of one rollout `generate` call; the tool processor must stay last (it forces
        the results after every other processor has spoken). Override to add processors before it."""
        processor = ToolCallProcessor(
            self._tokenizer, self.tool_registry, max_calls=self.max_tool_calls, eos_token_ids=self.eos_token_ids
        )
        self._tool_processors.append(processor)
        return [processor]

    def _generate_single_turn(self, *args, **kwargs):
        unwrapped = self.accelerator.unwrap_model(self.model_wrapped)
        with generate_with_processors(unwrapped, self.rollout_processors):
            return super()._generate_single_turn(*args, **kwargs)

    def _generate(self, prompts: list):
        self._tool_processors = []
        prompt_ids, completion_ids, tool_mask, *rest = super()._generate(prompts)
        if len(self._tool_processors) != 1:
            raise RuntimeError(f"expected one generate call per rollout batch, saw {len(self._tool_processors)}")
        processor = self._tool_processors[0]
        forced = [set(p) for p in processor.forced_positions] or [set() for _ in completion_ids]
        tool_mask = [[0 if i in forced[row] else 1 for i in range(len(ids))] for row, ids in enumerate(completion_ids)]
        mode = "train" if self.model.training else "eval"
        calls = [r for row in processor.results for r in row]
        self._metrics[mode]["tools/calls_per_completion"].append(len(calls) / max(len(completion_ids), 1))
        self._metrics[mode]["tools/failure_frequency"].append(
            sum(not r.ok for r in calls) / len(calls) if calls else 0.0
        )
        return (prompt_ids, completion_ids, tool_mask, *rest)
