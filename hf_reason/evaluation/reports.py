"""The report evaluator: scores structured reasoning reports, each score in [0, 1].

A report (docs/curated_dataset.md has the full format)::

    Plan: what will be done
    Step 1: ...
    Step 2: ...
    Monitor: what was checked along the way
    Diagnosis: what could go wrong / what went wrong
    Reflection: critique of the steps, citing focus as [focus: basket @ L1 H0]
    Tool: calculator({"expression": "3 * 4"})      (optional, any line)
    Answer: the final answer

Scores (definitions in docs/curated_dataset.md): ``prefix_quality``, ``coverage``,
``repetition`` (1 = no repetition), ``validator``, ``reflection_alignment``, ``tool_sanity``,
and ``overall`` (the weighted mean of those available). `ReportEvaluator.evaluate` writes
``summary.json`` and ``scores.csv`` atomically and appends warnings to ``progress.jsonl``;
`ReportScoreReward` exposes the same scores as a TRL reward function.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import math
import os
import re
import time
from collections.abc import Iterable, Sequence
from typing import Any, Optional

from ..file_io import atomic_write
from .sandbox import SandboxConfig
from .validators import validate


__all__ = [
    "DEFAULT_TOOLS",
    "REQUIRED_SECTIONS",
    "SCORE_NAMES",
    "FocusCitation",
    "ParsedReport",
    "ReportEvaluator",
    "ReportScoreReward",
    "coverage_score",
    "focus_claim_accuracy",
    "introspection_num_layers",
    "parse_report",
    "prefix_quality",
    "present_sections",
    "reflection_alignment",
    "repetition_score",
    "tool_call_problems",
    "tool_sanity",
]

REQUIRED_SECTIONS = ("Plan", "Step", "Monitor", "Diagnosis", "Reflection", "Answer")
REPETITION_SECTIONS = ("Plan", "Monitor", "Diagnosis")
SCORE_NAMES = ("prefix_quality", "coverage", "repetition", "validator", "reflection_alignment", "tool_sanity")

_SECTION_RE = re.compile(r"^[ \t]*(Plan|Step[ \t]*\d+|Monitor|Diagnosis|Reflection|Answer):", re.MULTILINE)
_FOCUS_RE = re.compile(
    r"\[focus:\s*([^\]@]+?)\s*(?:@\s*(?:L(\d+)|(early|middle|late))(?:\s*H(\d+))?\s*)?\]", re.IGNORECASE
)
_TOOL_RE = re.compile(r"^[ \t]*Tool:[ \t]*(.*)$", re.MULTILINE)
_TOOL_CALL_RE = re.compile(r"([A-Za-z_][\w.]*)\((.*)\)\s*$", re.DOTALL)

# The built-in tools' signatures: name -> (required arguments, optional arguments); the tools
# themselves (hf_reason.tools.default_registry) are what the evaluator runs by default.
DEFAULT_TOOLS: dict[str, tuple[set, set]] = {
    "calculator": ({"expression"}, set()),
    "python": ({"code"}, {"timeout"}),
    "search": ({"query"}, {"k"}),
    "search_memory": ({"query"}, {"k"}),
    "lookup": ({"term"}, set()),
}


@dataclasses.dataclass
class FocusCitation:
    """One ``[focus: TERM @ L<layer> H<head>]`` claim; layer may be a band (early/middle/late)."""

    term: str
    layer: Optional[int] = None
    band: Optional[str] = None
    head: Optional[int] = None


@dataclasses.dataclass
class ParsedReport:
    prefix: str
    sections: list[tuple[str, str]]
    answer: Optional[str]
    citations: list[FocusCitation]
    tool_calls: list[str]

    def names(self) -> list[str]:
        return [name for name, _ in self.sections]


def _section_kind(name: str) -> str:
    return "Step" if name.startswith("Step") else name


def parse_report(text: str) -> ParsedReport:
    """Splits a report into the prefix before ``Plan:``, sections, answer, focus citations, tool calls."""
    matches = list(_SECTION_RE.finditer(text))
    plan = next((m for m in matches if m.group(1) == "Plan"), None)
    prefix = text[: plan.start()] if plan else text
    sections = []
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        sections.append((re.sub(r"\s+", " ", match.group(1)), text[match.end() : end].strip()))
    answers = [body for name, body in sections if name == "Answer" and body]
    citations = [
        FocusCitation(
            term=m.group(1).strip(),
            layer=int(m.group(2)) if m.group(2) else None,
            band=m.group(3).lower() if m.group(3) else None,
            head=int(m.group(4)) if m.group(4) else None,
        )
        for m in _FOCUS_RE.finditer(text)
    ]
    return ParsedReport(
        prefix=prefix,
        sections=sections,
        answer=answers[-1].splitlines()[0] if answers else None,
        citations=citations,
        tool_calls=[m.group(1).strip() for m in _TOOL_RE.finditer(text)],
    )


def _context_size(lm) -> Optional[int]:
    config = getattr(lm, "config", None)
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 1:
            return value
    return None


def _perplexity(prefix: str, prompt: str, lm, tokenizer) -> tuple[float, int]:
    """Perplexity of `prefix` given `prompt`, within the LM's context window.

    The prefix is capped at ``context - 1`` tokens (it is what is scored; one token of context is
    the least it needs) and the prompt is cut from the left to the ``context - len(prefix)``
    tokens right before it, the ones that matter for predicting it.
    """
    import torch

    context = tokenizer(prompt, add_special_tokens=False)["input_ids"] if prompt else []
    target = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    if not context:
        bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        context = [bos] if bos is not None else []
    window = _context_size(lm)
    if window is not None:
        target = target[: window - 1]
        context = context[-(window - len(target)) :]
    ids = torch.tensor([context + target], device=next(lm.parameters()).device)
    with torch.no_grad():
        logits = lm(ids).logits[0, :-1].float()
    nll = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none")[-len(target) :]
    return math.exp(nll.mean().item()), len(target)


def prefix_quality(report: str, prompt: str = "", lm=None, tokenizer=None, distance_scale: float = 16.0) -> float:
    """distance score x perplexity score of the text before the first ``Plan:`` (see the docs).

    Distance: ``exp(-d / distance_scale)``, `d` the number of tokens before ``Plan:`` (words when no
    tokenizer is given); 0 when the report has no Plan. Perplexity (only with `lm` and `tokenizer`):
    ``1 - min(1, ln(ppl) / ln(vocab_size))``, 1 for an empty prefix; without an LM it is left out.
    Within the LM's context (`n_positions`): the prefix is scored on its first ``n_positions - 1``
    tokens and the prompt keeps its last ``n_positions - len(prefix)`` tokens.
    """
    parsed = parse_report(report)
    if "Plan" not in parsed.names():
        return 0.0
    prefix = parsed.prefix.strip()
    if not prefix:
        return 1.0
    distance = len(tokenizer(prefix, add_special_tokens=False)["input_ids"]) if tokenizer else len(prefix.split())
    score = math.exp(-distance / distance_scale)
    if lm is not None and tokenizer is not None:
        ppl, _ = _perplexity(prefix, prompt, lm, tokenizer)
        vocab = getattr(lm.config, "vocab_size", None) or len(tokenizer)
        score *= 1.0 - min(1.0, math.log(max(ppl, 1.0)) / math.log(vocab))
    return float(score)


def present_sections(report: str) -> set[str]:
    """The section kinds (`Plan`, `Step` for any `Step N`, `Monitor`, ...) that `report` has with a
    non-empty body."""
    return {_section_kind(name) for name, body in parse_report(report).sections if body}


def coverage_score(report: str, required: Sequence[str] = REQUIRED_SECTIONS) -> float:
    """Fraction of the `required` section kinds present with a non-empty body."""
    present = present_sections(report)
    return sum(kind in present for kind in required) / len(required)


def repetition_score(report: str, sections: Sequence[str] = REPETITION_SECTIONS) -> float:
    """1 = no repetition: (distinct / total word trigrams) x (distinct / total headers) over `sections`."""
    parsed = [(n, b) for n, b in parse_report(report).sections if _section_kind(n) in sections]
    if not parsed:
        return 0.0
    header_ratio = len({n for n, _ in parsed}) / len(parsed)
    words = [w for _, body in parsed for w in re.findall(r"\w+", body.lower())]
    trigrams = list(zip(words, words[1:], words[2:]))
    trigram_ratio = len(set(trigrams)) / len(trigrams) if trigrams else 1.0
    return float(header_ratio * trigram_ratio)


def _norm_token(token: str) -> str:
    # byte-level BPE marks a leading space with "Ġ"; SentencePiece with "▁"
    return re.sub(r"[\sĠ▁]+", " ", token).strip().strip(".,;:!?\"'").lower()


def _decoded_piece(token) -> str:
    # to_json(tokenizer) gives decoded text (" Sally"); raw vocabulary pieces mark spaces / newlines
    return str(token).replace("Ġ", " ").replace("▁", " ").replace("Ċ", "\n")


def _band(layer: int, num_layers: int) -> str:
    # the third of the depth the layer's middle falls in: with 2 layers the last one is "late"
    third = int(3 * (layer + 0.5) / max(num_layers, 1))
    return ("early", "middle", "late")[min(max(third, 0), 2)]


def introspection_num_layers(introspection: Optional[Sequence[dict]]) -> Optional[int]:
    """The model's number of layers as carried by `introspect(...).to_json()` records (None if absent)."""
    for record in introspection or []:
        if isinstance(record.get("num_layers"), int) and record["num_layers"] > 0:
            return int(record["num_layers"])
    return None


