"""Sentinel-prompt check: known prompts whose outputs must not show chat-template contamination.

A base model evaluated completion-style (no chat template) must not answer with a chat template's
markers ("<|im_start|>", "[INST]", ...) or with role headers ("User:", "Assistant:"): either means
the checkpoint was trained on chat-formatted text, or the wrong tokenizer / template was loaded,
and its instruction-following scores would measure the template rather than the model. The check
greedily answers a few fixed sentinel prompts right after loading and fails loudly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..data.preferences import find_chat_template_tokens


__all__ = [
    "SENTINEL_PROMPTS",
    "ChatTemplateContaminationError",
    "SentinelReport",
    "check_sentinel_outputs",
    "run_sentinel_check",
]

SENTINEL_PROMPTS = (
    "Write one sentence about the sea.\n",
    "List three colours.\n",
    "Answer with a title in double angular brackets.\n",
    "Q: 2 + 3 = ?\nA:",
)

_ROLE_HEADER = re.compile(r"(?im)^\s*(?:###\s*)?(user|assistant|system|human)\s*:")


class ChatTemplateContaminationError(RuntimeError):
    """A sentinel prompt's output shows chat-template markers or role headers."""


@dataclass
class SentinelReport:
    """Per sentinel prompt: its output and what contaminates it (empty list: clean)."""

    prompts: list[str]
    outputs: list[str]
    findings: list[list[str]]

    @property
    def contaminated(self) -> bool:
        return any(self.findings)

    def describe(self) -> str:
        bad = [(p, f) for p, f in zip(self.prompts, self.findings) if f]
        return "; ".join(f"prompt {p!r} -> {', '.join(f)}" for p, f in bad) or "clean"


def check_sentinel_outputs(prompts: Sequence[str], outputs: Sequence[str]) -> SentinelReport:
    """What contaminates each output: chat-template markers and role headers at a line start."""
    if len(prompts) != len(outputs):
        raise ValueError(f"need one output per sentinel prompt, got {len(outputs)} for {len(prompts)}")
    findings = []
    for output in outputs:
        found = find_chat_template_tokens(output)
        found += [f"role header {m.group(0).strip()!r}" for m in _ROLE_HEADER.finditer(output)]
        findings.append(found)
    return SentinelReport(list(prompts), list(outputs), findings)


def run_sentinel_check(
    model, tokenizer, prompts: Sequence[str] = SENTINEL_PROMPTS, max_new_tokens: int = 24, raise_error: bool = True
) -> SentinelReport:
    """Greedily answer the sentinel `prompts` with `model` and check the outputs.

    Outputs are decoded with special tokens kept, up to the tokenizer's own EOS token.

    Args:
        model: a causal LM with `generate`.
        tokenizer: its tokenizer (a pad token is needed for batching; the EOS is used when absent).
        prompts (`Sequence[str]`, defaults to `SENTINEL_PROMPTS`).
        max_new_tokens (`int`, defaults to 24).
        raise_error (`bool`, defaults to `True`): raise `ChatTemplateContaminationError` on contamination.
    """
    import torch

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    was_training = model.training
    model.eval()
    outputs = []
    with torch.no_grad():
        for prompt in prompts:
            ids = tokenizer(prompt, return_tensors="pt")
            generated = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_id)
            text = tokenizer.decode(generated[0, ids["input_ids"].size(1) :], skip_special_tokens=False)
            # the model's own end-of-text ends the answer; it is not a chat-template marker
            if tokenizer.eos_token:
                text = text.split(tokenizer.eos_token)[0]
            outputs.append(text)
    model.train(was_training)
    report = check_sentinel_outputs(prompts, outputs)
    if raise_error and report.contaminated:
        raise ChatTemplateContaminationError(f"sentinel prompts show chat-template contamination: {report.describe()}")
    return report
