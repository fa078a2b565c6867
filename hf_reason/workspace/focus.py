# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Introspection supervision: focus claims whose targets come from the model's own attention.

A report cites what it attended to as ``[focus: TERM @ L<layer> H<head>]``. The curated gold reports
cite what a *person* thought decisive, which a small model's attention need not match, so training on
them teaches the format but not the truth of the claim. `focus_targets` reads what the model really
attended to while writing a completion (`introspect`: prompt words weighted by attention above
chance, with the layer and head that carried most of it), and `relabel_focus_claims` rewrites the
completion's claims to say exactly that. Warm-up on relabelled completions trains the model to report
its own attention; `focus_claim_accuracy` (in `hf_reason.evaluation.reports`) measures it.

The theory-of-mind check (`refers_to_belief`) asks more than the right answer: the report's
reflection (or diagnosis) must speak of the other agent's belief or what they saw.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Optional

import torch


__all__ = ["agent_of_question", "focus_targets", "refers_to_belief", "relabel_focus_claims"]

_FOCUS_CLAIM_RE = re.compile(r"\[focus:[^\]]*\]", re.IGNORECASE)
_WORD_RE = re.compile(r"[A-Za-z0-9]+")
_AGENT_RES = (
    re.compile(r"\bWhere (?:will|would|does|did) ([A-Z][a-z]+) (?:look|search|think|believe|go)"),
    re.compile(r"\b(?:does|did|will) ([A-Z][a-z]+) (?:think|believe|expect)"),
    re.compile(r"\b([A-Z][a-z]+) (?:thinks|believes|expects)"),
)
_BELIEF_RE = re.compile(
    r"\b(belief|believes?|thinks?|expects?|knows?|saw|seen|sees|see|notic\w*|miss\w*|last[- ]seen|unaware|aware)\b",
    re.IGNORECASE,
)
_PRONOUN_RE = re.compile(r"\b(he|she|his|her|him|they|their)\b", re.IGNORECASE)


@torch.no_grad()
def focus_targets(model, tokenizer, prompt: str, completion: str, top: int = 2, top_k: int = 8) -> list[dict]:
    """The prompt words the model attended to most while writing `completion` after `prompt`.

    Args:
        model ([`MetaAttentionForCausalLM`]): the model (its `introspect`).
        tokenizer: a fast tokenizer (offsets map tokens to prompt words).
        prompt (`str`), completion (`str`): the text, split where the completion starts.
        top (`int`): words returned.
        top_k (`int`): attention entries read per written position.

    Returns:
        Up to `top` dicts ``{"term", "layer", "head", "weight"}``, heaviest first: the word, and the
        layer and head that gave it the most attention. Only entries above chance (``1 / p`` for the
        query at position `p`) count.
    """
    encoded = tokenizer(prompt + completion, return_offsets_mapping=True, add_special_tokens=False)
    offsets = encoded["offset_mapping"]
    prompt_tokens = sum(1 for _, end in offsets if end <= len(prompt))
    limit = getattr(model.config, "n_positions", None) or len(offsets)
    # the completion is cut to the context; a prompt that fills it leaves nothing to read
    if prompt_tokens < 1 or prompt_tokens >= min(len(offsets), limit):
        return []
    ids = torch.tensor([encoded["input_ids"][:limit]], device=model.device)
    out = model.introspect(ids, start=prompt_tokens, top_k=top_k)
    words = [(m.start(), m.end(), m.group(0)) for m in _WORD_RE.finditer(prompt)]
    # a word can be claimed only if every one of its tokens shows up in the introspection, so that the
    # evaluator (which reads the prompt back from the attended tokens) can find the whole word
    known = set(out.attended_positions[0].flatten().tolist())

    def word_at(position: int) -> Optional[str]:
        start, end = offsets[position]
        for w_start, w_end, word in words:
            if w_start < end and start < w_end:
                pieces = [p for p in range(prompt_tokens) if offsets[p][0] < w_end and w_start < offsets[p][1]]
                return word if all(p in known for p in pieces) else None
        return None

    weight: dict[str, float] = defaultdict(float)
    carrier: dict[str, dict[tuple[int, int], float]] = defaultdict(lambda: defaultdict(float))
    for j, position in enumerate(out.positions.tolist()):
        chance = 1.0 / position
        for r in range(out.weights.shape[-1]):
            w = float(out.weights[0, j, r])
            key = int(out.attended_positions[0, j, r])
            if w <= chance or key >= prompt_tokens:
                continue
            word = word_at(key)
            if word is None:
                continue
            weight[word] += w
            carrier[word][(int(out.layers[0, j, r]), int(out.heads[0, j, r]))] += w
    ranked = sorted(weight, key=lambda word: -weight[word])[:top]
    targets = []
    for word in ranked:
        layer, head = max(carrier[word], key=carrier[word].get)
        targets.append({"term": word, "layer": layer, "head": head, "weight": weight[word]})
    return targets


def relabel_focus_claims(completion: str, targets: list[dict]) -> str:
    """`completion` with its i-th ``[focus: ...]`` claim replaced by the i-th target (claims beyond the
    targets are removed; a completion without claims, or no targets, is returned unchanged)."""
    if not targets:
        return completion
    claims = iter(f"[focus: {t['term']} @ L{t['layer']} H{t['head']}]" for t in targets)
    relabelled = _FOCUS_CLAIM_RE.sub(lambda m: next(claims, ""), completion)
    return re.sub(r"[ \t]+([.,;])", r"\1", relabelled)


def agent_of_question(prompt: str) -> Optional[str]:
    """The agent whose belief a theory-of-mind question asks about (``Where will Omar look ...`` -> Omar)."""
    for pattern in _AGENT_RES:
        found = pattern.findall(prompt)
        if found:
            return found[-1]
    return None


def refers_to_belief(report: str, agent: Optional[str]) -> bool:
    """Whether the report's Reflection or Diagnosis speaks of `agent`'s belief or perception: it names
    the agent (or refers to them by a pronoun) and uses a belief / perception word (believes, thinks,
    saw, missed, last seen, ...)."""
    from ..evaluation.reports import parse_report

    text = " ".join(body for name, body in parse_report(report).sections if name in ("Reflection", "Diagnosis"))
    if not text or not _BELIEF_RE.search(text):
        return False
    names_agent = agent is not None and re.search(rf"\b{re.escape(agent)}\b", text) is not None
    return names_agent or bool(_PRONOUN_RE.search(text))