def _prompt_spans(records: Sequence[dict], prompt_length: int) -> list[tuple[str, list[tuple[int, int, int]]]]:
    """The prompt text the JSON reveals, as runs of consecutive positions: (text, [(start, end, position)]).

    Every attended key names its token; consecutive known positions decode to a contiguous span of
    the prompt, so a term split into several BPE pieces is found across them.
    """
    known: dict[int, str] = {}
    for record in records:
        for entry in record.get("attended", []):
            position = int(entry["position"])
            if position < prompt_length:
                known[position] = _decoded_piece(entry["token"])
    runs, text, offsets, last = [], "", [], None
    for position in sorted(known):
        if last is not None and position != last + 1:
            runs.append((text, offsets))
            text, offsets = "", []
        piece = known[position]
        offsets.append((len(text), len(text) + len(piece), position))
        text += piece
        last = position
    if offsets:
        runs.append((text, offsets))
    return runs


def _term_positions(term: str, runs) -> set[int]:
    """Prompt positions whose decoded span overlaps an occurrence of `term` (case-insensitive,
    whitespace-normalised, not glued to letters or digits on either side)."""
    words = term.lower().split()
    if not words:
        return set()
    pattern = re.compile(r"(?<![0-9a-z])" + r"\s+".join(re.escape(w) for w in words) + r"(?![0-9a-z])")
    found = set()
    for text, offsets in runs:
        for match in pattern.finditer(text.lower()):
            found.update(p for start, end, p in offsets if start < match.end() and end > match.start())
    return found


