"""Paired comparison of instruction-following results: McNemar on prompts, BH across instruction types."""

import pytest

from hf_reason.evaluation.instruction_comparison import compare_instruction_following
from hf_reason.evaluation.instruction_following import evaluate_instruction_following


def test_a_later_system_that_follows_more_is_significantly_better_and_worse_types_are_flagged():
    ids = [["detectable_format:title", "punctuation:no_comma"]] * 40
    kwargs = [[{}, {}]] * 40
    base = evaluate_instruction_following(["plain, text"] * 40, ids, kwargs)  # follows nothing
    sft = evaluate_instruction_following(["<<t>>\nplain text"] * 40, ids, kwargs)  # follows both
    worse = evaluate_instruction_following(["<<t>>\nplain, text"] * 40, ids, kwargs)  # loses the comma rule
    report = compare_instruction_following({"base": base, "sft": sft, "dpo": worse}, [("base", "sft"), ("sft", "dpo")])
    first = report["comparisons"]["base->sft"]
    assert first["prompt_strict"]["c"] == 40 and first["prompt_strict"]["b"] == 0 and first["significant"]
    assert first["cohens_h"] == pytest.approx(3.14159, abs=1e-4) and first["worse_types"] == []
    second = report["comparisons"]["sft->dpo"]
    assert second["worse_types"] == ["punctuation:no_comma"]
    assert not second["per_type"]["detectable_format:title"]["worse"]
    # second step: 40 prompts lost, none gained; BH over the two steps keeps both significant
    assert second["prompt_strict"]["b"] == 40 and second["cohens_h"] < 0
    assert first["significant_bh"] and second["significant_bh"]
    assert first["p_bh"] == pytest.approx(first["prompt_strict"]["p"])
    assert report["systems"]["sft"]["prompt_strict"] == 1.0
    with pytest.raises(ValueError, match="has no result"):
        compare_instruction_following({"base": base}, [("base", "sft")])


def test_steps_are_corrected_together_so_a_borderline_step_can_lose_significance():
    ids, kwargs = [["punctuation:no_comma"]] * 12, [[{}]] * 12
    a = evaluate_instruction_following(["a, b"] * 12, ids, kwargs)
    b = evaluate_instruction_following(["a b"] * 6 + ["a, b"] * 6, ids, kwargs)  # 6 gained: exact p = 2 / 64
    c = evaluate_instruction_following(["a b"] * 6 + ["a b"] * 2 + ["a, b"] * 4, ids, kwargs)  # 2 gained: p = 0.5
    report = compare_instruction_following({"a": a, "b": b, "c": c}, [("a", "b"), ("b", "c")])
    first, second = report["comparisons"]["a->b"], report["comparisons"]["b->c"]
    assert first["prompt_strict"]["p"] == pytest.approx(2 / 64) and first["significant"]
    assert first["p_bh"] == pytest.approx(2 / 64 * 2) and not first["significant_bh"]
    assert second["prompt_strict"]["p"] == pytest.approx(0.5) and second["p_bh"] == pytest.approx(0.5)
