"""Comparing systems on the instruction-following evaluation: paired tests per step of a pipeline.

For each compared pair (e.g. base -> SFT, SFT -> DPO) on the same held-out prompts: prompt-level strict
accuracy of both with Wilson intervals, the exact McNemar test on the paired prompt outcomes (Benjamini-Hochberg
over the pairs) and Cohen's h;
then per instruction type, the exact McNemar test on the paired instruction outcomes, with Benjamini-Hochberg
across the types, flagging the types where the later system is significantly *worse*.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .instruction_following import InstructionFollowingResult
from .statistics import benjamini_hochberg, cohens_h, mcnemar_from_outcomes, wilson_interval


__all__ = ["compare_instruction_following"]


def _rate(outcomes) -> dict:
    k, n = sum(map(bool, outcomes)), len(outcomes)
    low, high = wilson_interval(k, n)
    return {"accuracy": k / n if n else float("nan"), "wilson_95": [low, high], "n": n}


def compare_instruction_following(
    results: Mapping[str, InstructionFollowingResult], pairs: Sequence[tuple[str, str]], alpha: float = 0.05
) -> dict:
    """Paired comparisons of instruction-following results on the same prompts.

    Args:
        results: per system name, its `evaluate_instruction_following` result (same prompts, same order).
        pairs: (earlier, later) system names to compare, e.g. ``[("base", "sft"), ("sft", "dpo")]``.
        alpha (`float`, defaults to 0.05): the false discovery rate of the per-type correction.

    Returns:
        A dict with, per system, its four accuracies (prompt / instruction, strict / loose) and the prompt-level
        strict Wilson interval; per pair ``"<earlier>-><later>"``: the McNemar test on prompt-level strict outcomes
        (``b`` = prompts only the earlier follows, ``c`` only the later, ``p``; ``p_bh`` and ``significant_bh``: after
        Benjamini-Hochberg over the pairs), Cohen's h (later vs earlier), and
        per instruction type the McNemar test, the BH-adjusted p-value, and whether the later system is
        significantly better or worse; ``worse_types`` lists the latter.
    """
    names = list(results)
    for earlier, later in pairs:
        for name in (earlier, later):
            if name not in results:
                raise ValueError(f"pair ({earlier!r}, {later!r}) names {name!r}, which has no result; have {names}")
        if results[earlier].instruction_ids != results[later].instruction_ids:
            raise ValueError(f"{earlier!r} and {later!r} were not scored on the same prompts and instructions")
    report: dict = {"systems": {}, "comparisons": {}}
    for name, result in results.items():
        report["systems"][name] = {**result.summary, "prompt_strict_interval": _rate(result.prompt_strict)}
    for earlier, later in pairs:
        a, b = results[earlier], results[later]
        only_a, only_b, p = mcnemar_from_outcomes(a.prompt_strict, b.prompt_strict)
        rate_a, rate_b = _rate(a.prompt_strict)["accuracy"], _rate(b.prompt_strict)["accuracy"]
        types_a, types_b = a.per_type(), b.per_type()
        type_names = sorted(types_a)
        tests = [mcnemar_from_outcomes(types_a[t], types_b[t]) for t in type_names]
        adjusted, significant = benjamini_hochberg([t[2] for t in tests], alpha=alpha)
        per_type = {}
        for t, (tb, tc, tp), p_adj, sig in zip(type_names, tests, adjusted, significant):
            per_type[t] = {
                "n": len(types_a[t]), "earlier": _rate(types_a[t])["accuracy"], "later": _rate(types_b[t])["accuracy"],
                "b": tb, "c": tc, "p": tp, "p_bh": p_adj,
                "better": bool(sig and tc > tb), "worse": bool(sig and tb > tc),
            }  # fmt: skip
        report["comparisons"][f"{earlier}->{later}"] = {
            "prompt_strict": {"earlier": rate_a, "later": rate_b, "b": only_a, "c": only_b, "p": p},
            "significant": p < alpha,
            "cohens_h": cohens_h(rate_b, rate_a),
            "per_type": per_type,
            "worse_types": [t for t, v in per_type.items() if v["worse"]],
        }
    # the steps of one pipeline are a family of tests too: "both steps significant" is judged after correction
    steps = list(report["comparisons"].values())
    adjusted, significant = benjamini_hochberg([s["prompt_strict"]["p"] for s in steps], alpha=alpha)
    for step, p_adj, sig in zip(steps, adjusted, significant):
        step["p_bh"], step["significant_bh"] = p_adj, bool(sig)
    return report