def reflection_alignment(
    citations: Sequence[FocusCitation],
    introspection: Optional[list[dict]] = None,
    prior_terms: Optional[Sequence[str]] = None,
    min_weight: Optional[float] = None,
    prompt_length: Optional[int] = None,
    num_layers: Optional[int] = None,
) -> Optional[float]:
    """Mean of the available parts (see the docs); 0 when nothing is cited, None with nothing to compare.

    Only attention to the prompt counts (keys at positions < `prompt_length`; default: the first
    position the JSON describes, which is `introspect(..., start=prompt_length)`'s `start`), and
    only entries of at least `min_weight` (default: ``1 / p`` for the entry of position `p`, the
    weight of uniform attention over the `p` keys that query could see: more than chance).

    - attention: fraction of cited terms of which some token in the prompt was attended to, the
      terms matched against the decoded prompt spans the JSON names (so multi-piece BPE terms match);
    - hints: fraction of citations with a layer / head hint for which such an entry has that layer
      (a band: thirds of `num_layers`, else of the JSON's `num_layers`, else of the layers seen)
      and head;
    - prior: F1 between the cited terms and the task's prior focus terms.
    """
    if introspection is None and not prior_terms:
        return None
    if not citations:
        return 0.0
    parts = []
    if introspection is not None:
        records = list(introspection)
        if prompt_length is None:
            prompt_length = min((int(r["position"]) for r in records), default=0)
        strong = []
        for record in records:
            threshold = min_weight if min_weight is not None else 1.0 / max(int(record["position"]), 1)
            strong += [
                e
                for e in record.get("attended", [])
                if int(e["position"]) < prompt_length and float(e.get("weight", 0.0)) >= threshold
            ]
        layers = (
            num_layers
            or introspection_num_layers(records)
            or (max((int(e["layer"]) for r in records for e in r.get("attended", [])), default=0) + 1)
        )
        runs = _prompt_spans(records, prompt_length)
        by_position: dict[int, list[dict]] = {}
        for entry in strong:
            by_position.setdefault(int(entry["position"]), []).append(entry)

        def entries(term):
            return [e for p in sorted(_term_positions(term, runs)) for e in by_position.get(p, [])]

        parts.append(sum(bool(entries(c.term)) for c in citations) / len(citations))
        hinted = [c for c in citations if c.layer is not None or c.band is not None or c.head is not None]
        if hinted:
            hits = 0
            for c in hinted:
                for e in entries(c.term):
                    layer_ok = (c.layer is None or int(e["layer"]) == c.layer) and (
                        c.band is None or _band(int(e["layer"]), layers) == c.band
                    )
                    if layer_ok and (c.head is None or int(e["head"]) == c.head):
                        hits += 1
                        break
            parts.append(hits / len(hinted))
    if prior_terms:
        cited = {_norm_token(c.term) for c in citations}
        prior = {_norm_token(t) for t in prior_terms}
        overlap = len(cited & prior)
        parts.append(0.0 if overlap == 0 else 2 * overlap / (len(cited) + len(prior)))
    return float(sum(parts) / len(parts))


def focus_claim_accuracy(report: str, introspection: Optional[list[dict]]) -> Optional[float]:
    """Share of the report's ``[focus: ...]`` claims that are true of the model's real attention: the term
    was attended above chance while the report was written and, when the claim names a layer (or band)
    and head, in that layer and head (each claim scored alone by `reflection_alignment`'s attention and
    hint parts). None when the report makes no claim or there is no introspection."""
    citations = parse_report(report).citations
    if not citations or not introspection:
        return None
    return sum(reflection_alignment([c], introspection, None) == 1.0 for c in citations) / len(citations)


def _same_result(claimed: str, actual: str) -> bool:
    from .exact_arithmetic import ALL_OPERATORS, ArithmeticExpressionError, evaluate_exact

    claimed, actual = " ".join(claimed.split()), " ".join(actual.split())
    try:
        exact = dict(operators=ALL_OPERATORS, allow_decimals=True)
        return evaluate_exact(claimed, **exact) == evaluate_exact(actual, **exact)
    except ArithmeticExpressionError:
        return claimed == actual


@functools.cache
def _shared_default_registry():
    from ..tools import default_registry

    return default_registry()


def tool_call_problems(report: str, registry=None) -> list[tuple[str, Optional[str]]]:
    """Each ``Tool:`` line of a report with what is wrong with it (None when the call is sound).

    Args:
        report (`str`): the report.
        registry (*optional*): a [`~hf_reason.tools.ToolRegistry`] (default: the built-in tools): every
            call is checked against the tool's JSON schema and *run*; a ``Result:`` line written right
            after the call must agree with what the tool really returns (numbers compared exactly).
            A ``{name: (required, optional)}`` dict instead checks names and argument names only.
    """
    from ..tools import ToolRegistry, parse_tool_call

    registry = _shared_default_registry() if registry is None else registry
    out = []
    for match in _TOOL_RE.finditer(report):
        call = match.group(1).strip()
        if not isinstance(registry, ToolRegistry):
            out.append((call, _signature_problem(call, registry)))
            continue
        result = registry.call_text(call)
        if not result.ok:
            out.append((call, result.error))
            continue
        following = report[match.end() :].lstrip("\n").split("\n", 1)[0].strip()
        problem = None
        if following.startswith("Result:"):
            claimed = following[len("Result:") :].strip()
            if not _same_result(claimed, result.text):
                name, _ = parse_tool_call(call)
                problem = f"the report says {name} returned {claimed[:60]!r}, it returns {result.text[:60]!r}"
        out.append((call, problem))
    return out


def _signature_problem(call: str, signatures: dict[str, tuple[set, set]]) -> Optional[str]:
    match = _TOOL_CALL_RE.fullmatch(call)
    if not match:
        return "not a call NAME({json})"
    if match.group(1) not in signatures:
        return f"unknown tool {match.group(1)!r}"
    try:
        args = json.loads(match.group(2)) if match.group(2).strip() else {}
    except json.JSONDecodeError:
        return "arguments are not JSON"
    required, optional = signatures[match.group(1)]
    if not isinstance(args, dict) or not required <= set(args) <= required | optional:
        return f"arguments must be an object with {sorted(required)} and optionally {sorted(optional)}"
    return None


def tool_sanity(report: str, registry=None) -> float:
    """Fraction of ``Tool: name({json args})`` lines that are sound calls (1 if none); see `tool_call_problems`."""
    problems = tool_call_problems(report, registry)
    if not problems:
        return 1.0
    return sum(problem is None for _, problem in problems) / len(problems)


class ReportEvaluator:
    """Scores reports against the curated tasks (or any rows with the same columns).

    Args:
        tasks (`datasets.Dataset` or list of dicts, *optional*): rows with `id`, `prompt`,
            `validator` and `introspection` (see `load_curated_tasks`); reports refer to them by
            `task_id`. Without tasks only the task-free scores are computed.
        lm, tokenizer (*optional*): a causal LM and its tokenizer for the perplexity part of
            `prefix_quality`; without them only the distance part is used.
        tool_registry (*optional*): the tools calls are run against, a [`~hf_reason.tools.ToolRegistry`]
            (default: the built-in tools of `hf_reason.tools.default_registry`), or a
            ``{name: (required, optional)}`` dict such as `DEFAULT_TOOLS` to check names only.
        sandbox (`SandboxConfig`, *optional*): limits for `python_tests` validators.
        weights (`dict[str, float]`, *optional*): weights of the scores in `overall` (default 1 each).
    """

    def __init__(
        self,
        tasks=None,
        lm=None,
        tokenizer=None,
        tool_registry=None,
        sandbox: Optional[SandboxConfig] = None,
        weights: Optional[dict[str, float]] = None,
    ):
        self.tasks = {}
        for row in tasks or []:
            row = dict(row)
            for key in ("validator", "introspection"):
                if isinstance(row.get(key), str):
                    row[key] = json.loads(row[key])
            self.tasks[row["id"]] = row
        self.lm, self.tokenizer = lm, tokenizer
        self.tool_registry = tool_registry
        self.sandbox = sandbox
        self.weights = dict.fromkeys(SCORE_NAMES, 1.0)
        unknown = set(weights or {}) - set(SCORE_NAMES)
        if unknown:
            raise ValueError(f"`weights` keys must be among {list(SCORE_NAMES)}, got {sorted(unknown)}")
        self.weights.update(weights or {})

    def score(
        self,
        completion: str,
        task_id: Optional[str] = None,
        prompt: Optional[str] = None,
        introspection: Optional[list[dict]] = None,
    ) -> dict[str, Any]:
        """All scores of one report, plus `overall` and a list of `warnings`."""
        warnings = []
        task = self.tasks.get(task_id) if task_id is not None else None
        if task_id is not None and task is None:
            warnings.append(f"unknown task_id {task_id!r}: validator and prior focus terms skipped")
        prompt = prompt if prompt is not None else (task or {}).get("prompt", "")
        parsed = parse_report(completion)
        scores: dict[str, Optional[float]] = {
            "prefix_quality": prefix_quality(completion, prompt, self.lm, self.tokenizer),
            "coverage": coverage_score(completion),
            "repetition": repetition_score(completion),
            "validator": None,
            "reflection_alignment": None,
            "tool_sanity": None,
        }
        problems = tool_call_problems(completion, self.tool_registry)
        scores["tool_sanity"] = 1.0 if not problems else sum(p is None for _, p in problems) / len(problems)
        warnings += [f"tool call `{call[:80]}`: {problem}" for call, problem in problems if problem]
        if task is not None:
            result = validate(completion, task["validator"], self.sandbox)
            scores["validator"] = float(result.passed)
            if not result.passed:
                warnings.append(f"validator failed: {result.reason}")
        prior = (task or {}).get("introspection", {}).get("focus_terms") if task else None
        scores["reflection_alignment"] = reflection_alignment(parsed.citations, introspection, prior)
        if introspection and any(c.band for c in parsed.citations) and introspection_num_layers(introspection) is None:
            warnings.append("the introspection JSON has no `num_layers`: layer bands are thirds of the layers seen")
        if "Plan" not in parsed.names():
            warnings.append("no Plan section")
        missing = [k for k in REQUIRED_SECTIONS if k not in {_section_kind(n) for n in parsed.names()}]
        if missing:
            warnings.append(f"missing sections: {missing}")
        available = {k: v for k, v in scores.items() if v is not None}
        total = sum(self.weights[k] for k in available)
        overall = sum(self.weights[k] * v for k, v in available.items()) / total if total else 0.0
        # informative, outside `overall`: how many focus claims are true of the real attention
        focus = focus_claim_accuracy(completion, introspection)
        return {**scores, "overall": overall, "focus_accuracy": focus, "warnings": warnings}

    def evaluate(self, reports: Iterable[dict], out_dir: Optional[str] = None) -> dict[str, Any]:
        """Scores every report (``{"task_id", "completion", "prompt"?, "introspection"?}``).

        With `out_dir`: writes ``summary.json`` (means per score and category, and every row) and
        ``scores.csv`` atomically, and appends one line per warning to ``progress.jsonl``.
        """
        from tqdm.auto import tqdm

        rows = []
        for i, report in enumerate(tqdm(list(reports), desc="eval-reports", unit="report")):
            if "completion" not in report:
                raise ValueError(f"report {i} has no `completion` field (fields: {sorted(report)})")
            result = self.score(
                report["completion"], report.get("task_id"), report.get("prompt"), report.get("introspection")
            )
            task = self.tasks.get(report.get("task_id"), {})
            rows.append({"index": i, "task_id": report.get("task_id"), "category": task.get("category"), **result})
        summary = {"num_reports": len(rows), "means": {}, "by_category": {}, "rows": rows}
        for name in (*SCORE_NAMES, "overall"):
            values = [r[name] for r in rows if r[name] is not None]
            summary["means"][name] = sum(values) / len(values) if values else None
        for category in sorted({r["category"] for r in rows if r["category"]}):
            subset = [r for r in rows if r["category"] == category]
            summary["by_category"][category] = {
                "count": len(subset),
                "overall": sum(r["overall"] for r in subset) / len(subset),
                "validator": _mean([r["validator"] for r in subset]),
            }
        if out_dir is not None:
            os.makedirs(out_dir, exist_ok=True)
            atomic_write(os.path.join(out_dir, "summary.json"), json.dumps(summary, indent=2))
            buffer = io.StringIO()
            writer = csv.DictWriter(
                buffer, fieldnames=["index", "task_id", "category", *SCORE_NAMES, "overall", "warnings"]
            )
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {
                        **{k: row[k] for k in writer.fieldnames if k != "warnings"},
                        "warnings": " | ".join(row["warnings"]),
                    }
                )
            atomic_write(os.path.join(out_dir, "scores.csv"), buffer.getvalue())
            with open(os.path.join(out_dir, "progress.jsonl"), "a", encoding="utf-8") as log:
                for row in rows:
                    for warning in row["warnings"]:
                        # one write per line: concurrent appenders never interleave inside a line
                        log.write(
                            json.dumps(
                                {
                                    "time": time.time(),
                                    "index": row["index"],
                                    "task_id": row["task_id"],
                                    "warning": warning,
                                }
                            )
                            + "\n"
                        )
        return summary


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


class ReportScoreReward:
    """The evaluator's scores as a TRL reward function ``f(prompts, completions, **kwargs) -> list[float]``.

    Args:
        evaluator (`ReportEvaluator`): what scores the reports.
        score (`str`, defaults to `"overall"`): which score is the reward (`overall` or one of
            `SCORE_NAMES`).

    The dataset's `task_id` column (TRL passes dataset columns as keyword arguments) selects the
    task; an `introspection` column, when present, feeds `reflection_alignment`.
    """

    def __init__(self, evaluator: ReportEvaluator, score: str = "overall"):
        if score not in (*SCORE_NAMES, "overall"):
            raise ValueError(f"`score` must be 'overall' or one of {list(SCORE_NAMES)}, got {score!r}")
        self.evaluator, self.score = evaluator, score
        self.__name__ = f"report_{score}"  # TRL logs rewards under the function's __name__

    def __call__(self, prompts, completions, task_id=None, introspection=None, **kwargs) -> list[float]:
        rewards = []
        for i, completion in enumerate(completions):
            if isinstance(completion, list):  # conversational: the assistant's last message
                completion = completion[-1]["content"]
            prompt = prompts[i] if prompts is not None and isinstance(prompts[i], str) else None
            result = self.evaluator.score(
                completion,
                task_id[i] if task_id is not None else None,
                prompt,
                introspection[i] if introspection is not None else None,
            )
            value = result[self.score]
            rewards.append(float(value) if value is not None else 0.0)
        return rewards
